"""Shared fixtures: one schema per run (built by the real migrations), one app per worker
shared by the tests, a clean database and the default settings for every test.

- ``app``: the worker's shared app. Before each test it gets the test's clock (and the
  settings a fixture put into ``app_config``); after each test its config and settings
  are put back, Flask-Limiter's counts emptied, its database sessions closed, and the
  tables that got rows are emptied (``_schema``). A test that changes the app itself (a
  route, a setting only read when the app is built, such as PROXY_FIX_HOPS) gets its own
  app: ``@pytest.mark.own_app``, or automatically when ``app_config`` holds such a key.
- A test changes a setting with ``settings.configure(app, KEY=value)``; it is undone
  after the test.

TEST_DATABASE_URL selects PostgreSQL; else SQLite."""
from __future__ import annotations

import contextvars
import copy
import os
import re
from dataclasses import fields
from datetime import datetime

import pytest
from flask.testing import FlaskClient
from sqlalchemy import create_engine, delete, text

from app import create_app, settings
from app.clock import JST
from tests.factories import FakeClock, UserFactory

KEEP_TABLES = {"ab_permission", "ab_view_menu", "ab_permission_view", "ab_role",
               "ab_permission_view_role", "alembic_version"}
# A Tuesday inside the staff hours.
DEFAULT_NOW = datetime(2026, 12, 1, 10, 0, tzinfo=JST)
# Keys an ``app_config`` override may change on the shared app, because the app reads them
# while it serves (the product's typed settings, Flask's exception handling); any other key
# is read when the app is built, so a test that overrides it gets an app of its own.
RUNTIME_KEYS = frozenset({field.name.upper() for field in fields(settings.Settings)}
                         | {"CLOCK", "PROPAGATE_EXCEPTIONS"})


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
        # Background exports run inside the request (tests/web/test_export_jobs.py also
        # runs one in a real thread).
        "EXPORT_JOBS_INLINE": True,
        # Slots made ahead: the tests' dates lie within four months of DEFAULT_NOW (an
        # offer's own booking window still counts when longer). Production: 400 days.
        "SLOTS_AHEAD_DAYS": 120,
    }


class Wiper:
    """Empties the data tables that hold rows (one query finds them), children first; the
    roles and permissions made by ``init`` stay. Its own engine: it also cleans up after
    tests that build their own app, or write from threads and other processes."""

    def __init__(self, url: str):
        from flask_appbuilder import Model

        from app import models  # noqa: F401  (every table into Model.metadata)

        self.engine = create_engine(url)
        self.tables = [t for t in reversed(Model.metadata.sorted_tables)
                       if t.name not in KEEP_TABLES]
        quote = self.engine.dialect.identifier_preparer.quote
        self.probe = text(" UNION ALL ".join(
            f"SELECT '{t.name}' WHERE EXISTS (SELECT 1 FROM {quote(t.name)})"
            for t in self.tables))

    def __call__(self) -> list[str]:
        with self.engine.begin() as connection:
            filled = {name for (name,) in connection.execute(self.probe)}
            for table in self.tables:
                if table.name in filled:
                    connection.execute(delete(table))
        return sorted(filled)

    def dispose(self) -> None:
        self.engine.dispose()


@pytest.fixture(scope="session")
def _built_schema(base_config):
    """Build the schema once with Alembic and sync the roles, as `flask init` does; leave
    the data tables empty."""
    from app.cli import init_database

    app = create_app(dict(base_config))
    with app.app_context():
        init_database()
        app.appbuilder.session.remove()
        app.appbuilder.session.get_bind().dispose()
    wiper = Wiper(base_config["SQLALCHEMY_DATABASE_URI"])
    wiper()
    yield wiper
    wiper.dispose()


@pytest.fixture
def _schema(_built_schema):
    """The schema, and after the test a clean database (every table that got rows)."""
    yield True
    _built_schema()


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


