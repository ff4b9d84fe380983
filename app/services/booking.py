"""The booking engine (F1.1): seats are never exceeded, at any concurrency.

The deciding step is one conditional UPDATE that SQLite and PostgreSQL both honour:
``UPDATE slot SET taken = taken + n WHERE id = :id AND taken + n <= seats``. ``taken``
counts booked and held seats. A hold lapses by itself: any later attempt on the slot first
releases expired holds, each guarded by its own conditional UPDATE of the hold's state, so
no cron is needed and no seat is returned twice.

Each public operation runs as one unit of work (app/services/unit.py): it commits once or
not at all. The time (``now``) is a parameter; the entry points take it from the caller
(``clock.now()`` at the call site) and fall back to the clock only for older callers.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, inspect as sa_inspect, select, update
from sqlalchemy.exc import IntegrityError

from app import clock
from app.clock import JST
from app.models.card import Card
from app.models.venue import Purpose
from app.models.reservation import (BOOKED, CANCELLED, CHANNEL_WEB, EVENT_CANCELLED,
                                    EVENT_CHANGED, EVENT_MADE, HOLD_BOOKED, HOLD_HELD,
                                    HOLD_RELEASED, HOLDING_SEATS, Hold, Reservation,
                                    ReservationPerson, Slot)
from app.services import audit, booking_history, cards, mail, notice_numbers, throttle, unit
from app.services.calendar import bookable_between, existing_slots
from app.services.errors import (BookingWindowError, CardAlreadyBookedError,  # noqa: F401
                                 ConcurrentChangeError, InvalidTransitionError,
                                 HoldExpiredError, IdentityMismatchError,
                                 InputError, ReservationStateError, SlotFullError)
from app.services.japanese import normalize_code
from app.settings import settings

NUMBER_ALPHABET = "ACDEFGHJKLMNPQRTUVWXY"


# --- seats ------------------------------------------------------------------------------

def release_expired_holds(session, slot_id: int, now: datetime) -> int:
    """Return the seats of lapsed holds on this slot; each hold at most once."""
    released = 0
    expired = session.execute(select(Hold.id, Hold.seats).where(
        Hold.slot_id == slot_id, Hold.state == HOLD_HELD, Hold.expires_at <= now)).all()
    for hold_id, seats in expired:
        result = session.execute(update(Hold).where(Hold.id == hold_id, Hold.state == HOLD_HELD)
                                 .values(state=HOLD_RELEASED))
        if result.rowcount == 1:
            session.execute(update(Slot).where(Slot.id == slot_id)
                            .values(taken=Slot.taken - seats))
            released += seats
    return released


def take_seats(session, slot_id: int, seats: int, now: datetime) -> bool:
    """The one deciding step: True when the seats were taken."""
    release_expired_holds(session, slot_id, now)
    result = session.execute(update(Slot).where(Slot.id == slot_id, Slot.closed.is_(False),
                                                Slot.taken + seats <= Slot.seats)
                             .values(taken=Slot.taken + seats))
    return result.rowcount == 1


def free_seats(session, slot_id: int, seats: int) -> None:
    session.execute(update(Slot).where(Slot.id == slot_id).values(taken=Slot.taken - seats))


def seat_drift(session) -> list[str]:
    """The books of seats: every slot whose ``taken`` differs from the seats of its bookings
    (every state but cancelled) plus its unreleased holds, or lies outside 0..seats. Empty
    when they balance; for tests, the bench and an operator's check."""
    booked = dict(session.execute(select(Reservation.slot_id, func.sum(Reservation.seats))
                                  .where(Reservation.state.in_(HOLDING_SEATS))
                                  .group_by(Reservation.slot_id)).all())
    held = dict(session.execute(select(Hold.slot_id, func.sum(Hold.seats))
                                .where(Hold.state == HOLD_HELD).group_by(Hold.slot_id)).all())
    problems = []
    for slot_id, seats, taken in session.execute(select(Slot.id, Slot.seats, Slot.taken)
                                                 .order_by(Slot.id)):
        expected = (booked.get(slot_id) or 0) + (held.get(slot_id) or 0)
        if taken != expected or not 0 <= taken <= seats:
            problems.append(f"slot {slot_id}: taken {taken}, bookings+holds {expected}, "
                            f"seats {seats}")
    return problems


