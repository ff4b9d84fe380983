"""Opening rules of a venue for a purpose (F1.5): weekly pattern, date exceptions,
national holidays and the year end closed by default, booking window and cut-off.
Slots are materialised from the rules on demand, idempotently."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import jpholiday
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app import clock
from app.clock import JST
from app.models.reservation import Slot
from app.models.venue import VenuePurpose

YEAR_END = ((12, 29), (12, 30), (12, 31), (1, 1), (1, 2), (1, 3))


@dataclass(frozen=True)
class PlannedSlot:
    starts_at: datetime
    ends_at: datetime
    seats: int


def closed_by_default(day: date) -> str | None:
    """National and substitute holidays, and 12/29-1/3; None when it is a working day."""
    if (day.month, day.day) in YEAR_END:
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


MAKE_AHEAD_MIN_DAYS = 400  # staff plan and close days up to about a year ahead


def ensure_slots(session, offer: VenuePurpose, first: date, last: date) -> list[Slot]:
    """Create the missing slots of [first, last] from the rules; return all of them.
    A slot that exists keeps its seats and bookings (changing rules does not move them)."""
    make_missing_slots(session, offer, first, last)
    return list(session.execute(
        select(Slot).where(Slot.offer_id == offer.id, *_between(first, last))
        .order_by(Slot.starts_at)).scalars())


def make_missing_slots(session, offer: VenuePurpose, first: date, last: date) -> int:
    """Create the slots the rules give for [first, last] that do not exist yet (reading
    only their start times); returns how many were made. Only from today up to a horizon
    (the offer's window, at least MAKE_AHEAD_MIN_DAYS): a look at a past month or at a
    far-off date makes nothing."""
    today = clock.now().astimezone(JST).date()
    first = max(first, today)
    last = min(last, today + timedelta(days=max(offer.opens_days_ahead or 0,
                                                 MAKE_AHEAD_MIN_DAYS)))
    if first > last:
        return 0
    existing = set(session.execute(select(Slot.starts_at).where(
        Slot.offer_id == offer.id, *_between(first, last))).scalars())
    made = 0
    day = first
    while day <= last:
        for planned in planned_slots(offer, day):
            if planned.starts_at not in existing:
                _create_slot(session, offer, planned)
                existing.add(planned.starts_at)
                made += 1
        day += timedelta(days=1)
    return made


def _between(first: date, last: date):
    return (Slot.starts_at >= datetime.combine(first, time.min, JST),
            Slot.starts_at <= datetime.combine(last, time.max, JST))


def _create_slot(session, offer: VenuePurpose, planned: PlannedSlot) -> Slot:
    """Insert in a savepoint: when another request created it first, take theirs."""
    try:
        with session.begin_nested():
            slot = Slot(offer_id=offer.id, starts_at=planned.starts_at,
                        ends_at=planned.ends_at, seats=planned.seats, taken=0)
            session.add(slot)
        return slot
    except IntegrityError:
        return session.execute(select(Slot).where(Slot.offer_id == offer.id,
                                                  Slot.starts_at == planned.starts_at)
                               ).scalar_one()
