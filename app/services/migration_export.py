"""Migration export and import (issue 15 §2, E5): every table of the product, as CSV, with
the stored documents, in the one archive format (app/services/archive.py, kind
``migration-export``), so that a future system can take all the data over; and the import
of such an archive into an empty instance of this product (the round trip that proves the
export complete). docs/data-export.md describes every file and column for a vendor.

The CSV dialect (the same for every table, docs/data-export.md "CSV の書き方"):

- UTF-8 without a BOM, comma separated, CRLF between records, a header row of the column
  names as in the database;
- every value is quoted (``"..."``, a ``"`` inside doubled); an empty field without quotes
  is NULL, so ``""`` (an empty string) and NULL differ;
- IDs and numbers as their decimal text (a 申請書ID is text and keeps its leading zeros);
  booleans ``true`` / ``false``; dates ``2026-12-01``, times ``09:30:00``; timestamps of the
  product in ISO 8601 in Japan time with their offset (``2026-12-01T10:00:00+09:00``, the
  database keeps them in UTC: the same instant), FAB's own bookkeeping times (``ab_user``
  ``created_on`` ...) without an offset as FAB stores them (server local time);
- binary values as lowercase hexadecimal, except the documents' encrypted bytes
  (``document_blob.ciphertext``), which are files of their own: the column holds the path of
  the file in the archive (``documents/<id>.<ext>.enc``: AES-256-GCM ciphertext with its tag,
  as stored; the nonce is the ``nonce`` column and the key the ``key_id`` of
  ``intake_document``), or with ``--decrypt`` the plaintext file
  (``documents/<id>_<file name>``, checked against ``intake_document.sha256``).

Rows are written in primary-key order, streamed from a server-side cursor (``yield_per``),
inside one read transaction (REPEATABLE READ on PostgreSQL: one snapshot for all tables).

The import checks before it loads anything: the archive (every checksum), its kind, that it
is not a decrypted export (the documents' ciphertext is needed), the schema revision (the
same as the database's), the columns of each table, and that the database holds no data:
only what ``flask init`` writes (FAB's permission catalogue, the fee schedule seeded by
migration 0013, zero counts of ``card_tally``, the audit records of those roles), which the
import replaces with the archive's (the archive's ``ab_user_role`` points at its own role
ids). Then one transaction: every table in
foreign-key order with bulk inserts (a row pointing at a later row of its own table gets
that value by an UPDATE after its table), ``card_tally`` as in the archive and checked
against a count of the cards (its trigger on ``card`` off during the load on PostgreSQL), the sequences set past the largest id (PostgreSQL), the
audit chain walked (the instance must have the same AUDIT_HMAC_KEY), and one audit record.

Encryption (issue 15 §4): with a password the archive leaves as ``INNER_NAME`` inside an
AES-256 ZIP (app/services/protected_zip.py), the plain archive only ever in a private
temporary folder; the export is registered in export_policy.EXPORTS as personal data, so the
office's policy may refuse the plain file. The import detects such a ZIP and opens it with
its password.

Who: システム管理者 only (ROLE_SYSADMIN); the command line runs as the product itself
(``cli:<os user>`` in the audit trail), whoever administers the server.
"""
from __future__ import annotations

import io
import json
import os
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import IO, Callable, Iterable, Iterator

import pyzipper
from flask_appbuilder import Model
from flask_babel import gettext as _
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from app import models  # noqa: F401  (every table into Model.metadata)
from app.models.document import DocumentBlob, IntakeDocument
from app.services import actors, archive, audit, documents, export_policy, protected_zip, unit
from app.services.errors import DomainError

KIND = "migration-export"
POLICY_KEY = "migration_export"  # export_policy.EXPORTS: personal data
# the archive's name inside the encrypted ZIP (--encrypt)
INNER_NAME = "mnc-migration-export.zip"
TABLES_DIR = "tables/"
DOCUMENTS_DIR = "documents/"
# FAB's permission catalogue: written by `flask init` into every instance; the import
# replaces it with the archive's (the archive's ab_user_role points at the archive's roles).
CATALOGUE = ("ab_permission_view_role", "ab_permission_view", "ab_permission",
             "ab_view_menu", "ab_role")
