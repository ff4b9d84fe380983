"""The audit trail (F5.2, S5).

Every create, update and delete of any mapped model is recorded by one SQLAlchemy
``after_flush`` listener, so models added later are audited without code of their own.
Explicit events (login, export, print, opening a person's page) go through
:func:`record_event`. Rows are chained: each carries an HMAC over its content and the
previous row's hash, keyed by a secret that is not in the database, so a row changed,
deleted or inserted outside the application breaks the chain (:func:`verify_chain`).
"""
from __future__ import annotations

import getpass
import hashlib
import hmac
import json
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Iterable, Iterator

from flask import (current_app, g, has_app_context, has_request_context, request,
                   request_started)
from flask_appbuilder import Model
from flask_jwt_extended import verify_jwt_in_request
from flask_login import current_user
from sqlalchemy import event, func, insert, inspect, select, text
from sqlalchemy.orm import Session, configure_mappers

from app import clock
from app.extensions import session as scoped_session
from app.models.audit import AuditLog
from app.models.reservation import Reservation
from app.services import unit
from app.settings import settings

GENESIS = "0" * 64
_PG_LOCK_KEY = 0x4D4E43  # "MNC": serialises appends to the chain on PostgreSQL

# Tables not audited: the trail itself and FAB's permission catalogue (synced by `init`).
EXCLUDED_TABLES = {"audit_log", "ab_permission", "ab_view_menu", "ab_permission_view",
                   "alembic_version", "ab_register_user",
                   "hold", "throttle",  # seat holds lapse in minutes; throttle keys are hashes
                   "document_blob",  # encrypted bytes; the intake_document row is audited
                   # the booking's history for the statistics: each row copies a change
                   # of the booking that is audited itself (app/services/booking_history.py)
                   "booking_event"}
# Bookkeeping columns whose change alone is not a change of the record.
IGNORED_COLUMNS = {
    "ab_user": {"last_login", "login_count", "fail_login_count", "changed_on", "changed_by_fk",
                "created_on", "created_by_fk"},
}
MASKED_COLUMNS = {"password"}

ACTION_CREATE = "create"
ACTION_UPDATE = "update"
ACTION_DELETE = "delete"
ACTION_LOGIN = "login"
ACTION_LOGOUT = "logout"
ACTION_LOGIN_FAILED = "login_failed"
ACTION_LOCKED = "account_locked"
ACTION_UNLOCKED = "account_unlocked"
ACTION_PASSWORD_CHANGE_FAILED = "password_change_failed"
ACTION_VIEW = "view"
ACTION_EXPORT = "export"
ACTION_PRINT = "print"
ACTION_DOWNLOAD = "download"
# issue 15: data in, data out, data safe
ACTION_IMPORT = "import"  # the existing ledger (card) or a migration export
ACTION_BACKUP = "backup"
ACTION_BACKUP_VERIFY = "backup_verify"
ACTION_RESTORE = "restore"
ACTION_BACKUP_PRUNE = "backup_prune"
# issue 16 §3: a snapshot found again (the discard candidates), with its count
ACTION_REFRESH = "refresh"


@dataclass
class Actor:
    user_id: int | None
    username: str
    ip: str | None


SYSTEM = "system"
RESIDENT = "住民"  # the residents' site: "住民:<booking or postcard number>" when known
SIGN_IN = "system:sign-in"  # the lockout rule acting on a sign-in attempt nobody owns yet
# Sign-in and sign-out endpoints: nobody is signed in (yet, or any more), and what they
# change (the failure count, a lock) is the system's rule acting on the attempt.
SIGN_IN_ENDPOINTS = {"AuthDBView.login", "AuthDBView.logout", "SecurityApi.login",
                     "SecurityApi.refresh"}


class UnresolvedActorError(RuntimeError):
    """A request changed data but nobody could be named for it (AUDIT_STRICT_ACTOR)."""


def act_as(name: str) -> None:
    """Name the actor of everything this CLI command, job or request changes from now on:
    ``cli:<os user>`` (:func:`cli_actor`), ``system`` or ``job:<name>``."""
    g.audit_actor = name


def cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no login name (a container without a passwd entry)
        return "cli:unknown"


