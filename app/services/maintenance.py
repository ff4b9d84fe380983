"""Maintenance of the residents' site (O2): switched on now, or announced ahead."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select

from app.models.maintenance import MaintenanceWindow
from flask_babel import lazy_gettext as _

from app.services.errors import MaintenanceStateError


@dataclass
class MaintenanceStatus:
    active: MaintenanceWindow | None  # the window in force now
    upcoming: list[MaintenanceWindow]  # announced windows that start later


def maintenance_status(session, now: datetime, banner_days: int = 14) -> MaintenanceStatus:
    windows = session.execute(
        select(MaintenanceWindow)
        .where(or_(MaintenanceWindow.ends_at.is_(None), MaintenanceWindow.ends_at > now))
        .where(MaintenanceWindow.starts_at <= now + timedelta(days=banner_days))
        .order_by(MaintenanceWindow.starts_at)
    ).scalars().all()
    active = next((w for w in windows if w.starts_at <= now), None)
    upcoming = [w for w in windows if w.starts_at > now]
    return MaintenanceStatus(active, upcoming)


def start_maintenance_now(session, now: datetime, message: str, username: str) -> MaintenanceWindow:
    """Put the residents' site into maintenance at once, until ended."""
    if maintenance_status(session, now).active is not None:
        raise MaintenanceStateError(_("Maintenance is already in progress."))
    window = MaintenanceWindow(starts_at=now, ends_at=None, message=message, created_by=username)
    session.add(window)
    session.commit()
    return window


def end_maintenance_now(session, now: datetime) -> MaintenanceWindow:
    """End the maintenance in force now."""
    window = maintenance_status(session, now).active
    if window is None:
        raise MaintenanceStateError(_("No maintenance is in progress."))
    window.ends_at = now
    session.commit()
    return window