TALLY = "card_tally"  # kept by triggers on card (migration 0015): rebuilt, then compared
PG_TALLY_TRIGGER = "card_tally_change"
# What `flask init` writes into a new instance, replaced by the import (children first).
INIT_TABLES = ("audit_log",) + CATALOGUE + ("fee_schedule", TALLY)
BLOB_FILE_COLUMN = ("document_blob", "ciphertext")
EXTENSIONS = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png",
              "image/tiff": "tif"}
ADMINS = ("ROLE_SYSADMIN",)
BATCH = 1000
ENCODING = "utf-8"


class MigrationError(DomainError):
    """The export cannot be written or the archive cannot be imported here."""


# Not exported: the shared file store (app/models/stored_file.py) and the ledger import's
# jobs hold only temporary files and findings (exports waiting for their download, uploads
# being imported) that are removed after their keeping time; they would only make the archive large and carry personal data
# nobody asked to move.
NOT_EXPORTED = frozenset({"stored_file", "stored_file_chunk", "ledger_import_job"})


def tables() -> list:
    """Every table of the product in dependency order (a table after those it points at),
    but those NOT_EXPORTED."""
    return [t for t in Model.metadata.sorted_tables if t.name not in NOT_EXPORTED]


def _require(actor) -> None:
    actors.check_roles(actor, ADMINS, _("Only the system administrator may export or import "
                                        "all the data."))


# --- CSV: writing --------------------------------------------------------------------------