def lapsed_seats(now: datetime):
    """A column for a statement on ``slot``: the seats of its lapsed holds (held, expired,
    not yet released; None when there are none), summed by the database for each row."""
    return (select(func.sum(Hold.seats))
            .where(Hold.slot_id == Slot.id, Hold.state == HOLD_HELD, Hold.expires_at <= now)
            .correlate(Slot).scalar_subquery())


def free_seat_count(seats: int, taken: int, lapsed: int | None) -> int:
    """Free seats of an open slot: its seats, less those taken, plus lapsed holds' seats
    (they count as free before they are released). The one formula of free seats."""
    return max(seats - taken + (lapsed or 0), 0)


def free_count(session, slot: Slot, now: datetime) -> int:
    """Seats a resident could take now (lapsed holds count as free)."""
    return free_counts(session, [slot], now)[slot.id]


def free_counts(session, slots: list[Slot], now: datetime) -> dict[int, int]:
    """Free seats of many slots in one query; a closed slot has none."""
    ids = [s.id for s in slots]
    lapsed: dict[int, int] = {}
    for start in range(0, len(ids), 500):
        lapsed.update(session.execute(
            select(Hold.slot_id, func.sum(Hold.seats))
            .where(Hold.slot_id.in_(ids[start:start + 500]), Hold.state == HOLD_HELD,
                   Hold.expires_at <= now).group_by(Hold.slot_id)).all())
    return {s.id: 0 if s.closed else free_seat_count(s.seats, s.taken, lapsed.get(s.id))
            for s in slots}


def staff_slots(session, offer, day: date, now: datetime) -> list[dict]:
    """A day's slots for staff: every open slot not yet over, with free seats (staff may
    book inside the residents' cut-off). A read."""
    slots = [s for s in existing_slots(session, offer, day, day) if not s.closed
             and s.ends_at > now]
    free = free_counts(session, slots, now)
    return [{"id": s.id, "start": s.starts_at, "end": s.ends_at, "seats": s.seats,
             "free": free[s.id]} for s in slots]


def _check_window(slot: Slot, now: datetime, staff: bool) -> None:
    if staff:
        if slot.ends_at <= now:
            raise BookingWindowError()
        return
    earliest, latest = bookable_between(slot.offer, now)
    if not (earliest <= slot.starts_at <= latest):
        raise BookingWindowError()


def bookable_purpose(session, code: str) -> Purpose | None:
    """The purpose in use with this code (the residents' links name it), or None."""
    return session.execute(select(Purpose).where(Purpose.code == code,
                                                 Purpose.active.is_(True))).scalar()


# --- holds --------------------------------------------------------------------------------

def hold_seats(session, slot: Slot, seats: int, staff: bool = False,
               now: datetime | None = None) -> Hold:
    """Keep seats for HOLD_MINUTES while the resident fills in the form (one unit)."""
    now = now or clock.now()
    with unit.transaction(session):
        if seats < 1 or seats > slot.offer.max_party:
            raise InputError(_l("A booking is for 1 to %(n)d people.", n=slot.offer.max_party))
        _check_window(slot, now, staff)
        if not take_seats(session, slot.id, seats, now):
            raise SlotFullError()
        hold = Hold(slot_id=slot.id, seats=seats, token=secrets.token_urlsafe(24),
                    expires_at=now + timedelta(minutes=settings().hold_minutes),
                    state=HOLD_HELD)
        session.add(hold)
    return hold


