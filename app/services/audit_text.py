"""The audit trail as a clerk reads it (issue 12 §4): each record as a Japanese sentence
(who, what, where) and the names behind user IDs (受付者, the card history).

Reading only: records are rendered from what they store; the stored rows and their hash
chain (app/services/audit.py) are never touched here.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any, Iterable

from flask import g, has_request_context
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, func, not_, or_, select
from sqlalchemy.orm import selectinload

from app import clock
from app.clock import JST
from app.extensions import session as scoped_session
from app.models import card_states
from app.models import reservation as booking_words
from app.models.audit import AuditLog
from app.models.card import Card
from app.models.reservation import Reservation, Slot
from app.models.user import StaffUser
from app.services import audit

# Kinds of record (the audited tables) as people call them.
KIND_LABELS = {
    "card": _l("Card"),
    "card_event": _l("Card history"),
    "reservation": _l("Booking"),
    "reservation_person": _l("Person of a booking"),
    "slot": _l("Booking slot"),
    "ab_user": _l("User"),
    "ab_role": _l("Role"),
    "ab_user_role": _l("Roles of a user"),
    "ab_permission_view_role": _l("Permissions of a role"),
    "notice": _l("Notice"),
    "maintenance_window": _l("Maintenance"),
    "audit_log": _l("Audit log"),
    "storage_place": _l("Storage place"),
    "venue": _l("Venue"),
    "purpose": _l("Purpose"),
    "venue_purpose": _l("Venue and purpose"),
    "weekly_rule": _l("Weekly opening hours"),
    "date_exception": _l("Date exception"),
    "scan_batch": _l("Scan batch"),
    "scan_item": _l("Scanned code"),
    "outbox": _l("Mail to a resident"),
    "saved_query": _l("Saved extraction query"),  # issue 14 (extraction)
    "site_setting": _l("Office setting"),  # issue 15 (export encryption policy)
    "migration-export": _l("Migration export"),  # issue 15 (flask data export / import)
    "discard_candidate": _l("Discard candidates"),  # issue 16 §3 (their refresh)
}

# Fields as people call them (the rest are shown by their stored name).
FIELD_LABELS = {
    "state": _l("State"), "name": _l("Name"), "name_kana": _l("Name in kana"),
    "phone": _l("Phone"), "email": _l("E-mail"), "note": _l("Note"), "notes": _l("Note"),
    "address": _l("Address"), "postal_code": _l("Postal code"),
    "birth_date": _l("Birth date"), "starts_at": _l("Date and time"),
    "seats": _l("People"), "storage_place_id": _l("Storage place"),
    "notice_number": _l("Postcard number"), "application_id": _l("Application ID"),
    "visit_mode": _l("Visit mode"), "discard_reason": _l("Discard reason"),
    "discard_hold": _l("Discard held back"), "discard_hold_reason": _l("Why held back"),
    "cancel_reason": _l("Reason for cancelling"), "checked_in_at": _l("Checked in at"),
    "checked_in_by": _l("Checked in by"), "roles": _l("Roles"), "active": _l("Active"),
    "password": _l("Password"), "first_name": _l("Given name"),
    "encryption_required": _l("Encryption of exports required"),
    "encrypted": _l("Encrypted ZIP"),
    "last_name": _l("Family name"), "username": _l("User ID"), "title": _l("Title"),
    "closed": _l("Closed"), "handed_over_by": _l("Handed over by"),
    "identity_check": _l("Identity check"), "manufacture_number":
        _l("Manufacturing control number"), "shipment_number": _l("Shipment number"),
}
# Timestamps kept beside a state: the state change already says it.
# Fields that name the changed row rather than a change of it (an office setting's key).
_ROW_KEYS = {"site_setting": {"key"}}
_SHADOW_FIELDS = {"received_at", "setup_at", "notice_sent_at", "renotified_at",
                  "returned_at", "mailed_at", "handed_over_at", "discarded_at", "held_from",
                  "completed_at", "cancelled_at", "slot_id", "offer_id", "changed_on",
                  "changed_by_fk"}

REASON_LABELS = {
    "wrong password": _l("wrong password"), "unknown user": _l("unknown user ID"),
    "inactive": _l("account not in use"), "locked": _l("account locked"),
    "rate limited": _l("too many attempts"), "idle timeout": _l("no activity for a while"),
    "wrong current password": _l("wrong current password"),
}
WHAT_LABELS = {
    "postcard print data": _l("postcard print data"), "inventory": _l("inventory list"),
    "ledger sheet": _l("ledger sheet"), "day list": _l("day list"),
    "booking slip": _l("booking slip"), "discard register": _l("discard register"),
    "list": _l("list"),
    "statistics": _l("statistics (figures)"),
    "extraction": _l("extraction"),  # issue 14: an export from the extraction screen
}

# Who acted, by kind (the person filter offers these besides each user).
PEOPLE_RESIDENTS = "@residents"
PEOPLE_COMMANDS = "@commands"
PEOPLE_AUTOMATIC = "@automatic"

WHERE_SCREEN = _l("Screen")
WHERE_API = _l("API")
WHERE_COMMAND = _l("Command")
WHERE_RESIDENTS = _l("Residents' site")
WHERE_AUTOMATIC = _l("Automatic")
WHERE_UNKNOWN = _l("Screen or API")



def _automatic_clause():
    """Records no person made: jobs and the sign-in rule."""
    name = AuditLog.username
    return or_(name == audit.SYSTEM, name.like("system:%"), name.like("job:%"))


def _generated_clause():
    """Generated rows: slots no staff user, command or resident made (made ahead of time by
    the system; old versions made them while a page was read, with no one named). Hidden
    unless asked for."""
    name = AuditLog.username
    return and_(AuditLog.target_table == "slot", AuditLog.user_id.is_(None),
                not_(name.like("cli:%")), not_(name.like(audit.RESIDENT + "%")))


def _not_generated_clause():
    """The complement of :func:`_generated_clause`, NULL-safe (most records name no table
    or no user number)."""
    name = AuditLog.username
    return or_(AuditLog.target_table.is_(None), AuditLog.target_table != "slot",
               AuditLog.user_id.is_not(None), name.like("cli:%"),
               name.like(audit.RESIDENT + "%"))


# --- who ---------------------------------------------------------------------------------

@dataclass
class Who:
    name: str
    role: str = ""
    kind: str = "staff"  # staff, resident, command, automatic, unknown


def _staff_directory(session, usernames: Iterable[str] | None = None) -> dict[str, StaffUser]:
    query = select(StaffUser).options(selectinload(StaffUser.roles))
    if usernames is not None:
        names = sorted({n for n in usernames if n})
        if not names:
            return {}
        query = query.where(StaffUser.username.in_(names))
    return {u.username: u for u in session.execute(query).scalars()}


def _who(raw: str | None, directory: dict[str, StaffUser]) -> Who:
    raw = raw or ""
    if raw in directory:
        user = directory[raw]
        return Who(user.get_full_name() or raw, "、".join(sorted(r.name for r in user.roles)))
    if raw.startswith("cli:"):
        return Who(_("Command (%(os_user)s)", os_user=raw[4:] or "?"), kind="command")
    if raw == audit.SYSTEM:
        return Who(str(_l("Automatic processing")), kind="automatic")
    if raw == audit.SIGN_IN:
        return Who(_("Automatic processing (%(job)s)", job=_("sign-in rule")),
                   kind="automatic")
    if raw.startswith("job:") or raw.startswith("system:"):
        return Who(_("Automatic processing (%(job)s)", job=raw.split(":", 1)[1]),
                   kind="automatic")
    if raw == audit.RESIDENT or raw.startswith(audit.RESIDENT + ":"):
        number = raw[len(audit.RESIDENT) + 1:]
        name = str(_l("Resident (Web)"))
        if number:
            name += " " + (_("booking %(number)s", number=number) if len(number) == 8
                           else _("postcard number %(number)s", number=number))
        return Who(name, kind="resident")
    if raw.startswith("unresolved:"):
        return Who(str(_l("Not recorded (old record)")), kind="unknown")
    # No account of that user ID: typed at a failed sign-in, an account since removed, or
    # a placeholder old versions wrote when they named no one (see render()).
    return Who(raw, kind="unnamed")


def _request_directory() -> dict[str, StaffUser]:
    """All staff accounts, read once per request (a city has tens of them)."""
    if has_request_context():
        cached = g.get("_staff_directory")
        if cached is None:
            cached = g._staff_directory = _staff_directory(scoped_session())
        return cached
    return _staff_directory(scoped_session())


def actor_names(session, raws: Iterable[str | None]) -> dict[str, str]:
    """The names to show for recorded actors (user IDs, ``cli:root``, ``住民:…``,
    ``system``): a person's 姓 名, コマンド操作（root）, 住民（Web）…; one query."""
    raws = [r for r in raws if r]
    directory = _staff_directory(session, raws)
    names = {}
    for raw in raws:
        who = _who(raw, directory)
        names[raw] = (str(_l("Not recorded (old record)")) if who.kind == "unnamed"
                      else who.name)
    return names


