"""The booking history (booking_event, issue 14 §1): every path that changes a booking
writes exactly one event per thing that happened, in the same unit of work, with the kind,
channel, by_staff, actor, offer and time as they were; a refused change writes none."""
from datetime import date, datetime

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.clock import JST
from app.models.reservation import (ARRIVED, BOOKED, CANCELLED, BookingEvent, Reservation,
                                    Slot)
from app.services import booking, desk
from app.services.calendar import ensure_slots
from app.services.errors import ReservationStateError
from tests.conftest import DEFAULT_NOW
from tests.factories import make_offer
from tests.public_flow import book_kofu, slot_buttons
from tests.web.test_desk import TODAY, book_card, waiting_card
from tests.web.test_public_booking import shown


@pytest.fixture
def offer(db):
    return make_offer(db, seats=2)


def events(db, reservation_id=None):
    db.expire_all()
    query = select(BookingEvent).order_by(BookingEvent.id)
    if reservation_id is not None:
        query = query.where(BookingEvent.reservation_id == reservation_id)
    return list(db.execute(query).scalars())


def kinds(db, reservation_id):
    return [e.kind for e in events(db, reservation_id)]


def by_number(db, number) -> Reservation:
    db.expire_all()
    return db.execute(select(Reservation).where(Reservation.number == number)).scalar_one()


def username_of(client) -> str:
    """The signed-in user of a test client, as the audit trail names them."""
    from app.models.user import StaffUser

    with client.session_transaction() as state:
        user_id = int(state["_user_id"])
    return client.application.appbuilder.session.get(StaffUser, user_id).username


# --- the residents' site ------------------------------------------------------------------

def test_a_residents_booking_change_and_cancel_are_theirs(client, db, offer):
    card = waiting_card(db)
    number = book_kofu(client, offer.venue.id, [(shown(card), "1980-03-01")], day="2026-12-08")
    reservation = by_number(db, number)
    [made] = events(db, reservation.id)
    assert (made.kind, made.channel, made.by_staff, made.actor) == (
        "made", "web", False, f"住民:{number}")
    assert (made.offer_id, made.starts_at, made.seats) == (
        offer.id, reservation.starts_at, 1)
    assert made.at == DEFAULT_NOW  # the engine's now: the clock of the request

    client.post("/reserve/booking/close")
    client.post("/reserve/lookup", data={"reservation_number": number,
                                         "birth_date": "1980-03-01"})
    day = client.get("/reserve/booking/change/2026-12-10").get_data(as_text=True)
    new_slot = int(slot_buttons(day)[2])
    client.post("/reserve/booking/change", data={"slot": new_slot, "confirm": "1"})
    client.post("/reserve/booking/change", data={"slot": new_slot, "confirm": "1"})  # again
    moved = events(db, reservation.id)
    assert [e.kind for e in moved] == ["made", "changed"]  # the second click changed nothing
    changed = moved[1]
    new_start = db.get(Slot, new_slot).starts_at
    assert (changed.by_staff, changed.actor, changed.channel) == (False, f"住民:{number}", "web")
    assert changed.starts_at == new_start != made.starts_at  # the new slot, not the old

    client.post("/reserve/booking/cancel")
    client.post("/reserve/booking/cancel")  # a second click: refused, no second event
    history = events(db, reservation.id)
    assert [e.kind for e in history] == ["made", "changed", "cancelled"]
    assert (history[2].by_staff, history[2].actor) == (False, f"住民:{number}")
    assert history[2].starts_at == new_start


# --- the staff screens ----------------------------------------------------------------------

def test_a_phone_booking_moved_and_cancelled_by_a_clerk(login_as, app, db, offer):
    from app.services import notice_numbers

    card = waiting_card(db)
    clerk = login_as("clerk")
    name = username_of(clerk)
    slot = ensure_slots(db, offer, date(2026, 12, 2), date(2026, 12, 2))[0]
    db.commit()
    clerk.post(f"/desk/{offer.venue.id}/new", data={
        "offer": offer.id, "channel": "phone", "day": "2026-12-02", "slot": slot.id,
        "notice_number": notice_numbers.display(card.notice_number), "birth_date": "S55.3.1",
        "phone": "0312345678", "key": "k1"})
    reservation = db.execute(select(Reservation)).scalar_one()
    [made] = events(db, reservation.id)
    assert (made.kind, made.channel, made.by_staff, made.actor) == ("made", "phone", True, name)
    assert made.starts_at == slot.starts_at and made.offer_id == offer.id

    other = ensure_slots(db, offer, date(2026, 12, 9), date(2026, 12, 9))[3]
    db.commit()
    clerk.post(f"/reservationmodelview/move/{reservation.id}",
               data={"day": "2026-12-09", "slot": other.id})
    clerk.post(f"/reservationmodelview/cancel/{reservation.id}", data={"reason": "本人から電話"})
    clerk.post(f"/reservationmodelview/cancel/{reservation.id}", data={"reason": "二度目"})
    history = events(db, reservation.id)
    assert [(e.kind, e.channel, e.by_staff, e.actor) for e in history] == [
        ("made", "phone", True, name), ("changed", "phone", True, name),
        ("cancelled", "phone", True, name)]
    assert history[1].starts_at == history[2].starts_at == other.starts_at


