"""The booking desk (F1.4, F1.6): check-in (消し込み), undo, late and no-show, walk-ins,
bookings taken by phone or at the counter, and the end of a visit after hand-over.

States of a booking::

    予約済 booked ──check in──▶ 来庁済 arrived ──hand-over / done──▶ 完了 completed
       │   ▲                      │
       │   └────── undo (same day)┘
       ├──day closed, not here──▶ 不来庁 no_show
       └──cancel──▶ 取消 cancelled

遅刻 (late) is not a state: a booked visitor not checked in ``LATE_GRACE_MINUTES`` after the
start shows as late. Each operation is one unit of work (app/services/unit.py): a walk-in
books and checks in at once or not at all; two changes that wait for each other end as
ConcurrentChangeError at the unit's boundary. Every change is in the audit trail and in
the booking's history (booking_event, app/services/booking_history.py), in the same unit.

Who acts is passed in (``actor``, a :class:`~app.services.cards.CardActor`; the product
itself when left out) and so is the time (``now``; the app's clock when left out).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update

from app import clock
from app.clock import JST
from app.models.card import Card
from app.models.reservation import (ARRIVED, BOOKED, CANCELLED, CHANNEL_COUNTER,  # noqa: F401
                                    CHANNEL_LABELS, CHANNEL_PHONE, CHANNEL_WALK_IN, COMPLETED,
                                    EVENT_ARRIVED, EVENT_COMPLETED, EVENT_NO_SHOW,
                                    EVENT_UNDONE, NO_SHOW, STATE_LABELS, Reservation,
                                    ReservationPerson, Slot, channel_label, state_label)
from app.models.venue import Purpose, Venue, VenuePurpose
from app.services import (audit, booking, booking_history, cards, japanese, notice_numbers,
                          party_checks, unit)
from app.services.availability import active_offers
from app.services.calendar import existing_slots, make_missing_slots
from app.services.cards import SYSTEM, CardActor
from app.services.errors import DomainError, InputError, ReservationStateError
from app.services.fields import parse_id
from app.settings import settings

def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, JST)
    return start, start + timedelta(days=1)


def grace() -> timedelta:
    return timedelta(minutes=settings().late_grace_minutes)


def is_late(reservation: Reservation, now: datetime) -> bool:
    return reservation.state == BOOKED and reservation.slot.starts_at + grace() < now


def shown_state(reservation: Reservation, now: datetime) -> str:
    """What the desk shows: the state, or 遅刻 for a booked visitor past the grace."""
    return str(_l("Late")) if is_late(reservation, now) else state_label(reservation.state)


# --- the day at a venue ------------------------------------------------------------------

def venues(session) -> list[Venue]:
    """Every venue, those in use first (the desk's venue switcher)."""
    return list(session.execute(select(Venue).order_by(Venue.active.desc(), Venue.name))
                .scalars())


def get_venue(session, venue_id: int | None) -> Venue | None:
    return session.get(Venue, venue_id) if venue_id else None


def get_reservation(session, reservation_id: int | None) -> Reservation | None:
    return session.get(Reservation, reservation_id) if reservation_id else None


def offers_at(session, venue_id: int) -> list[VenuePurpose]:
    """The purposes the venue takes bookings for."""
    return [o for o in active_offers(session) if o.venue_id == venue_id]


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


def waiting_card(reservation: Reservation) -> Card | None:
    """The card a checked-in visitor came to collect (交付), if any: the desk goes straight
    on to the hand-over."""
    return next((p.card for p in reservation.people if p.card_id and p.active), None)


# --- state changes -------------------------------------------------------------------------

@unit.operation
def check_in(session, reservation: Reservation, *, actor: CardActor = SYSTEM,
             now: datetime | None = None) -> Reservation:
    """来庁済, with time and clerk. Only a booking of today that is waiting; two clerks
    checking in the same visitor at once: the second is told it is already done."""
    now = now or clock.now()
    if reservation.state != BOOKED:
        raise ReservationStateError(_l("Not checked in: the booking is %(state)s.",
                                       state=state_label(reservation.state)))
    if reservation.slot.starts_at.astimezone(JST).date() != now.astimezone(JST).date():
        raise ReservationStateError(_l("Not checked in: the booking is for another day."))
    booking.claim(session, reservation, {"state": BOOKED, "slot_id": reservation.slot_id},
                  {"state": ARRIVED, "checked_in_at": now,
                   "checked_in_by": cards.name_of(actor)})
    session.refresh(reservation)
    booking_history.record(session, reservation, EVENT_ARRIVED, now, by_staff=True)
    return reservation


@unit.operation
def undo_check_in(session, reservation: Reservation, *, actor: CardActor = SYSTEM,
                  now: datetime | None = None) -> Reservation:
    now = now or clock.now()
    if reservation.state != ARRIVED:
        raise ReservationStateError(_l("Only a checked-in booking can be undone."))
    if reservation.checked_in_at.astimezone(JST).date() != now.astimezone(JST).date():
        raise ReservationStateError(_l("A check-in can be undone only on its day."))
    booking.claim(session, reservation, {"state": ARRIVED},
                  {"state": BOOKED, "checked_in_at": None, "checked_in_by": None})
    session.refresh(reservation)
    booking_history.record(session, reservation, EVENT_UNDONE, now, by_staff=True)
    return reservation


CHECK_IN, UNDO, COMPLETE = "check_in", "undo", "complete"


def pressed(form) -> str:
    """Which desk button a posted form pressed: undo, complete, or (default) check in."""
    if form.get("undo") == "1":
        return UNDO
    return COMPLETE if form.get("complete") == "1" else CHECK_IN


def act(session, reservation: Reservation, action: str, *, actor: CardActor = SYSTEM,
        now: datetime | None = None) -> str:
    """One desk button: ``check_in``, ``undo`` or ``complete``; returns what to tell."""
    if action == UNDO:
        undo_check_in(session, reservation, actor=actor, now=now)
        return str(_l("Check-in undone."))
    if action == COMPLETE:
        complete(session, reservation, now=now)
        return str(_l("The visit is completed."))
    check_in(session, reservation, actor=actor, now=now)
    return str(_l("Checked in: %(number)s.", number=reservation.number))


@unit.operation
def complete(session, reservation: Reservation, *, now: datetime | None = None) -> Reservation:
    """The visit is done (申請, 電子証明書; 交付 completes by itself at hand-over)."""
    if reservation.state != ARRIVED:
        raise ReservationStateError(_l("Only a checked-in booking can be completed."))
    now = now or clock.now()
    booking.claim(session, reservation, {"state": ARRIVED},
                  {"state": COMPLETED, "completed_at": now})
    session.expire(reservation)
    for person in reservation.people:
        person.active = False
    session.flush()
    session.refresh(reservation)
    booking_history.record(session, reservation, EVENT_COMPLETED, now, by_staff=True)
    return reservation


def card_collected(session, card: Card, *, actor: CardActor = SYSTEM,
                   now: datetime | None = None) -> None:
    """A step of the hand-over (app/services/handover.py), in its unit: when every card of
    the card's booking has been handed over, the booking is 完了 (checked in on the way
    when it was not). The booking is claimed by a compare-and-set; if it was cancelled or
    closed meanwhile, the whole hand-over is refused and rolled back."""
    person = session.execute(select(ReservationPerson).where(
        ReservationPerson.card_id == card.id, ReservationPerson.active.is_(True))).scalar()
    if person is None:
        return
    reservation = person.reservation
    person.active = False
    waiting = [p for p in reservation.people if p.active and p.card_id]
    if waiting or reservation.state not in (BOOKED, ARRIVED):
        return
    now = now or clock.now()
    values = {"state": COMPLETED, "completed_at": now}
    arrives = reservation.state == BOOKED
    if arrives:
        values.update(checked_in_at=now, checked_in_by=cards.name_of(actor))
    session.flush()
    booking.claim(session, reservation, {"state": reservation.state}, values)
    session.expire(reservation)
    if arrives:  # checked in on the way: both happened now
        booking_history.record(session, reservation, EVENT_ARRIVED, now, by_staff=True)
    booking_history.record(session, reservation, EVENT_COMPLETED, now, by_staff=True)


@unit.operation
def close_day(session, venue_id: int, day: date, *,
              now: datetime | None = None) -> list[Reservation]:
    """不来庁 for the day's bookings nobody checked in; their cards wait for a new booking.
    A booking checked in while the day is being closed stays checked in."""
    now = now or clock.now()
    start, end = _day_bounds(day)
    if now < start:
        raise InputError(_l("A day can be closed only once it has begun."))
    missed = []
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
        booking_history.record(session, reservation, EVENT_NO_SHOW, now, by_staff=True)
        booking.release_cards(session, reservation)
        missed.append(reservation)
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
               idempotency_key: str | None = None, notify: bool = False,
               event_channel: str | None = None, now: datetime | None = None) -> Reservation:
    """A booking taken by phone or at the counter: the same engine and checks (postcard
    numbers and birth dates for 交付), marked with its channel; staff may book inside the
    residents' cut-off. With ``notify`` the confirmation mail is queued with it;
    ``event_channel`` is its history's finer origin (a walk-in)."""
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
                        staff=True, notify=notify, now=now, event_channel=event_channel)


