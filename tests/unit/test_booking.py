"""The booking engine: holds, parties, change and cancel, and never more bookings than
seats, whatever the concurrency."""
import threading
from datetime import date

import pytest
from sqlalchemy import select

from app.models.reservation import Reservation, Slot
from app.services import booking, cards as card_svc
from app.services.calendar import ensure_slots
from tests.factories import make_card, make_offer

DAY = date(2026, 12, 8)  # a Tuesday, a week after the test clock's "now"


@pytest.fixture
def slot(app, db):
    offer = make_offer(db, seats=2)
    slots = ensure_slots(db, offer, DAY, DAY)
    db.commit()
    return slots[0]


def _waiting_card(db, **overrides):
    card = make_card(db, state=card_svc.SETUP, **overrides)
    card_svc.transition_card(db, card, card_svc.NOTICE_SENT, actor=card_svc.SYSTEM)
    return card


def _taken(db, slot_id):
    db.expire_all()
    return db.get(Slot, slot_id).taken


def test_hold_counts_against_seats_and_lapses_by_itself(app, db, slot, clock):
    booking.hold_seats(db, slot, 2)
    with pytest.raises(booking.SlotFullError):
        booking.hold_seats(db, slot, 1)
    clock.advance(minutes=10)  # nobody runs a cron
    second = booking.hold_seats(db, slot, 2)
    assert _taken(db, slot.id) == 2 and second.token


def test_booking_from_a_hold_and_a_double_submit(app, db, slot):
    card = _waiting_card(db)
    hold = booking.hold_seats(db, slot, 1)
    people = booking.match_cards(db, [booking.PersonInput(card.notice_number, card.birth_date)])
    contact = booking.Contact(phone="090-1234-5678")
    first = booking.book(db, slot, hold.token, card.birth_date, contact, people,
                         idempotency_key="form-1")
    again = booking.book(db, slot, hold.token, card.birth_date, contact, people,
                         idempotency_key="form-1")
    assert first.id == again.id and _taken(db, slot.id) == 1
    db.refresh(card)
    assert card.state == card_svc.RESERVED
    assert booking.parse_reservation_number(first.number.lower()) == first.number


def test_an_expired_hold_is_taken_again_when_seats_remain(app, db, slot, clock):
    hold = booking.hold_seats(db, slot, 1)
    clock.advance(minutes=11)
    done = booking.book(db, slot, hold.token, date(1980, 3, 1), booking.Contact("0312345678"),
                        seats=1)
    assert done.state == "booked" and _taken(db, slot.id) == 1


def test_an_expired_hold_whose_seats_went_to_others_is_refused(app, db, slot, clock):
    hold = booking.hold_seats(db, slot, 2)
    clock.advance(minutes=11)
    booking.hold_seats(db, slot, 2)  # someone else takes the released seats
    with pytest.raises(booking.HoldExpiredError):
        booking.book(db, slot, hold.token, date(1980, 3, 1), booking.Contact("0312345678"),
                     seats=2)
    assert _taken(db, slot.id) == 2


def test_unknown_number_and_wrong_birth_date_get_the_same_answer(app, db, slot):
    card = _waiting_card(db)
    with pytest.raises(booking.IdentityMismatchError) as wrong_date:
        booking.match_cards(db, [booking.PersonInput(card.notice_number, date(1999, 1, 1))])
    with pytest.raises(booking.IdentityMismatchError) as unknown:
        booking.match_cards(db, [booking.PersonInput("ACD-000000", card.birth_date)])
    assert str(wrong_date.value.message) == str(unknown.value.message)


def test_a_party_takes_one_seat_each_and_a_card_is_booked_once(app, db, slot):
    mother = _waiting_card(db)
    child = _waiting_card(db, birth_date=date(2015, 6, 1))
    people = booking.match_cards(db, [booking.PersonInput(mother.notice_number, mother.birth_date),
                                      booking.PersonInput(child.notice_number, child.birth_date)])
    party = booking.book(db, slot, None, mother.birth_date, booking.Contact("0312345678"),
                         people, staff=True)
    assert party.seats == 2 and _taken(db, slot.id) == 2
    other = ensure_slots(db, slot.offer, DAY, DAY)[1]
    with pytest.raises(booking.CardAlreadyBookedError):
        booking.book(db, other, None, mother.birth_date, booking.Contact("0312345678"),
                     [db.get(type(mother), mother.id)], staff=True)


def test_change_takes_new_seats_first_and_frees_the_old(app, db, slot):
    slots = ensure_slots(db, slot.offer, DAY, DAY)
    full = slots[1]
    booking.book(db, full, None, date(1980, 1, 1), booking.Contact("1"), seats=2, staff=True)
    mine = booking.book(db, slot, None, date(1980, 3, 1), booking.Contact("2"), seats=1,
                        staff=True)
    with pytest.raises(booking.SlotFullError):
        booking.change_slot(db, mine, full)
    db.refresh(mine)
    assert mine.slot_id == slot.id and _taken(db, slot.id) == 1
    booking.change_slot(db, mine, slots[2])
    assert _taken(db, slot.id) == 0 and _taken(db, slots[2].id) == 1


