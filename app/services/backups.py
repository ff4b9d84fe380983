"""Backups of the whole instance (issue 15 §3, docs/operations.md): ``flask backup create``,
``list``, ``verify``, ``restore`` and ``prune``.

A backup is one archive of app/services/archive.py (kind ``backup``) sealed with
AES-256-GCM under the backup key, written as ``mnc-backup-YYYYMMDD-HHMMSS.mncbak`` into
BACKUP_DIR:

- ``database.dump`` (PostgreSQL: ``pg_dump --format=custom`` of a snapshot exported by our
  own REPEATABLE READ transaction, in which the row counts of the manifest are taken too,
  so both describe the same moment while the app keeps serving) or ``database.sqlite3``
  (SQLite: the online backup API, never a file copy);
- ``settings.json``: the instance's typed settings without its secrets.

The stored documents (scanned papers) live in the database (``document_blob``, encrypted
with the documents' key), so the dump holds them as they are: still encrypted, and the
documents' key is not in the backup. The backup key is neither the documents' key nor in
the archive: BACKUP_KEY from the environment, else ``instance/backup_key`` (mode 0600).

Next to each backup a small sidecar ``<file>.json`` (no secret: date, size, revision,
SHA-256, verified or not) lets ``list`` and the home page show the backups without the key.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass, field, fields
from datetime import date, datetime, time, timedelta
from typing import Iterable

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app import clock
from app import secrets as app_secrets
from app.clock import JST
from app.services import archive, audit
from app.services.errors import DomainError
from app.settings import parse_backup_key, settings

KIND = "backup"
SUFFIX = ".mncbak"
SIDECAR = ".json"
KEY_FILE = "backup_key"
PG_PART = "database.dump"
SQLITE_PART = "database.sqlite3"
SETTINGS_PART = "settings.json"
# Settings never written into a backup (secrets); the keys themselves are not settings of
# the archive either (see docs/operations.md for what to keep besides the backups).
SECRET_SETTINGS = frozenset({"mail_password", "mail_username", "document_keys",
                             "backup_key", "metrics_token"})
_NAME = re.compile(r"^mnc-backup-(\d{8})-(\d{6})(?:-\d+)?\.mncbak$")


class BackupError(DomainError):
    """A backup cannot be made, checked or restored; the message says why, in Japanese."""


# --- where and with which key -------------------------------------------------------------

def backup_dir() -> str:
    return settings().backup_dir or os.path.join(current_app.instance_path, "backups")


def key_path() -> str:
    return os.path.join(current_app.instance_path, KEY_FILE)


def backup_key() -> bytes:
    """BACKUP_KEY from the environment, else instance/backup_key (made once, mode 0600)."""
    configured = settings().backup_key
    if configured:
        return parse_backup_key(configured)
    return bytes.fromhex(app_secrets.load_or_create(current_app.instance_path, KEY_FILE))


def key_fingerprint() -> str:
    return archive.key_fingerprint(backup_key()).hex()


def _private_dir(path: str) -> str:
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


# --- staging: the plain archive (the whole database) never touches the destination -------

WORK_DIR = ".backup-work"
_STAGED = re.compile(r"^\.(?:backup|verify)-(\d+)-")


def work_root() -> str:
    """The private folder (mode 0700, in the instance folder on the server) where a backup,
    verify or restore handles the unencrypted archive; never BACKUP_DIR or --to DIR, which
    may be external media."""
    root = os.path.join(current_app.instance_path, WORK_DIR)
    os.makedirs(root, mode=0o700, exist_ok=True)
    os.chmod(root, 0o700)
    return root


def _stage(kind: str) -> str:
    return tempfile.mkdtemp(prefix=f".{kind}-{os.getpid()}-", dir=work_root())


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def sweep_staging(folder: str | None = None) -> list[str]:
    """Remove staging folders left by a process that died (kill -9, power loss) from the
    private work folder, and the ``.backup-*`` / ``.verify-*`` folders older versions left
    inside the backup folder ``folder``. Returns the removed paths."""
    removed = []
    root = work_root()
    for name in os.listdir(root):
        match = _STAGED.match(name)
        if match and _alive(int(match.group(1))):
            continue
        shutil.rmtree(os.path.join(root, name), ignore_errors=True)
        removed.append(os.path.join(root, name))
    try:
        names = os.listdir(folder) if folder else []
    except OSError:
        names = []
    for name in names:
        path = os.path.join(folder, name)
        if name.startswith((".backup-", ".verify-")) and os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


# --- the sidecar: what list and the home page read ----------------------------------------

@dataclass
class BackupInfo:
    name: str
    path: str
    created_at: datetime | None
    bytes: int
    schema_revision: str | None = None
    product_version: str | None = None
    database: str | None = None
    sha256: str | None = None
    verified_at: datetime | None = None
    verify_problem: str | None = None
    rows: int | None = None
    key_fingerprint: str | None = None
    last_verified_at: datetime | None = None  # kept when a later verify found a problem

    @property
    def verified(self) -> bool:
        return self.verified_at is not None and not self.verify_problem


def _sidecar_path(path: str) -> str:
    return path + SIDECAR


def _parse_time(value) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value) if value else None
    except (TypeError, ValueError):
        return None
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=JST)  # a time without a zone is Japan time
    return moment


def _time_from_name(name: str) -> datetime | None:
    match = _NAME.match(name)
    if not match:
        return None
    return datetime.strptime(match.group(1) + match.group(2), "%Y%m%d%H%M%S").replace(
        tzinfo=JST)


def read_info(path: str) -> BackupInfo:
    """What the sidecar says about one backup (the file name and size when it has none)."""
    name = os.path.basename(path)
    try:
        size = os.path.getsize(path)
    except OSError:
        size = 0
    try:
        with open(_sidecar_path(path), encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        data = {}
    return BackupInfo(
        name=name, path=path,
        created_at=_parse_time(data.get("created_at")) or _time_from_name(name),
        bytes=size, schema_revision=data.get("schema_revision"),
        product_version=data.get("product_version"), database=data.get("database"),
        sha256=data.get("sha256"), verified_at=_parse_time(data.get("verified_at")),
        verify_problem=data.get("verify_problem"), rows=data.get("rows"),
        key_fingerprint=data.get("key_fingerprint"),
        last_verified_at=_parse_time(data.get("last_verified_at")))


def _write_sidecar(path: str, info: dict) -> None:
    temporary = f"{_sidecar_path(path)}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(info, handle, ensure_ascii=False, indent=1)
    os.replace(temporary, _sidecar_path(path))


def _update_sidecar(path: str, **values) -> None:
    try:
        with open(_sidecar_path(path), encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        data = {"file": os.path.basename(path)}
    data.update(values)
    _write_sidecar(path, data)


def list_backups(folder: str | None = None) -> list[BackupInfo]:
    """The backups in BACKUP_DIR (or ``folder``), newest first. Reads files only."""
    folder = folder or backup_dir()
    try:
        names = [n for n in os.listdir(folder) if n.endswith(SUFFIX)]
    except FileNotFoundError:
        return []
    except OSError as error:  # not a folder, no permission, a stale network share
        raise BackupError(_("The backup folder cannot be read (%(folder)s): %(why)s",
                            folder=folder, why=error.strerror or str(error))) from error
    infos = [read_info(os.path.join(folder, name)) for name in names]
    oldest = datetime.min.replace(tzinfo=JST)
    return sorted(infos, key=lambda i: (i.created_at or oldest, i.name), reverse=True)


@dataclass
class BackupStatus:
    """The home page's line for the system administrator."""

    last_good: BackupInfo | None
    stale: bool
    warn_hours: int
    problem: str | None = None  # BACKUP_DIR cannot be read