def walk_in_slot(session, offer: VenuePurpose, seats: int,
                 now: datetime | None = None) -> Slot | None:
    """The slot a same-day visitor goes into: the one running now or the next, with seats."""
    now = now or clock.now()
    today = now.astimezone(JST).date()
    slots = existing_slots(session, offer, today, today)
    free = booking.free_counts(session, slots, now)
    for slot in slots:
        if slot.ends_at > now and free[slot.id] >= seats:
            return slot
    return None


@unit.operation
def walk_in(session, offer: VenuePurpose, birth_date: date, contact: booking.Contact,
            people: list[booking.PersonInput] | None = None, seats: int = 1, *,
            actor: CardActor = SYSTEM, now: datetime | None = None) -> Reservation:
    """Register a same-day visitor into a free seat and check them in at once: one unit
    (the day's missing slots, the booking and the check-in are kept together or not at
    all). The booking stays 窓口; its history says walk-in (made and arrived)."""
    now = now or clock.now()
    today = now.astimezone(JST).date()
    make_missing_slots(session, offer, today, today)
    slot = walk_in_slot(session, offer, len(people) if people else seats, now)
    if slot is None:
        raise ReservationStateError(_l("No free seat is left today at this venue."))
    reservation = staff_book(session, slot, CHANNEL_COUNTER, birth_date, contact, people,
                             seats, event_channel=CHANNEL_WALK_IN, now=now)
    return check_in(session, reservation, actor=actor, now=now)


