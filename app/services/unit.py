"""The one transaction boundary (issue 11 §1).

Every operation that changes data runs as one unit of work: it commits once when it
succeeds and rolls back when anything goes wrong, then re-raises. Services never call
``commit()`` or ``rollback()`` themselves and views never touch the session; both go
through :func:`transaction` (a context manager) or :func:`operation` (its decorator form).

A unit opened inside another joins it: only the outermost commits, so a service that is a
step of a larger operation (a hand-over moves the card and completes the booking) commits
with it or not at all. An error raised inside a joined unit propagates and the outermost
rolls everything back.

Two changes that wait for each other (a deadlock or serialisation failure on PostgreSQL, a
lock held past the busy timeout on SQLite) end at the boundary as
:class:`~app.services.errors.ConcurrentChangeError`, which the person can retry.

The only other place that commits is the throttle (app/services/throttle.py): a failed
guess must be counted even when the request that made it is refused, so it keeps its own
short transaction.
"""
from __future__ import annotations

from contextlib import contextmanager
from functools import wraps
from typing import Callable, Iterator, TypeVar

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, scoped_session

from app.extensions import session as app_session
from app.services.errors import ConcurrentChangeError

_DEPTH = "unit_depth"
T = TypeVar("T")


def _current_session():
    return app_session()


@contextmanager
def transaction(session=None) -> Iterator:
    """One unit of work on ``session`` (default: the app's): commit on success, roll back
    on any error and re-raise it. Nested units join the outermost."""
    session = session if session is not None else _current_session()
    depth = session.info.get(_DEPTH, 0)
    session.info[_DEPTH] = depth + 1
    try:
        yield session
        if depth == 0:
            session.commit()
    except BaseException as error:
        if depth == 0:
            session.rollback()
            if is_contention(error):
                raise ConcurrentChangeError() from None
        raise
    finally:
        session.info[_DEPTH] = depth


def operation(function: Callable[..., T]) -> Callable[..., T]:
    """Run a service function as one unit of work. Its first argument is the session when
    it is one (the services' convention); otherwise the app's session is used."""

    @wraps(function)
    def run(*args, **kwargs):
        session = args[0] if args and _is_session(args[0]) else None
        with transaction(session):
            return function(*args, **kwargs)

    return run


def in_transaction(session=None) -> bool:
    """True inside a unit of work (for helpers that must be called within one)."""
    session = session if session is not None else _current_session()
    return session.info.get(_DEPTH, 0) > 0


def discard(session=None) -> None:
    """End whatever a failed request left open, without keeping it: for the request's own
    error handlers and its teardown, never for a service."""
    session = session if session is not None else _current_session()
    session.info[_DEPTH] = 0
    session.rollback()


def is_contention(error: BaseException) -> bool:
    """A deadlock, serialisation failure or lock timeout: the change may be retried."""
    if not isinstance(error, DBAPIError) or isinstance(error, IntegrityError):
        return False
    code = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
    if code in ("40P01", "40001", "55P03"):  # deadlock, serialization, lock not available
        return True
    text = str(error.orig).lower()
    return "database is locked" in text or "database table is locked" in text


def _is_session(value) -> bool:
    return isinstance(value, (Session, scoped_session))