def hold_for_resident(session, slot: Slot, seats: int, ip: str | None, now: datetime,
                      replacing: str | None = None) -> Hold:
    """The residents' entry point for holding seats: behind the per-address guessing limit
    (every attempt counts), the hold the resident had before (``replacing``) given back,
    then :func:`hold_seats`. The count is kept even when the hold is refused."""
    admit_address(session, ip, now)
    throttle.count(session, throttle.ip_key(ip), now)
    if replacing:
        release_hold(session, replacing)
    return hold_seats(session, slot, seats, now=now)


def admit_address(session, ip: str | None, now: datetime) -> None:
    """Refuse (ThrottledError) an address locked by the guessing limit; for the residents'
    steps that check nothing else (申請: name and birth date only)."""
    throttle.check(session, [throttle.ip_key(ip)], now)


def held(session, token: str | None, now: datetime) -> Hold | None:
    """The hold of this token while it still keeps its seats (a read)."""
    if not token:
        return None
    hold = session.execute(select(Hold).where(Hold.token == token)).scalar()
    if hold is None or hold.expires_at <= now:
        return None
    return hold


def release_hold(session, token: str) -> None:
    """Give the hold's seats back at once (one unit; nothing when it is gone already)."""
    with unit.transaction(session):
        hold = session.execute(select(Hold).where(Hold.token == token)).scalar()
        if hold is None:
            return
        result = session.execute(update(Hold).where(Hold.id == hold.id,
                                                    Hold.state == HOLD_HELD)
                                 .values(state=HOLD_RELEASED))
        if result.rowcount == 1:
            free_seats(session, hold.slot_id, hold.seats)


# --- who is booked -------------------------------------------------------------------------

@dataclass
class PersonInput:
    notice_number: str | None
    birth_date: date


def match_cards(session, people: list[PersonInput]) -> list[Card]:
    """The cards of a 交付 party: postcard number and birth date must both match a card
    waiting for collection; an unknown number and a wrong date give the same answer."""
    found = []
    for index, person in enumerate(people):
        try:
            number = notice_numbers.parse(person.notice_number)
        except InputError:
            raise _mismatch(index) from None
        card = session.execute(select(Card).where(Card.notice_number == number)).scalar()
        if card is None or card.birth_date != person.birth_date \
                or card.state not in (cards.NOTICE_SENT, cards.RENOTIFIED, cards.RESERVED):
            raise _mismatch(index)
        if card.id in {c.id for c in found}:
            raise InputError(_l("The same postcard number was entered twice."))
        found.append(card)
    return found


def _mismatch(index: int) -> IdentityMismatchError:
    error = IdentityMismatchError()
    error.index = index  # which person: counted against that number, never shown
    return error


def identify_party(session, people: list[PersonInput], ip: str | None,
                   now: datetime | None = None) -> list[Card]:
    """match_cards behind the guessing limits: per IP address every attempt counts, per
    postcard number every failure; a locked number answers the same whether it exists.
    A read; the counters keep their own commits (app/services/throttle.py)."""
    now = now or clock.now()
    keys = {i: throttle.number_key(normalize_code(p.notice_number))
            for i, p in enumerate(people)}
    throttle.check(session, [throttle.ip_key(ip), *keys.values()], now)
    throttle.count(session, throttle.ip_key(ip), now)
    try:
        found = match_cards(session, people)
    except IdentityMismatchError as error:
        throttle.count(session, keys[error.index], now)
        raise
    for key in keys.values():
        throttle.clear(session, key)
    for card in found:  # told only to whoever knows both the number and the birth date
        if session.execute(select(ReservationPerson.id).where(
                ReservationPerson.card_id == card.id, ReservationPerson.active.is_(True))).first():
            raise CardAlreadyBookedError()
    return found


def lookup_reservation(session, number: str, birth_date: date, ip: str | None,
                       now: datetime | None = None) -> Reservation:
    """find_reservation behind the same guessing limits as the postcard numbers."""
    now = now or clock.now()
    key = throttle.number_key("R" + normalize_code(number))
    throttle.check(session, [throttle.ip_key(ip), key], now)
    throttle.count(session, throttle.ip_key(ip), now)
    try:
        reservation = find_reservation(session, number, birth_date)
    except IdentityMismatchError:
        throttle.count(session, key, now)
        raise
    throttle.clear(session, key)
    return reservation