def actor_name(raw: str | None) -> str:
    """One recorded actor as a name, for a list column's formatter (the staff accounts
    are read once per request)."""
    if not raw:
        return ""
    who = _who(raw, _request_directory())
    return str(_l("Not recorded (old record)")) if who.kind == "unnamed" else who.name


# --- what --------------------------------------------------------------------------------

def _short_time(value: Any) -> str:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        local = clock.to_jst(value) if value.tzinfo else value
        return f"{local.month}/{local.day} {local:%H:%M}"
    return "" if value is None else str(value)


def _field(name: str) -> str:
    return str(FIELD_LABELS.get(name, name))


def _state_words(table: str | None):
    if table == "reservation":
        return booking_words.state_label
    if table in ("card", "card_event"):
        return card_states.state_label
    return lambda v: "" if v is None else str(v)


def _load_json(text_value: str | None) -> Any:
    if not text_value:
        return None
    try:
        return json.loads(text_value)
    except ValueError:
        return text_value


def _public(detail: Any) -> Any:
    """The detail without the keys the trail adds for itself (``_endpoint``)."""
    if isinstance(detail, dict):
        return {k: v for k, v in detail.items() if not str(k).startswith("_")}
    return detail


_PERSON_TABLES = {"card", "card_event", "reservation", "reservation_person", "ab_user"}


