"""The staff's month calendar per venue: seats, booked and held per slot; closing slots and
days, with the bookings listed and confirmed first, residents mailed; reopening."""
from datetime import date

import pytest
from sqlalchemy import select

from app.models.reservation import BOOKED, Reservation, Slot
from app.models.venue import DateException
from app.services import booking
from app.services.calendar import ensure_slots
from tests.conftest import text_of
from tests.factories import make_offer
from tests.smtp import deliver_outbox, smtp  # noqa: F401 (fixture)

DAY = date(2026, 12, 8)


@pytest.fixture
def offer(db):
    return make_offer(db, seats=2)


@pytest.fixture
def booked_slot(app, db, offer):
    """Tuesday 12/8 09:00 with one booking (with e-mail) and one seat held."""
    slot = ensure_slots(db, offer, DAY, DAY)[0]
    db.commit()
    booking.book(db, slot, None, date(1980, 3, 1),
                 booking.Contact(phone="09012345678", email="taro@example.jp",
                                 name="山田　太郎"), seats=1, staff=True)
    booking.hold_seats(db, slot, 1)
    return slot


def test_month_shows_booked_held_and_seats_per_slot(login_as, db, offer, booked_slot):
    clerk = login_as("clerk")
    response = clerk.get(f"/booking-calendar/?offer={offer.id}&month=2026-12")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    cell = html.split('data-day="2026-12-08"')[1].split("</td>")[0]
    assert "09:00 1+1/2" in cell and "09:30 0/2" in cell
    assert 'class="slot-line full"' in cell
    saturday = html.split('data-day="2026-12-05"')[1].split("</td>")[0]
    assert "slot-line" not in saturday


def test_day_lists_the_bookings_and_clerks_cannot_close(login_as, db, offer, booked_slot):
    clerk = login_as("clerk")
    page = text_of(clerk.get(f"/booking-calendar/day/{offer.id}/2026-12-08"))
    assert "山田 太郎" in page
    assert "選んだ枠を休止" not in page
    refused = clerk.post("/booking-calendar/close", data={
        "offer": offer.id, "day": "2026-12-08", "slot": booked_slot.id, "confirm": "1"})
    assert refused.status_code in (302, 403)
    db.expire_all()
    assert not db.get(Slot, booked_slot.id).closed


def test_closing_a_booked_slot_asks_first_then_lists_and_mails(login_as, db, offer,
                                                               booked_slot, smtp, client):
    manager = login_as("manager")
    ask = manager.post("/booking-calendar/close", data={
        "offer": offer.id, "day": "2026-12-08", "slot": booked_slot.id})
    assert ask.status_code == 200 and 'data-testid="touched-bookings"' in ask.get_data(as_text=True)
    assert "090-1234-5678" in text_of(ask)
    db.expire_all()
    assert not db.get(Slot, booked_slot.id).closed  # nothing closed yet
    done = manager.post("/booking-calendar/close", data={
        "offer": offer.id, "day": "2026-12-08", "slot": booked_slot.id, "confirm": "1"})
    assert 'data-testid="affected-bookings"' in done.get_data(as_text=True)
    db.expire_all()
    slot = db.get(Slot, booked_slot.id)
    assert slot.closed
    reservation = db.execute(select(Reservation)).scalar_one()
    assert reservation.state == BOOKED  # closing never cancels
    assert smtp.messages == []  # queued with the closing, sent by the sender
    deliver_outbox(manager.application)
    (message,) = smtp.to("taro@example.jp")
    assert "休止" in message["Subject"] and reservation.number in message["Subject"]
    slots = client.get("/reserve/api/availability", query_string={
        "venue": offer.venue.id, "purpose": "kofu", "from": "2026-12-08",
        "to": "2026-12-08"}).json["slots"]
    assert booked_slot.id not in [s["id"] for s in slots] and len(slots) > 0
    with manager.application.test_request_context():
        with pytest.raises(booking.SlotFullError):
            booking.hold_seats(db, slot, 1, staff=True)
    manager.post("/booking-calendar/reopen", data={
        "offer": offer.id, "day": "2026-12-08", "slot": booked_slot.id})
    db.expire_all()
    assert not db.get(Slot, booked_slot.id).closed


def test_an_empty_slot_closes_without_asking(login_as, db, offer, booked_slot):
    manager = login_as("manager")
    empty = ensure_slots(db, offer, DAY, DAY)[3]
    response = manager.post("/booking-calendar/close", data={
        "offer": offer.id, "day": "2026-12-08", "slot": empty.id})
    assert response.status_code == 302
    db.expire_all()
    assert db.get(Slot, empty.id).closed


def test_closing_and_reopening_a_whole_day(login_as, db, offer, booked_slot, client):
    manager = login_as("manager")
    manager.post("/booking-calendar/close", data={
        "offer": offer.id, "day": "2026-12-08", "whole_day": "1", "note": "停電", "confirm": "1"})
    exception = db.execute(select(DateException)).scalar_one()
    assert exception.closed and exception.note == "停電"
    assert client.get("/reserve/api/availability", query_string={
        "venue": offer.venue.id, "purpose": "kofu", "from": "2026-12-08",
        "to": "2026-12-08"}).json["slots"] == []
    manager.post("/booking-calendar/reopen", data={
        "offer": offer.id, "day": "2026-12-08", "whole_day": "1"})
    assert db.execute(select(DateException)).first() is None
    slots = client.get("/reserve/api/availability", query_string={
        "venue": offer.venue.id, "purpose": "kofu", "from": "2026-12-08",
        "to": "2026-12-08"}).json["slots"]
    assert len(slots) == 16


def test_closing_is_in_the_audit_trail(login_as, db, offer, booked_slot):
    from app.models.audit import AuditLog

    manager = login_as("manager")
    manager.post("/booking-calendar/close", data={
        "offer": offer.id, "day": "2026-12-08", "slot": booked_slot.id, "confirm": "1"})
    rows = db.execute(select(AuditLog).where(AuditLog.target_table == "slot")).scalars().all()
    assert any(r.target_id == str(booked_slot.id) for r in rows)


def test_checked_in_and_finished_bookings_still_fill_their_seats(login_as, db, offer,
                                                                  booked_slot):
    from app.models.reservation import ARRIVED

    reservation = db.execute(select(Reservation)).scalar_one()
    reservation.state = ARRIVED
    db.commit()
    clerk = login_as("clerk")
    html = clerk.get(f"/booking-calendar/?offer={offer.id}&month=2026-12").get_data(as_text=True)
    assert "09:00 1+1/2" in html.split('data-day="2026-12-08"')[1].split("</td>")[0]
    day = text_of(clerk.get(f"/booking-calendar/day/{offer.id}/2026-12-08"))
    assert "山田 太郎" in day
