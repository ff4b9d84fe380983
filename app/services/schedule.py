"""The staff's month calendar of a venue (F1.5): per slot the seats, the booked and the held
seats; closing and reopening slots and whole days. Closing never cancels a booking: the
bookings it touches are returned, so staff can contact those residents (and they are mailed
when mail is set up) to move them."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from app import clock
from app.clock import JST
from app.models.reservation import BOOKED, HOLD_HELD, HOLDING_SEATS, Hold, Reservation, Slot
from app.models.venue import DateException, Purpose, Venue, VenuePurpose
from app.services import mail, unit
from app.services.calendar import existing_slots, make_missing_slots
from app.services.errors import InputError


@dataclass
class SlotLoad:
    slot: Slot
    booked: int = 0
    held: int = 0
    reservations: list[Reservation] = field(default_factory=list)

    @property
    def free(self) -> int:
        return 0 if self.slot.closed else max(self.slot.seats - self.booked - self.held, 0)


@dataclass
class Closed:
    """What closing did: the bookings still to come in the closed times (to contact them)
    and the ids of the bookings whose residents were mailed."""
    affected: list[Reservation]
    mailed: set[int]


def offers(session) -> list[VenuePurpose]:
    """Every venue and purpose, those in use first, for the calendar's chooser."""
    return list(session.execute(
        select(VenuePurpose).join(Venue).join(Purpose)
        .order_by(Venue.active.desc(), Venue.name, Purpose.id)).scalars())


def _day_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    return (datetime.combine(first, time.min, JST),
            datetime.combine(last + timedelta(days=1), time.min, JST))


def load(session, offer: VenuePurpose, first: date, last: date,
         with_bookings: bool = False, now: datetime | None = None) -> dict[date, list[SlotLoad]]:
    """Every slot of [first, last] with its load (a pure read: slots are made ahead)."""
    slots = existing_slots(session, offer, first, last)
    start, end = _day_bounds(first, last)
    now = now or clock.now()
    booked = dict(session.execute(
        select(Reservation.slot_id, func.sum(Reservation.seats))
        .join(Slot, Reservation.slot_id == Slot.id)
        .where(Slot.offer_id == offer.id, Slot.starts_at >= start, Slot.starts_at < end,
               Reservation.state.in_(HOLDING_SEATS)).group_by(Reservation.slot_id)).all())
    held = dict(session.execute(
        select(Hold.slot_id, func.sum(Hold.seats)).join(Slot, Hold.slot_id == Slot.id)
        .where(Slot.offer_id == offer.id, Slot.starts_at >= start, Slot.starts_at < end,
               Hold.state == HOLD_HELD, Hold.expires_at > now).group_by(Hold.slot_id)).all())
    by_slot = {}
    result: dict[date, list[SlotLoad]] = {}
    day = first
    while day <= last:
        result[day] = []
        day += timedelta(days=1)
    for slot in slots:
        entry = SlotLoad(slot, booked.get(slot.id) or 0, held.get(slot.id) or 0)
        by_slot[slot.id] = entry
        result.setdefault(slot.starts_at.astimezone(JST).date(), []).append(entry)
    if with_bookings and by_slot:
        for reservation in bookings_of(session, list(by_slot), HOLDING_SEATS):
            by_slot[reservation.slot_id].reservations.append(reservation)
    return result


def bookings_of(session, slot_ids: list[int], states=(BOOKED,)) -> list[Reservation]:
    """The bookings in these slots; by default those still to come (to contact them)."""
    return list(session.execute(
        select(Reservation).join(Slot, Reservation.slot_id == Slot.id)
        .where(Reservation.slot_id.in_(slot_ids), Reservation.state.in_(states))
        .order_by(Slot.starts_at, Reservation.id)).scalars())


def _slots(session, offer: VenuePurpose, slot_ids: list[int]) -> list[Slot]:
    if not slot_ids:
        raise InputError(_l("Choose at least one time slot."))
    slots = list(session.execute(select(Slot).where(Slot.id.in_(slot_ids),
                                                    Slot.offer_id == offer.id)).scalars())
    if len(slots) != len(set(slot_ids)):
        raise InputError(_l("Some time slots are not of this venue."))
    return slots


def close_slots(session, offer: VenuePurpose, slot_ids: list[int]) -> list[Reservation]:
    """No new bookings in these slots (holds already made may still turn into bookings
    within their minutes). Returns the bookings in them. One unit."""
    with unit.transaction(session):
        slots = _slots(session, offer, slot_ids)
        for slot in slots:
            slot.closed = True
    return bookings_of(session, [s.id for s in slots])


def reopen_slots(session, offer: VenuePurpose, slot_ids: list[int]) -> int:
    """Take bookings in these slots again (one unit); not inside a day closed as a whole."""
    with unit.transaction(session):
        slots = _slots(session, offer, slot_ids)
        days = {s.starts_at.astimezone(JST).date() for s in slots}
        closed_days = [e for e in offer.exceptions if e.day in days and e.closed]
        if closed_days:
            raise InputError(_l("The whole day is closed. Reopen the day first."))
        for slot in slots:
            slot.closed = False
    return len(slots)


def close_day(session, offer: VenuePurpose, day: date, note: str | None) -> list[Reservation]:
    """Close the day by a date exception (so no slot is made for it any more) and close the
    slots that exist already. Returns the bookings of that day. One unit."""
    with unit.transaction(session):
        exception = next((e for e in offer.exceptions if e.day == day), None)
        if exception is None:
            exception = DateException(offer=offer, day=day)
            session.add(exception)
        exception.closed = True
        exception.note = (note or "").strip()[:200] or exception.note
        start, end = _day_bounds(day, day)
        slots = list(session.execute(select(Slot).where(
            Slot.offer_id == offer.id, Slot.starts_at >= start,
            Slot.starts_at < end)).scalars())
        for slot in slots:
            slot.closed = True
    return bookings_of(session, [s.id for s in slots]) if slots else []


def reopen_day(session, offer: VenuePurpose, day: date) -> None:
    """Undo close_day: the exception goes (or stops closing), the day's slots reopen. One
    unit."""
    with unit.transaction(session):
        exception = next((e for e in offer.exceptions if e.day == day), None)
        if exception is not None and exception.closed:
            if exception.starts or exception.seats is not None:
                exception.closed = False
            else:
                offer.exceptions.remove(exception)
                session.delete(exception)
        start, end = _day_bounds(day, day)
        for slot in session.execute(select(Slot).where(
                Slot.offer_id == offer.id, Slot.starts_at >= start,
                Slot.starts_at < end)).scalars():
            slot.closed = False
        session.flush()
        make_missing_slots(session, offer, day, day)  # a day closed ahead had no slots made


def close(session, offer: VenuePurpose, day: date, slot_ids: list[int] | None,
          note: str | None = None, mail_to: list[Reservation] = (),
          now: datetime | None = None) -> Closed:
    """The staff's close button, as one unit: the whole day (``slot_ids`` None) or the
    chosen slots are closed and the residents of ``mail_to`` (the bookings the screen
    listed) get their mail queued in the same unit, so a refused close mails nobody."""
    with unit.transaction(session):
        mailed = {r.id for r in mail_to if mail.enqueue(session, r, "slot_closed", now)}
        if slot_ids is None:
            affected = close_day(session, offer, day, note)
        else:
            affected = close_slots(session, offer, slot_ids)
    return Closed(affected, mailed)