def _new_number(session) -> str:
    for _ in range(100):
        body = "".join(secrets.choice(NUMBER_ALPHABET + "23456789") for _ in range(7))
        number = body + notice_numbers.check_digit(body, NUMBER_ALPHABET)
        if session.execute(select(Reservation.id).where(Reservation.number == number)).first() \
                is None:
            return number
    raise RuntimeError("could not find a free booking number")


def parse_reservation_number(text: str | None) -> str:
    value = normalize_code(text)
    body, check = value[:-1], value[-1:]
    if len(value) != 8 or any(c not in NUMBER_ALPHABET + "0123456789" for c in value) \
            or notice_numbers.check_digit(body, NUMBER_ALPHABET) != check:
        raise InputError(_l("The booking number is not valid."))
    return value


# --- bookings -----------------------------------------------------------------------------

@dataclass
class Contact:
    phone: str
    email: str | None = None
    name: str | None = None
    name_kana: str | None = None


class _AnsweredByEarlierSubmit(Exception):
    """Inside :func:`book`: the hold was already turned into a booking by a submit of the
    same form that raced this one; the unit is rolled back and the earlier booking is the
    answer (not a DomainError: it never reaches a screen)."""


def book(session, slot: Slot, hold_token: str | None, birth_date: date, contact: Contact,
         cards_to_collect: list[Card] | None = None, seats: int | None = None,
         channel: str = CHANNEL_WEB, idempotency_key: str | None = None,
         staff: bool = False, locale: str = "ja", notify: bool = False,
         now: datetime | None = None, event_channel: str | None = None) -> Reservation:
    """Turn a hold (or, for staff, fresh seats) into a booking, as one unit. Submitting the
    same form twice (same idempotency key) returns the first booking. With ``notify`` the
    confirmation mail is queued in the same unit (app/services/mail.py). Its history
    (booking_event) gets a "made" event in the same unit, with ``event_channel`` when the
    origin is finer than the booking's channel (a walk-in: 窓口, registered and arrived).

    Refused for the people, not the time (the card is booked already, or changed
    meanwhile): the unit is rolled back, then the earlier booking of the same form is the
    answer if there is one (a double submit that lost the race), else the held seats go
    back at once in a unit of their own rather than when the hold lapses."""
    now = now or clock.now()
    done = _by_key(session, idempotency_key)
    if done is not None:
        return done
    party = cards_to_collect or []
    seats = len(party) if party else (seats or 1)
    outermost = not unit.in_transaction(session)
    try:
        with unit.transaction(session):
            if any(_actively_booked(session, card.id) for card in party):
                raise CardAlreadyBookedError()
            return _book(session, slot, hold_token, birth_date, contact, party, seats,
                         channel, idempotency_key, staff, locale, now, notify, event_channel)
    except _AnsweredByEarlierSubmit:  # a second submit raced the first: answer with it
        done = _by_key(session, idempotency_key)
        if done is not None:
            return done
        raise HoldExpiredError() from None
    except (CardAlreadyBookedError, InvalidTransitionError):
        if not outermost:  # part of a larger operation: its unit decides what stays
            raise
        done = _by_key(session, idempotency_key)
        if done is not None:  # the same form, submitted twice at once: the first won
            return done
        if hold_token:
            release_hold(session, hold_token)
        raise


def _actively_booked(session, card_id: int) -> bool:
    return session.execute(select(ReservationPerson.id).where(
        ReservationPerson.card_id == card_id, ReservationPerson.active.is_(True))).first() \
        is not None


