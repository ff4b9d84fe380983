"""Extensions that are safe to share between app instances.

SQLA and AppBuilder are created inside create_app (one per app); reach them with
``current_app.appbuilder`` or :func:`session`.
"""
from flask import current_app
from flask_migrate import Migrate
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
migrate = Migrate()


def session():
    """The SQLAlchemy session of the current app."""
    return current_app.appbuilder.session