@dataclass
class Targets:
    """Labels of the records the page's rows point to, read in one query per kind."""
    cards: dict[str, str] = field(default_factory=dict)
    bookings: dict[str, str] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)
    slots: dict[str, str] = field(default_factory=dict)
    staff: dict[str, StaffUser] = field(default_factory=dict)


def _ids(rows, table) -> set[int]:
    found = set()
    for row in rows:
        if row.target_table == table and row.target_id and row.target_id.isdigit():
            found.add(int(row.target_id))
        detail = _load_json(row.changes)
        if table == "card" and row.target_table == "card_event" and isinstance(detail, dict):
            card_id = detail.get("card_id")
            if isinstance(card_id, int):
                found.add(card_id)
    return found


def load_targets(session, rows: list[AuditLog]) -> Targets:
    targets = Targets()
    card_ids = _ids(rows, "card")
    if card_ids:
        targets.cards = {str(i): a for i, a in session.execute(
            select(Card.id, Card.application_id).where(Card.id.in_(card_ids)))}
    booking_ids = _ids(rows, "reservation")
    if booking_ids:
        targets.bookings = {str(i): n for i, n in session.execute(
            select(Reservation.id, Reservation.number).where(Reservation.id.in_(booking_ids)))}
    slot_ids = _ids(rows, "slot")
    if slot_ids:
        targets.slots = {str(i): _short_time(s) for i, s in session.execute(
            select(Slot.id, Slot.starts_at).where(Slot.id.in_(slot_ids)))}
    user_ids = _ids(rows, "ab_user")
    if user_ids:
        targets.users = {str(i): u for i, u in session.execute(
            select(StaffUser.id, StaffUser.username).where(StaffUser.id.in_(user_ids)))}
    targets.staff = _staff_directory(session, {r.username for r in rows})
    return targets


