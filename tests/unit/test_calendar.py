"""Opening rules: holidays of 2026 and 2027, the year end, exceptions, window, cut-off."""
from datetime import date, datetime, time, timedelta

import pytest

from app.clock import JST
from app.models.venue import DateException
from app.services.calendar import (bookable_between, closed_by_default, ensure_slots,
                                   planned_slots)
from tests.factories import make_offer


@pytest.mark.parametrize("day", [
    date(2026, 1, 12), date(2026, 2, 11), date(2026, 2, 23), date(2026, 3, 20),
    date(2026, 4, 29), date(2026, 5, 4), date(2026, 5, 5), date(2026, 5, 6),
    date(2026, 7, 20), date(2026, 8, 11), date(2026, 9, 21), date(2026, 9, 22),
    date(2026, 10, 12), date(2026, 11, 3), date(2026, 11, 23),
    date(2027, 1, 11), date(2027, 3, 22), date(2027, 5, 3), date(2027, 9, 20),
    date(2027, 11, 23),
])
def test_national_and_substitute_holidays_are_closed(db, day):
    offer = make_offer(db, weekdays=range(7))
    assert closed_by_default(day)
    assert planned_slots(offer, day) == []


@pytest.mark.parametrize("day", [date(2026, 12, 29), date(2026, 12, 30), date(2026, 12, 31),
                                 date(2027, 1, 1), date(2027, 1, 2), date(2027, 1, 4)])
def test_year_end_is_closed_and_january_4_opens(db, day):
    offer = make_offer(db, weekdays=range(7))
    assert (planned_slots(offer, day) == []) is (day != date(2027, 1, 4))


def test_weekly_pattern_slots_and_cut_off(db):
    offer = make_offer(db, starts="17:00", ends="20:30", minutes=30, seats=3,
                       last_start="19:30")
    slots = planned_slots(offer, date(2026, 12, 2))  # a Wednesday
    assert [s.starts_at.time() for s in slots] == [time(17), time(17, 30), time(18),
                                                    time(18, 30), time(19), time(19, 30)]
    assert {s.seats for s in slots} == {3}
    assert planned_slots(offer, date(2026, 12, 5)) == []  # Saturday: not in the pattern


def test_exceptions_open_close_and_change_seats(db):
    offer = make_offer(db)
    offer.exceptions.append(DateException(day=date(2026, 12, 2), closed=True))
    offer.exceptions.append(DateException(day=date(2026, 12, 3), seats=5))
    offer.exceptions.append(DateException(day=date(2026, 11, 23), starts=time(9), ends=time(12),
                                          slot_minutes=60, seats=1, note="休日開庁"))
    db.commit()
    assert planned_slots(offer, date(2026, 12, 2)) == []
    assert {s.seats for s in planned_slots(offer, date(2026, 12, 3))} == {5}
    assert [s.starts_at.hour for s in planned_slots(offer, date(2026, 11, 23))] == [9, 10, 11]


def test_booking_window(db):
    offer = make_offer(db, opens_days_ahead=30, closes_minutes_before=7 * 24 * 60)
    now = datetime(2026, 12, 1, 10, 0, tzinfo=JST)
    earliest, latest = bookable_between(offer, now)
    assert earliest == now + timedelta(days=7)
    assert latest.date() == date(2026, 12, 31)


def test_slots_are_made_once(db):
    offer = make_offer(db)
    first = ensure_slots(db, offer, date(2026, 12, 1), date(2026, 12, 4))
    again = ensure_slots(db, offer, date(2026, 12, 1), date(2026, 12, 4))
    db.commit()
    assert len(first) == 4 * 16 and [s.id for s in first] == [s.id for s in again]
    assert first[0].starts_at == datetime(2026, 12, 1, 9, 0, tzinfo=JST)


def test_materialise_counts_only_the_slots_it_made(db):
    """The count comes from the rows the INSERT returned: a slot that already exists (made
    by another run, or deleted and made again) is neither duplicated nor counted."""
    from sqlalchemy import delete, func, select

    from app.models.reservation import Slot
    from app.services.calendar import materialise_slots

    offer = make_offer(db)  # made its slots already
    total = db.execute(select(func.count()).select_from(Slot)).scalar_one()
    assert total > 300
    assert materialise_slots(db, offers=[offer]) == 0
    some = db.execute(select(Slot.id).order_by(Slot.starts_at).limit(7)).scalars().all()
    db.execute(delete(Slot).where(Slot.id.in_(some)))
    db.commit()
    assert materialise_slots(db, offers=[offer]) == 7
    assert db.execute(select(func.count()).select_from(Slot)).scalar_one() == total
