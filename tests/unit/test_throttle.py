"""Guessing limits: per IP every attempt counts; per number failures lock it for a while."""
from datetime import timedelta

import pytest

from app.services import throttle
from app.services.errors import ThrottledError


def test_a_number_locks_after_the_limit_and_unlocks_later(app, db, clock):
    key = throttle.number_key("ACD123456")
    assert "ACD123456" not in key
    for n in range(1, 5):
        assert throttle.count(db, key, clock()) == n
        throttle.check(db, [key], clock())
    throttle.count(db, key, clock())
    with pytest.raises(ThrottledError) as locked:
        throttle.check(db, [key], clock())
    assert locked.value.until == clock() + timedelta(minutes=30)
    assert "10:30" in str(locked.value.message)
    clock.advance(minutes=31)
    throttle.check(db, [key], clock())
    assert throttle.count(db, key, clock()) == 1  # a fresh window


def test_a_right_answer_forgets_earlier_failures(app, db, clock):
    key = throttle.number_key("ACD123456")
    for _ in range(4):
        throttle.count(db, key, clock())
    throttle.clear(db, key)
    assert throttle.count(db, key, clock()) == 1


def test_the_window_of_an_address_starts_again_after_it_ends(app, db, clock):
    key = throttle.ip_key("192.0.2.1")
    for _ in range(10):
        throttle.count(db, key, clock())
    clock.advance(minutes=16)
    assert throttle.count(db, key, clock()) == 1
    throttle.check(db, [key, throttle.ip_key("192.0.2.2")], clock())