def _book(session, slot, hold_token, birth_date, contact, party, seats, channel,
          idempotency_key, staff, locale, now, notify, event_channel=None) -> Reservation:
    """The writes of :func:`book`, inside its unit; a refusal raises and the unit rolls
    back everything written here."""
    if hold_token:
        hold = session.execute(select(Hold).where(Hold.token == hold_token)).scalar()
        if hold is None or hold.slot_id != slot.id or hold.seats != seats:
            raise HoldExpiredError()
        converted = session.execute(update(Hold).where(Hold.id == hold.id,
                                                       Hold.state == HOLD_HELD)
                                    .values(state=HOLD_BOOKED)).rowcount == 1
        if not converted:
            state = session.execute(select(Hold.state).where(Hold.id == hold.id)).scalar()
            if state == HOLD_BOOKED:
                raise _AnsweredByEarlierSubmit()
            # it lapsed and its seats went back: try to take them again
            _check_window(slot, now, staff)
            if not take_seats(session, slot.id, seats, now):
                raise HoldExpiredError()
    else:
        _check_window(slot, now, staff)
        if not take_seats(session, slot.id, seats, now):
            raise SlotFullError()
    reservation = Reservation(
        number=_new_number(session), slot_id=slot.id, offer_id=slot.offer_id,
        starts_at=slot.starts_at, seats=seats, state=BOOKED,
        channel=channel, name=contact.name, name_kana=contact.name_kana,
        birth_date=birth_date, phone=contact.phone, email=contact.email, created_at=now,
        idempotency_key=idempotency_key, locale=locale)
    session.add(reservation)
    for card in party:
        reservation.people.append(ReservationPerson(card_id=card.id, active=True))
        if card.state != cards.RESERVED:
            cards.reserve_card(session, card, reservation_number=reservation.number)
    if not party:
        for _ in range(seats):
            reservation.people.append(ReservationPerson(card_id=None, active=True))
    try:
        session.flush()  # the unique keys answer here, inside the unit; its id for the mail
    except IntegrityError as error:  # the same form submitted twice at once, or the card
        if "idempotency_key" in str(error.orig) or "uq_reservation_person" in str(error.orig) \
                or "UNIQUE" in str(error.orig).upper():
            raise CardAlreadyBookedError() from None
        raise
    booking_history.record(session, reservation, EVENT_MADE, now, by_staff=staff,
                           channel=event_channel)
    if notify:
        mail.enqueue(session, reservation, "booked", now)
    return reservation


def _by_key(session, idempotency_key: str | None) -> Reservation | None:
    if not idempotency_key:
        return None
    return session.execute(select(Reservation).where(
        Reservation.idempotency_key == idempotency_key)).scalar()


def check_changeable(reservation: Reservation, now: datetime, staff: bool = False) -> None:
    """Residents may move a booking until the end of its day (a missed visit can be moved
    on the same day, DOMAIN.md); staff at any time while it is booked."""
    if reservation.state != BOOKED:
        raise ReservationStateError(_l("This booking was cancelled."))
    day_end = datetime.combine(reservation.slot.starts_at.astimezone(JST).date()
                               + timedelta(days=1), time.min, JST)
    if not staff and now >= day_end:
        raise ReservationStateError(_l("The day of this booking has passed. Please make a "
                                       "new booking."))


def check_cancellable(reservation: Reservation, now: datetime, staff: bool = False) -> None:
    """Residents may cancel online until the time of the visit."""
    if reservation.state != BOOKED:
        raise ReservationStateError(_l("This booking was cancelled."))
    if not staff and reservation.slot.starts_at <= now:
        raise ReservationStateError(_l("The time of this booking has passed; it can no longer "
                                       "be cancelled online."))