def _target(row: AuditLog, detail: Any, targets: Targets) -> str:
    """カード 申請書ID 1234…, 予約 J9PRT6H5, ユーザー tanaka, 時間枠 12/1 10:00, お知らせ 3."""
    table, key = row.target_table, row.target_id
    kind = str(KIND_LABELS.get(table, table or ""))
    snapshot = detail if isinstance(detail, dict) else {}
    if table == "card":
        application_id = targets.cards.get(key or "") or snapshot.get("application_id")
        if application_id and not isinstance(application_id, dict):
            return _("Card with application ID %(id)s", id=application_id)
    elif table == "card_event":
        card_id = snapshot.get("card_id")
        application_id = targets.cards.get(str(card_id)) if card_id is not None else None
        if application_id:
            return _("Card with application ID %(id)s", id=application_id)
    elif table == "reservation":
        number = targets.bookings.get(key or "") or snapshot.get("number")
        if number and not isinstance(number, dict):
            return f"{kind} {number}"
    elif table == "ab_user":
        name = targets.users.get(key or "") or snapshot.get("username")
        if name and not isinstance(name, dict):
            return f"{kind} {name}"
    elif table == "slot":
        starts = targets.slots.get(key or "") or _short_time(snapshot.get("starts_at"))
        if starts:
            return f"{kind} {starts}"
    if not table:
        return ""
    if table not in _PERSON_TABLES:  # a place, a venue, a notice: by its code or title
        for name in ("title", "name", "code"):
            value = snapshot.get(name)
            if isinstance(value, str) and value:
                return f"{kind} {value}"
    return f"{kind} {key}" if key else kind


def _what(row: AuditLog, detail: Any, targets: Targets) -> str:
    action = row.action
    target = _target(row, detail, targets)
    kind = str(KIND_LABELS.get(row.target_table, row.target_table or ""))
    info = detail if isinstance(detail, dict) else {}
    if action == audit.ACTION_CREATE:
        if row.target_table == "card_event":
            words = _state_words("card")
            if info.get("from_state") and info.get("from_state") == info.get("to_state"):
                return _("%(target)s: history %(new)s", target=target,  # a move of place
                         new=card_states.change_label(info["from_state"], info["to_state"]))
            if info.get("from_state"):
                return _("%(target)s: history %(old)s → %(new)s", target=target,
                         old=words(info.get("from_state")), new=words(info.get("to_state")))
            return _("%(target)s: history %(new)s", target=target,
                     new=words(info.get("to_state")))
        return _("Added %(target)s", target=target)
    if action == audit.ACTION_DELETE:
        return _("Deleted %(target)s", target=target)
    if action == audit.ACTION_UPDATE:
        if "state" in info and isinstance(info["state"], dict):
            words = _state_words(row.target_table)
            return _("%(target)s: %(old)s → %(new)s", target=target,
                     old=words(info["state"].get("old")), new=words(info["state"].get("new")))
        if "starts_at" in info and isinstance(info["starts_at"], dict):
            return _("Changed %(target)s: %(old)s → %(new)s", target=target,
                     old=_short_time(info["starts_at"].get("old")),
                     new=_short_time(info["starts_at"].get("new")))
        hidden = _SHADOW_FIELDS | _ROW_KEYS.get(row.target_table or "", set())
        fields = [_field(k) for k in info if k not in hidden]
        if fields:
            return _("Changed %(target)s (%(fields)s)", target=target,
                     fields="、".join(fields))
        return _("Changed %(target)s", target=target)
    if action == audit.ACTION_LOGIN:
        return _("Logged in")
    if action == audit.ACTION_LOGOUT:
        reason = info.get("reason")
        if reason:
            return _("Logged out (%(reason)s)", reason=str(REASON_LABELS.get(reason, reason)))
        return _("Logged out")
    if action == audit.ACTION_LOGIN_FAILED:
        reason = str(REASON_LABELS.get(info.get("reason"), info.get("reason") or ""))
        tried = info.get("username")
        if tried:
            return _("Login failed as %(user)s (%(reason)s)", user=tried, reason=reason)
        return _("Login failed (%(reason)s)", reason=reason)
    if action == audit.ACTION_LOCKED:
        if info.get("until"):
            return _("Locked %(target)s until %(until)s", target=target,
                     until=_short_time(info["until"]))
        return _("Locked %(target)s", target=target)
    if action == audit.ACTION_UNLOCKED:
        return _("Unlocked %(target)s", target=target)
    if action == audit.ACTION_PASSWORD_CHANGE_FAILED:
        return _("Password change failed (%(reason)s)",
                 reason=str(REASON_LABELS.get(info.get("reason"), info.get("reason") or "")))
    if action == audit.ACTION_REFRESH and row.target_table == "discard_candidate":
        return _("Refreshed the discard candidates (%(n)s cards found)",
                 n=_number(info.get("count")))
    data_sentence = _data_in_out(row, info)
    if data_sentence is not None:
        return data_sentence
    what = str(WHAT_LABELS.get(info.get("what"), info.get("what") or "")) or None
    rows = info.get("rows", info.get("count", info.get("cards")))
    subject = target if row.target_id else kind
    if what:
        subject = f"{subject} {what}" if subject else what
    count = _(" (%(n)s rows)", n=rows) if isinstance(rows, int) else ""
    if action == audit.ACTION_VIEW:
        return _("Viewed %(target)s", target=subject) + count
    sealed = _(" (encrypted ZIP)") if info.get("encrypted") is True else ""
    if action == audit.ACTION_EXPORT:
        return _("Exported %(target)s", target=subject) + count + sealed
    if action == audit.ACTION_PRINT:
        return _("Printed %(target)s", target=subject) + count
    if action == audit.ACTION_DOWNLOAD:
        return _("Downloaded %(target)s", target=subject) + count + sealed
    return f"{subject} {action}".strip()