def resident_is(number: str | None) -> None:
    """The resident acting on the residents' site is known by this booking or postcard
    number: it is recorded as ``住民:<number>``."""
    if number:
        g.resident_ref = str(number)


def _resident_label(session=None) -> str:
    """住民, with the number of the booking being made in this request, else the number
    the resident was identified by (:func:`resident_is`)."""
    if session is None:
        session = scoped_session()
    pending = [o.number for o in session.new if isinstance(o, Reservation) and o.number]
    if pending:
        g.resident_ref = pending[0]  # known by its new number from here on
    ref = getattr(g, "resident_ref", None)
    return f"{RESIDENT}:{ref}" if ref else RESIDENT


def _request_user():
    """The staff user of this request: the screens' session, else the REST API's JWT
    (Authorization: Bearer), as FAB's ``protect()`` verified it."""
    try:
        if current_user and current_user.is_authenticated:
            return current_user
    except Exception:  # detached user during teardown
        pass
    if g.get("_api_key_user") and g.get("user") is not None:  # FAB_API_KEY_ENABLED
        return g.user
    if "_jwt_extended_jwt_user" not in g:
        try:
            verify_jwt_in_request(optional=True)
        except Exception:  # expired, forged or of a deactivated user: not an actor
            return None
    return (g.get("_jwt_extended_jwt_user") or {}).get("loaded_user")


def current_actor(session=None) -> Actor:
    """Who is acting, resolved here for every entry point and used by every record:

    - the residents' site (/reserve/): ``住民`` with the booking or postcard number when
      known (``住民:AB12CD34``);
    - a staff screen (session) or the REST API (JWT): that user;
    - a CLI command or a job: what it named with :func:`act_as` (``cli:<os user>``,
      ``system``); outside any request without a name: ``system``;
    - a sign-in attempt (failure count, lock): ``system:sign-in``.

    A request served by the app that fits none of these raises
    :class:`UnresolvedActorError` when ``AUDIT_STRICT_ACTOR`` is on (the tests), else is
    recorded as ``unresolved:<endpoint>``: never as an anonymous blank. Code that pushes a
    request context of its own without serving a request acts as ``system``.
    """
    if not has_request_context():
        named = getattr(g, "audit_actor", None) if has_app_context() else None
        return Actor(None, named or SYSTEM, None)
    ip = request.remote_addr
    if request.blueprint == "public":
        return Actor(None, _resident_label(session), ip)
    user = _request_user()
    if user is not None:
        return Actor(user.id, user.username, ip)
    if getattr(g, "audit_actor", None):
        return Actor(None, g.audit_actor, ip)
    if request.endpoint in SIGN_IN_ENDPOINTS:
        return Actor(None, SIGN_IN, ip)
    if not g.get("audit_serving"):
        return Actor(None, SYSTEM, ip)
    if settings().audit_strict_actor:
        raise UnresolvedActorError(f"no actor for {request.method} {request.path}")
    return Actor(None, f"unresolved:{request.endpoint or request.path}"[:100], ip)


def _mark_serving(sender, **extra) -> None:
    """Flask's request_started: this request context serves a real request."""
    g.audit_serving = True


def _printable(name: str) -> str:
    """A name as typed at sign-in may hold line breaks or other control characters: shown
    escaped (``\\n``), so a record always reads as one line in the list and the export."""
    return "".join(ch.encode("unicode_escape").decode("ascii")
                   if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch
                   for ch in str(name or ""))


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (date, Decimal)):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _dump(changes: Any) -> str | None:
    if changes is None:
        return None
    return json.dumps(changes, ensure_ascii=False, sort_keys=True, default=str)


def _masked(key: str, value: Any) -> Any:
    return "********" if key in MASKED_COLUMNS and value is not None else _jsonable(value)


def _table_of(obj: Any) -> str | None:
    table = getattr(obj, "__tablename__", None)
    return table if table and table not in EXCLUDED_TABLES else None


def _pk_of(obj: Any) -> str:
    identity = inspect(obj).identity
    if identity:
        return ",".join(str(v) for v in identity)
    mapper = inspect(obj).mapper
    return ",".join(str(getattr(obj, c.key, "")) for c in mapper.primary_key)