class _Baseline:
    """What a test may change on the shared app, as it was before the first test: the
    config (put back key by key), and the app's structure (checked, never silently
    shared: a test that adds a route or a hook needs ``@pytest.mark.own_app``)."""

    def __init__(self, app):
        self.config = copy.deepcopy(dict(app.config))
        self.shape = self._shape(app)

    @staticmethod
    def _shape(app):
        return (sorted(app.view_functions), sorted(app.extensions), app.wsgi_app,
                sorted(app.jinja_env.globals),
                {k: list(v) for k, v in app.before_request_funcs.items()},
                {k: list(v) for k, v in app.after_request_funcs.items()},
                sorted(app.blueprints))

    def restore(self, app) -> None:
        config = app.config
        for key in [k for k in config if k not in self.config]:
            del config[key]
        for key, value in self.config.items():
            if key not in config or config[key] is not value and config[key] != value:
                config[key] = copy.deepcopy(value)
        settings.load(app)
        assert self._shape(app) == self.shape, (
            "the test changed the shared app (a route, hook, extension or wsgi_app): "
            "mark it @pytest.mark.own_app")


def _close_sessions(app) -> None:
    """Close every database session the app still holds (one per app context that did
    not end cleanly, e.g. in a thread), so none is picked up by the next test."""
    registry = app.appbuilder.session.registry
    for session in list(getattr(registry, "registry", {}).values()):
        session.close()
    getattr(registry, "registry", {}).clear()


@pytest.fixture(scope="session")
def _shared(_built_schema, base_config):
    """The worker's app, built once, and its baseline; ``app`` hands the app to each test
    and resets it after."""
    app = create_app(dict(base_config))
    app.test_client_class = IsolatedClient
    yield app, _Baseline(app)
    _dispose(app)


def _own_app(app_config):
    app = create_app(dict(app_config))
    app.test_client_class = IsolatedClient
    return app


def _dispose(app) -> None:
    _close_sessions(app)
    with app.app_context():
        app.appbuilder.session.get_bind().dispose()


@pytest.fixture
def app(request, _schema, app_config, base_config):
    """The app of the test: the shared one with this test's clock and settings, or its own
    (``@pytest.mark.own_app``, or ``app_config`` changed a key read at build time)."""
    overrides = {key: value for key, value in app_config.items()
                 if key != "CLOCK" and (key not in base_config or base_config[key] != value)}
    if request.node.get_closest_marker("own_app") or not set(overrides) <= RUNTIME_KEYS:
        own = _own_app(app_config)
        yield own
        _dispose(own)
        return
    app, baseline = request.getfixturevalue("_shared")
    app.config["CLOCK"] = app_config["CLOCK"]
    if overrides:
        settings.configure(app, **overrides)
    try:
        yield app
    finally:
        _close_sessions(app)
        app.appbuilder.sm.limiter.reset()  # memory:// counts of Flask-Limiter
        baseline.restore(app)


@pytest.fixture
def make_app(_schema, app_config):
    """make_app(**config) -> an app of its own for this test, built with ``app_config`` and
    the given keys (settings read only at build time, another database ...)."""
    made = []

    def make(**overrides):
        made.append(_own_app({**app_config, **overrides}))
        return made[-1]
    yield make
    for app in made:
        _dispose(app)


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
        # A second call in one test switches the user: FAB answers a sign-in while signed
        # in with a redirect and keeps the first user, so sign out first.
        client.get("/logout/")
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


def pytest_collection_modifyitems(config, items):
    """The second pass of `make test` (ONLY_DATABASE_TESTS=1, on PostgreSQL) runs only the
    tests that use a database: one that never touches it (a parser, a catalogue check)
    gives the same answer on either and ran in the first pass."""
    if os.environ.get("ONLY_DATABASE_TESTS") != "1":
        return
    keep = [item for item in items if "database_url" in getattr(item, "fixturenames", ())]
    dropped = [item for item in items if item not in keep]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
