"""What /metrics reads at scrape time (issue 16 §4): the outbox, the booking events of the
last minute and the age of the last good backup.

Read only, never a write: each figure is counted by the database (or read from the
backup folder's sidecars), so every app server answers the same values whichever one
Prometheus scrapes. A failure of one source never hides the others (the caller reports
it as "unavailable")."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from app import clock
from app.models.outbox import FAILED, QUEUED, OutboxMail
from app.models.reservation import EVENT_ARRIVED, EVENT_MADE, BookingEvent
from app.services import backups

WINDOW = timedelta(minutes=1)


@dataclass(frozen=True)
class DatabaseFigures:
    outbox_queued: int
    outbox_failed: int
    outbox_oldest_queued_seconds: float  # 0 when nothing waits
    bookings_last_minute: int  # booking events "made": web, phone, counter, walk-in
    checkins_last_minute: int  # booking events "arrived"


def database_figures(session, now: datetime | None = None) -> DatabaseFigures:
    """Three small counting queries on indexed columns; no row is loaded."""
    now = now or clock.now()
    outbox = dict(session.execute(
        select(OutboxMail.state, func.count()).where(OutboxMail.state.in_((QUEUED, FAILED)))
        .group_by(OutboxMail.state)).all())
    oldest = session.execute(
        select(func.min(OutboxMail.created_at)).where(OutboxMail.state == QUEUED)).scalar()
    events = dict(session.execute(
        select(BookingEvent.kind, func.count())
        .where(BookingEvent.kind.in_((EVENT_MADE, EVENT_ARRIVED)),
               BookingEvent.at > now - WINDOW, BookingEvent.at <= now)
        .group_by(BookingEvent.kind)).all())
    waited = max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
    return DatabaseFigures(
        outbox_queued=outbox.get(QUEUED, 0), outbox_failed=outbox.get(FAILED, 0),
        outbox_oldest_queued_seconds=waited,
        bookings_last_minute=events.get(EVENT_MADE, 0),
        checkins_last_minute=events.get(EVENT_ARRIVED, 0))


@dataclass(frozen=True)
class BackupFigures:
    last_good_age_seconds: float  # +Inf when there is no verified backup (or none readable)
    folder_readable: bool


def backup_figures(now: datetime | None = None) -> BackupFigures:
    """The age of the last verified backup, as the staff home shows it
    (:func:`backups.status`); an unreadable folder is reported, never raised."""
    now = now or clock.now()
    try:
        status = backups.status(now)
    except Exception:  # a scrape must not fail because of the backup folder
        return BackupFigures(math.inf, False)
    good = status.last_good
    if good is None or good.created_at is None:
        return BackupFigures(math.inf, status.problem is None)
    return BackupFigures(max((now - good.created_at).total_seconds(), 0.0),
                         status.problem is None)
