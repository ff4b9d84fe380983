"""Opening rules of a venue for a purpose (F1.5): weekly pattern, date exceptions,
national holidays and the year end closed by default, booking window and cut-off.
Slots are made from the rules ahead of time (materialise_slots: when the settings
change and daily by cron), idempotently; pages that show them only read.

Also the one definition of the year-end closure (12/29-1/3) and of month arithmetic (the
first day of a month, months before and after, a month typed as YYYY-MM) for every screen."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import jpholiday
from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from app import clock
from app.clock import JST
from app.models.reservation import Hold, Reservation, Slot
from app.models.venue import Purpose, Venue, VenuePurpose
from app.services import unit
from app.services.fields import parse_month  # noqa: F401 (the months' helpers, together)
from app.settings import settings

# The year-end closure, inclusive, as MM-DD (it wraps over the new year): slots are not
# made for it unless a date exception opens the day, and the staff site's default
# (config STAFF_CLOSED_YEAR_END) is the same span.
YEAR_END = ("12-29", "01-03")


def in_year_end(day: date, span: tuple[str, str] | None = YEAR_END) -> bool:
    """True when ``day`` falls in the span (MM-DD to MM-DD, inclusive; may wrap)."""
    if not span:
        return False
    start, end = span
    key = day.strftime("%m-%d")
    if start <= end:
        return start <= key <= end
    return key >= start or key <= end  # wraps over the new year


# --- months --------------------------------------------------------------------------------

def month_start(day: date) -> date:
    """The first day of the month of ``day``."""
    return day.replace(day=1)


def add_months(month: date, count: int) -> date:
    """The first day of the month ``count`` months after (before, when negative) ``month``."""
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def month_end(month: date) -> date:
    """The last day of the month of ``month``."""
    return add_months(month, 1) - timedelta(days=1)


def month_within(text: str | None, first: date, last: date) -> date:
    """The month typed (YYYY-MM), kept within [first, last]; ``first`` when none is."""
    month = parse_month(text) or first
    return min(max(month, first), last)


@dataclass(frozen=True)
class PlannedSlot:
    starts_at: datetime
    ends_at: datetime
    seats: int


def closed_by_default(day: date) -> str | None:
    """National and substitute holidays, and 12/29-1/3; None when it is a working day."""
    if in_year_end(day):
        return "year end"
    return jpholiday.is_holiday_name(day)


def _times(day: date, starts: time, ends: time, minutes: int, last_start: time | None):
    current = datetime.combine(day, starts, JST)
    end = datetime.combine(day, ends, JST)
    step = timedelta(minutes=minutes)
    while current + step <= end:
        if last_start is None or current.time() <= last_start:
            yield current, current + step
        current += step


def planned_slots(offer: VenuePurpose, day: date) -> list[PlannedSlot]:
    """The slots the rules give for one day (before the booking window is applied)."""
    exception = next((e for e in offer.exceptions if e.day == day), None)
    if exception is not None and exception.closed:
        return []
    if exception is not None and exception.starts and exception.ends:
        rules = [(exception.starts, exception.ends,
                  exception.slot_minutes or 30, exception.seats or 1)]
    else:
        if closed_by_default(day) and exception is None:
            return []
        rules = [(r.starts, r.ends, r.slot_minutes, r.seats) for r in offer.rules
                 if r.weekday == day.weekday()]
        if exception is not None and exception.seats is not None:
            rules = [(s, e, m, exception.seats) for s, e, m, _ in rules]
    result = []
    for starts, ends, minutes, seats in rules:
        for start, end in _times(day, starts, ends, minutes, offer.last_start):
            result.append(PlannedSlot(start, end, seats))
    return sorted(result, key=lambda p: p.starts_at)


def bookable_between(offer: VenuePurpose, now: datetime) -> tuple[datetime, datetime]:
    """Residents may book slots starting in [earliest, latest]."""
    earliest = now + timedelta(minutes=offer.closes_minutes_before)
    latest = datetime.combine(now.date() + timedelta(days=offer.opens_days_ahead),
                              time(23, 59), JST)
    return earliest, latest


def horizon(offer: VenuePurpose, today: date) -> date:
    """The last day slots are made for: the offer's window, at least SLOTS_AHEAD_DAYS."""
    return today + timedelta(days=max(offer.opens_days_ahead or 0,
                                      settings().slots_ahead_days))


def _today() -> date:
    return clock.now().astimezone(JST).date()


def materialise_slots(session, today: date | None = None,
                      offers: list[VenuePurpose] | None = None, refresh: bool = False) -> int:
    """Make the bookable slots ahead of time, so reading pages never writes: for each
    active offer (or the given ones), the missing slots from today through its horizon.
    Idempotent and safe against a concurrent run (INSERT ... ON CONFLICT DO NOTHING on the
    slot's unique key). ``refresh`` (booking settings changed): the future slots nobody has
    booked, held or closed are first brought in line with the rules (removed when the rules
    no longer give them, seats and end corrected), as if they were made only now; booked
    slots keep their seats and bookings. Generated rows are not audited as anyone's action.
    One unit; returns how many slots were made."""
    with unit.transaction(session):
        if offers is None:
            offers = list(session.execute(
                select(VenuePurpose).join(Venue).join(Purpose)
                .where(VenuePurpose.active.is_(True), Venue.active.is_(True),
                       Purpose.active.is_(True)).order_by(VenuePurpose.id)).scalars())
        today = today or _today()
        made = 0
        for offer in offers:
            last = horizon(offer, today)
            if refresh:
                _refresh_unused(session, offer, today, last)
            made += make_missing_slots(session, offer, today, last, today=today)
    return made