def status(now: datetime | None = None) -> BackupStatus:
    """The last verified backup and whether it is too old (BACKUP_WARN_HOURS). Reads the
    sidecars only: never the key, never the database."""
    now = now or clock.now()
    hours = settings().backup_warn_hours
    try:
        good = next((info for info in list_backups() if info.verified), None)
    except BackupError as error:
        return BackupStatus(None, True, hours, str(error.message))
    stale = good is None or good.created_at is None or (
        now - good.created_at > timedelta(hours=hours))
    return BackupStatus(good, stale, hours)


# --- the database: which one, and how to reach it without a password on a command line --

def _engine(session):
    return session.get_bind()


def _dialect(engine) -> str:
    name = engine.dialect.name
    if name not in ("postgresql", "sqlite"):
        raise BackupError(_("Backups support PostgreSQL and SQLite, not %(name)s.", name=name))
    return name


# libpq's connection keywords and the environment variables that carry them
_PG_VARIABLES = {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER",
                 "password": "PGPASSWORD", "dbname": "PGDATABASE", "sslmode": "PGSSLMODE",
                 "sslrootcert": "PGSSLROOTCERT", "sslcert": "PGSSLCERT", "sslkey": "PGSSLKEY",
                 "application_name": "PGAPPNAME", "connect_timeout": "PGCONNECT_TIMEOUT",
                 "target_session_attrs": "PGTARGETSESSIONATTRS"}


