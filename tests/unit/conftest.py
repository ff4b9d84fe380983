"""Fixtures of the unit tests."""
import pytest


@pytest.fixture
def migration_app(tmp_path, base_config):
    """An app on a throwaway SQLite file with no schema yet, for walking migrations up and
    down (SQLite only: the PostgreSQL pass shares one server database)."""
    if not base_config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("SQLite only (a throwaway database file of its own)")
    from app import create_app

    app = create_app({**base_config, "SQLALCHEMY_DATABASE_URI":
                      f"sqlite:///{tmp_path}/migrate.db", "INSTANCE_DIR": str(tmp_path)})
    with app.app_context():
        yield app
        app.appbuilder.session.remove()
        app.appbuilder.session.get_bind().dispose()
