"""The application factory."""
from __future__ import annotations

import logging
import os

from flask import Flask
from flask_appbuilder import AppBuilder

import config as default_config
from app import models  # noqa: F401  (every table into Model.metadata)
from app import secrets as app_secrets
from app import proxies, settings, unavailable, web
from app.extensions import AppSQLA, csrf, migrate, tune_sqlite
from app.services import audit, deletion
from app.services.fields import id_converter
from app.services.passwords import fab_password_validator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app: config, database, security, staff views, residents' site, CLI."""
    app = Flask(__name__)
    app.url_map.converters["id"] = id_converter()  # <id:pk>: record ids, 404 when out of range
    app.config.from_object(default_config)
    if test_config:
        app.config.update(test_config)
    settings.load(app)  # typed and checked once; a wrong value stops the start here
    instance_dir = app.config["INSTANCE_DIR"]
    app.instance_path = instance_dir
    for key, filename in (("SECRET_KEY", "secret_key"), ("AUDIT_HMAC_KEY", "audit_hmac_key")):
        if not app.config.get(key):
            app.config[key] = app_secrets.load_or_create(instance_dir, filename)
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = os.path.join(ROOT, "translations")
    hops = app.config.get("PROXY_FIX_HOPS") or 0
    if not isinstance(hops, int) or isinstance(hops, bool) or not 0 <= hops <= 5:
        raise ValueError("PROXY_FIX_HOPS must be a whole number from 0 to 5")
    if hops:  # believed only from FORWARDED_ALLOW_IPS (app/proxies.py)
        app.wsgi_app = proxies.TrustedProxyFix(
            app.wsgi_app, hops, proxies.parse_trusted(app.config.get("FORWARDED_ALLOW_IPS")))

    app.config["FAB_PASSWORD_COMPLEXITY_VALIDATOR"] = fab_password_validator

    # FAB lists a filter for every column and warns about Time columns, which it cannot
    # filter; our views leave them out of search_columns, so the warning is only noise.
    logging.getLogger("flask_appbuilder.models.filters").addFilter(
        lambda record: "Filter type not supported" not in record.getMessage())

    db = AppSQLA()
    db.init_app(app)
    csrf.init_app(app)  # before AppBuilder, or FAB's delete links work on GET
    migrate.init_app(app, db, directory=os.path.join(ROOT, "migrations"))
    audit.install_listeners()
    deletion.install_listeners()  # a delete while other rows point at the row: refused

    # The top layers (staff screens, residents' site, CLI) are imported here, when an app
    # is built, and not at the top of this module: ``app`` is the parent package of every
    # module and Python runs this file before any of them, so importing them at its top
    # would make importing any model or service alone (a migration, a unit test, a script)
    # load every screen, the residents' site and every command (with the QR decoder) too.
    from app.cli import register_cli
    from app.public import bp as public_bp
    from app.views import register_views
    from app.views.home import HomeView

    with app.app_context():
        tune_sqlite(db.engine)
        appbuilder = AppBuilder(indexview=HomeView, base_template="staff_base.html")
        appbuilder.init_app(app, db.session)
        register_views(appbuilder)
        app.extensions["views_by_name"] = {
            view.__class__.__name__: view for view in appbuilder.baseviews
        }

    app.register_blueprint(public_bp)
    web.install(app)
    unavailable.install(app)  # the database out of reach: 503 with Retry-After
    register_cli(app)
    return app