def _snapshot(obj: Any, table: str) -> dict:
    ignored = IGNORED_COLUMNS.get(table, set())
    state = inspect(obj)
    data = {}
    for attr in state.mapper.column_attrs:
        if attr.key in ignored:
            continue
        value = getattr(obj, attr.key, None)
        if value is not None:
            data[attr.key] = _masked(attr.key, value)
    for rel in state.mapper.relationships:
        if rel.uselist and rel.key not in state.unloaded:
            related = getattr(obj, rel.key) or []
            if related:
                data[rel.key] = [str(v) for v in related]
    return data


def _diff(obj: Any, table: str) -> dict:
    ignored = IGNORED_COLUMNS.get(table, set())
    state = inspect(obj)
    changes: dict[str, dict] = {}
    for attr in state.attrs:
        if attr.key in ignored:
            continue
        history = attr.history
        if not history.has_changes():
            continue
        if attr.key in state.mapper.relationships:
            added = [str(v) for v in history.added]
            removed = [str(v) for v in history.deleted]
            if added or removed:
                changes[attr.key] = {"added": added, "removed": removed}
            continue
        old = history.deleted[0] if history.deleted else None
        new = history.added[0] if history.added else None
        if old == new:
            continue
        changes[attr.key] = {"old": _masked(attr.key, old), "new": _masked(attr.key, new)}
    return changes


def _hash(key: bytes, prev_hash: str, row: dict) -> str:
    content = hashed_content({
        **row, "prev_hash": prev_hash,
        "created_at": row["created_at"].astimezone(timezone.utc).isoformat()})
    return hmac.new(key, content.encode("utf-8"), hashlib.sha256).hexdigest()


def _key() -> bytes:
    return current_app.config["AUDIT_HMAC_KEY"].encode("ascii")


def _served_endpoint() -> str | None:
    """The endpoint of the request being served (``CardModelView.edit``, ``CardApi.put``,
    ``public.confirm``), kept in a record's detail as ``_endpoint`` so the list can say on
    which screen or entry point it happened; None outside a served request."""
    if not has_request_context() or not g.get("audit_serving"):
        return None
    return (request.endpoint or request.path or "")[:100] or None


def _append(connection, entries: Iterable[tuple[str, str | None, str | None, Any]],
            actor: Actor | None = None) -> None:
    """Append entries (action, table, id, changes) to the chain on this connection."""
    entries = list(entries)
    if not entries:
        return
    actor = actor or current_actor()
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
    prev = connection.execute(
        select(AuditLog.row_hash).order_by(AuditLog.id.desc()).limit(1)
    ).scalar() or GENESIS
    key = _key()
    stamp = clock.now()
    endpoint = _served_endpoint()
    for action, table, target_id, changes in entries:
        if endpoint and changes is None:
            changes = {"_endpoint": endpoint}  # where: screen, API, residents' site
        elif endpoint and isinstance(changes, dict) and "_endpoint" not in changes:
            changes = {**changes, "_endpoint": endpoint}
        row = {
            "created_at": stamp, "user_id": actor.user_id, "username": _printable(actor.username)[:100],
            "ip": actor.ip, "action": action, "target_table": table,
            "target_id": None if target_id is None else str(target_id)[:80],
            "changes": _dump(changes),
        }
        row["prev_hash"] = prev
        row["row_hash"] = prev = _hash(key, prev, row)
        connection.execute(insert(AuditLog.__table__).values(**row))


def _after_flush(session: Session, flush_context) -> None:
    if not has_app_context() or "AUDIT_HMAC_KEY" not in current_app.config:
        return
    entries = []
    for obj in session.new:
        table = _table_of(obj)
        if table:
            entries.append((ACTION_CREATE, table, _pk_of(obj), _snapshot(obj, table)))
    for obj in session.dirty:
        table = _table_of(obj)
        if table and session.is_modified(obj, include_collections=True):
            changes = _diff(obj, table)
            if changes:
                entries.append((ACTION_UPDATE, table, _pk_of(obj), changes))
    for obj in session.deleted:
        table = _table_of(obj)
        if table:
            entries.append((ACTION_DELETE, table, _pk_of(obj), _snapshot(obj, table)))
    if entries:
        _append(session.connection(), entries, current_actor(session))


_installed = False


def _keep_old_value(target, value, oldvalue, initiator):
    return value


