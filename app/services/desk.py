"""The booking desk (F1.4, F1.6): check-in (消し込み), undo, late and no-show, walk-ins,
bookings taken by phone or at the counter, and the end of a visit after hand-over.

States of a booking::

    予約済 booked ──check in──▶ 来庁済 arrived ──hand-over / done──▶ 完了 completed
       │   ▲                      │
       │   └────── undo (same day)┘
       ├──day closed, not here──▶ 不来庁 no_show
       └──cancel──▶ 取消 cancelled

遅刻 (late) is not a state: a booked visitor not checked in ``LATE_GRACE_MINUTES`` after the
start shows as late. Each function commits once; every change is in the audit trail.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select, update

from app import clock
from app.clock import JST
from app.models.card import Card
from app.models.reservation import (ARRIVED, BOOKED, CANCELLED, CHANNEL_COUNTER, COMPLETED,
                                    NO_SHOW, Reservation, ReservationPerson, Slot)
from app.models.venue import VenuePurpose
from app.services import audit, booking, cards, japanese, notice_numbers
from app.services.errors import InputError, ReservationStateError

STATE_LABELS = {BOOKED: _l("Booked"), ARRIVED: _l("Arrived"), COMPLETED: _l("Completed"),
                NO_SHOW: _l("No-show"), CANCELLED: _l("Cancelled")}
CHANNEL_LABELS = {"web": _l("Web"), "phone": _l("Phone"), "counter": _l("Counter")}


def state_label(state: str) -> str:
    return str(STATE_LABELS.get(state, state))


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, JST)
    return start, start + timedelta(days=1)


def grace() -> timedelta:
    return timedelta(minutes=current_app.config.get("LATE_GRACE_MINUTES", 5))


def is_late(reservation: Reservation, now: datetime) -> bool:
    return reservation.state == BOOKED and reservation.slot.starts_at + grace() < now


def shown_state(reservation: Reservation, now: datetime) -> str:
    """What the desk shows: the state, or 遅刻 for a booked visitor past the grace."""
    return str(_l("Late")) if is_late(reservation, now) else state_label(reservation.state)


# --- the day at a venue ------------------------------------------------------------------

def day_bookings(session, venue_id: int, day: date) -> list[Reservation]:
    """Every booking of the venue on that day (all purposes), in time order."""
    start, end = _day_bounds(day)
    return list(session.execute(
        select(Reservation).join(Slot, Reservation.slot_id == Slot.id)
        .join(VenuePurpose, Slot.offer_id == VenuePurpose.id)
        .where(VenuePurpose.venue_id == venue_id, Slot.starts_at >= start,
               Slot.starts_at < end, Reservation.state != CANCELLED)
        .order_by(Slot.starts_at, Reservation.id)).scalars())


@dataclass
class DayCounts:
    booked: int = 0  # bookings of the day (not cancelled), in people
    arrived: int = 0  # checked in or done
    waiting: int = 0  # not here yet
    late: int = 0  # of the waiting: past the grace
    no_show: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def counts(bookings: list[Reservation], now: datetime) -> DayCounts:
    result = DayCounts()
    for r in bookings:
        result.booked += r.seats
        if r.state in (ARRIVED, COMPLETED):
            result.arrived += r.seats
        elif r.state == NO_SHOW:
            result.no_show += r.seats
        elif r.state == BOOKED:
            result.waiting += r.seats
            if is_late(r, now):
                result.late += r.seats
    return result


def find(session, bookings: list[Reservation], query: str) -> list[Reservation]:
    """The day's bookings matching what was typed or scanned: a booking number (or the QR
    of the done page, which holds it), a postcard number, or a name or its kana."""
    text = (query or "").strip()
    if not text:
        return bookings
    code = japanese.normalize_code(text)
    try:
        number = booking.parse_reservation_number(code[-8:]) if len(code) >= 8 else None
    except InputError:
        number = None
    if number:
        hits = [r for r in bookings if r.number == number]
        if hits:
            return hits
    try:
        postcard = notice_numbers.parse(text)
    except InputError:
        postcard = None
    if postcard:
        card_ids = set(session.execute(select(Card.id).where(
            Card.notice_number == postcard)).scalars())
        return [r for r in bookings if any(p.card_id in card_ids for p in r.people)]
    words = "".join(japanese.normalize_name(text).split()) if text else ""
    kana = "".join(japanese.to_katakana(text).split())
    return [r for r in bookings
            if words and words in "".join((r.name or "").split())
            or kana and kana in "".join((r.name_kana or "").split())]


# --- state changes -------------------------------------------------------------------------

def check_in(session, reservation: Reservation) -> Reservation:
    """来庁済, with time and clerk. Only a booking of today that is waiting; two clerks
    checking in the same visitor at once: the second is told it is already done."""
    now = clock.now()
    if reservation.state != BOOKED:
        raise ReservationStateError(_l("Not checked in: the booking is %(state)s.",
                                       state=state_label(reservation.state)))
    if reservation.slot.starts_at.astimezone(JST).date() != now.astimezone(JST).date():
        raise ReservationStateError(_l("Not checked in: the booking is for another day."))
    clerk = audit.current_actor().username
    with booking.refuse_when_overtaken(session):
        booking.claim(session, reservation, {"state": BOOKED, "slot_id": reservation.slot_id},
                      {"state": ARRIVED, "checked_in_at": now, "checked_in_by": clerk})
        session.commit()
    session.refresh(reservation)
    return reservation


def undo_check_in(session, reservation: Reservation) -> Reservation:
    now = clock.now()
    if reservation.state != ARRIVED:
        raise ReservationStateError(_l("Only a checked-in booking can be undone."))
    if reservation.checked_in_at.astimezone(JST).date() != now.astimezone(JST).date():
        raise ReservationStateError(_l("A check-in can be undone only on its day."))
    with booking.refuse_when_overtaken(session):
        booking.claim(session, reservation, {"state": ARRIVED},
                      {"state": BOOKED, "checked_in_at": None, "checked_in_by": None})
        session.commit()
    session.refresh(reservation)
    return reservation


def act(session, reservation: Reservation, action: str) -> str:
    """One desk button: ``check_in``, ``undo`` or ``complete``; returns what to tell."""
    if action == "undo":
        undo_check_in(session, reservation)
        return str(_l("Check-in undone."))
    if action == "complete":
        complete(session, reservation)
        return str(_l("The visit is completed."))
    check_in(session, reservation)
    return str(_l("Checked in: %(number)s.", number=reservation.number))


def complete(session, reservation: Reservation) -> Reservation:
    """The visit is done (申請, 電子証明書; 交付 completes by itself at hand-over)."""
    if reservation.state != ARRIVED:
        raise ReservationStateError(_l("Only a checked-in booking can be completed."))
    now = clock.now()
    with booking.refuse_when_overtaken(session):
        booking.claim(session, reservation, {"state": ARRIVED},
                      {"state": COMPLETED, "completed_at": now})
        session.expire(reservation)
        for person in reservation.people:
            person.active = False
        session.commit()
    session.refresh(reservation)
    return reservation


def after_hand_over(session, card: Card) -> None:
    """Called in the hand-over's transaction: when every card of the card's booking has
    been handed over, the booking is 完了 (checked in on the way when it was not). The
    booking is claimed by a compare-and-set; if it was cancelled or closed meanwhile, the
    whole hand-over is refused and rolled back."""
    person = session.execute(select(ReservationPerson).where(
        ReservationPerson.card_id == card.id, ReservationPerson.active.is_(True))).scalar()
    if person is None:
        return
    reservation = person.reservation
    person.active = False
    waiting = [p for p in reservation.people if p.active and p.card_id]
    if waiting or reservation.state not in (BOOKED, ARRIVED):
        return
    now = clock.now()
    values = {"state": COMPLETED, "completed_at": now}
    if reservation.state == BOOKED:
        values.update(checked_in_at=now, checked_in_by=audit.current_actor().username)
    session.flush()
    booking.claim(session, reservation, {"state": reservation.state}, values)
    session.expire(reservation)


def close_day(session, venue_id: int, day: date) -> list[Reservation]:
    """不来庁 for the day's bookings nobody checked in; their cards wait for a new booking.
    A booking checked in while the day is being closed stays checked in."""
    now = clock.now()
    start, end = _day_bounds(day)
    if now < start:
        raise InputError(_l("A day can be closed only once it has begun."))
    missed = []
    with booking.refuse_when_overtaken(session):
        for reservation in day_bookings(session, venue_id, day):
            if reservation.state != BOOKED:
                continue
            row = session.execute(
                update(Reservation).where(Reservation.id == reservation.id,
                                          Reservation.state == BOOKED)
                .values(state=NO_SHOW).returning(Reservation.id)
                .execution_options(synchronize_session=False)).first()
            if row is None:  # checked in or cancelled a moment ago
                continue
            audit.record_in_transaction(session, audit.ACTION_UPDATE, "reservation",
                                        reservation.id,
                                        {"state": {"old": BOOKED, "new": NO_SHOW}})
            session.expire(reservation)
            booking.release_cards(session, reservation)
            missed.append(reservation)
        session.commit()
    return missed


def last_slot_end(session, venue_id: int, day: date) -> datetime | None:
    start, end = _day_bounds(day)
    return session.execute(
        select(Slot.ends_at).join(VenuePurpose, Slot.offer_id == VenuePurpose.id)
        .where(VenuePurpose.venue_id == venue_id, Slot.starts_at >= start,
               Slot.starts_at < end).order_by(Slot.ends_at.desc())).scalars().first()


# --- bookings made by staff ----------------------------------------------------------------

def staff_book(session, slot: Slot, channel: str, birth_date: date, contact: booking.Contact,
               people: list[booking.PersonInput] | None = None, seats: int = 1,
               idempotency_key: str | None = None, notify: bool = False) -> Reservation:
    """A booking taken by phone or at the counter: the same engine and checks (postcard
    numbers and birth dates for 交付), marked with its channel; staff may book inside the
    residents' cut-off. With ``notify`` the confirmation mail is queued with it."""
    found = None
    if slot.offer.purpose.needs_postcard:
        if not people:
            raise InputError(_l("Enter the postcard number and birth date of each person."))
        found = booking.match_cards(session, people)
        birth_date = people[0].birth_date
        contact.name = contact.name or found[0].name
        contact.name_kana = contact.name_kana or found[0].name_kana
    return booking.book(session, slot, None, birth_date, contact, cards_to_collect=found,
                        seats=seats, channel=channel, idempotency_key=idempotency_key,
                        staff=True, notify=notify)