def pg_environment(url) -> dict:
    """libpq's PG* variables for the SQLAlchemy URL (the password never on a command
    line, where other users of the machine could read it). The keywords are the ones the
    app's own driver gets (the dialect's ``create_connect_args``), so a multi-host URL
    (``?host=a:5432&host=b:5432&target_session_attrs=read-write``, several app servers with
    a standby) gives PGHOST=a,b PGPORT=5432,5432 and pg_dump reaches the same primary as
    the app."""
    url = make_url(url) if isinstance(url, str) else url
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    _args, keywords = url.get_dialect()().create_connect_args(url)
    pairs = {variable: keywords.get(keyword) for keyword, variable in _PG_VARIABLES.items()}
    for variable in ("PGPASSFILE", "PGSERVICEFILE", "PGSERVICE", "PGSSLMODE"):
        if variable in os.environ and not pairs.get(variable):
            pairs[variable] = os.environ[variable]
    env.update({key: str(value) for key, value in pairs.items()
                if isinstance(value, (str, int)) and value not in ("", ",")})
    return env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise BackupError(_("The PostgreSQL tool %(tool)s is not installed (Debian package "
                            "postgresql-client).", tool=name))
    return found


def _tool_major(name: str) -> int:
    output = subprocess.run([_tool(name), "--version"], capture_output=True, text=True,
                            check=True).stdout
    match = re.search(r"(\d+)(?:\.\d+)?", output)
    if not match:
        raise BackupError(_("The version of %(tool)s cannot be read: %(output)s", tool=name,
                            output=output.strip()))
    return int(match.group(1))


def check_pg_versions(connection) -> tuple[int, int]:
    """(pg_dump's major version, the server's); a pg_dump older than the server cannot
    dump it: a clear error instead of pg_dump's own."""
    server = int(connection.execute(text("SHOW server_version_num")).scalar()) // 10000
    tool = _tool_major("pg_dump")
    if tool < server:
        raise BackupError(_("pg_dump is version %(tool)d but the database server is version "
                            "%(server)d: install postgresql-client %(server)d or later.",
                            tool=tool, server=server))
    return tool, server


def _run(command: list[str], env: dict | None = None, what: str = "", **kwargs):
    kwargs.setdefault("stdout", subprocess.PIPE)
    result = subprocess.run(command, env=env, stderr=subprocess.PIPE, **kwargs)
    if result.returncode != 0:
        output = result.stderr if isinstance(result.stderr, str) else result.stderr.decode(
            "utf-8", "replace")
        raise BackupError(_("%(what)s failed: %(output)s", what=what or command[0],
                            output=output.strip()[-2000:]))
    return result


