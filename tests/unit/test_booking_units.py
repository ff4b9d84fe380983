"""Issue 11 in the booking area: each operation is one unit of work (a refusal leaves
nothing behind, a throttle count stays), ``now`` comes from the caller, the residents'
entry points count the guessing limit themselves, and the shared helpers (months, the
year end, the vocabulary) answer the same everywhere."""
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from app.models.outbox import OutboxMail
from app.models.reservation import (BOOKED, CHANNEL_PHONE, Hold, Slot, channel_label,
                                    state_label)
from app.models.throttle import Throttle
from app.services import booking, schedule, throttle, unit
from app.services.calendar import (add_months, ensure_slots, in_year_end, month_end,
                                   month_start, month_within, parse_month)
from app.services.errors import InputError, SlotFullError, ThrottledError
from app import settings
from tests.factories import make_offer

DAY = date(2026, 12, 8)  # a Tuesday, a week after the test clock's "now"


@pytest.fixture
def slots(app, db):
    offer = make_offer(db, seats=2, purpose_code="shinsei")
    made = ensure_slots(db, offer, DAY, DAY)
    db.commit()
    return made


def test_months_are_counted_in_one_place():
    assert add_months(date(2026, 12, 1), 1) == date(2027, 1, 1)
    assert add_months(date(2027, 1, 1), -1) == date(2026, 12, 1)
    assert add_months(date(2026, 3, 31), -13) == date(2025, 2, 1)
    assert month_start(date(2026, 2, 17)) == date(2026, 2, 1)
    assert month_end(date(2028, 2, 5)) == date(2028, 2, 29)
    assert parse_month("2026-12") == date(2026, 12, 1) and parse_month("12月") is None
    assert parse_month("2026-13") is None
    first, last = date(2026, 12, 1), date(2027, 1, 1)
    assert month_within("2027-05", first, last) == last
    assert month_within("2026-01", first, last) == first
    assert month_within(None, first, last) == first


def test_the_year_end_is_one_span_that_wraps_over_the_new_year():
    assert in_year_end(date(2026, 12, 29)) and in_year_end(date(2027, 1, 3))
    assert not in_year_end(date(2026, 12, 28)) and not in_year_end(date(2027, 1, 4))
    assert not in_year_end(date(2026, 12, 30), None)
    assert in_year_end(date(2026, 8, 14), ("08-13", "08-16"))


def test_states_and_channels_have_one_vocabulary(app):
    with app.test_request_context():  # a screen's language
        assert state_label(BOOKED) == "予約済"
        assert channel_label(CHANNEL_PHONE) == "電話"  # the catalogue's word (docs/glossary.md)
        assert state_label("unknown") == "unknown" and state_label(None) == ""


def test_now_comes_from_the_caller(db, slots):
    later = slots[0].starts_at - timedelta(days=1)  # inside the residents' cut-off
    with pytest.raises(booking.BookingWindowError):
        booking.hold_seats(db, slots[0], 1, now=later)
    hold = booking.hold_seats(db, slots[0], 1, now=later, staff=True)
    assert hold.expires_at == later + timedelta(minutes=settings.settings().hold_minutes)
    assert booking.held(db, hold.token, later) is not None
    assert booking.held(db, hold.token, hold.expires_at) is None


def test_a_refused_hold_leaves_nothing_behind(db, slots):
    booking.hold_seats(db, slots[0], 2)
    with pytest.raises(SlotFullError):
        booking.hold_seats(db, slots[0], 1)
    with pytest.raises(InputError):
        booking.hold_seats(db, slots[1], 9)
    assert not unit.in_transaction(db)
    db.expire_all()
    assert db.get(Slot, slots[0].id).taken == 2 and db.get(Slot, slots[1].id).taken == 0
    assert db.execute(select(func.count(Hold.id))).scalar() == 1
    assert booking.seat_drift(db) == []


def test_a_booking_inside_a_larger_unit_commits_with_it_or_not_at_all(db, slots):
    with pytest.raises(RuntimeError):
        with unit.transaction(db):
            booking.book(db, slots[0], None, date(1980, 1, 1), booking.Contact("0311112222"),
                         seats=1, staff=True)
            raise RuntimeError("the larger operation fails afterwards")
    db.expire_all()
    assert db.get(Slot, slots[0].id).taken == 0 and booking.seat_drift(db) == []


def test_holding_for_a_resident_counts_the_address_and_gives_the_old_hold_back(app, db,
                                                                                slots, clock):
    settings.configure(app, IDENTITY_IP_ATTEMPTS=3)
    first = booking.hold_for_resident(db, slots[0], 1, "192.0.2.7", clock())
    second = booking.hold_for_resident(db, slots[1], 1, "192.0.2.7", clock(),
                                       replacing=first.token)
    db.expire_all()
    assert db.get(Slot, slots[0].id).taken == 0 and db.get(Slot, slots[1].id).taken == 1
    with pytest.raises(SlotFullError):  # refused, yet counted: the third attempt locks
        booking.hold_for_resident(db, slots[2], 3, "192.0.2.7", clock())
    with pytest.raises(ThrottledError):
        booking.admit_address(db, "192.0.2.7", clock())
    with pytest.raises(ThrottledError):
        booking.hold_for_resident(db, slots[2], 1, "192.0.2.7", clock(),
                                  replacing=second.token)
    db.expire_all()
    assert db.get(Slot, slots[1].id).taken == 1  # the lock came before any release
    assert db.execute(select(Throttle.locked_until).where(
        Throttle.key == throttle.ip_key("192.0.2.7"))).scalar() is not None
    booking.admit_address(db, "192.0.2.8", clock())  # another address is free


def test_staff_slots_and_the_purpose_are_read_through_the_service(db, slots, clock):
    day = booking.staff_slots(db, slots[0].offer, DAY, clock())
    assert [s["id"] for s in day] == [s.id for s in slots] and day[0]["free"] == 2
    assert booking.bookable_purpose(db, "shinsei").code == "shinsei"
    assert booking.bookable_purpose(db, "nothing") is None


def test_closing_with_mail_is_one_unit(app, db, slots, clock):
    settings.configure(app, MAIL_SERVER="127.0.0.1")
    mine = booking.book(db, slots[0], None, date(1980, 1, 1),
                        booking.Contact("0311112222", email="taro@example.jp"),
                        seats=1, staff=True, now=clock())
    with pytest.raises(InputError):  # nothing chosen: refused, and nobody is mailed
        schedule.close(db, slots[0].offer, DAY, [], mail_to=[mine], now=clock())
    assert db.execute(select(func.count(OutboxMail.id))).scalar() == 0
    closed = schedule.close(db, slots[0].offer, DAY, [slots[0].id], mail_to=[mine],
                            now=clock())
    assert [r.id for r in closed.affected] == [mine.id] and closed.mailed == {mine.id}
    assert db.execute(select(func.count(OutboxMail.id))).scalar() == 1
    db.expire_all()
    assert db.get(Slot, slots[0].id).closed