def _text(value) -> str | None:
    """A value as its CSV text (None for NULL)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def csv_line(values: Iterable) -> str:
    """One CSV record: every value quoted, NULL as an empty field without quotes."""
    out = []
    for value in values:
        shown = _text(value)
        out.append("" if shown is None else '"' + shown.replace('"', '""') + '"')
    return ",".join(out) + "\r\n"


# --- CSV: reading --------------------------------------------------------------------------

_FIELD = re.compile(r'"((?:[^"]|"")*)"|([^,"\r\n]*)')


def parse_record(line: str) -> list[str | None]:
    """The fields of one record (without its line end); an unquoted empty field is None."""
    fields: list[str | None] = []
    position, end = 0, len(line)
    while True:
        match = _FIELD.match(line, position)
        quoted, plain = match.group(1), match.group(2)
        if quoted is not None:
            fields.append(quoted.replace('""', '"'))
        else:
            fields.append(plain or None)
        position = match.end()
        if position >= end:
            return fields
        if line[position] != ",":
            raise ValueError(f"unexpected {line[position]!r} at {position}")
        position += 1


def read_records(stream: IO[bytes]) -> Iterator[list[str | None]]:
    """Records of a CSV part, a quoted value may span lines."""
    pending = ""
    for line in io.TextIOWrapper(stream, encoding=ENCODING, newline=""):
        pending += line
        if pending.count('"') % 2:
            continue  # inside a quoted value: its line break is part of it
        record = pending[:-2] if pending.endswith("\r\n") else pending.rstrip("\r\n")
        pending = ""
        yield parse_record(record)
    if pending:
        raise ValueError("the last record ends inside a quoted value")


def _python_type(column):
    kind = column.type
    kind = getattr(kind, "impl_instance", kind)  # a TypeDecorator: the type it wraps
    try:
        return kind.python_type
    except NotImplementedError:
        return str


def _decoder(column) -> Callable[[str], object]:
    kind = _python_type(column)
    if kind is bool:
        return lambda value: {"true": True, "false": False}[value]
    if kind is int:
        return int
    if kind is float:
        return float
    if kind is Decimal:
        return Decimal
    if kind is datetime:
        return datetime.fromisoformat
    if kind is date:
        return date.fromisoformat
    if kind is time:
        return time.fromisoformat
    if kind is bytes:
        return bytes.fromhex
    if kind in (dict, list):
        return json.loads
    return lambda value: value


# --- export --------------------------------------------------------------------------------

@dataclass
class ExportReport:
    path: str
    sha256: str
    size: int
    rows: dict[str, int]
    documents: int
    decrypted: bool
    manifest: dict = field(default_factory=dict)
    encrypted: bool = False


def _order(table):
    return list(table.primary_key.columns) or list(table.columns)


def _stream(connection, statement, per: int = 2000):
    return connection.execute(statement.execution_options(stream_results=True, yield_per=per))


def _snapshot_connection(session):
    """The connection to read every table from, in one snapshot: REPEATABLE READ on
    PostgreSQL; on SQLite a read transaction opened at once (the driver would run each
    SELECT on its own, so a write between two tables could show in one and not the other;
    in WAL mode the open transaction keeps reading the database as it was)."""
    session = session() if callable(session) and not hasattr(session, "in_transaction") \
        else session
    if not session.in_transaction() and session.get_bind().dialect.name == "postgresql":
        return session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        driver = connection.connection.driver_connection
        if not driver.in_transaction:
            connection.exec_driver_sql("BEGIN")
    return connection


def document_part(document_id: int, media_type: str) -> str:
    return f"{DOCUMENTS_DIR}{document_id}.{EXTENSIONS.get(media_type, 'bin')}.enc"


def plain_part(document_id: int, filename: str) -> str:
    name = documents.clean_filename(filename).replace("/", "_") or "document"
    return f"{DOCUMENTS_DIR}{document_id}_{name}"


def export_all(session, path: str, *, decrypt: bool = False, actor=actors.SYSTEM,
               progress: Callable[[str, int], None] | None = None,
               password: str | None = None) -> ExportReport:
    """Write every table and the documents into the archive ``path``; one audit record.

    With ``password`` (checked against protected_zip's policy) ``path`` is an AES-256 ZIP
    (WinZip AES) holding the archive as ``INNER_NAME``: the plain archive is written into a
    private temporary folder (mode 0700) and removed, so no plain copy stays on disk.
    Without it the office's policy (export_policy) may refuse the export: it holds
    personal data."""
    _require(actor)
    encrypted = password is not None
    if encrypted:
        protected_zip.check_password(password)
    if not encrypted:
        return _export_archive(session, path, path, decrypt, progress, None)
    private = tempfile.mkdtemp(prefix="mnc-export-")  # mode 0700: only this user
    try:
        return _export_archive(session, os.path.join(private, INNER_NAME), path, decrypt,
                               progress, password)
    finally:
        shutil.rmtree(private, ignore_errors=True)


def _export_archive(session, archive_path: str, path: str, decrypt: bool, progress,
                    password: str | None) -> ExportReport:
    with unit.transaction(session):
        connection = _snapshot_connection(session)
        # the office's policy, before anything is written (a plain file may be refused)
        export_policy.require(session, POLICY_KEY, encrypted=password is not None)
        revision = archive.schema_revision(connection)
        listed, rows, document_paths = [], {}, {}
        with archive.ArchiveWriter(archive_path, KIND, {}) as out:
            # the documents first (a ZIP is written one part at a time)
            document_rows = _stream(connection, select(
                IntakeDocument.id, IntakeDocument.media_type, IntakeDocument.filename)
                .order_by(IntakeDocument.id))
            for document_id, media_type, filename in list(document_rows):
                if decrypt:
                    document = session.get(IntakeDocument, document_id)
                    part = plain_part(document_id, filename)
                    out.add_bytes(part, documents.plaintext_of(session, document))
                    session.expunge(document)
                else:
                    part = document_part(document_id, media_type)
                    ciphertext = connection.execute(
                        select(DocumentBlob.ciphertext)
                        .where(DocumentBlob.document_id == document_id)).scalar()
                    if ciphertext is None:
                        continue  # a document row without its bytes: nothing to write
                    out.add_bytes(part, bytes(ciphertext))
                document_paths[document_id] = part
            for table in tables():
                name = f"{TABLES_DIR}{table.name}.csv"
                columns = list(table.columns)
                blob_column = (table.name, "ciphertext") == BLOB_FILE_COLUMN
                selected = [column for column in columns
                            if not (blob_column and column.name == "ciphertext")]
                stream = out.open(name)
                writer = io.TextIOWrapper(stream, encoding=ENCODING, newline="",
                                          write_through=False)
                writer.write(csv_line(column.name for column in columns))
                count = 0
                result = _stream(connection, select(*selected).order_by(*_order(table)))
                for row in result:
                    if blob_column:
                        values = dict(row._mapping)
                        values["ciphertext"] = document_paths.get(values["document_id"])
                        row = [values[column.name] for column in columns]
                    writer.write(csv_line(row))
                    count += 1
                writer.flush()
                writer.detach()
                stream.close(rows=count)
                rows[table.name] = count
                listed.append({"name": table.name, "file": name, "rows": count,
                               "columns": [column.name for column in columns]})
                if progress:
                    progress(table.name, count)
            out.meta.update({"schema_revision": revision, "tables": listed,
                             "documents": {"count": len(document_paths),
                                           "decrypted": decrypt},
                             "csv": {"encoding": "UTF-8 (no BOM)", "null": "unquoted empty",
                                     "timestamps": "ISO 8601"}})
    # The audit record in a unit of its own: on SQLite the read transaction above cannot
    # become a writer once someone else has written since its snapshot. No record, no file.
    manifest = _manifest_of(archive_path)
    encrypted = password is not None
    note = {}
    try:
        if encrypted:
            note["archive_sha256"] = archive.sha256_of(archive_path)
            protected_zip.to_file(path, [protected_zip.Part(INNER_NAME, archive_path)],
                                  password)
            os.chmod(path, 0o600)
            os.remove(archive_path)
        digest, size = archive.sha256_of(path), os.path.getsize(path)
        report = ExportReport(path, digest, size, rows, len(document_paths), decrypt,
                              manifest, encrypted)
        with unit.transaction(session):
            audit.record_in_transaction(session, audit.ACTION_EXPORT, KIND, None, {
                "file": os.path.basename(path), "sha256": digest, "bytes": size,
                "tables": len(rows), "rows": sum(rows.values()),
                "documents": len(document_paths), "decrypted": decrypt,
                "encrypted": encrypted, **note, "schema_revision": revision})
    except BaseException:
        for leftover in {path, archive_path}:
            if os.path.exists(leftover):
                os.remove(leftover)
        raise
    return report


def _manifest_of(path: str) -> dict:
    with archive.ArchiveReader(path) as reader:
        return reader.manifest


# --- import --------------------------------------------------------------------------------

@dataclass
class ImportReport:
    path: str
    sha256: str
    rows: dict[str, int]
    documents: int
    audit_records: int


def _has_rows(connection, table) -> bool:
    return connection.execute(select(1).select_from(table).limit(1)).first() is not None


def _check_empty(connection) -> dict[str, int]:
    """Refuse a database with data; return what `flask init` wrote (replaced by the
    import): FAB's catalogue, the fee schedule seeded by migration 0013, the zero counts of
    card_tally and the audit records of those roles."""
    filled, replaced = [], {}
    metadata = Model.metadata.tables
    for table in tables():
        if table.name == TALLY:
            if connection.execute(select(func.coalesce(func.sum(table.c.cards), 0))).scalar():
                filled.append(table.name)
        elif table.name == "audit_log":
            if connection.execute(select(func.count()).select_from(table).where(
                    table.c.target_table.not_in(CATALOGUE) | table.c.target_table.is_(None)
            )).scalar():
                filled.append(table.name)
        elif table.name not in INIT_TABLES and _has_rows(connection, table):
            filled.append(table.name)
    if filled:
        raise MigrationError(_("The database already holds data (%(tables)s): an export is "
                               "imported only into a new, empty instance. Nothing was "
                               "imported.", tables=", ".join(filled[:8])))
    for name in INIT_TABLES:
        count = connection.execute(select(func.count()).select_from(metadata[name])).scalar()
        if count:
            replaced[name] = count
    return replaced


def check_archive(reader: archive.ArchiveReader, revision: str | None) -> dict:
    """Everything about the archive that can be refused before a row is written."""
    problems = reader.verify()
    if problems:
        raise MigrationError(_("The archive does not match its manifest, so nothing was "
                               "imported: %(problems)s", problems=" ".join(problems)))
    manifest = reader.manifest
    if reader.kind != KIND:
        raise MigrationError(_("This archive is a %(kind)s, not a migration export. Nothing "
                               "was imported.", kind=reader.kind or "?"))
    if manifest.get("documents", {}).get("decrypted"):
        raise MigrationError(_("This export holds the documents decrypted (--decrypt): it is "
                               "for reading by another system and cannot be imported. Export "
                               "again without --decrypt. Nothing was imported."))
    if manifest.get("schema_revision") != revision:
        raise MigrationError(_("The export is of schema revision %(theirs)s and this database "
                               "is at %(ours)s: bring both to the same revision first. "
                               "Nothing was imported.",
                               theirs=manifest.get("schema_revision") or "?",
                               ours=revision or "?"))
    listed = {entry["name"]: entry for entry in manifest.get("tables", [])}
    ours = {table.name: table for table in tables()}
    if set(listed) != set(ours):
        raise MigrationError(_("The tables of the export differ from this database's "
                               "(%(tables)s). Nothing was imported.", tables=", ".join(
                                   sorted(set(listed) ^ set(ours)))))
    for name, table in ours.items():
        if listed[name]["columns"] != [column.name for column in table.columns]:
            raise MigrationError(_("The columns of %(table)s in the export differ from this "
                                   "database's. Nothing was imported.", table=name))
    return listed


def _rows_of(reader, table, listed) -> Iterator[dict]:
    entry = listed[table.name]
    decoders = [str if (table.name, column.name) == BLOB_FILE_COLUMN else _decoder(column)
                for column in table.columns]
    names = [column.name for column in table.columns]
    with reader.open(entry["file"]) as stream:
        records = read_records(stream)
        header = next(records, None)
        if header != names:
            raise MigrationError(_("The header of %(file)s differs from its table's columns. "
                                   "Nothing was imported.", file=entry["file"]))
        for number, record in enumerate(records, start=2):
            if len(record) != len(names):
                raise MigrationError(_("A record of %(file)s has %(n)d fields instead of "
                                       "%(m)d. Nothing was imported.", file=entry["file"],
                                       n=len(record), m=len(names)))
            try:
                yield {name: None if value is None else decode(value)
                       for name, decode, value in zip(names, decoders, record)}
            except (ValueError, KeyError) as error:
                raise MigrationError(_("Record %(n)d of %(file)s cannot be read (%(why)s). "
                                       "Nothing was imported.", n=number,
                                       file=entry["file"], why=error)) from None


def _self_references(table) -> list[str]:
    return [fk.parent.name for fk in table.foreign_keys if fk.column.table is table]


def _load_table(connection, reader, table, listed) -> int:
    blob = table.name == BLOB_FILE_COLUMN[0]
    deferred_columns = _self_references(table)
    key = [column.name for column in table.primary_key.columns]
    later: list[dict] = []
    batch: list[dict] = []
    count = 0
    for row in _rows_of(reader, table, listed):
        if blob:
            row["ciphertext"] = reader.read(row["ciphertext"])
        if deferred_columns and len(key) == 1:
            forward = {name: row[name] for name in deferred_columns
                       if row[name] is not None and row[name] > row[key[0]]}
            if forward:
                later.append({"_key": row[key[0]], **forward})
                row.update({name: None for name in forward})
        batch.append(row)
        count += 1
        if len(batch) >= (50 if blob else BATCH):
            connection.execute(table.insert(), batch)
            batch = []
    if batch:
        connection.execute(table.insert(), batch)
    for values in later:
        key_value = values.pop("_key")
        connection.execute(table.update().where(table.c[key[0]] == key_value)
                           .values(**values))
    return count


def _constraint(error: IntegrityError) -> str:
    """The constraint a record broke, as the database names it."""
    diag = getattr(error.orig, "diag", None)
    name = getattr(diag, "constraint_name", None)
    if name:
        return name
    return str(error.orig).strip().splitlines()[0][:300]


def _refused(error: IntegrityError, table: str | None) -> MigrationError:
    if table is None:
        return MigrationError(_("A record of the export breaks a rule of the database "
                                "(%(constraint)s). Nothing was imported.",
                                constraint=_constraint(error)))
    return MigrationError(_("A record of %(file)s (table %(table)s) breaks a rule of the "
                            "database (%(constraint)s). Nothing was imported.",
                            file=f"tables/{table}.csv", table=table,
                            constraint=_constraint(error)))


def _reset_sequences(connection) -> None:
    """PostgreSQL: each sequence behind an id column set to the largest id (the next
    insert takes the one after)."""
    if connection.dialect.name != "postgresql":
        return
    for table in tables():
        for column in table.primary_key.columns:
            if _python_type(column) is not int:
                continue
            sequence = getattr(column.default, "name", None) if column.default is not None \
                else None
            if sequence is None:
                sequence = connection.execute(text("SELECT pg_get_serial_sequence(:t, :c)"),
                                              {"t": table.name, "c": column.name}).scalar()
            elif connection.execute(text("SELECT to_regclass(:s)"),
                                    {"s": sequence}).scalar() is None:
                sequence = None
            if sequence is None:
                continue
            quote = connection.dialect.identifier_preparer.quote
            connection.execute(text(
                f"SELECT setval(:s, COALESCE((SELECT max({quote(column.name)}) FROM "
                f"{quote(table.name)}), 1), (SELECT count(*) > 0 FROM {quote(table.name)}))"),
                {"s": sequence})


def _tally_trigger(connection) -> bool:
    """PostgreSQL: whether the tally's trigger on card (migration 0015) is there."""
    return connection.execute(text(
        "SELECT 1 FROM pg_trigger WHERE tgname = :name AND NOT tgisinternal"),
        {"name": PG_TALLY_TRIGGER}).first() is not None


def _check_tally(connection, reader, listed) -> None:
    """The archive's counts per state are those of its cards, and are the table's now."""
    table, card = Model.metadata.tables[TALLY], Model.metadata.tables["card"]
    if connection.dialect.name == "postgresql":
        connection.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))
    expected = {(row["visit_mode"], row["state"]): row["cards"]
                for row in _rows_of(reader, table, listed)}
    counted = {(row[0], row[1]): row[2] for row in connection.execute(
        select(card.c.visit_mode, card.c.state, func.count()).group_by(
            card.c.visit_mode, card.c.state))}
    found = {(row.visit_mode, row.state): row.cards for row in connection.execute(
        select(table.c.visit_mode, table.c.state, table.c.cards))}
    if counted != {key: value for key, value in expected.items() if value} \
            or found != expected:
        raise MigrationError(_("The counts of cards per state in the export (card_tally) do "
                               "not match its cards. Nothing was imported."))