def _table_names(connection, dialect: str) -> list[str]:
    if dialect == "postgresql":
        rows = connection.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"))
    else:
        rows = connection.execute(text(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name"))
    return [name for (name,) in rows]


def _row_counts(connection, dialect: str) -> dict[str, int]:
    quote = connection.dialect.identifier_preparer.quote
    return {name: connection.execute(text(f"SELECT count(*) FROM {quote(name)}")).scalar()
            for name in _table_names(connection, dialect)}


def _sqlite_path(engine) -> str:
    path = engine.url.database
    if not path or path == ":memory:":
        raise BackupError(_("An in-memory SQLite database cannot be backed up."))
    return os.path.abspath(path)


# --- create -------------------------------------------------------------------------------

def public_settings() -> dict:
    """The typed settings as JSON, without the secrets."""
    values = {}
    for item in fields(settings()):
        if item.name in SECRET_SETTINGS:
            continue
        value = getattr(settings(), item.name)
        if isinstance(value, time):
            value = value.strftime("%H:%M")
        elif isinstance(value, (frozenset, set)):
            value = sorted(value)
        elif isinstance(value, tuple):
            value = list(value)
        values[item.name] = value
    return values


def _new_name(folder: str, now: datetime) -> str:
    base = f"mnc-backup-{archive.now_stamp(now.astimezone(JST))}"
    name, number = base + SUFFIX, 1
    while os.path.exists(os.path.join(folder, name)):
        number += 1
        name = f"{base}-{number}{SUFFIX}"
    return name


@dataclass
class Created:
    path: str
    bytes: int
    sha256: str
    schema_revision: str | None
    rows: dict[str, int] = field(default_factory=dict)


def create(session, to_dir: str | None = None) -> Created:
    """Snapshot the database while the app keeps serving, add the settings, seal it under
    the backup key into ``to_dir`` (BACKUP_DIR); one audit record ``backup``."""
    engine = _engine(session)
    dialect = _dialect(engine)
    folder = _private_dir(os.path.abspath(to_dir or backup_dir()))
    key = backup_key()
    sweep_staging(folder)
    work = _stage("backup")
    try:
        dump = os.path.join(work, PG_PART if dialect == "postgresql" else SQLITE_PART)
        if dialect == "postgresql":
            revision, counts, server = _pg_snapshot(engine, dump)
        else:
            revision, counts, server = _sqlite_snapshot(engine, dump)
        now = clock.now()
        meta = {"schema_revision": revision, "database": dialect,
                "server_version": server, "tables": counts,
                "key_fingerprint": archive.key_fingerprint(key).hex(),
                "documents": "in the database (table document_blob), still encrypted with "
                             "the documents' key, which is not in this backup"}
        plain = os.path.join(work, "backup.zip")
        with archive.ArchiveWriter(plain, KIND, meta) as writer:
            writer.add_file(os.path.basename(dump), dump, rows=sum(counts.values()))
            writer.add_bytes(SETTINGS_PART, json.dumps(public_settings(), ensure_ascii=False,
                                                       indent=1).encode("utf-8"))
        os.remove(dump)
        target = os.path.join(folder, _new_name(folder, now))
        archive.seal(plain, target, key)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    size, digest = os.path.getsize(target), archive.sha256_of(target)
    _write_sidecar(target, {
        "file": os.path.basename(target), "created_at": now.isoformat(timespec="seconds"),
        "bytes": size, "sha256": digest, "schema_revision": revision,
        "product_version": archive.product_version(), "database": dialect,
        "rows": sum(counts.values()), "key_fingerprint": archive.key_fingerprint(key).hex(),
        "verified_at": None})
    audit.record_event(audit.ACTION_BACKUP, None, None, {
        "file": os.path.basename(target), "bytes": size, "sha256": digest,
        "schema_revision": revision})
    return Created(target, size, digest, revision, counts)


def _pg_snapshot(engine, target: str) -> tuple[str | None, dict[str, int], str]:
    """pg_dump of the snapshot of our own REPEATABLE READ transaction, counted in it."""
    with engine.connect() as connection:
        connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            tool, server = check_pg_versions(connection)
            connection.execute(text("SET TRANSACTION READ ONLY"))
            # idle while pg_dump works: a server-wide idle timeout must not end it
            connection.execute(text("SET LOCAL idle_in_transaction_session_timeout = 0"))
            snapshot = connection.execute(text("SELECT pg_export_snapshot()")).scalar()
            revision = archive.schema_revision(connection)
            counts = _row_counts(connection, "postgresql")
            _run([_tool("pg_dump"), "--format=custom", "--compress=6",
                  f"--snapshot={snapshot}", f"--file={target}"],
                 env=pg_environment(engine.url), what="pg_dump")
    return revision, counts, f"PostgreSQL {server} (pg_dump {tool})"


def _sqlite_snapshot(engine, target: str) -> tuple[str | None, dict[str, int], str]:
    source = sqlite3.connect(_sqlite_path(engine), timeout=30)
    try:
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)  # the online backup API: a consistent copy, pages at once
        finally:
            copy.close()
    finally:
        source.close()
    copy_engine = create_engine(f"sqlite:///{target}")
    try:
        with copy_engine.connect() as connection:
            return (archive.schema_revision(connection), _row_counts(connection, "sqlite"),
                    f"SQLite {sqlite3.sqlite_version}")
    finally:
        copy_engine.dispose()


# --- verify -------------------------------------------------------------------------------

@dataclass
class Verified:
    path: str
    manifest: dict
    bytes: int
    sha256: str
    work: str | None = None  # the extracted database part, kept for a restore

    @property
    def schema_revision(self) -> str | None:
        return self.manifest.get("schema_revision")

    @property
    def database(self) -> str | None:
        return self.manifest.get("database")

    @property
    def dump(self) -> str | None:
        if not self.work:
            return None
        return os.path.join(self.work, PG_PART if self.database == "postgresql"
                            else SQLITE_PART)


def latest() -> str:
    """The newest backup of BACKUP_DIR (``verify --latest``)."""
    backups = list_backups()
    if not backups:
        raise BackupError(_("There is no backup in %(folder)s.", folder=backup_dir()))
    return backups[0].path


def _check_file(path: str) -> str:
    if not os.path.isfile(path):
        raise BackupError(_("%(file)s does not exist.", file=path))
    return os.path.abspath(path)


def _verify(path: str, keep: bool = False) -> Verified:
    """Decrypt (authenticated), check every part against the manifest, check the database
    part itself. ``keep``: leave the database part extracted in ``work`` (caller removes)."""
    path = _check_file(path)
    sweep_staging(os.path.dirname(path) if os.path.dirname(path) == os.path.abspath(
        backup_dir()) else None)
    work = _stage("verify")
    try:
        plain = os.path.join(work, "backup.zip")
        archive.unseal(path, plain, backup_key())
        with archive.ArchiveReader(plain) as reader:
            reader.verified()
            manifest = reader.manifest
            if reader.kind != KIND:
                raise BackupError(_("%(file)s is not a backup (it is a %(kind)s archive).",
                                    file=os.path.basename(path), kind=reader.kind))
            database = manifest.get("database")
            part = PG_PART if database == "postgresql" else SQLITE_PART
            if part not in reader.parts:
                raise BackupError(_("%(file)s holds no database.", file=os.path.basename(path)))
            dump = reader.extract(part, os.path.join(work, part))
        os.remove(plain)
        if database == "postgresql":
            _run([_tool("pg_restore"), "--list", dump], what="pg_restore --list",
                 stdout=subprocess.DEVNULL)
        else:
            _check_sqlite_copy(dump, manifest, os.path.basename(path))
        result = Verified(path, manifest, os.path.getsize(path), archive.sha256_of(path),
                          work if keep else None)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return result


def _check_sqlite_copy(dump: str, manifest: dict, name: str) -> None:
    connection = sqlite3.connect(dump)
    try:
        answer = connection.execute("PRAGMA integrity_check").fetchone()[0]
        if answer != "ok":
            raise BackupError(_("The database in %(file)s is damaged: %(why)s", file=name,
                                why=answer))
        for table, rows in (manifest.get("tables") or {}).items():
            found = connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
            if found != rows:
                raise BackupError(_("The database in %(file)s has %(found)d rows in "
                                    "%(table)s, its manifest says %(rows)d.", file=name,
                                    found=found, table=table, rows=rows))
    finally:
        connection.close()


def verify(path: str) -> Verified:
    """Check one backup with the key; record the result in its sidecar (a failure too, so
    the home page no longer counts it as good) and in the audit trail."""
    try:
        result = _verify(path)
    except archive.SealKeyError:
        # the key in the operator's environment is wrong, not the file: nothing recorded
        raise
    except DomainError as error:
        full = os.path.abspath(path)
        # a file that is not one of ours (no sidecar, not named as a backup) gets none
        if os.path.isfile(full) and (os.path.exists(_sidecar_path(full))
                                     or _NAME.match(os.path.basename(full))):
            before = read_info(full)
            last = before.verified_at or before.last_verified_at
            _update_sidecar(full, verified_at=None, verify_problem=str(error.message),
                            last_verified_at=last.isoformat(timespec="seconds")
                            if last else None)
        raise
    manifest = result.manifest
    _update_sidecar(result.path, verified_at=clock.now().isoformat(timespec="seconds"),
                    verify_problem=None, bytes=result.bytes, sha256=result.sha256,
                    created_at=manifest.get("created_at"),
                    schema_revision=manifest.get("schema_revision"),
                    product_version=manifest.get("product_version"),
                    database=manifest.get("database"),
                    rows=sum((manifest.get("tables") or {}).values()),
                    key_fingerprint=manifest.get("key_fingerprint"))
    audit.record_event(audit.ACTION_BACKUP_VERIFY, None, None, {
        "file": os.path.basename(result.path), "bytes": result.bytes,
        "sha256": result.sha256})
    return result


# --- restore ------------------------------------------------------------------------------

@dataclass
class Restored:
    path: str
    database: str
    revision_before: str | None
    revision_after: str | None
    upgraded: bool
    tables: dict[str, int]


def database_name(session) -> str:
    """The name a person types to confirm a restore over existing data."""
    engine = _engine(session)
    if _dialect(engine) == "postgresql":
        return engine.url.database or ""
    return os.path.basename(_sqlite_path(engine))


def is_empty(session) -> bool:
    engine = _engine(session)
    dialect = _dialect(engine)
    if dialect == "sqlite" and not os.path.exists(_sqlite_path(engine)):
        return True
    with engine.connect() as connection:
        return not _table_names(connection, dialect)


def _known_revision(revision: str | None) -> bool:
    from alembic.script import ScriptDirectory

    if revision is None:
        return False
    scripts = ScriptDirectory.from_config(current_app.extensions["migrate"].migrate
                                          .get_config())
    try:
        return scripts.get_revision(revision) is not None
    except Exception:  # noqa: BLE001  (alembic: unknown or ambiguous revision)
        return False


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(current_app.extensions["migrate"].migrate
                                          .get_config())
    return scripts.get_current_head()


def restore(session, path: str, force: bool = False, confirm: str | None = None) -> Restored:
    """Put the backup ``path`` in place of the app's database: checked first (key, every
    checksum, the dump itself), into an empty database, or over an existing one only with
    ``force`` and ``confirm`` equal to the database's name. Nothing is changed when a check
    fails; the restore itself is one transaction (PostgreSQL) or an atomic file swap
    (SQLite). A backup of an older schema revision is upgraded with Alembic afterwards. The
    restore is recorded in the restored audit trail, so its chain goes on."""
    engine = _engine(session)
    dialect = _dialect(engine)
    name = database_name(session)
    if not is_empty(session):
        if not force:
            raise BackupError(_("The database %(name)s is not empty. To replace its data with "
                                "the backup, use --force and type the database name.",
                                name=name))
        if (confirm or "").strip() != name:
            raise BackupError(_("The typed name does not match the database name %(name)s: "
                                "nothing was restored.", name=name))
    checked = _verify(path, keep=True)
    try:
        if checked.database != dialect:
            raise BackupError(_("%(file)s is a backup of a %(kind)s database; this instance "
                                "uses %(ours)s.", file=os.path.basename(checked.path),
                                kind=checked.database, ours=dialect))
        if not _known_revision(checked.schema_revision):
            raise BackupError(_("%(file)s was made at schema revision %(revision)s, which this "
                                "version of the product does not know (a newer version made "
                                "it): install that version first.",
                                file=os.path.basename(checked.path),
                                revision=checked.schema_revision))
        session.close()
        if dialect == "postgresql":
            _pg_restore(engine, checked.dump)
        else:
            _sqlite_restore(engine, checked.dump)
    finally:
        shutil.rmtree(checked.work, ignore_errors=True)
    before = checked.schema_revision
    upgraded = before != head_revision()
    if upgraded:
        from flask_migrate import upgrade

        upgrade()
    with engine.connect() as connection:
        after = archive.schema_revision(connection)
        tables = _row_counts(connection, dialect)
    audit.record_event(audit.ACTION_RESTORE, None, None, {
        "file": os.path.basename(checked.path), "bytes": checked.bytes,
        "sha256": checked.sha256, "backup_created_at": checked.manifest.get("created_at"),
        "schema_revision": before, "upgraded_to": after if upgraded else None})
    return Restored(checked.path, dialect, before, after, upgraded, tables)


def _pg_restore(engine, dump: str) -> None:
    """The public schema dropped and made again and the dump loaded, in ONE transaction
    (psql --single-transaction, ON_ERROR_STOP): on any error the database stays as it was."""
    engine.dispose()  # our pooled connections hold no locks on the tables any more
    env = pg_environment(engine.url)
    script = subprocess.Popen([_tool("pg_restore"), "--no-owner", "--no-acl", "--file=-",
                               dump], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=env)
    loader = subprocess.Popen(
        [_tool("psql"), "--quiet", "--no-psqlrc", "--single-transaction",
         "--set=ON_ERROR_STOP=1", "--output=/dev/null", "--file=-"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        # A session of the app still inside a transaction would make the drop wait: give up
        # after a minute (nothing changed) rather than hang; stop the app first (docs).
        loader.stdin.write(b"SET lock_timeout = '60s';\n"
                           b"DROP SCHEMA IF EXISTS public CASCADE;\nCREATE SCHEMA public;\n")
        shutil.copyfileobj(script.stdout, loader.stdin, 1024 * 1024)
        loader.stdin.close()
    except BrokenPipeError:
        pass
    script_error = script.stderr.read()
    script.wait()
    loader_error = loader.stderr.read()
    loader.wait()
    if loader.returncode != 0 or script.returncode != 0:
        output = (loader_error or script_error).decode("utf-8", "replace").strip()[-2000:]
        raise BackupError(_("The restore failed and nothing was changed: %(output)s",
                            output=output))
    engine.dispose()


def _sqlite_restore(engine, dump: str) -> None:
    """The restored file written next to the database, then swapped in at once (the old
    write-ahead log removed with it, else SQLite would replay it onto the new file)."""
    target = _sqlite_path(engine)
    folder = os.path.dirname(target)
    os.makedirs(folder, exist_ok=True)
    temporary = f"{target}.restore-{os.getpid()}"
    shutil.copyfile(dump, temporary)
    with open(temporary, "rb") as handle:
        os.fsync(handle.fileno())
    engine.dispose()
    for extra in ("-wal", "-shm", "-journal"):
        if os.path.exists(target + extra):
            os.remove(target + extra)
    os.replace(temporary, target)


# --- retention ----------------------------------------------------------------------------

def _month(day: date) -> tuple[int, int]:
    return day.year, day.month


def _months_back(day: date, count: int) -> set[tuple[int, int]]:
    year, month = day.year, day.month
    months = set()
    for _index in range(count):
        months.add((year, month))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return months


def to_keep(backups: Iterable[BackupInfo], now: datetime, daily: int,
            monthly: int) -> set[str]:
    """The names kept: the newest backup of each of the last ``daily`` days and of each of
    the last ``monthly`` months (days and months in Japan time, today counting), the newest
    verified one in any case, and anything without a date or dated in the future."""
    today = now.astimezone(JST).date()
    days = {today - timedelta(days=index) for index in range(daily)}
    months = _months_back(today, monthly)
    keep: set[str] = set()
    seen_days: set[date] = set()
    seen_months: set[tuple[int, int]] = set()
    oldest = datetime.min.replace(tzinfo=JST)
    ordered = sorted(backups, key=lambda i: (i.created_at or oldest, i.name), reverse=True)
    for info in ordered:
        if info.created_at is None or info.created_at > now:
            keep.add(info.name)
            continue
        day = info.created_at.astimezone(JST).date()
        if day in days and day not in seen_days:
            seen_days.add(day)
            keep.add(info.name)
        if _month(day) in months and _month(day) not in seen_months:
            seen_months.add(_month(day))
            keep.add(info.name)
    newest_verified = next((info for info in ordered if info.verified), None)
    if newest_verified is None:
        # none verified now: the newest that ever was stays until a newer one is verified
        newest_verified = next((info for info in ordered
                                if info.verified_at or info.last_verified_at), None)
    if newest_verified is not None:
        keep.add(newest_verified.name)
    return keep


def prune(dry_run: bool = False, now: datetime | None = None) -> list[BackupInfo]:
    """Remove the backups the retention rule does not keep (and their sidecars); one audit
    record ``backup_prune`` naming them. Returns the removed (or, dry run, removable)."""
    config = settings()
    if not dry_run:
        sweep_staging(backup_dir())
    backups = list_backups()
    keep = to_keep(backups, now or clock.now(), config.backup_keep_daily,
                   config.backup_keep_monthly)
    removable = [info for info in backups if info.name not in keep]
    if dry_run or not removable:
        return removable
    for info in removable:
        os.remove(info.path)
        if os.path.exists(_sidecar_path(info.path)):
            os.remove(_sidecar_path(info.path))
    audit.record_event(audit.ACTION_BACKUP_PRUNE, None, None, {
        "removed": [info.name for info in removable], "kept": len(backups) - len(removable)})
    return removable
