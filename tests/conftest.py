"""Shared fixtures: one schema per run (built by the real migrations), a fresh app per
test, data wiped between tests. TEST_DATABASE_URL selects PostgreSQL; else SQLite."""
from __future__ import annotations

import contextvars
import os
import re
from datetime import datetime

import pytest
from flask.testing import FlaskClient
from sqlalchemy import delete

from app import create_app
from app.clock import JST
from tests.factories import FakeClock, UserFactory

KEEP_TABLES = {"ab_permission", "ab_view_menu", "ab_permission_view", "ab_role",
               "ab_permission_view_role", "alembic_version"}
# A Tuesday inside the staff hours.
DEFAULT_NOW = datetime(2026, 12, 1, 10, 0, tzinfo=JST)


@pytest.fixture(scope="session")
def instance_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("instance"))


@pytest.fixture(scope="session")
def database_url(instance_dir, request):
    """SQLite: a file per worker. PostgreSQL: TEST_DATABASE_URL, or under pytest-xdist a
    database per worker next to it, created here and dropped at the end."""
    worker_id = getattr(request.config, "workerinput", {}).get("workerid", "master")
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        yield f"sqlite:///{instance_dir}/test.db"
        return
    if worker_id == "master":
        yield url
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = make_url(url)
    name = f"{base.database}_{worker_id}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield base.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def base_config(instance_dir, database_url):
    return {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "INSTANCE_DIR": instance_dir,
        "WTF_CSRF_ENABLED": False,
        "SESSION_COOKIE_SECURE": False,
        "REMEMBER_COOKIE_SECURE": False,
        "FAB_PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",  # fast in tests only
        "RATELIMIT_STORAGE_URI": "memory://",
        "AUDIT_STRICT_ACTOR": True,  # a change nobody can be named for fails the test
    }


@pytest.fixture(scope="session")
def _schema(base_config):
    """Build the schema once with Alembic and sync the roles, as `flask init` does."""
    from app.cli import init_database

    app = create_app(dict(base_config))
    with app.app_context():
        init_database()
        app.appbuilder.session.remove()
    return True


@pytest.fixture
def clock():
    return FakeClock(DEFAULT_NOW)


@pytest.fixture
def app_config(base_config, clock):
    """Per-test overrides: tests may change this dict before `app` is built."""
    return {**base_config, "CLOCK": clock}


class IsolatedClient(FlaskClient):
    """Each request in its own app context (fresh ``g`` and database session), as in
    production, even while the test itself holds an app context open (``db``)."""

    def open(self, *args, **kwargs):
        return contextvars.Context().run(super().open, *args, **kwargs)


@pytest.fixture
def app(_schema, app_config):
    app = create_app(dict(app_config))
    app.test_client_class = IsolatedClient
    yield app
    with app.app_context():
        session = app.appbuilder.session
        session.rollback()
        from flask_appbuilder import Model

        for table in reversed(Model.metadata.sorted_tables):
            if table.name not in KEEP_TABLES:
                session.execute(delete(table))
        session.commit()
        session.remove()
        session.get_bind().dispose()


@pytest.fixture
def db(app):
    """The SQLAlchemy session inside an app context."""
    with app.app_context():
        yield app.appbuilder.session


@pytest.fixture
def users(app):
    return UserFactory(app)


@pytest.fixture
def client(app):
    return app.test_client()


def login(client, username: str, password: str, follow: bool = False):
    return client.post("/login/", data={"username": username, "password": password},
                       follow_redirects=follow)


@pytest.fixture
def login_as(app, users, client):
    """login_as(role) -> the signed-in user's test client."""
    def _login(role: str, username: str | None = None):
        user = users.create(role, username=username)
        response = login(client, user.username, users.password)
        assert response.status_code == 302, response.data[:500]
        assert "/login" not in response.headers.get("Location", "")
        return client
    return _login


def text_of(response) -> str:
    """The response body as text, tags removed, for assertions on what a person reads."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)))


_WRITE = re.compile(r"^\s*(WITH\b.*?\b)?(INSERT|UPDATE|DELETE|REPLACE|MERGE)\b", re.I | re.S)


@pytest.fixture
def no_writes():
    """``with no_writes(): client.get(...)`` fails the test when any INSERT, UPDATE or
    DELETE reaches the database inside the block (a GET never writes), naming them."""
    from contextlib import contextmanager

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @contextmanager
    def guard(what: str = ""):
        seen: list[str] = []

        def spy(conn, cursor, statement, parameters, context, executemany):
            if _WRITE.match(statement):
                seen.append(" ".join(statement.split())[:120])

        event.listen(Engine, "before_cursor_execute", spy)
        try:
            yield seen
        finally:
            event.remove(Engine, "before_cursor_execute", spy)
        assert not seen, f"{what} wrote to the database: {seen}"
    return guard


def bearer_client(app, users, role: str):
    """A REST API client for a new user of ``role``: (test client, Authorization header)
    with a JWT from /api/v1/security/login."""
    user = users.create(role)
    client = app.test_client()
    token = client.post("/api/v1/security/login", json={
        "username": user.username, "password": users.password, "provider": "db"}
    ).json["access_token"]
    return client, {"Authorization": f"Bearer {token}"}
