"""Operating hours of the staff site (O1).

Open 06:30-23:00 Japan time; closed the day after the third Saturday of each month
and the year end (12/29-1/3, app/services/calendar.YEAR_END); all configurable. Pure
functions of (now, settings) so the edges test cleanly.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Mapping

from flask import current_app, has_app_context

from app.clock import JST
from app.services.calendar import in_year_end
from app.settings import Settings, build, settings as app_settings


@dataclass(frozen=True)
class HoursStatus:
    is_open: bool
    reopens_at: datetime | None  # when closed: the next opening time
    closes_at: datetime | None  # when open: today's closing time


def third_saturday(year: int, month: int) -> date:
    first = date(year, month, 1)
    offset = (5 - first.weekday()) % 7  # Saturday is weekday 5
    return first + timedelta(days=offset + 14)


def _typed(settings: Settings | Mapping) -> Settings:
    """The typed settings; a config mapping (older callers: app/web.py passes
    ``current_app.config``) is read as the app's settings or checked and typed once here."""
    if isinstance(settings, Settings):
        return settings
    if has_app_context() and settings is current_app.config:
        return app_settings()
    return build(settings)


def is_closed_day(day: date, settings: Settings | Mapping) -> bool:
    """True when the staff site is closed all day."""
    settings = _typed(settings)
    if settings.staff_closed_day_after_third_saturday:
        if day - timedelta(days=1) == third_saturday(day.year, day.month):
            return True
    if in_year_end(day, settings.staff_closed_year_end):
        return True
    return day.isoformat() in settings.staff_closed_dates


def staff_hours_status(now: datetime, settings: Settings | Mapping) -> HoursStatus:
    """Whether the staff site is open at ``now`` and, if not, when it reopens."""
    settings = _typed(settings)
    now = now.astimezone(JST)
    opens, closes = settings.staff_hours_open, settings.staff_hours_close
    today = now.date()
    open_today = datetime.combine(today, opens, JST)
    close_today = datetime.combine(today, closes, JST)
    if not is_closed_day(today, settings) and open_today <= now < close_today:
        return HoursStatus(True, None, close_today)
    day = today if now < open_today else today + timedelta(days=1)
    for _ in range(400):
        if not is_closed_day(day, settings):
            return HoursStatus(False, datetime.combine(day, opens, JST), None)
        day += timedelta(days=1)
    return HoursStatus(False, None, None)