def change_slot(session, reservation: Reservation, new_slot: Slot,
                staff: bool = False, notify: bool = False,
                now: datetime | None = None) -> Reservation:
    """Move the booking, take the new seats, free the old ones, as one unit (with
    ``notify``, the resident's mail is queued in it too).

    The booking row is claimed first by a compare-and-set on the slot and state this copy
    was loaded with, so a double click, a second tab or a cancel at the same moment moves
    or frees the seats once: the later request finds the row changed and is refused."""
    now = now or clock.now()
    with unit.transaction(session):
        check_changeable(reservation, now, staff)
        _check_window(new_slot, now, staff)
        old_slot_id = reservation.slot_id
        if new_slot.id == old_slot_id:
            return reservation
        claim(session, reservation, {"state": BOOKED, "slot_id": old_slot_id},
              {"slot_id": new_slot.id, "offer_id": new_slot.offer_id,
               "starts_at": new_slot.starts_at})
        if not take_seats(session, new_slot.id, reservation.seats, now):
            raise SlotFullError()
        free_seats(session, old_slot_id, reservation.seats)
        session.refresh(reservation)  # the new time, for the history and the mail
        booking_history.record(session, reservation, EVENT_CHANGED, now, by_staff=staff)
        if notify:
            mail.enqueue(session, reservation, "changed", now)
    session.refresh(reservation)
    return reservation


def cancel(session, reservation: Reservation, reason: str | None = None,
           staff: bool = False, notify: bool = False,
           now: datetime | None = None) -> Reservation:
    """Free the seats at once; cards waiting for collection go back to their state (one
    unit). The seats freed are those of the slot the guarded update found the booking in.
    With ``notify`` the resident's mail is queued in the same unit."""
    now = now or clock.now()
    with unit.transaction(session):
        check_cancellable(reservation, now, staff)
        slot_id, seats = claim(session, reservation, {"state": BOOKED},
                               {"state": CANCELLED, "cancelled_at": now,
                                "cancel_reason": reason})
        free_seats(session, slot_id, seats)
        session.expire(reservation)
        booking_history.record(session, reservation, EVENT_CANCELLED, now, by_staff=staff)
        release_cards(session, reservation)
        if notify:
            mail.enqueue(session, reservation, "cancelled", now)
    session.refresh(reservation)
    return reservation


def claim(session, reservation: Reservation, expected: dict, values: dict,
          extra: dict | None = None) -> tuple[int, int]:
    """Compare-and-set on one booking row, inside the caller's unit: change ``values`` only
    while the row still has the ``expected`` values; exactly one row, or the change is
    refused (ReservationStateError) and the caller's unit rolls back. Returns the slot and
    seats the row had. Core statements are not seen by the audit listener, so the change
    (old and new values, plus ``extra``) is recorded here, in the same transaction."""
    loaded = sa_inspect(reservation).dict
    detail = {name: {"old": expected.get(name, loaded.get(name)), "new": value}
              for name, value in values.items()}
    detail.update(extra or {})
    conditions = [getattr(Reservation, name) == value for name, value in expected.items()]
    row = session.execute(
        update(Reservation).where(Reservation.id == reservation.id, *conditions)
        .values(**values).returning(Reservation.slot_id, Reservation.seats)
        .execution_options(synchronize_session=False)).first()
    if row is None:
        raise ReservationStateError(_l("This booking was changed at the same moment by "
                                       "someone else. Please look at it again."))
    audit.record_in_transaction(session, audit.ACTION_UPDATE, "reservation", reservation.id,
                                detail)
    return row.slot_id, row.seats


def release_cards(session, reservation: Reservation) -> None:
    """The booking no longer collects its cards (cancelled, no-show): they wait again for a
    booking (予約済 back to 交付通知書発送 or 再通知). Inside the caller's unit."""
    for person in reservation.people:
        person.active = False
        if person.card_id:
            card = session.get(Card, person.card_id)
            if card.state == cards.RESERVED or (card.state == cards.ON_HOLD
                                                and card.held_from == cards.RESERVED):
                cards.unreserve_card(session, card, reservation_number=reservation.number)


def find_reservation(session, number: str, birth_date: date) -> Reservation:
    """Look-up by number and birth date; a wrong pair gives the same answer as none."""
    try:
        value = parse_reservation_number(number)
    except InputError:
        raise IdentityMismatchError(_l("The booking number or the birth date does not match."))
    reservation = session.execute(select(Reservation).where(Reservation.number == value)).scalar()
    if reservation is None or reservation.birth_date != birth_date:
        raise IdentityMismatchError(_l("The booking number or the birth date does not match."))
    return reservation
