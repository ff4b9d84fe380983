from datetime import date, datetime

import pytest

import config
from app.clock import JST
from app.services.hours import is_closed_day, staff_hours_status, third_saturday
from app.settings import build

CONFIG = build({k: getattr(config, k) for k in dir(config) if k.isupper()})


def at(*args):
    return datetime(*args, tzinfo=JST)


@pytest.mark.parametrize("now,is_open", [
    (at(2026, 12, 1, 6, 29, 59), False),
    (at(2026, 12, 1, 6, 30), True),
    (at(2026, 12, 1, 22, 59, 59), True),
    (at(2026, 12, 1, 23, 0), False),
])
def test_daily_edges(now, is_open):
    assert staff_hours_status(now, CONFIG).is_open is is_open


def test_before_opening_reopens_the_same_morning():
    status = staff_hours_status(at(2026, 12, 1, 6, 29), CONFIG)
    assert status.reopens_at == at(2026, 12, 1, 6, 30)


def test_after_closing_reopens_next_morning():
    status = staff_hours_status(at(2026, 12, 1, 23, 0), CONFIG)
    assert status.reopens_at == at(2026, 12, 2, 6, 30)


def test_utc_input_is_read_as_japan_time():
    from datetime import timezone
    # 21:30 UTC on 11/30 is 06:30 JST on 12/1.
    assert staff_hours_status(datetime(2026, 11, 30, 21, 30, tzinfo=timezone.utc), CONFIG).is_open


@pytest.mark.parametrize("year,month,expected", [
    (2026, 1, date(2026, 1, 17)), (2026, 2, date(2026, 2, 21)), (2026, 8, date(2026, 8, 15)),
    (2026, 11, date(2026, 11, 21)), (2027, 5, date(2027, 5, 15)), (2026, 10, date(2026, 10, 17)),
])
def test_third_saturday(year, month, expected):
    assert third_saturday(year, month) == expected
    assert expected.weekday() == 5


@pytest.mark.parametrize("closed_day", [
    date(2026, 2, 22), date(2026, 8, 16), date(2026, 11, 22), date(2027, 5, 16),
    date(2026, 10, 18),
])
def test_day_after_third_saturday_is_closed_all_day(closed_day):
    assert is_closed_day(closed_day, CONFIG)
    for hour in (6, 12, 22):
        assert not staff_hours_status(at(closed_day.year, closed_day.month, closed_day.day, hour, 45),
                                      CONFIG).is_open


def test_third_saturday_itself_and_the_fourth_sunday_are_open():
    assert staff_hours_status(at(2026, 11, 21, 12, 0), CONFIG).is_open  # 3rd Saturday
    assert staff_hours_status(at(2026, 11, 29, 12, 0), CONFIG).is_open  # 4th... next Sunday
    assert staff_hours_status(at(2026, 11, 15, 12, 0), CONFIG).is_open  # Sunday after 2nd Sat


def test_closed_sunday_reopens_monday_morning():
    # 2026-11-21 is the third Saturday: Saturday evening after 23:00 -> Monday 06:30.
    status = staff_hours_status(at(2026, 11, 21, 23, 30), CONFIG)
    assert status.reopens_at == at(2026, 11, 23, 6, 30)


def test_rule_at_month_end_when_the_third_saturday_is_the_21st():
    # 2026-02-21 is the latest possible third Saturday; the closed day is the 22nd.
    assert not staff_hours_status(at(2026, 2, 22, 10, 0), CONFIG).is_open
    assert staff_hours_status(at(2026, 2, 28, 10, 0), CONFIG).is_open
    assert staff_hours_status(at(2026, 3, 1, 10, 0), CONFIG).is_open


@pytest.mark.parametrize("day,is_open", [
    (date(2026, 12, 28), True), (date(2026, 12, 29), False), (date(2026, 12, 31), False),
    (date(2027, 1, 1), False), (date(2027, 1, 3), False), (date(2027, 1, 4), True),
])
def test_year_end(day, is_open):
    assert staff_hours_status(at(day.year, day.month, day.day, 12, 0), CONFIG).is_open is is_open


def test_year_end_reopens_on_january_4():
    status = staff_hours_status(at(2026, 12, 28, 23, 0), CONFIG)
    assert status.reopens_at == at(2027, 1, 4, 6, 30)


def test_hours_and_closed_days_are_configurable():
    custom = build({**{k: getattr(config, k) for k in dir(config) if k.isupper()},
                    "STAFF_HOURS_OPEN": "08:00", "STAFF_HOURS_CLOSE": "20:00",
                    "STAFF_CLOSED_DAY_AFTER_THIRD_SATURDAY": False,
                    "STAFF_CLOSED_DATES": ["2026-12-02"]})
    assert not staff_hours_status(at(2026, 12, 1, 7, 59), custom).is_open
    assert staff_hours_status(at(2026, 12, 1, 8, 0), custom).is_open
    assert not staff_hours_status(at(2026, 12, 1, 20, 0), custom).is_open
    assert staff_hours_status(at(2026, 11, 22, 12, 0), custom).is_open
    status = staff_hours_status(at(2026, 12, 1, 21, 0), custom)
    assert status.reopens_at == at(2026, 12, 3, 8, 0)


def test_a_config_mapping_is_still_read():
    raw = {k: getattr(config, k) for k in dir(config) if k.isupper()}
    assert staff_hours_status(at(2026, 12, 29, 12, 0), raw).is_open is False