def _number(value) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value or 0)


def _data_in_out(row: AuditLog, info: dict) -> str | None:
    """Issue 15: the ledger import, the migration export and import, and the backups; None
    for any other record."""
    action, file = row.action, info.get("file")
    file = file if isinstance(file, str) else ""
    sealed = _(" (encrypted ZIP)") if info.get("encrypted") is True else ""
    if action == audit.ACTION_IMPORT and row.target_table == "card":
        counts = {"created": _number(info.get("created")),
                  "updated": _number(info.get("updated"))}
        if file:
            return _("Imported the existing ledger (%(file)s, %(created)s new, %(updated)s "
                     "updated)", file=file, **counts)
        return _("Imported the existing ledger (%(created)s new, %(updated)s updated)",
                 **counts)
    if action == audit.ACTION_IMPORT:
        if file:
            return _("Imported all data from a migration export (%(file)s, %(n)s rows)",
                     file=file, n=_number(info.get("rows"))) + sealed
        return _("Imported all data from a migration export (%(n)s rows)",
                 n=_number(info.get("rows"))) + sealed
    if action == audit.ACTION_EXPORT and row.target_table == "migration-export":
        plain = _(" (documents decrypted)") if info.get("decrypted") is True else ""
        return _("Exported all data for migration (%(n)s rows)",
                 n=_number(info.get("rows"))) + plain + sealed
    if action == audit.ACTION_BACKUP:
        return _("Created a backup (%(file)s)", file=file or "")
    if action == audit.ACTION_BACKUP_VERIFY:
        return _("Verified a backup (%(file)s)", file=file or "")
    if action == audit.ACTION_RESTORE:
        return _("Restored from a backup (%(file)s)", file=file or "")
    if action == audit.ACTION_BACKUP_PRUNE:
        removed = info.get("removed")
        return _("Pruned old backups (%(n)s removed)",
                 n=_number(len(removed) if isinstance(removed, list) else 0))
    return None


# --- where -------------------------------------------------------------------------------

def _where(who: Who, detail: Any) -> str:
    endpoint = detail.get("_endpoint") if isinstance(detail, dict) else None
    via = detail.get("via") if isinstance(detail, dict) else None
    if who.kind == "resident" or (endpoint or "").startswith("public."):
        return str(WHERE_RESIDENTS)
    if who.kind == "command":
        return str(WHERE_COMMAND)
    if who.kind == "automatic":
        return str(WHERE_AUTOMATIC)
    if via == "api" or (endpoint and endpoint.split(".")[0].endswith("Api")):
        return str(WHERE_API)
    if endpoint:
        return str(WHERE_SCREEN)
    return str(WHERE_UNKNOWN)


_SIGN_IN_ACTIONS = {audit.ACTION_LOGIN, audit.ACTION_LOGIN_FAILED, audit.ACTION_LOCKED,
                    audit.ACTION_UNLOCKED, audit.ACTION_LOGOUT}


# --- one record --------------------------------------------------------------------------

