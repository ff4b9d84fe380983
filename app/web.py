"""Request hooks for every page: security headers, staff hours, idle timeout, health,
and audit of opening a person's detail page."""
from __future__ import annotations

import secrets

from flask import (Flask, abort, current_app, flash, g, jsonify, make_response, redirect,
                   render_template, request, session, url_for)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, logout_user
from flask_wtf.csrf import CSRFError
from sqlalchemy import text
from sqlalchemy.exc import DataError
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import RoutingException

from app import clock, metrics, observability
from app.extensions import session as db_session
from app.services import audit, unit
from app.services.fields import parse_id
from app.services.hours import staff_hours_status
from app.settings import settings

# Blueprints and endpoints that are not the staff site (or must work when it is closed).
NOT_STAFF_BLUEPRINTS = {"public", "static", "appbuilder", "LocaleView"}
ALWAYS_OPEN_ENDPOINTS = {"static", "healthz", metrics.ENDPOINT, "AuthDBView.login",
                         "AuthDBView.logout"}
# Requests a page makes by itself (refreshing figures): they do not keep a session alive.
PASSIVE_ENDPOINTS = {"DeskView.live_counts"}


def csp_nonce() -> str:
    if not hasattr(g, "csp_nonce"):
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def _content_security_policy() -> str:
    nonce = csp_nonce()
    return "; ".join([
        "default-src 'self'",
        f"script-src 'self' 'nonce-{nonce}'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


def _is_staff_request() -> bool:
    if request.endpoint in ALWAYS_OPEN_ENDPOINTS or request.endpoint is None:
        return False
    return (request.blueprint or "") not in NOT_STAFF_BLUEPRINTS


def _is_sysadmin() -> bool:
    if not current_user.is_authenticated:
        return False
    admin = current_app.config["AUTH_ROLE_ADMIN"]
    return any(role.name == admin for role in current_user.roles)


def staff_hours_gate():
    """Outside O1's hours staff pages answer 503 with when the site reopens."""
    if not settings().staff_hours_enforced or not _is_staff_request():
        return None
    status = staff_hours_status(clock.now(), settings())
    if status.is_open:
        return None
    if settings().staff_hours_admin_bypass and _is_sysadmin():
        return None
    response = current_app.make_response(
        (render_template("closed.html", reopens_at=status.reopens_at), 503))
    if status.reopens_at is not None:
        seconds = int((status.reopens_at - clock.now()).total_seconds())
        response.headers["Retry-After"] = str(max(seconds, 60))
    return response


def idle_timeout():
    """Sign a staff user out after IDLE_TIMEOUT_MINUTES without a request."""
    if not current_user.is_authenticated or request.blueprint == "public":
        return None
    now = clock.now().timestamp()
    limit = settings().idle_timeout_minutes * 60
    last = session.get("_last_seen")
    if last is not None and now - last > limit:
        user_id, username = current_user.id, current_user.username
        logout_user()
        session.pop("_last_seen", None)
        audit.record_event(audit.ACTION_LOGOUT, "ab_user", user_id, {"reason": "idle timeout"},
                           actor=audit.Actor(user_id, username, request.remote_addr))
        flash(_("You were signed out after a period of inactivity. Please sign in again."),
              "warning")
        return redirect(current_app.appbuilder.get_url_for_login_with(request.full_path))
    if request.endpoint not in PASSIVE_ENDPOINTS:  # a page polling by itself is not activity
        session["_last_seen"] = now
    session.permanent = True
    return None


def refuse_malformed_request():
    """A record id in the URL that is no record id (FAB's own ``<pk>`` and ``<int:pk>``
    routes: too large for the database, not ASCII digits) is "not found"; a NUL byte in the
    address or the query string (which PostgreSQL refuses) is a bad request. Our own routes
    use the ``<id:...>`` converter (app/services/fields.py)."""
    pk = (request.view_args or {}).get("pk")
    if pk is not None and parse_id(pk) is None:
        abort(404)
    if "\x00" in request.path or any("\x00" in key or "\x00" in value
                                     for key, value in request.args.items(multi=True)):
        abort(400)


def security_headers(response):
    response.headers.setdefault("Content-Security-Policy", _content_security_policy())
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    response.headers.setdefault("Permissions-Policy", "camera=(self), geolocation=()")
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if current_user.is_authenticated and request.blueprint != "appbuilder":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def audit_detail_views(response):
    """Opening a detail page of a view marked ``audit_show`` is an audit event."""
    endpoint = request.endpoint or ""
    if response.status_code != 200 or not endpoint.endswith(".show"):
        return response
    view = current_app.extensions.get("views_by_name", {}).get(endpoint.split(".")[0])
    if view is not None and getattr(view, "audit_show", False):
        audit.record_event(audit.ACTION_VIEW, view.datamodel.obj.__tablename__,
                           (request.view_args or {}).get("pk"))
    return response


def healthz():
    """For a load balancer: 200 when the database answers, 503 when not."""
    try:
        db_session().execute(text("SELECT 1"))
        return jsonify(status="ok", database="ok")
    except Exception as error:  # any database failure means "not healthy"
        unit.discard(db_session())
        current_app.logger.warning("healthz: database unavailable: %s", error)
        return jsonify(status="error", database="unavailable"), 503


def stale_form(error):
    """An expired or missing form token (CSRF): say so plainly; nothing was changed."""
    if request.blueprint == "public":
        return render_template("public/stale.html"), 400
    target = request.referrer or "/"
    if not target.startswith(request.host_url):
        target = "/"
    return render_template("stale.html", back=target), 400


def out_of_range(error):
    """Backstop for a number no column can hold that reached the database anyway (a FAB list
    parameter such as ``psize`` or a filter value): the database refuses it (SQLite:
    OverflowError; PostgreSQL: DataError). Nothing was changed; answer "not found"."""
    unit.discard(db_session())
    current_app.logger.warning("refused a value the database cannot hold: %s",
                               str(error).splitlines()[0][:200])
    if request.path.startswith("/api/"):
        return jsonify(message="Not found"), 404
    return current_app.handle_http_exception(NotFound())


# The error pages (templates error.html, public/error.html): what a clerk or a resident
# reads for each status, instead of Werkzeug's English pages.
ERROR_CODES = (400, 403, 404, 405, 413, 429, 500, 503)


def _public_prefix() -> str:
    blueprint = current_app.blueprints.get("public")
    return (blueprint.url_prefix if blueprint is not None else None) or "/reserve"


def is_public_request() -> bool:
    """The residents' site: its blueprint, or an address under its prefix (a 404 or 405
    found while routing has no blueprint yet)."""
    if request.blueprint == "public":
        return True
    prefix = _public_prefix()
    return request.path == prefix or request.path.startswith(prefix + "/")


def is_api_request() -> bool:
    """Scripts' addresses answer JSON: the staff REST API and the residents' JSON."""
    return (request.path.startswith("/api/")
            or request.path.startswith(_public_prefix() + "/api/"))


def error_reference() -> str:
    """A short reference a clerk can read out on the phone: E-20261127-1A2B3C."""
    return f"E-{clock.now().strftime('%Y%m%d')}-{secrets.token_hex(3).upper()}"


def _back_link() -> str | None:
    """The previous screen, when it is on this site."""
    target = request.referrer or ""
    if target.startswith(request.host_url) and target != request.url:
        return target
    return None


def _render_error(code: int, reference: str | None) -> str:
    if is_public_request():
        try:
            return render_template("public/error.html", code=code, reference=reference)
        except Exception:  # its layout reads notices and maintenance from the database
            current_app.logger.exception("error page: the residents' layout failed; plain page")
            unit.discard(db_session())
            return render_template(
                "error.html", layout="plain_base.html", code=code, reference=reference,
                back=None, home_url=url_for("public.index"),
                home_label=_("Back to the top page of the booking site"))
    context = {"code": code, "reference": reference, "back": _back_link()}
    try:
        return render_template("error.html", layout="appbuilder/base.html",
                               base_template=current_app.appbuilder.base_template,
                               appbuilder=current_app.appbuilder, **context)
    except Exception:  # the menu itself failed (the database, when it is the cause)
        current_app.logger.exception("error page: the staff layout failed; plain page")
        unit.discard(db_session())
        return render_template("error.html", layout="plain_base.html", **context)


def http_error(error: HTTPException):
    """Every HTTP error (abort(), routing, FAB's refusals) as a page of its site in the
    user's language; the APIs answer JSON. Redirects and prepared responses pass."""
    if (isinstance(error, RoutingException) or error.code is None or error.code < 400
            or error.response is not None):
        return error
    code = error.code
    shown = code if code in ERROR_CODES else (500 if code >= 500 else 400)
    reference = None
    if code >= 500:
        unit.discard(db_session())  # whatever the failed request left open
    if shown == 500:
        reference = error_reference()
        cause = getattr(error, "original_exception", None)
        current_app.logger.error(
            "Error reference %s: %s %s", reference, request.method, request.path,
            exc_info=(type(cause), cause, cause.__traceback__) if cause else None)
    if is_api_request():
        body = {"message": error.name, "request_id": observability.request_id()}
        if reference:
            body["reference"] = reference
        response = make_response(jsonify(body), code)
    else:
        response = make_response(_render_error(shown, reference), code)
    for name, value in error.get_headers():  # Allow (405), Retry-After (429, 503)
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def install(app: Flask) -> None:
    # Here, not at the top: app/__init__.py imports this module, and app.views (the package
    # of every staff screen) would then be imported while the app package is initialising.
    from app.views import guard
    from app.views.access import can_open

    app.register_error_handler(CSRFError, stale_form)
    app.register_error_handler(OverflowError, out_of_range)
    app.register_error_handler(DataError, out_of_range)
    app.register_error_handler(HTTPException, http_error)  # CSRFError (a 400) keeps its own
    guard.install(app)  # FAB's own CRUD endpoints: unknown actions, downloads, list arguments
    # A global, not a context processor: FAB's widgets render without the request context.
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    app.jinja_env.globals["get_locale"] = get_locale
    app.jinja_env.globals["can_open"] = can_open
    app.before_request(refuse_malformed_request)
    app.before_request(staff_hours_gate)
    app.before_request(idle_timeout)
    app.after_request(audit_detail_views)
    app.after_request(security_headers)
    app.add_url_rule("/healthz", "healthz", healthz)
    observability.install(app)  # request id, access line, LOG_FORMAT
    metrics.install(app)  # /metrics and the request counters