def walk_in_slot(session, offer: VenuePurpose, seats: int) -> Slot | None:
    """The slot a same-day visitor goes into: the one running now or the next, with seats."""
    from app.services.calendar import existing_slots

    now = clock.now()
    today = now.astimezone(JST).date()
    slots = existing_slots(session, offer, today, today)
    free = booking.free_counts(session, slots, now)
    for slot in slots:
        if slot.ends_at > now and free[slot.id] >= seats:
            return slot
    return None


def walk_in(session, offer: VenuePurpose, birth_date: date, contact: booking.Contact,
            people: list[booking.PersonInput] | None = None, seats: int = 1) -> Reservation:
    """Register a same-day visitor into a free seat and check them in at once."""
    from app.services.calendar import make_missing_slots

    today = clock.now().astimezone(JST).date()
    make_missing_slots(session, offer, today, today)  # in this POST's transaction
    slot = walk_in_slot(session, offer, len(people) if people else seats)
    if slot is None:
        raise ReservationStateError(_l("No free seat is left today at this venue."))
    reservation = staff_book(session, slot, CHANNEL_COUNTER, birth_date, contact, people,
                             seats)
    return check_in(session, reservation)


def search_bookings(session, text: str) -> list[Reservation]:
    """Any day: by booking number, name, kana or phone (the staff list's quick search)."""
    value = (text or "").strip()
    digits = japanese.digits_only(value)
    return list(session.execute(select(Reservation).where(or_(
        Reservation.number == japanese.normalize_code(value),
        Reservation.name.contains(value), Reservation.name_kana.contains(
            japanese.to_katakana(value)),
        Reservation.phone == digits)).order_by(Reservation.starts_at.desc()).limit(50)).scalars())


