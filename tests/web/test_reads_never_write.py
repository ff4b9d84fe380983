"""Reads never write (issue 11): the bookable slots are made ahead of time by
calendar.materialise_slots (when the booking settings are saved, daily by
`flask slots materialise`, by `init` and the demo), so the residents' booking pages and the
staff's home, booking calendar and desk only read. A day whose slots have not been made yet
stays so however often it is looked at."""
from datetime import date, datetime, time, timedelta

import pytest
from sqlalchemy import delete, func, select

from app.clock import JST
from app.models.audit import AuditLog
from app.models.reservation import Slot
from app.models.venue import WeeklyRule
from app.services import calendar, cards as card_svc, notice_numbers
from tests.factories import make_card, make_offer
from tests.public_flow import first_day_link

TODAY = date(2026, 12, 1)  # the test clock: Tuesday 10:00
NOT_MADE = date(2026, 12, 9)  # a Wednesday whose slots the job has not made (yet)


def _drop_day(db, offer, day):
    start = datetime.combine(day, time.min, JST)
    db.execute(delete(Slot).where(Slot.offer_id == offer.id, Slot.starts_at >= start,
                                  Slot.starts_at < start + timedelta(days=1)))
    db.commit()


def _slots_of(db, offer, day=None):
    query = select(func.count(Slot.id)).where(Slot.offer_id == offer.id)
    if day is not None:
        start = datetime.combine(day, time.min, JST)
        query = query.where(Slot.starts_at >= start, Slot.starts_at < start + timedelta(days=1))
    return db.execute(query).scalar_one()


@pytest.fixture
def offer(db):
    offer = make_offer(db, seats=2, closes_minutes_before=24 * 60)
    _drop_day(db, offer, TODAY)
    _drop_day(db, offer, NOT_MADE)
    return offer


def test_the_residents_booking_pages_write_nothing(client, db, offer, no_writes):
    card = make_card(db, state=card_svc.SETUP, birth_date=date(1980, 3, 1))
    card_svc.transition_card(db, card, card_svc.NOTICE_SENT, actor=card_svc.SYSTEM)
    before = _slots_of(db, offer)
    with no_writes("the top page and the postcard step"):
        assert "/reserve/book/kofu/" in client.get("/reserve/").get_data(as_text=True)
        assert 'name="notice_number"' in client.get("/reserve/book/kofu/").get_data(
            as_text=True)
        api = client.get("/reserve/api/availability", query_string={
            "venue": offer.venue.id, "purpose": "kofu", "from": "2026-12-02",
            "to": "2026-12-31"})
    assert api.status_code == 200 and api.json["slots"]
    assert NOT_MADE.isoformat() not in {s["start"][:10] for s in api.json["slots"]}
    assert client.post("/reserve/book/kofu/", data={
        "notice_number": notice_numbers.display(card.notice_number),
        "birth_date": "1980-03-01"}).status_code == 302
    assert client.post("/reserve/book/kofu/venue",
                       data={"venue": offer.venue.id}).status_code == 302
    with no_writes("the calendar and the day pages"):
        month = client.get("/reserve/book/kofu/calendar").get_data(as_text=True)
        january = client.get("/reserve/book/kofu/calendar?month=2027-01")
        day = client.get(first_day_link(month)).get_data(as_text=True)
        missing = client.get(f"/reserve/book/kofu/day/{NOT_MADE.isoformat()}")
    assert 'name="slot"' in day and january.status_code == 200
    assert 'name="slot"' not in missing.get_data(as_text=True)
    assert _slots_of(db, offer) == before and _slots_of(db, offer, NOT_MADE) == 0


def test_the_staff_home_calendar_and_desk_write_nothing(login_as, db, offer, no_writes):
    clerk = login_as("clerk")
    venue = offer.venue.id
    before = _slots_of(db, offer)
    with no_writes("the staff pages"):
        home = clerk.get("/")
        month = clerk.get(f"/booking-calendar/?offer={offer.id}&month=2026-12")
        later = clerk.get(f"/booking-calendar/?offer={offer.id}&month=2027-06")
        days = [clerk.get(f"/booking-calendar/day/{offer.id}/{d}")
                for d in ("2026-12-08", NOT_MADE.isoformat(), TODAY.isoformat())]
        desk_pages = [clerk.get(url) for url in (
            "/desk/", f"/desk/{venue}", f"/desk/{venue}/counts",
            f"/desk/{venue}/new?offer={offer.id}", f"/desk/{venue}/new?offer={offer.id}"
            f"&day=2026-12-08", f"/desk/{venue}/new?offer={offer.id}&walk_in=1")]
    assert home.status_code == 200 and month.status_code == 200 and later.status_code == 200
    assert all(r.status_code == 200 for r in days)
    assert all(r.status_code in (200, 302) for r in desk_pages)
    assert 'data-day="2026-12-08"' in month.get_data(as_text=True)
    assert _slots_of(db, offer) == before
    assert _slots_of(db, offer, NOT_MADE) == 0 and _slots_of(db, offer, TODAY) == 0


