"""What a delete does while other rows still point at the row (one rule, every entry point).

The database enforces the foreign keys (PostgreSQL always, SQLite with
``PRAGMA foreign_keys=ON``, see app.extensions.tune_sqlite), but its refusal is a technical
error. This module decides first, the same way on both databases:

- rows the record owns go with it, as the ORM cascades them (a card's history, an offer's
  weekly pattern and date exceptions, a booking's cards, a scan batch's items, a user's
  role links);
- the slots made ahead for an offer that no booking or hold refers to go with it (they are
  generated from its rules);
- any other row still pointing at it (cards in a storage place, offers of a venue or a
  purpose, booked or held slots and bookings of an offer, bookings of a card, users created by a user,
  the history of cards kept in a place and of bookings of an offer)
  refuses the delete with a Japanese message that says what refers to it and how many,
  and nothing changes. Venues, purposes, storage places and offers are archived instead:
  the message says to clear 「使用中」;
- a user whom the audit trail names (SOFT_REFERENCES) is deactivated, not deleted.

The check runs in a ``before_flush`` listener, so the screens (FAB's delete), the REST API
and the CLI all go through it.
"""
from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, delete, event, func, inspect, select
from sqlalchemy.orm import Session

from app.models.reservation import Slot
from app.models.venue import VenuePurpose
from app.services import calendar
from app.services.errors import DomainError

# What the person reads for the rows that refer to the record (by table).
REFERRER_LABELS = {
    "card": _l("cards"),
    "venue_purpose": _l("booking settings per venue"),
    "slot": _l("booking slots"),
    "hold": _l("held times of residents booking now"),
    "reservation": _l("bookings"),
    "reservation_person": _l("bookings"),
    "scan_item": _l("scanned deliveries"),
    "ab_user": _l("users"),
    "audit_log": _l("audit records"),
    "card_event": _l("card history"),  # a place a card was kept in (the stock of past days)
    "booking_event": _l("booking history"),  # what the statistics count
}
# References the database does not declare: a user who ever acted is named by the audit
# trail (by id), so the account is deactivated, never deleted (its user ID is not reused).
SOFT_REFERENCES = {"ab_user": [("audit_log", "user_id")]}
# What to do instead of deleting, by table.
_IN_USE_HINT = _l("To stop using it, clear 「In use」 instead of deleting it.")
INSTEAD = {"venue": _IN_USE_HINT, "purpose": _IN_USE_HINT, "venue_purpose": _IN_USE_HINT,
           "storage_place": _IN_USE_HINT,
           "ab_user": _l("To stop this account, make it inactive instead of deleting it.")}


class InUseError(DomainError):
    message = _l("This record is still in use, so it was not deleted.")


def _owned_tables(mapper) -> set:
    """Tables whose rows the ORM deletes (or unlinks) together with the record."""
    owned = set()
    for rel in mapper.relationships:
        if rel.secondary is not None:
            owned.add(rel.secondary)
        elif rel.cascade.delete:
            owned.add(rel.mapper.local_table)
    return owned


def references(session, obj, also_deleted=()) -> list[tuple[str, int]]:
    """(referring table, rows) for every row that still points at ``obj`` and would not go
    with it. ``also_deleted``: other objects deleted in the same flush (not counted)."""
    state = inspect(obj)
    mapper = state.mapper
    table = mapper.local_table
    owned = _owned_tables(mapper)
    gone: dict = {}
    for other in also_deleted:
        other_state = inspect(other)
        if other_state.identity and len(other_state.identity) == 1:
            gone.setdefault(other_state.mapper.local_table, set()).add(other_state.identity[0])
    found = []
    for other in mapper.local_table.metadata.sorted_tables:
        if other in owned:
            continue
        for fk in other.foreign_keys:
            if fk.column.table is not table:
                continue
            if (fk.ondelete or "").upper() in ("CASCADE", "SET NULL"):
                continue
            value = mapper.get_property_by_column(fk.column)
            value = getattr(obj, value.key)
            if value is None:
                continue
            query = select(func.count()).select_from(other).where(fk.parent == value)
            other_pk = list(other.primary_key.columns)
            skip = gone.get(other, set())
            if len(other_pk) == 1 and skip:
                query = query.where(other_pk[0].not_in(skip))
            if other.name == "slot":  # generated slots nobody booked go with their offer
                query = query.where(~and_(*calendar.unreferenced()))
            count = session.execute(query).scalar_one()
            if count:
                found.append((other.name, count))
    metadata_tables = mapper.local_table.metadata.tables
    for other_name, column_name in SOFT_REFERENCES.get(table.name, []):
        identity = state.identity
        if not identity or other_name not in metadata_tables:
            continue
        column = metadata_tables[other_name].c[column_name]
        count = session.execute(select(func.count()).where(column == identity[0])).scalar_one()
        if count:
            found.append((other_name, count))
    return found


def ensure_deletable(session, obj, also_deleted=()) -> None:
    """Raise InUseError (nothing changed) while other rows point at ``obj``."""
    found = references(session, obj, also_deleted)
    if not found:
        return
    labels = [str(REFERRER_LABELS.get(name, name)) for name, _n in found]
    what = "、".join(dict.fromkeys(labels))  # once each, in order
    count = sum(n for _name, n in found)
    message = _("%(what)s still refer to this record (%(n)d), so it was not deleted. "
                "Nothing was changed.", what=what, n=count)
    hint = INSTEAD.get(inspect(obj).mapper.local_table.name)
    if hint is not None:
        message += " " + str(hint)
    raise InUseError(message)


def _before_flush(session, _flush_context, _instances) -> None:
    deleted = list(session.deleted)
    if not deleted:
        return
    for obj in deleted:
        ensure_deletable(session, obj, also_deleted=deleted)
    offers = [obj.id for obj in deleted if isinstance(obj, VenuePurpose)]
    if offers:  # the slots made ahead that nobody used go with the offer (not audited)
        session.connection().execute(delete(Slot.__table__).where(
            Slot.offer_id.in_(offers), *calendar.unreferenced()))


_installed = False


def install_listeners() -> None:
    """Check every delete before it is flushed, on every session. Idempotent."""
    global _installed
    if not _installed:
        event.listen(Session, "before_flush", _before_flush)
        _installed = True