def test_check_in_undo_and_complete_at_the_desk(login_as, app, db, clock):
    offer = make_offer(db, purpose_code="shinsei")
    with app.test_request_context():
        slots = ensure_slots(db, offer, TODAY, TODAY)
        db.commit()
        visit = booking.book(db, slots[3], None, date(1980, 3, 1),
                             booking.Contact(phone="0312345678"), seats=2, staff=True,
                             channel="counter")
    clerk = login_as("clerk")
    name = username_of(clerk)
    times = []
    for minute, form in ((5, {}), (6, {"undo": "1"}), (7, {"undo": "1"}), (8, {}), (9, {}),
                         (20, {"complete": "1"}), (21, {"complete": "1"})):
        clock.set(DEFAULT_NOW.replace(minute=minute))
        times.append(clock())
        clerk.post(f"/desk/{offer.venue.id}/check-in",
                   data={"id": visit.id, "day": "2026-12-01", **form})
    history = events(db, visit.id)
    # the second undo, the second check-in and the second complete were refused
    assert [(e.kind, e.at) for e in history] == [
        ("made", DEFAULT_NOW), ("arrived", times[0]), ("undone", times[1]),
        ("arrived", times[3]), ("completed", times[5])]
    assert {(e.channel, e.by_staff, e.seats, e.offer_id) for e in history} == {
        ("counter", True, 2, offer.id)}
    assert {e.actor for e in history[1:]} == {name}
    assert history[0].actor == "system"  # made outside any request: the product itself


def test_a_refused_compare_and_set_writes_no_event(app, db, offer):
    """The row changed under a copy that still says 予約済: check-in, cancel and move
    are refused by their compare-and-set, roll back and leave the history as it was."""
    reservation = book_card(app, db, offer, waiting_card(db), index=3)
    stale = db.get(Reservation, reservation.id)
    assert stale.state == BOOKED
    with Session(bind=db.get_bind()) as other:  # cancelled elsewhere a moment ago
        other.execute(update(Reservation).where(Reservation.id == reservation.id)
                      .values(state=CANCELLED))
        other.commit()
    later = ensure_slots(db, offer, date(2026, 12, 9), date(2026, 12, 9))[1]
    with app.test_request_context():
        with pytest.raises(ReservationStateError):
            desk.check_in(db, stale)
        with pytest.raises(ReservationStateError):
            booking.cancel(db, stale, staff=True)
        with pytest.raises(ReservationStateError):
            booking.change_slot(db, stale, later, staff=True)
    assert kinds(db, reservation.id) == ["made"]
    assert db.get(Reservation, reservation.id).state == CANCELLED


def test_a_cancelled_booking_is_not_checked_in_and_a_second_cancel_writes_nothing(
        app, db, offer):
    reservation = book_card(app, db, offer, waiting_card(db), index=3)
    with app.test_request_context():
        booking.cancel(db, reservation, reason="x", staff=True)
        with pytest.raises(ReservationStateError):
            booking.cancel(db, reservation, reason="y", staff=True)
        with pytest.raises(ReservationStateError):
            desk.check_in(db, reservation)
    assert kinds(db, reservation.id) == ["made", "cancelled"]


def test_a_walk_in_is_made_as_walk_in_and_arrives(login_as, app, db, clock):
    offer = make_offer(db, purpose_code="shinsei", seats=1)
    clerk = login_as("clerk")
    name = username_of(clerk)
    clock.set(DEFAULT_NOW.replace(minute=12))
    clerk.post(f"/desk/{offer.venue.id}/new", data={
        "offer": offer.id, "walk_in": "1", "name": "佐藤 一郎", "name_kana": "さとう いちろう",
        "birth_date": "1970-01-01", "seats": "1", "phone": "0312345678"})
    reservation = db.execute(select(Reservation)).scalar_one()
    assert reservation.channel == "counter" and reservation.state == ARRIVED
    history = events(db, reservation.id)
    assert [(e.kind, e.channel, e.by_staff, e.actor, e.at) for e in history] == [
        ("made", "walk_in", True, name, clock()), ("arrived", "walk_in", True, name, clock())]
    clerk.post(f"/desk/{offer.venue.id}/check-in",
               data={"id": reservation.id, "day": "2026-12-01", "complete": "1"})
    last = events(db, reservation.id)[-1]
    assert (last.kind, last.channel) == ("completed", "walk_in")  # counted as a walk-in