def is_encrypted(path: str) -> bool:
    """Whether ``path`` is a ZIP whose files are encrypted (an export made with
    ``--encrypt``: the AES-256 ZIP holding the archive)."""
    try:
        with zipfile.ZipFile(path) as outer:
            return any(info.flag_bits & 0x1 for info in outer.infolist())
    except (OSError, zipfile.BadZipFile):
        return False


def _unwrap(path: str, password: str | None, folder: str) -> str:
    """The archive inside an encrypted export, written into ``folder`` (private)."""
    if not password:
        raise MigrationError(_("This export is an encrypted ZIP: give its password "
                               "(--password-file). Nothing was imported."))
    wrong = MigrationError(_("The password of the encrypted export is wrong, or the file is "
                             "damaged. Nothing was imported."))
    try:
        with pyzipper.AESZipFile(path) as outer:
            outer.setpassword(password.encode("utf-8"))
            names = [name for name in outer.namelist() if not name.endswith("/")]
            if len(names) != 1:
                raise MigrationError(_("The encrypted ZIP does not hold one migration export "
                                       "archive. Nothing was imported."))
            inner = os.path.join(folder, INNER_NAME)
            with outer.open(names[0]) as source, open(inner, "wb") as target:
                shutil.copyfileobj(source, target, protected_zip.CHUNK)
    except (RuntimeError, zipfile.BadZipFile, zipfile.LargeZipFile):
        raise wrong from None
    return inner


