"""The history of each booking (booking_event): one row per thing that happened to it,
written in the same unit of work as the change itself, so the statistics (集計) count what
happened when it happened and a past month's figures never change later.

Every path that changes a booking calls :func:`record` inside its unit, after its
compare-and-set succeeded (a refused change rolls back and leaves no event): the booking
engine (book → made, change_slot → changed, cancel → cancelled), the desk (check-in →
arrived, undo → undone, complete → completed, the hand-over's completion, the day's close →
no_show, a walk-in → made with channel walk_in, then arrived) and anything built on them
(the residents' site, the staff screens, the REST API, the CLI).

``by_staff`` says whether the office did it (a clerk, a staff screen, the API, the office's
own command or job) rather than the resident on the residents' site. The actor is the audit
trail's (a clerk, 住民:…, cli:…, system). The rows are not in the audit trail themselves:
each is the copy of a change that is (the booking's create or its compare-and-set)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from app.models.reservation import EVENT_KINDS, EVENT_MADE, BookingEvent, Reservation
from app.services import audit


def origin_channel(session, reservation: Reservation) -> str:
    """The channel the booking's history counts it under: that of its "made" event (a
    walk-in is 窓口 on the booking, walk_in in its history), else the booking's own."""
    made = session.execute(select(BookingEvent.channel).where(
        BookingEvent.reservation_id == reservation.id, BookingEvent.kind == EVENT_MADE)
        .order_by(BookingEvent.id).limit(1)).scalar()
    return made or reservation.channel


def record(session, reservation: Reservation, kind: str, at: datetime, *,
           by_staff: bool, channel: str | None = None) -> BookingEvent:
    """Add one event for ``reservation`` as it stands now (its slot, seats and channel
    after the change), in the caller's unit of work. Without ``channel`` the event keeps
    the channel the booking was made through (:func:`origin_channel`)."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown booking event {kind!r}")
    if channel is None:
        channel = reservation.channel if kind == EVENT_MADE \
            else origin_channel(session, reservation)
    event = BookingEvent(reservation_id=reservation.id, kind=kind, at=at, by_staff=by_staff,
                         actor=audit.current_actor(session).username[:100],
                         channel=channel, offer_id=reservation.offer_id,
                         starts_at=reservation.starts_at, seats=reservation.seats)
    session.add(event)
    return event