@dataclass
class VenueToday:
    venue_id: int
    name: str
    counts: DayCounts
    free_seats: int  # seats still free in today's slots that have not ended


def today_figures(session, now: datetime | None = None) -> tuple[list[VenueToday], int]:
    """The staff home: per active venue today's bookings, arrivals, no-shows and free
    seats; and how many cards wait for hand-over. A fixed number of queries whatever the
    venues and bookings (counted by the database, no booking loaded): the same figures as
    ``counts(day_bookings(...))`` and ``booking.free_counts`` of today's open slots."""
    # No cycle keeps these here: they join the module's imports when its import block is
    # next edited.
    from sqlalchemy import func

    from app.models.venue import Purpose, Venue
    from app.services.availability import free_seats, lapsed_seats

    now = now or clock.now()
    start, end = _day_bounds(now.astimezone(JST).date())
    venues = session.execute(select(Venue.id, Venue.name).where(Venue.active.is_(True))
                             .order_by(Venue.name)).all()
    figures = {venue_id: DayCounts() for venue_id, _ in venues}
    late_from = grace()
    # seats per venue, state and start time (as counts() adds them up booking by booking)
    for venue_id, state, starts_at, seats in session.execute(
            select(VenuePurpose.venue_id, Reservation.state, Slot.starts_at,
                   func.sum(Reservation.seats))
            .join(Slot, Reservation.slot_id == Slot.id)
            .join(VenuePurpose, Slot.offer_id == VenuePurpose.id)
            .join(Venue, VenuePurpose.venue_id == Venue.id)
            .where(Venue.active.is_(True), Slot.starts_at >= start, Slot.starts_at < end,
                   Reservation.state != CANCELLED)
            .group_by(VenuePurpose.venue_id, Reservation.state, Slot.starts_at)):
        result = figures[venue_id]
        result.booked += seats
        if state in (ARRIVED, COMPLETED):
            result.arrived += seats
        elif state == NO_SHOW:
            result.no_show += seats
        elif state == BOOKED:
            result.waiting += seats
            if starts_at + late_from < now:  # is_late()
                result.late += seats
    # free seats of today's slots of the active offers that have not ended
    free = dict.fromkeys(figures, 0)
    for venue_id, seats, taken, lapsed in session.execute(
            select(VenuePurpose.venue_id, Slot.seats, Slot.taken, lapsed_seats(now))
            .join(VenuePurpose, Slot.offer_id == VenuePurpose.id)
            .join(Venue, VenuePurpose.venue_id == Venue.id)
            .join(Purpose, VenuePurpose.purpose_id == Purpose.id)
            .where(VenuePurpose.active.is_(True), Venue.active.is_(True),
                   Purpose.active.is_(True), Slot.starts_at >= start, Slot.starts_at < end,
                   Slot.ends_at > now, Slot.closed.is_(False))):
        free[venue_id] += free_seats(seats, taken, lapsed)
    waiting_cards = session.execute(select(func.count(Card.id)).where(Card.state.in_(
        (cards.NOTICE_SENT, cards.RENOTIFIED, cards.RESERVED)))).scalar_one()
    return [VenueToday(venue_id, name, figures[venue_id], free[venue_id])
            for venue_id, name in venues], waiting_cards