def settings_changed(session, offer_id: int | None) -> int:
    """Booking settings of one offer were saved (the offer, a weekly rule or a date
    exception): bring its slots in line with the rules at once. One unit."""
    offer = session.get(VenuePurpose, offer_id) if offer_id is not None else None
    if offer is None:
        return 0
    session.refresh(offer)  # the rules and exceptions as just saved
    return materialise_slots(session, offers=[offer], refresh=True)


def offers_in_use_again(session, venue_id: int | None = None,
                        purpose_id: int | None = None) -> int:
    """A venue or purpose was saved (perhaps taken back into use): make its active offers'
    missing slots at once rather than at the next daily run. One unit."""
    query = select(VenuePurpose).where(VenuePurpose.active.is_(True))
    if venue_id is not None:
        query = query.where(VenuePurpose.venue_id == venue_id)
    if purpose_id is not None:
        query = query.where(VenuePurpose.purpose_id == purpose_id)
    return materialise_slots(session, offers=list(session.execute(query).scalars()))


def unreferenced():
    """Slots no booking or hold (of any state) refers to: generated rows only, which go
    with their offer when it is deleted (app.services.deletion)."""
    return (~select(Reservation.id).where(Reservation.slot_id == Slot.id).exists(),
            ~select(Hold.id).where(Hold.slot_id == Slot.id).exists())


def _unused(offer_id: int, first: date, last: date):
    """Slots of [first, last] nobody booked, held or closed (no row refers to them)."""
    return (Slot.offer_id == offer_id, *_between(first, last), Slot.taken == 0,
            Slot.closed.is_(False), *unreferenced())


def _refresh_unused(session, offer: VenuePurpose, first: date, last: date) -> None:
    plan: dict[datetime, PlannedSlot] = {}
    day = first
    while day <= last:
        for planned in planned_slots(offer, day):
            plan[planned.starts_at] = planned
        day += timedelta(days=1)
    stale, changed = [], []
    for slot_id, starts_at, ends_at, seats in session.execute(
            select(Slot.id, Slot.starts_at, Slot.ends_at, Slot.seats)
            .where(*_unused(offer.id, first, last))):
        planned = plan.get(starts_at)
        if planned is None:
            stale.append(slot_id)
        elif (planned.ends_at, planned.seats) != (ends_at, seats):
            changed.append((slot_id, planned))
    if stale:
        session.execute(delete(Slot).where(Slot.id.in_(stale), *_unused(offer.id, first, last))
                        .execution_options(synchronize_session=False))
    for slot_id, planned in changed:
        session.execute(update(Slot).where(Slot.id == slot_id, *_unused(offer.id, first, last))
                        .values(ends_at=planned.ends_at, seats=planned.seats)
                        .execution_options(synchronize_session=False))


def ensure_slots(session, offer: VenuePurpose, first: date, last: date) -> list[Slot]:
    """For write paths (a booking at the counter, a walk-in) and tests: create the missing
    slots of [first, last] from the rules in the caller's transaction; return all of them.
    A slot that exists keeps its seats and bookings. Pages that only read use
    :func:`existing_slots`."""
    make_missing_slots(session, offer, first, last)
    return existing_slots(session, offer, first, last)


def existing_slots(session, offer: VenuePurpose, first: date, last: date) -> list[Slot]:
    """The slots of [first, last] as they are (made ahead by materialise_slots); no write."""
    return list(session.execute(
        select(Slot).where(Slot.offer_id == offer.id, *_between(first, last))
        .order_by(Slot.starts_at)).scalars())


def make_missing_slots(session, offer: VenuePurpose, first: date, last: date,
                       today: date | None = None) -> int:
    """Create the slots the rules give for [first, last] that do not exist yet (reading
    only their start times); returns how many were made. Only from today up to the
    horizon: a past month or a far-off date makes nothing. One INSERT that skips the
    slots another transaction made meanwhile (the unique key on offer and start)."""
    today = today or _today()
    first = max(first, today)
    last = min(last, horizon(offer, today))
    if first > last:
        return 0
    existing = set(session.execute(select(Slot.starts_at).where(
        Slot.offer_id == offer.id, *_between(first, last))).scalars())
    rows = []
    day = first
    while day <= last:
        for planned in planned_slots(offer, day):
            if planned.starts_at not in existing:
                existing.add(planned.starts_at)
                rows.append({"offer_id": offer.id, "starts_at": planned.starts_at,
                             "ends_at": planned.ends_at, "seats": planned.seats,
                             "taken": 0, "closed": False})
        day += timedelta(days=1)
    if not rows:
        return 0
    # One statement, compiled once and cached; SQLAlchemy sends the rows in batches
    # ("insertmanyvalues") and returns the ids of the rows made.
    return len(session.execute(_insert_ignoring_duplicates(session), rows).all())


def _insert_ignoring_duplicates(session):
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(Slot).on_conflict_do_nothing(
        index_elements=["offer_id", "starts_at"]).returning(Slot.id)  # the rows made


def _between(first: date, last: date):
    return (Slot.starts_at >= datetime.combine(first, time.min, JST),
            Slot.starts_at <= datetime.combine(last, time.max, JST))
