"""The database out of reach for a moment (a failover under way, a restart): the request
answers 503 with Retry-After, the site's "temporarily unavailable" page (JSON for the
APIs), instead of a 500 with an error reference. The next request reconnects: the pool
pings before use (config.py), and a libpq multi-host DATABASE_URL with
target_session_attrs=read-write finds the new primary (docs: bench/ha_drill.py)."""
from __future__ import annotations

from flask import Flask, current_app, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import ServiceUnavailable

from app import web

RETRY_AFTER_SECONDS = 5


def database_unavailable(error: OperationalError):
    current_app.logger.warning("database unavailable: %s %s: %s", request.method,
                               request.path, str(error.orig or error).splitlines()[0][:200])
    return web.http_error(ServiceUnavailable(retry_after=RETRY_AFTER_SECONDS))


def install(app: Flask) -> None:
    app.register_error_handler(OperationalError, database_unavailable)