def test_materialise_makes_the_window_once_and_is_not_audited(app, db):
    offer = make_offer(db, seats=2, opens_days_ahead=30)
    db.execute(delete(Slot))
    db.commit()
    made = calendar.materialise_slots(db, today=TODAY)
    last = TODAY + timedelta(days=app.config["SLOTS_AHEAD_DAYS"])
    workdays = sum(1 for n in range((last - TODAY).days + 1)
                   if (TODAY + timedelta(days=n)).weekday() < 5
                   and not calendar.closed_by_default(TODAY + timedelta(days=n)))
    assert made == workdays * 16 == _slots_of(db, offer)
    assert _slots_of(db, offer, last) in (0, 16) and _slots_of(db, offer, last + timedelta(1)) == 0
    assert calendar.materialise_slots(db, today=TODAY) == 0  # idempotent
    assert _slots_of(db, offer) == made
    assert db.execute(select(AuditLog).where(AuditLog.target_table == "slot")).first() is None
    # the next day's run adds the one new day at the end of the window
    assert calendar.materialise_slots(db, today=TODAY + timedelta(days=7)) > 0


def test_the_daily_command_makes_the_missing_slots(app, db):
    offer = make_offer(db, seats=2)
    _drop_day(db, offer, NOT_MADE)
    result = app.test_cli_runner().invoke(args=["slots", "materialise"])
    assert result.exit_code == 0 and "slots made: 16" in result.output, result.output
    assert _slots_of(db, offer, NOT_MADE) == 16


def test_saving_a_weekly_rule_makes_the_offers_slots(login_as, db):
    offer = make_offer(db, weekdays=[])  # no opening hours yet: no slots
    other = make_offer(db, purpose_code="shinsei", weekdays=[5])
    _drop_day(db, other, date(2026, 12, 12))
    assert _slots_of(db, offer) == 0
    manager = login_as("manager")
    manager.post("/weeklyrulemodelview/add", data={
        "offer": offer.id, "weekday": "5", "starts": "09:00", "ends": "11:00",
        "slot_minutes": "60", "seats": "3"})
    saturday = date(2026, 12, 5)
    assert _slots_of(db, offer, saturday) == 2
    first = db.execute(select(Slot).where(Slot.offer_id == offer.id)
                       .order_by(Slot.starts_at)).scalars().first()
    assert first.starts_at == datetime(2026, 12, 5, 9, 0, tzinfo=JST) and first.seats == 3
    assert _slots_of(db, other, date(2026, 12, 12)) == 0  # only the affected offer
    # a changed rule changes the slots nobody booked; a deleted rule removes them
    rule = db.execute(select(WeeklyRule).where(WeeklyRule.offer_id == offer.id)).scalar_one()
    manager.post(f"/weeklyrulemodelview/edit/{rule.id}", data={
        "offer": offer.id, "weekday": "5", "starts": "09:00", "ends": "12:00",
        "slot_minutes": "60", "seats": "4"})
    db.expire_all()
    seats = set(db.execute(select(Slot.seats).where(Slot.offer_id == offer.id)).scalars())
    assert _slots_of(db, offer, saturday) == 3 and seats == {4}
    manager.post(f"/weeklyrulemodelview/delete/{rule.id}")
    assert _slots_of(db, offer) == 0
    assert db.execute(select(AuditLog).where(AuditLog.target_table == "slot")).first() is None


def test_a_venue_taken_back_into_use_gets_its_slots_at_once(login_as, db):
    offer = make_offer(db)
    _drop_day(db, offer, NOT_MADE)  # missed while the venue was out of use
    manager = login_as("manager")
    manager.post(f"/venuemodelview/edit/{offer.venue.id}", data={
        "name": offer.venue.name, "address": "みどり市中央1-1-1", "active": "y"})
    assert _slots_of(db, offer, NOT_MADE) == 16
