"""Maintenance of the residents' site (O2): switched on now, or announced ahead."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _
from sqlalchemy import or_, select

from app.models.maintenance import MaintenanceWindow
from app.services import unit
from app.services.errors import MaintenanceStateError
from app.settings import settings


@dataclass
class MaintenanceStatus:
    active: MaintenanceWindow | None  # the window in force now
    upcoming: list[MaintenanceWindow]  # announced windows that start later


def maintenance_status(session, now: datetime,
                       banner_days: int | None = None) -> MaintenanceStatus:
    """The window in force at ``now`` and those announced to start within ``banner_days``
    (default: the MAINTENANCE_BANNER_DAYS setting)."""
    if banner_days is None:
        banner_days = settings().maintenance_banner_days
    windows = session.execute(
        select(MaintenanceWindow)
        .where(or_(MaintenanceWindow.ends_at.is_(None), MaintenanceWindow.ends_at > now))
        .where(MaintenanceWindow.starts_at <= now + timedelta(days=banner_days))
        .order_by(MaintenanceWindow.starts_at)
    ).scalars().all()
    active = next((w for w in windows if w.starts_at <= now), None)
    upcoming = [w for w in windows if w.starts_at > now]
    return MaintenanceStatus(active, upcoming)


@unit.operation
def start_maintenance_now(session, now: datetime, message: str, username: str,
                          message_en: str | None = None) -> MaintenanceWindow:
    """Put the residents' site into maintenance at once, until ended (``message_en``: the
    optional English message for residents who chose English)."""
    if maintenance_status(session, now).active is not None:
        raise MaintenanceStateError(_("Maintenance is already in progress."))
    window = MaintenanceWindow(starts_at=now, ends_at=None, message=message,
                               message_en=message_en, created_by=username)
    session.add(window)
    session.flush()
    return window


@unit.operation
def end_maintenance_now(session, now: datetime) -> MaintenanceWindow:
    """End the maintenance in force now."""
    window = maintenance_status(session, now).active
    if window is None:
        raise MaintenanceStateError(_("No maintenance is in progress."))
    window.ends_at = now
    session.flush()
    return window
