"""The one clock of the application: Japan time, injectable for tests.

Tests set ``app.config["CLOCK"]`` to a callable returning an aware datetime.
"""
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context

JST = ZoneInfo("Asia/Tokyo")


def now() -> datetime:
    """The current time in Asia/Tokyo (aware)."""
    if has_app_context():
        clock = current_app.config.get("CLOCK")
        if clock is not None:
            value = clock()
            return value if value.tzinfo else value.replace(tzinfo=JST)
    return datetime.now(JST)


def to_jst(value: datetime | None) -> datetime | None:
    """Aware datetime in Japan time. Naive values are the server's local time (FAB writes
    ``datetime.now()`` into its own columns); ours are aware (AwareDateTime)."""
    if value is None:
        return None
    return value.astimezone(JST)