# --- the counter's booking form -------------------------------------------------------------

FORM_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")


def form_key(form) -> str | None:
    """The form's one-time key (against double submits), as the desk's form made it;
    anything else (tampered, too long for the column) counts as none."""
    key = form.get("key") or ""
    return key if FORM_KEY.fullmatch(key) else None


@dataclass
class CounterBooking:
    """What became of a booking form posted at the desk: the booking, or the messages per
    field (``errors``) or the refusal of the whole booking (``refusal``), with the rows of
    the party as typed to show again."""

    rows: list[dict]
    reservation: Reservation | None = None
    errors: dict = field(default_factory=dict)
    refusal: str | None = None


def party_form_rows(offer: VenuePurpose, form, posted: bool) -> list[dict]:
    """The party's rows as typed (one empty row on a fresh form)."""
    if not posted:
        return [{"notice_number": "", "birth_date": ""}]
    return party_checks.party_rows(form, offer.max_party)


def book_at_counter(session, offer: VenuePurpose, form, *, same_day: bool = False,
                    actor: CardActor = SYSTEM, now: datetime | None = None) -> CounterBooking:
    """A booking by phone or at the counter (``channel`` phone or counter, the slot chosen
    on the form), or with ``same_day`` a walk-in (today, checked in at once), from the desk's posted form:
    the same checks as the residents' site (app/services/party_checks.py), then one unit of
    work. A refused booking changes nothing and says why in ``refusal``."""
    now = now or clock.now()
    today = now.astimezone(JST).date()
    result = CounterBooking(rows=party_form_rows(offer, form, posted=True))
    contact = party_checks.check_contact(form)
    result.errors.update(contact.errors)
    people, seats, birth, name, kana = None, 1, None, None, None
    if offer.purpose.needs_postcard:
        people, party = party_checks.check_party(result.rows, today)
        result.errors.update(party.errors)
    else:
        applicant = party_checks.check_applicant(form, today, offer.max_party)
        result.errors.update(applicant.errors)
        seats = applicant.clean.get("seats", 1)
        birth = applicant.clean.get("birth_date")
        name, kana = applicant.clean.get("name"), applicant.clean.get("name_kana")
    slot = None
    if not same_day:
        slot = session.get(Slot, parse_id(form.get("slot")) or 0)
        if slot is None or slot.offer_id != offer.id:
            result.errors["slot"] = str(_l("Choose a time."))
    if result.errors:
        return result
    details = booking.Contact(phone=contact.clean["phone"], email=contact.clean.get("email"),
                              name=name, name_kana=kana)
    try:
        if same_day:
            result.reservation = walk_in(session, offer, birth, details, people, seats,
                                         actor=actor, now=now)
        else:
            channel = CHANNEL_PHONE if form.get("channel") == "phone" else CHANNEL_COUNTER
            with unit.transaction(session):
                result.reservation = staff_book(session, slot, channel, birth, details,
                                                people, seats,
                                                idempotency_key=form_key(form), notify=True)
    except DomainError as error:  # the unit rolled back: say why on the form
        result.refusal = str(error.message)
    return result


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
            select(VenuePurpose.venue_id, Slot.seats, Slot.taken, booking.lapsed_seats(now))
            .join(VenuePurpose, Slot.offer_id == VenuePurpose.id)
            .join(Venue, VenuePurpose.venue_id == Venue.id)
            .join(Purpose, VenuePurpose.purpose_id == Purpose.id)
            .where(VenuePurpose.active.is_(True), Venue.active.is_(True),
                   Purpose.active.is_(True), Slot.starts_at >= start, Slot.starts_at < end,
                   Slot.ends_at > now, Slot.closed.is_(False))):
        free[venue_id] += booking.free_seat_count(seats, taken, lapsed)
    waiting_cards = session.execute(select(func.count(Card.id)).where(Card.state.in_(
        (cards.NOTICE_SENT, cards.RENOTIFIED, cards.RESERVED)))).scalar_one()
    return [VenueToday(venue_id, name, figures[venue_id], free[venue_id])
            for venue_id, name in venues], waiting_cards
