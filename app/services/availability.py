"""What residents may book: active venues and purposes, and free seats per slot."""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple
from datetime import date, datetime, time, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import contains_eager

from app import clock
from app.clock import JST
from app.models.reservation import HOLD_HELD, Hold, Slot
from app.models.venue import Purpose, Venue, VenuePurpose
from app.services import booking
from app.services.calendar import bookable_between, month_end, month_start
from app.services.errors import InputError

MAX_RANGE_DAYS = 62


def active_offers(session) -> list[VenuePurpose]:
    """Offers residents may book, each with its venue and purpose loaded by the same query
    (pages read ``offer.venue.name`` and ``offer.purpose.code`` of every offer)."""
    return list(session.execute(
        select(VenuePurpose).join(Venue).join(Purpose)
        .options(contains_eager(VenuePurpose.venue), contains_eager(VenuePurpose.purpose))
        .where(VenuePurpose.active.is_(True), Venue.active.is_(True), Purpose.active.is_(True))
        .order_by(Venue.name, Purpose.id)).scalars())


def find_offer(session, venue_id: int, purpose_code: str) -> VenuePurpose:
    offer = session.execute(
        select(VenuePurpose).join(Venue).join(Purpose)
        .options(contains_eager(VenuePurpose.venue), contains_eager(VenuePurpose.purpose))
        .where(Venue.id == venue_id, Purpose.code == purpose_code,
               VenuePurpose.active.is_(True), Venue.active.is_(True),
               Purpose.active.is_(True))).scalar()
    if offer is None:
        raise InputError(_l("This venue does not take bookings for this purpose."))
    return offer


def availability(session, offer: VenuePurpose, first: date, last: date) -> list[dict]:
    """Bookable slots of [first, last] with their free seats (a pure read: the slots are
    made ahead by calendar.materialise_slots)."""
    if last < first:
        raise InputError(_l("The end date is before the start date."))
    if (last - first).days > MAX_RANGE_DAYS:
        raise InputError(_l("Ask for at most %(n)d days at a time.", n=MAX_RANGE_DAYS))
    return [{"id": s.id, "start": s.starts_at.isoformat(), "end": s.ends_at.isoformat(),
             "seats": s.seats, "free": s.free}
            for s in open_slots(session, offer, first, last, clock.now())]


class OpenSlot(NamedTuple):
    """A bookable slot as residents see it."""
    id: int
    starts_at: datetime
    ends_at: datetime
    seats: int
    free: int


def open_slots(session, offer: VenuePurpose, first: date, last: date,
               now: datetime) -> list[OpenSlot]:
    """The open slots of [first, last] inside the offer's booking window, in time order, with
    their free seats; one statement however many slots (a two-month range has a thousand or
    more): plain rows, and the seats of lapsed holds summed by the database per slot."""
    earliest, latest = bookable_between(offer, now)
    first = max(first, earliest.date())
    last = min(last, latest.date())
    if last < first:
        return []
    rows = session.execute(
        select(Slot.id, Slot.starts_at, Slot.ends_at, Slot.seats, Slot.taken,
               booking.lapsed_seats(now))
        .where(Slot.offer_id == offer.id, Slot.closed.is_(False),
               Slot.starts_at >= max(earliest, datetime.combine(first, time.min, JST)),
               Slot.starts_at <= min(latest, datetime.combine(last, time.max, JST)))
        .order_by(Slot.starts_at))
    return [OpenSlot(id_, starts_at, ends_at, seats, booking.free_seat_count(seats, taken, lapsed))
            for id_, starts_at, ends_at, seats, taken, lapsed in rows]


def parse_iso_day(text: str | None, default: date) -> date:
    if not text:
        return default
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise InputError(_l("Dates are written YYYY-MM-DD.")) from None


def default_range(today: date) -> tuple[date, date]:
    return today, today + timedelta(days=MAX_RANGE_DAYS - 1)


# --- the residents' month calendar and day page ---------------------------------------------

FREE, FEW, FULL, CLOSED = "free", "few", "full", "closed"


@dataclass
class DaySlots:
    day: date
    slots: list[OpenSlot]  # the bookable slots of the day, as open_slots() gives them
    status: str  # free / few / full / closed, for a party of `seats`


def month_range(offer: VenuePurpose, now: datetime) -> tuple[date, date]:
    """First days of the first and last months a resident can book in."""
    earliest, latest = bookable_between(offer, now)
    return month_start(earliest.date()), month_start(latest.date())


def day_status(slots: list[dict], seats: int, few_share: float) -> str:
    if not slots:
        return CLOSED
    usable = [s for s in slots if s["free"] >= seats]
    if not usable:
        return FULL
    free = sum(s["free"] for s in usable)
    total = sum(s["seats"] for s in slots)
    return FEW if free <= few_share * total else FREE


def month_days(session, offer: VenuePurpose, month: date, seats: int,
               few_share: float) -> dict[date, DaySlots]:
    """Every day of the month with its bookable slots and status (one query)."""
    first, last = month_start(month), month_end(month)
    by_day: dict[date, list[OpenSlot]] = {}
    for slot in open_slots(session, offer, first, last, clock.now()):
        by_day.setdefault(slot.starts_at.date(), []).append(slot)  # Japan time: its day
    result = {}
    day = first
    while day <= last:
        slots = by_day.get(day, [])
        seats_free = [{"seats": s.seats, "free": s.free} for s in slots]
        result[day] = DaySlots(day, slots, day_status(seats_free, seats, few_share))
        day += timedelta(days=1)
    return result


def month_weeks(month: date) -> list[list[date | None]]:
    """The month as weeks from Sunday (as Japanese calendars are printed)."""
    first, last = month_start(month), month_end(month)
    weeks, week = [], [None] * ((first.weekday() + 1) % 7)
    day = first
    while day <= last:
        week.append(day)
        if len(week) == 7:
            weeks.append(week)
            week = []
        day += timedelta(days=1)
    if week:
        weeks.append(week + [None] * (7 - len(week)))
    return weeks
