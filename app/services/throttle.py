"""Slowing down guessing on the residents' site (F1.3, DOMAIN.md "Privacy").

Two kinds of counters, kept in the database so that every worker process shares them:
- per IP address, every identity check counts; past ``IDENTITY_IP_ATTEMPTS`` within
  ``IDENTITY_IP_WINDOW_MINUTES`` the address waits until the window ends;
- per typed number (postcard or booking number), failures count; after
  ``IDENTITY_NUMBER_FAILURES`` the number is locked for ``IDENTITY_LOCK_MINUTES``;
- per IP address, every staff sign-in (form and API) counts; past ``LOGIN_RATE_LIMIT``
  within ``LOGIN_RATE_WINDOW_SECONDS`` the address waits until the window ends.
A number is locked whether or not it exists, so a lock says nothing about existence. The
counters store a keyed hash of the number, never the number.

The one documented exception to the single transaction boundary (app/services/unit.py):
:func:`count` and :func:`clear` commit on their own, at once. A failed guess must stay
counted even though the request that made it is refused and its unit rolled back (else
rolling back would undo the limit), and the counters must be visible to every other worker
straight away. They are therefore called outside any unit of work, by the residents' entry
points in app/services/booking.py (and the sign-in in app/security.py), never from inside
an operation whose writes they would commit early.
"""
from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import case, select, update
from sqlalchemy.exc import IntegrityError

from app.models.throttle import Throttle
from app.services.errors import ThrottledError
from app.settings import settings


def ip_key(address: str | None) -> str:
    return "ip:" + (address or "unknown")[:60]


def login_key(address: str | None) -> str:
    return "login:" + (address or "unknown")[:60]


def number_key(value: str) -> str:
    secret = current_app.config["SECRET_KEY"].encode()
    digest = hmac.new(secret, value.encode(), hashlib.sha256).hexdigest()
    return "no:" + digest[:40]


def check(session, keys: list[str], now: datetime) -> None:
    """Refuse when any key is locked; the message says until when."""
    until = session.execute(select(Throttle.locked_until).where(
        Throttle.key.in_(keys), Throttle.locked_until > now)).scalars().all()
    if until:
        raise ThrottledError(max(until))


def _limits(kind: str) -> tuple[int, timedelta, timedelta]:
    config = settings()
    if kind == "login":
        window = timedelta(seconds=config.login_rate_window_seconds)
        return config.login_rate_limit, window, window
    if kind == "ip":
        window = timedelta(minutes=config.identity_ip_window_minutes)
        return config.identity_ip_attempts, window, window
    lock = timedelta(minutes=config.identity_lock_minutes)
    return config.identity_number_failures, lock, lock


def count(session, key: str, now: datetime) -> int:
    """Count one event for the key (atomically, in its own commit: see the module's
    docstring); lock it past the limit.
    Returns the count in the current window."""
    kind = key.split(":", 1)[0]
    limit, window, lock = _limits(kind if kind in ("ip", "login") else "number")
    fresh = Throttle.window_started_at <= now - window
    values = {"count": case((fresh, 1), else_=Throttle.count + 1),
              "window_started_at": case((fresh, now), else_=Throttle.window_started_at)}
    if session.execute(update(Throttle).where(Throttle.key == key).values(**values)
                       ).rowcount == 0:
        try:
            with session.begin_nested():
                session.add(Throttle(key=key, count=1, window_started_at=now))
        except IntegrityError:  # another request made the row first
            session.execute(update(Throttle).where(Throttle.key == key).values(**values))
    current = session.execute(select(Throttle.count).where(Throttle.key == key)).scalar_one()
    if current >= limit:
        session.execute(update(Throttle).where(Throttle.key == key)
                        .values(locked_until=now + lock, count=0, window_started_at=now))
    session.commit()
    return current


def clear(session, key: str) -> None:
    """A right answer forgets the earlier failures of that number (its own commit)."""
    session.execute(update(Throttle).where(Throttle.key == key, Throttle.locked_until.is_(None))
                    .values(count=0))
    session.commit()
