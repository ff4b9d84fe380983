"""Extensions that are safe to share between app instances.

SQLA and AppBuilder are created inside create_app (one per app); reach them with
``current_app.appbuilder`` or :func:`session`.
"""
import contextlib

from flask import current_app
from flask_appbuilder.models.sqla.base import SQLA
from flask_migrate import Migrate
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import event
from sqlalchemy.exc import InterfaceError, OperationalError

csrf = CSRFProtect()
migrate = Migrate()


class AppSQLA(SQLA):
    """FAB's Flask-SQLAlchemy, whose end of request survives a dead connection.

    At the end of every request the session is closed, which rolls back on its connection.
    When the database went away under the request (the primary stopped in a failover) that
    rollback raises, in the teardown, after the response was chosen: gunicorn then answered
    a bare 500 instead of the 503 the request had made (seen in `make ha-drill`). The
    session is then invalidated instead: its connections are dropped, never returned to the
    pool, and nothing more is sent to the server."""

    def _teardown_session(self, exc: BaseException | None) -> None:
        try:
            self.session.remove()
        except (OperationalError, InterfaceError) as error:
            current_app.logger.warning("end of request: the database connection was lost: %s",
                                       str(error.orig or error).splitlines()[0][:200])
            with contextlib.suppress(Exception):
                self.session.registry().invalidate()
            self.session.registry.clear()


def session():
    """The SQLAlchemy session of the current app."""
    return current_app.appbuilder.session


def tune_sqlite(engine) -> None:
    """SQLite serves several worker processes: WAL lets readers go on while one writes, and
    a writer waits (up to 15 s) for the lock instead of failing at once. Foreign keys are
    enforced as on PostgreSQL (SQLite leaves them off unless asked, per connection);
    migrations switch them off for their own run (migrations/env.py)."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout = 15000")
        cursor.execute("PRAGMA foreign_keys = ON")
        if engine.url.database and engine.url.database != ":memory:":
            cursor.execute("PRAGMA journal_mode = WAL")
            # Read the file through a shared memory map (up to 256 MB) instead of one read()
            # per page: the reports that touch rows all over a large history
            # (app/services/statistics.py) take half the time or less.
            cursor.execute("PRAGMA mmap_size = 268435456")
        cursor.close()