def test_cancel_frees_seats_at_once_and_the_card_waits_again(app, db, slot):
    card = _waiting_card(db)
    people = booking.match_cards(db, [booking.PersonInput(card.notice_number, card.birth_date)])
    done = booking.book(db, slot, None, card.birth_date, booking.Contact("1"), people,
                        staff=True)
    booking.cancel(db, done, "都合が悪くなった")
    assert _taken(db, slot.id) == 0
    from app.models.audit import AuditLog

    row = db.execute(select(AuditLog).where(AuditLog.target_table == "reservation",
                                            AuditLog.action == "update")).scalars().all()[-1]
    assert '"new": "cancelled"' in row.changes and "都合が悪くなった" in row.changes
    db.refresh(card)
    assert card.state == card_svc.NOTICE_SENT
    with pytest.raises(booking.ReservationStateError):
        booking.cancel(db, done)
    again = booking.book(db, slot, None, card.birth_date, booking.Contact("1"),
                         [db.get(type(card), card.id)], staff=True)
    assert again.state == "booked"


def test_outside_the_window_is_refused(app, db, slot, clock):
    clock.advance(days=6)  # the slot is now 2 days away; booking closes 3 days before
    with pytest.raises(booking.BookingWindowError):
        booking.hold_seats(db, slot, 1)


def test_threads_never_exceed_the_seats(app, db, slot):
    """Twenty residents race for the two seats of one slot."""
    outcomes = []
    start = threading.Event()
    slot_id = slot.id  # the fixture's object belongs to this thread's session

    def attempt(n):
        start.wait(timeout=30)  # all threads start together
        with app.app_context():
            session = app.appbuilder.session
            target = session.get(Slot, slot_id)
            try:
                booking.book(session, target, None, date(1980, 1, 1),
                             booking.Contact(f"0{n}"), seats=1, staff=True)
                outcomes.append("booked")
            except booking.SlotFullError:
                outcomes.append("full")
            finally:
                session.remove()

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    start.set()
    for thread in threads:
        thread.join()
    booked = db.execute(select(Reservation).where(Reservation.slot_id == slot_id)).scalars().all()
    assert outcomes.count("booked") == 2 == len(booked)
    assert outcomes.count("full") == 18
    assert _taken(db, slot_id) == 2


def _process_attempts(database_url, instance_dir, slot_id, worker, attempts):
    """Runs in a separate process: its own app, engine and connections."""
    from app import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "INSTANCE_DIR": instance_dir,
                      "TESTING": True})
    results = []
    with app.app_context():
        session = app.appbuilder.session
        for n in range(attempts):
            target = session.get(Slot, slot_id)
            try:
                booking.book(session, target, None, date(1980, 1, 1),
                             booking.Contact(f"{worker}-{n}"), seats=1, staff=True)
                results.append("booked")
            except booking.SlotFullError:
                results.append("full")
    return results


def test_processes_never_exceed_the_seats_on_postgresql(app, db, database_url, instance_dir):
    """Six processes, four attempts each, for five seats (PostgreSQL only: SQLite has one
    writer at a time by design and is covered by the threads test)."""
    import multiprocessing

    if not database_url.startswith("postgresql"):
        pytest.skip("runs on PostgreSQL (make test runs the suite there too)")
    offer = make_offer(db, seats=5, purpose_code="shinsei")
    target = ensure_slots(db, offer, DAY, DAY)[0]
    db.commit()
    context = multiprocessing.get_context("spawn")
    with context.Pool(6) as pool:
        runs = pool.starmap(_process_attempts,
                            [(database_url, instance_dir, target.id, w, 4) for w in range(6)])
    outcomes = [r for run in runs for r in run]
    booked = db.execute(select(Reservation).where(Reservation.slot_id == target.id)).scalars().all()
    assert len(outcomes) == 24
    assert outcomes.count("booked") == 5 == len(booked)
    assert _taken(db, target.id) == 5


def test_residents_cancel_until_the_visit_and_change_until_the_end_of_its_day(app, db, slot,
                                                                            clock):
    from app.services.errors import ReservationStateError

    reservation = booking.book(db, slot, None, date(1980, 3, 1),
                               booking.Contact(phone="0312345678"), seats=1, staff=True)
    clock.set(slot.starts_at)
    with pytest.raises(ReservationStateError):
        booking.check_cancellable(reservation, clock())
    booking.check_changeable(reservation, clock())  # a missed visit: same day
    booking.check_cancellable(reservation, clock(), staff=True)
    clock.set(slot.starts_at.replace(hour=23, minute=59))
    booking.check_changeable(reservation, clock())
    clock.advance(minutes=1)
    with pytest.raises(ReservationStateError):
        booking.check_changeable(reservation, clock())
    booking.check_changeable(reservation, clock(), staff=True)


def test_a_closed_slot_takes_no_seats(app, db, slot):
    slot.closed = True
    db.commit()
    with pytest.raises(booking.SlotFullError):
        booking.hold_seats(db, slot, 1, staff=True)
    assert booking.free_count(db, slot, slot.starts_at) == 0


def test_day_status_for_the_party_size():
    from app.services.availability import CLOSED, FEW, FREE, FULL, day_status

    slots = [{"free": 2, "seats": 2}, {"free": 1, "seats": 2}, {"free": 0, "seats": 2}]
    assert day_status([], 1, 0.3) == CLOSED
    assert day_status(slots, 1, 0.3) == FREE
    assert day_status(slots, 2, 0.4) == FEW  # 2 of 6 seats usable for a pair
    assert day_status(slots, 2, 0.3) == FREE
    assert day_status(slots, 3, 0.3) == FULL