@dataclass
class Line:
    """One audit record as the list shows it."""
    id: int
    when: str
    who: str
    role: str
    where: str
    what: str
    action: str
    kind: str
    target_table: str
    target_id: str
    ip: str
    detail: str  # the stored JSON, indented
    automatic: bool


def _typed_at_sign_in(row: AuditLog, detail: Any) -> bool:
    """A failed sign-in at the login page names no account: its actor is whatever was
    typed (kept in the detail as ``username``; the sign-in rule's own refusals have none)."""
    return (row.action == audit.ACTION_LOGIN_FAILED and row.user_id is None
            and isinstance(detail, dict) and "username" in detail)


def _typed_clause():
    """The same in SQL, for the person filters."""
    return and_(AuditLog.action == audit.ACTION_LOGIN_FAILED, AuditLog.user_id.is_(None),
                AuditLog.changes.like('%"username"%'))


def render(row: AuditLog, targets: Targets) -> Line:
    detail = _load_json(row.changes)
    if _typed_at_sign_in(row, detail) and (row.username or "") not in targets.staff:
        # what someone typed as a user ID at the login page: shown as typed, never read as
        # コマンド操作, 自動処理 or a resident however it begins
        who = Who(_("Typed user ID: %(typed)s", typed=row.username or ""), kind="typed")
    else:
        who = _who(row.username, targets.staff)
    if who.kind == "unnamed" and row.user_id is None and row.action not in _SIGN_IN_ACTIONS:
        # nobody named: an old version's placeholder (a user ID is only ever recorded
        # without its account number on a sign-in attempt)
        who = Who(str(_l("Not recorded (old record)")), kind="unknown")
    if who.kind == "unknown" and row.target_table == "slot":  # an old version's generated slot
        who = Who(_("Automatic processing (%(job)s)", job=_("making slots")), kind="automatic")
    pretty = (json.dumps(detail, ensure_ascii=False, indent=1)
              if detail is not None and not isinstance(detail, str) else (detail or ""))
    return Line(
        id=row.id, when=clock.to_jst(row.created_at).strftime("%Y-%m-%d %H:%M:%S"),
        who=who.name, role=who.role, where=_where(who, detail),
        what=_what(row, _public(detail), targets), action=row.action,
        kind=str(KIND_LABELS.get(row.target_table, row.target_table or "")),
        target_table=row.target_table or "", target_id=row.target_id or "",
        ip=row.ip or "", detail=pretty,
        automatic=who.kind in ("automatic", "unknown"))


def render_all(session, rows: list[AuditLog]) -> list[Line]:
    targets = load_targets(session, rows)
    return [render(row, targets) for row in rows]


# --- search ------------------------------------------------------------------------------

@dataclass
class Criteria:
    person: str | None = None  # a user ID, or PEOPLE_RESIDENTS / _COMMANDS / _AUTOMATIC
    kind: str | None = None  # a table
    record_id: str | None = None
    action: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    generated: bool = False  # include generated slots (no person's action)


def _conditions(criteria: Criteria) -> list:
    name = AuditLog.username
    where = []
    person = criteria.person
    # A failed sign-in's "actor" is what was typed (``cli:root``, ``system``...): never a
    # command, a job or a resident.
    typed = _typed_clause()
    if person == PEOPLE_RESIDENTS:
        where += [or_(name == audit.RESIDENT, name.like(audit.RESIDENT + ":%")), not_(typed)]
    elif person == PEOPLE_COMMANDS:
        where += [name.like("cli:%"), not_(typed)]
    elif person == PEOPLE_AUTOMATIC:
        where += [or_(_automatic_clause(), _generated_clause()), not_(typed)]
    elif person:
        where.append(name == person)
    if not criteria.generated and person != PEOPLE_AUTOMATIC:
        where.append(_not_generated_clause())
    if criteria.kind:
        where.append(AuditLog.target_table == criteria.kind)
    if criteria.record_id:
        where.append(AuditLog.target_id == criteria.record_id)
    if criteria.action:
        where.append(AuditLog.action == criteria.action)
    if criteria.date_from:
        where.append(AuditLog.created_at >= datetime.combine(criteria.date_from, time.min, JST))
    if criteria.date_to:
        where.append(AuditLog.created_at <= datetime.combine(criteria.date_to, time.max, JST))
    return where