def test_the_day_close_writes_a_no_show_for_each_booking_it_marked(login_as, app, db, offer,
                                                                    clock):
    first = book_card(app, db, offer, waiting_card(db), index=2)  # 10:00
    second = book_card(app, db, offer, waiting_card(db), index=4)  # 11:00
    third = book_card(app, db, offer, waiting_card(db), index=5)  # 11:30
    clerk = login_as("clerk")
    name = username_of(clerk)
    clerk.post(f"/desk/{offer.venue.id}/check-in", data={"id": second.id, "day": "2026-12-01"})
    clock.set(DEFAULT_NOW.replace(minute=25))  # once the day has begun (signed in still)
    clerk.post(f"/desk/{offer.venue.id}/close-day", data={"day": "2026-12-01"})
    clerk.post(f"/desk/{offer.venue.id}/close-day", data={"day": "2026-12-01"})  # again
    no_shows = [e for e in events(db) if e.kind == "no_show"]
    assert sorted(e.reservation_id for e in no_shows) == sorted([first.id, third.id])
    assert {(e.by_staff, e.actor, e.at) for e in no_shows} == {(True, name, clock())}
    assert {e.starts_at for e in no_shows} == {first.starts_at, third.starts_at}
    assert kinds(db, second.id) == ["made", "arrived"]


def test_the_close_day_command_records_the_job(app, db, offer, clock):
    reservation = book_card(app, db, offer, waiting_card(db))
    clock.set(clock().replace(hour=17, minute=10))
    app.test_cli_runner().invoke(args=["reservations", "close-day"])
    [no_show] = [e for e in events(db, reservation.id) if e.kind == "no_show"]
    assert (no_show.actor, no_show.by_staff, no_show.at) == ("system", True, clock())


def test_hand_over_completes_with_an_event_and_arrives_on_the_way(login_as, app, db, offer):
    checked, straight = waiting_card(db), waiting_card(db)
    first = book_card(app, db, offer, checked, index=3)
    second = book_card(app, db, offer, straight, index=4)
    clerk = login_as("clerk")
    name = username_of(clerk)
    clerk.post(f"/desk/{offer.venue.id}/check-in", data={"id": first.id, "day": "2026-12-01"})
    for card in (checked, straight):
        clerk.post(f"/handover/{card.id}", data={"identity": "one_a", "collector": "self",
                                                 "pin_set": "y"})
    assert [(e.kind, e.actor) for e in events(db, first.id)] == [
        ("made", "system"), ("arrived", name), ("completed", name)]
    # not checked in: the hand-over checks the visitor in on the way
    assert [(e.kind, e.actor, e.at) for e in events(db, second.id)][1:] == [
        ("arrived", name, DEFAULT_NOW), ("completed", name, DEFAULT_NOW)]


def test_the_rest_check_in_names_the_jwt_user(app, db, users, offer):
    reservation = book_card(app, db, offer, waiting_card(db), index=3)
    user = users.create("clerk")
    api = app.test_client()
    token = api.post("/api/v1/security/login", json={
        "username": user.username, "password": users.password, "provider": "db"}
    ).json["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    ok = api.post(f"/api/v1/reservation/{reservation.id}/check-in", headers=headers)
    assert ok.status_code == 200
    again = api.post(f"/api/v1/reservation/{reservation.id}/check-in", headers=headers)
    assert again.status_code == 409
    history = events(db, reservation.id)
    assert [(e.kind, e.actor, e.by_staff) for e in history] == [
        ("made", "system", True), ("arrived", user.username, True)]


def test_a_command_names_itself(app, db, offer):
    """Outside any request, the actor is what the command named (cli:…)."""
    from flask import g

    with app.app_context():
        g.audit_actor = "cli:operator"
        reservation = book_card(app, db, offer, waiting_card(db), day=date(2026, 12, 8))
        booking.cancel(db, db.get(Reservation, reservation.id), reason="運用", staff=True)
    assert [(e.kind, e.actor) for e in events(db, reservation.id)] == [
        ("made", "cli:operator"), ("cancelled", "cli:operator")]


def test_events_are_one_per_change_across_many_bookings(app, db, offer):
    """Hand-counted: 3 bookings, 1 moved, 1 cancelled → 3 made, 1 changed, 1 cancelled."""
    made = [book_card(app, db, offer, waiting_card(db), day=date(2026, 12, 8), index=i)
            for i in (1, 2, 3)]
    target = ensure_slots(db, offer, date(2026, 12, 10), date(2026, 12, 10))[0]
    with app.test_request_context():
        booking.change_slot(db, made[0], target, staff=True)
        booking.cancel(db, made[1], reason="x", staff=True)
    counts = dict(db.execute(select(BookingEvent.kind, func.count(BookingEvent.id))
                             .group_by(BookingEvent.kind)).all())
    assert counts == {"made": 3, "changed": 1, "cancelled": 1}
    assert events(db, made[0].id)[1].starts_at == datetime(2026, 12, 10, 9, 0, tzinfo=JST)