def install_listeners() -> None:
    """Listen on every SQLAlchemy session, and make every column keep its old value on
    assignment (active history), so an update records old and new even when the row was
    expired by a commit. Idempotent; call after all models are imported."""
    global _installed
    if _installed:
        return
    configure_mappers()
    for mapper in Model.registry.mappers:
        for attr in mapper.column_attrs:
            event.listen(getattr(mapper.class_, attr.key), "set", _keep_old_value,
                         active_history=True, retval=True)
    event.listen(Session, "after_flush", _after_flush)
    request_started.connect(_mark_serving)
    _installed = True


def record_event(action: str, target_table: str | None = None, target_id: Any = None,
                 detail: Any = None, actor: Actor | None = None, commit: bool = True) -> None:
    """Record an explicit event (login, export, print, view ...) as one unit of work: kept
    at once when called on its own (a print or a sign-in), or together with the operation
    it is called in (app/services/unit.py: the outermost unit commits). ``commit`` is
    accepted for older callers and has no effect: the unit decides."""
    del commit  # the unit of work commits, never the caller's flag
    with unit.transaction(scoped_session()) as session:
        record_in_transaction(session, action, target_table, target_id, detail, actor)


def record_in_transaction(session, action: str, target_table: str | None, target_id: Any,
                          detail: Any, actor: Actor | None = None) -> None:
    """Record in the caller's transaction (for changes made by Core statements, which the
    flush listener does not see); the caller's unit of work commits it."""
    _append(session.connection(), [(action, target_table, target_id, detail)], actor)


@dataclass
class ChainReport:
    ok: bool
    checked: int
    bad_id: int | None = None
    reason: str = ""


def verify_chain(session) -> ChainReport:
    """Walk the chain in order; the first record that does not fit is named."""
    key = _key()
    prev = GENESIS
    checked = 0
    rows = session.execute(select(AuditLog.__table__).order_by(AuditLog.id)).mappings()
    for row in rows:
        if row["prev_hash"] != prev:
            return ChainReport(False, checked, row["id"],
                               "the record before it was deleted, altered or inserted")
        if _hash(key, prev, dict(row)) != row["row_hash"]:
            return ChainReport(False, checked, row["id"],
                               "its content does not match its hash (changed or forged)")
        prev = row["row_hash"]
        checked += 1
    return ChainReport(True, checked)


# --- export for a SIEM (issue 16 §4, `flask audit export`, docs/audit.md) ------------------

EXPORT_PAGE = 1000
# The fields of an exported record, in the order they are written.
EXPORT_FIELDS = ("id", "created_at", "user_id", "username", "ip", "action", "target_table",
                 "target_id", "changes", "prev_hash", "row_hash")


def hashed_content(record: dict) -> str:
    """The exact text the record's ``row_hash`` is the HMAC-SHA256 of (keyed by
    AUDIT_HMAC_KEY): a JSON array, no spaces, non-ASCII kept, with ``created_at`` in UTC
    as written by :func:`export_records`."""
    return json.dumps(
        [record["prev_hash"], record["created_at"], record["user_id"], record["username"],
         record["ip"], record["action"], record["target_table"], record["target_id"],
         record["changes"]], ensure_ascii=False, separators=(",", ":"))


def last_record_id(session) -> int:
    """The newest record's id (0: none yet)."""
    return session.execute(select(func.max(AuditLog.id))).scalar() or 0


def export_records(session, since_id: int, upto_id: int | None = None,
                   page: int = EXPORT_PAGE) -> Iterator[dict]:
    """The records with ``since_id < id <= upto_id`` in id order, each with every field
    and its hashes, read in pages by id (constant memory whatever their number; each
    page a short read). ``created_at`` is the UTC time as hashed; ``changes`` the stored
    JSON text, as hashed."""
    table = AuditLog.__table__
    last = since_id
    while True:
        query = select(table).where(table.c.id > last).order_by(table.c.id).limit(page)
        if upto_id is not None:
            query = query.where(table.c.id <= upto_id)
        rows = session.execute(query).mappings().all()
        for row in rows:
            record = {name: row[name] for name in EXPORT_FIELDS}
            record["created_at"] = row["created_at"].astimezone(timezone.utc).isoformat()
            yield record
        if len(rows) < page:
            return
        last = rows[-1]["id"]