def search(session, criteria: Criteria, page: int = 0, page_size: int = 50,
           newest_first: bool = True) -> tuple[int, list[AuditLog]]:
    """The records matching, a page of them (newest first), and how many match."""
    where = _conditions(criteria)
    count = session.execute(select(func.count(AuditLog.id)).where(*where)).scalar_one()
    order = AuditLog.id.desc() if newest_first else AuditLog.id.asc()
    query = select(AuditLog).where(*where).order_by(order)
    if page_size:
        query = query.offset(max(page, 0) * page_size).limit(page_size)
    return count, list(session.execute(query).scalars())


def person_choices(session) -> list[tuple[str, str]]:
    """(value, label) for the person filter: each staff account by name and role, then
    residents, commands and automatic processing."""
    users = sorted(_staff_directory(session).values(),
                   key=lambda u: (u.last_name or "", u.first_name or "", u.username))
    labels = []
    for user in users:
        roles = "、".join(sorted(r.name for r in user.roles))
        label = user.get_full_name() or user.username
        labels.append((user.username, f"{label}（{roles}）" if roles else label))
    seen: dict[str, int] = {}
    for _value, label in labels:
        seen[label] = seen.get(label, 0) + 1
    choices = [(value, f"{label} [{value}]" if seen[label] > 1 else label)
               for value, label in labels]  # two people of one name and role: user IDs
    choices += [(PEOPLE_RESIDENTS, str(_l("Residents (Web)"))),
                (PEOPLE_COMMANDS, str(_l("Commands"))),
                (PEOPLE_AUTOMATIC, str(_l("Automatic processing")))]
    return choices


def kind_choices() -> list[tuple[str, str]]:
    return [(table, str(label)) for table, label in KIND_LABELS.items()]


# --- the CSV export of the list ---------------------------------------------------------------

CSV_HEADERS = [_l("No."), _l("When"), _l("User"), _l("IP address"), _l("Action"),
               _l("Target table"), _l("Target ID"), _l("Details"),
               # the sentence's parts follow the stored columns (kept in their places)
               _l("Done by"), _l("Role"), _l("Where"), _l("What happened")]
CSV_ENCODINGS = ("utf-8-sig", "cp932")


@dataclass(frozen=True)
class CsvFile:
    filename: str
    data: bytes
    rows: int
    replaced: int = 0  # characters Shift_JIS cannot hold, written as 〓


def export_csv(session, criteria: Criteria, *, encoding: str, encrypted: bool,
               filters: dict, note: dict | None = None) -> CsvFile:
    """The records matching the list's search, oldest first, as CSV for Excel: the stored
    columns and the sentence the list shows. Refused while the office requires encryption
    and the file would leave plain (staff names, IP addresses and changed values of
    residents' records are personal data); the export is audited with its filters and
    ``note`` (how it was encrypted, never the password)."""
    from app.services import export_policy, spreadsheet

    export_policy.require(session, "audit_csv", encrypted)
    encoding = encoding if encoding in CSV_ENCODINGS else "utf-8-sig"
    _count, items = search(session, criteria, page_size=0, newest_first=False)
    lines = render_all(session, items)
    buffer = io.StringIO()
    writer = spreadsheet.csv_writer(buffer)
    writer.writerow([str(header) for header in CSV_HEADERS])
    for item, line in zip(items, lines):
        writer.writerow([item.id, _minute(item.created_at), item.username, item.ip or "",
                         item.action, item.target_table or "", item.target_id or "",
                         item.changes or "", line.who, line.role, line.where, line.what])
    data, replaced = spreadsheet.encode_text(buffer.getvalue(), encoding)
    detail = {"rows": len(items), "filters": filters, "encoding": encoding, **(note or {})}
    if replaced:  # characters Shift_JIS cannot hold, written as 〓
        detail["replaced"] = replaced
    audit.record_event(audit.ACTION_EXPORT, "audit_log", None, detail)
    return CsvFile(f"audit_log_{clock.now().strftime('%Y%m%d-%H%M')}.csv", data, len(items),
                   replaced)


def _minute(value: datetime | None) -> str:
    return "" if value is None else clock.to_jst(value).strftime("%Y-%m-%d %H:%M")
