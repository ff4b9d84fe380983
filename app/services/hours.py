"""Operating hours of the staff site (O1).

Open 06:30-23:00 Japan time; closed the day after the third Saturday of each month
and 12/29-1/3; all configurable. Pure functions of (now, config) so the edges test cleanly.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Mapping

from app.clock import JST


@dataclass(frozen=True)
class HoursStatus:
    is_open: bool
    reopens_at: datetime | None  # when closed: the next opening time
    closes_at: datetime | None  # when open: today's closing time


def _hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def third_saturday(year: int, month: int) -> date:
    first = date(year, month, 1)
    offset = (5 - first.weekday()) % 7  # Saturday is weekday 5
    return first + timedelta(days=offset + 14)


def _in_year_end(day: date, span: tuple[str, str]) -> bool:
    start, end = span
    key = day.strftime("%m-%d")
    if start <= end:
        return start <= key <= end
    return key >= start or key <= end  # wraps over the new year


def is_closed_day(day: date, config: Mapping) -> bool:
    """True when the staff site is closed all day."""
    if config.get("STAFF_CLOSED_DAY_AFTER_THIRD_SATURDAY", True):
        if day - timedelta(days=1) == third_saturday(day.year, day.month):
            return True
    span = config.get("STAFF_CLOSED_YEAR_END")
    if span and _in_year_end(day, tuple(span)):
        return True
    return day.isoformat() in set(config.get("STAFF_CLOSED_DATES") or [])


def staff_hours_status(now: datetime, config: Mapping) -> HoursStatus:
    """Whether the staff site is open at ``now`` and, if not, when it reopens."""
    now = now.astimezone(JST)
    opens = _hhmm(config.get("STAFF_HOURS_OPEN", "06:30"))
    closes = _hhmm(config.get("STAFF_HOURS_CLOSE", "23:00"))
    today = now.date()
    open_today = datetime.combine(today, opens, JST)
    close_today = datetime.combine(today, closes, JST)
    if not is_closed_day(today, config) and open_today <= now < close_today:
        return HoursStatus(True, None, close_today)
    day = today if now < open_today else today + timedelta(days=1)
    for _ in range(400):
        if not is_closed_day(day, config):
            return HoursStatus(False, datetime.combine(day, opens, JST), None)
        day += timedelta(days=1)
    return HoursStatus(False, None, None)
