"""The history of each booking (booking_event): one row per thing that happened to it,
written in the same unit of work as the change itself, so the statistics (集計) count what
happened when it happened and a past month's figures never change later.

Every path that changes a booking calls :func:`record` inside its unit: the booking engine
(book, change, cancel), the desk (check-in, undo, complete, walk-in, the day's close) and
anything built on them. The actor is the audit trail's (a clerk, 住民:…, cli:…, system)."""
from __future__ import annotations

from datetime import datetime

from app.models.reservation import EVENT_KINDS, BookingEvent, Reservation
from app.services import audit


def record(session, reservation: Reservation, kind: str, at: datetime, *,
           by_staff: bool, channel: str | None = None) -> BookingEvent:
    """Add one event for ``reservation`` as it stands now (its slot, seats and channel
    after the change), in the caller's unit of work."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown booking event {kind!r}")
    event = BookingEvent(reservation_id=reservation.id, kind=kind, at=at, by_staff=by_staff,
                         actor=audit.current_actor(session).username[:100],
                         channel=channel or reservation.channel,
                         offer_id=reservation.offer_id, starts_at=reservation.starts_at,
                         seats=reservation.seats)
    session.add(event)
    return event