def import_all(session, path: str, *, actor=actors.SYSTEM,
               progress: Callable[[str, int], None] | None = None,
               password: str | None = None) -> ImportReport:
    """Load a migration export into this empty instance, all or nothing. An export made
    with ``--encrypt`` is opened with ``password`` (its archive read from a private
    temporary folder, then removed)."""
    _require(actor)
    try:
        if not is_encrypted(path):
            return _import_archive(session, path, path, progress, False)
        private = tempfile.mkdtemp(prefix="mnc-import-")  # mode 0700: only this user
        try:
            inner = _unwrap(path, password, private)
            return _import_archive(session, inner, path, progress, True)
        finally:
            shutil.rmtree(private, ignore_errors=True)
    except IntegrityError as error:  # a deferred key checked later, or at the commit
        raise _refused(error, None) from None


def _import_archive(session, archive_path: str, path: str, progress,
                    encrypted: bool) -> ImportReport:
    with archive.ArchiveReader(archive_path) as reader, unit.transaction(session):
        connection = session.connection()
        listed = check_archive(reader, archive.schema_revision(connection))
        replaced = _check_empty(connection)
        metadata = Model.metadata.tables
        for name in INIT_TABLES:
            connection.execute(metadata[name].delete())
        tally = list(_rows_of(reader, metadata[TALLY], listed))
        # card_tally: on PostgreSQL its trigger on card is switched off for the load (in
        # this transaction only) and the archive's counts written as they are; fired for
        # each card, it would update the same few rows 300,000 times in one transaction.
        # On SQLite the triggers count every card into the archive's rows put there as
        # zeros first. Either way the counts are then checked against the cards.
        quiet = connection.dialect.name == "postgresql" and _tally_trigger(connection)
        if quiet:
            connection.execute(text(f"ALTER TABLE card DISABLE TRIGGER {PG_TALLY_TRIGGER}"))
        elif tally:
            connection.execute(metadata[TALLY].insert(),
                               [{**row, "cards": 0} for row in tally])
        rows = {}
        for table in tables():
            if table.name == TALLY:
                continue
            try:
                rows[table.name] = _load_table(connection, reader, table, listed)
            except IntegrityError as error:
                raise _refused(error, table.name) from None
            if progress:
                progress(table.name, rows[table.name])
        if quiet:
            connection.execute(text(f"ALTER TABLE card ENABLE TRIGGER {PG_TALLY_TRIGGER}"))
            if tally:
                connection.execute(metadata[TALLY].insert(), tally)
        _check_tally(connection, reader, listed)
        rows[TALLY] = listed[TALLY]["rows"]
        _reset_sequences(connection)
        chain = audit.verify_chain(session)
        if not chain.ok:
            raise MigrationError(_("The audit trail of the export does not verify with this "
                                   "instance's AUDIT_HMAC_KEY (record %(id)s): use the same "
                                   "key as the exporting instance. Nothing was imported.",
                                   id=chain.bad_id))
        digest = archive.sha256_of(path)
        documents_count = reader.manifest.get("documents", {}).get("count", 0)
        audit.record_in_transaction(session, audit.ACTION_IMPORT, KIND, None, {
            "file": os.path.basename(path), "sha256": digest, "encrypted": encrypted,
            "tables": len(rows), "rows": sum(rows.values()), "documents": documents_count,
            "decrypted": False, "schema_revision": reader.manifest.get("schema_revision"),
            "exported_at": reader.manifest.get("created_at"),
            "replaced_rows_of_init": replaced})
    return ImportReport(path, digest, rows, documents_count, chain.checked)
