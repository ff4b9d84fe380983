"""Our security manager: FAB's, plus account lockout, the password policy on every
path that sets a password, login/logout in the audit trail (FAB has neither), sessions and
JWTs that end when the account is locked, deactivated or gets a new password, a sign-in
limit shared by every worker, a password change that asks for the current password, and
sign-out by POST only."""
from __future__ import annotations

import os
from datetime import timedelta

from flask import current_app, flash, g, redirect, request, session
from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget
from flask_appbuilder.security.api import SecurityApi as FabSecurityApi
from flask_appbuilder.security.forms import LoginForm_db, ResetPasswordForm
from flask_appbuilder.security.sqla.manager import SecurityManager
from flask_appbuilder.security.utils import is_null_password
from flask_appbuilder.security.views import AuthDBView as FabAuthDBView
from flask_appbuilder.security.views import ResetMyPasswordView as FabResetMyPasswordView
from flask_appbuilder.validators import PasswordComplexityValidator
from flask_appbuilder.views import expose
from flask_babel import lazy_gettext as _l
from flask_login import current_user, user_logged_in
from werkzeug.security import check_password_hash
from wtforms import PasswordField
from wtforms.validators import DataRequired, EqualTo, ValidationError

from app import clock, observability
from app.models.user import StaffUser
from app.services import accounts, audit, throttle
from app.services.errors import PasswordPolicyError, ThrottledError
from app.services.passwords import password_problems
from app.views.api import AnswersUnavailable
from app.views.users import (ResetPasswordView, RoleModelView, UserDBModelView,
                             UserInfoEditView)

SESSION_GENERATION_KEY = "_session_generation"
JWT_GENERATION_CLAIM = "gen"
# Every sign-in attempt, on the form or the API, counts against the address (throttle).
LOGIN_ENDPOINTS = {"AuthDBView.login", "SecurityApi.login"}

SIGN_IN_FAILED = _l("Sign-in failed. Check your user ID and password. After repeated failures "
                    "an account is locked for a while; if you cannot sign in, ask a system "
                    "administrator.")


class AuthDBView(FabAuthDBView):
    """FAB's sign-in page (same name, so its endpoints and permissions stay), with one
    answer for every failure, and sign-out only by POST: a link or an image cannot sign
    anybody out, and GET /logout/ shows a button instead."""

    invalid_login_message = SIGN_IN_FAILED

    @expose("/logout/", methods=["GET", "POST"])
    def logout(self):
        if request.method == "POST":
            return super().logout()
        if not current_user.is_authenticated:
            return redirect(self.appbuilder.get_url_for_login)
        return self.render_template("logout.html", title=_l("Sign out"))


class ChangeMyPasswordForm(ResetPasswordForm):
    """The own password: the current one first (a borrowed session cannot change it)."""

    current_password = PasswordField(_l("Current password"), validators=[DataRequired()],
                                     widget=BS3PasswordFieldWidget())
    password = PasswordField(_l("New password"),
                             validators=[DataRequired(), PasswordComplexityValidator()],
                             widget=BS3PasswordFieldWidget())
    conf_password = PasswordField(_l("Confirm Password"),
                                  description=_l("Please rewrite the password to confirm"),
                                  validators=[EqualTo("password",
                                                      message=_l("Passwords must match"))],
                                  widget=BS3PasswordFieldWidget())

    def validate_current_password(self, field):
        user = current_app.appbuilder.sm.get_user_by_id(g.user.id)
        if user is None or not check_password_hash(user.password or "", field.data or ""):
            audit.record_event(audit.ACTION_PASSWORD_CHANGE_FAILED, "ab_user", g.user.id,
                               {"reason": "wrong current password"})
            raise ValidationError(str(_l("The current password is not correct.")))


class ResetMyPasswordView(FabResetMyPasswordView):
    """Same name as FAB's, so the roles' permissions (ResetMyPasswordView) stay."""

    form = ChangeMyPasswordForm
    form_title = _l("Change your password")

    def form_post(self, form) -> None:
        sm = self.appbuilder.sm
        sm.reset_password(g.user.id, form.password.data)
        # Other sessions and JWTs of this account end; this one goes on.
        session[SESSION_GENERATION_KEY] = sm.get_user_by_id(g.user.id).session_generation
        flash(str(self.message), "info")


# FAB's security screens a city does not use: groups (roles are given to people directly).
# The statistics chart is off (userstatschartview = None), and FAB_ADD_SECURITY_*_VIEW in
# config.py drop the permission lists.
UNUSED_SECURITY_VIEWS = frozenset({"List Groups"})


class SecurityApi(AnswersUnavailable, FabSecurityApi):
    """FAB's sign-in API (/api/v1/security/login): 503 while the database is away. The same
    class name, so its endpoints ("SecurityApi.login") and permissions stay FAB's."""


class AppSecurityManager(SecurityManager):
    user_model = StaffUser
    userdbmodelview = UserDBModelView
    rolemodelview = RoleModelView
    userinfoeditview = UserInfoEditView
    resetpasswordview = ResetPasswordView
    userstatschartview = None
    authdbview = AuthDBView
    security_api = SecurityApi
    resetmypasswordview = ResetMyPasswordView
    _BUILTIN_ACCESS_MAX = 10_000

    def _has_access_builtin_roles(self, role, permission_name: str, view_name: str) -> bool:
        """FAB matches every pattern of config.FAB_ROLES for every menu item and button of
        every page (about a quarter of the staff home's time). The roles are configuration,
        fixed while the process runs, so each (role, permission, view) is matched once."""
        cache = self.__dict__.setdefault("_builtin_access", {})
        key = (role.name, permission_name, view_name)
        found = cache.get(key)
        if found is None:
            if len(cache) >= self._BUILTIN_ACCESS_MAX:  # names come from code; a bound anyway
                cache.clear()
            found = cache[key] = super()._has_access_builtin_roles(role, permission_name,
                                                                    view_name)
        return found

    def role_grants(self, role, permission_name: str, view_name: str) -> bool:
        """Whether the role alone grants the permission, by the check every page makes:
        a role declared in code by its patterns, any other by its rows in the database."""
        if role.name in self.builtin_roles:
            return self._has_access_builtin_roles(role, permission_name, view_name)
        return bool(self.exist_permission_on_roles(view_name, permission_name, [role.id]))

    def register_views(self):
        add_view = self.appbuilder.add_view

        def add_used_view(baseview, name, *args, **kwargs):
            if name in UNUSED_SECURITY_VIEWS:
                return None
            return add_view(baseview, name, *args, **kwargs)

        self.appbuilder.add_view = add_used_view  # only while FAB registers its views
        try:
            super().register_views()
        finally:
            del self.appbuilder.add_view
        app = current_app._get_current_object()
        app.before_request(self._sign_in_limit)
        # Flask-Limiter is an optional extra (AUTH_RATE_LIMITED): FAB rate-limits only the
        # sign-in form, so the API's JWT login gets the same limit.
        if self.is_auth_limited:
            for view in self.appbuilder.baseviews:
                if view.__class__.__name__ == "SecurityApi" and view.blueprint is not None:
                    self.limiter.limit(self.auth_rate_limit, methods=["POST"])(view.blueprint)
        warn_about_per_worker_limits(app, os.environ)

    # --- the sign-in limit, in the database: shared by every worker and instance ---------
    def _sign_in_limit(self):
        if request.method != "POST" or request.endpoint not in LOGIN_ENDPOINTS:
            return None
        key = throttle.login_key(request.remote_addr)
        now = clock.now()
        try:
            throttle.check(self.session, [key], now)
        except ThrottledError as error:
            audit.record_event(audit.ACTION_LOGIN_FAILED, None, None,
                               {"reason": "rate limited"},
                               actor=audit.Actor(None, audit.SIGN_IN, _ip()))
            if request.endpoint == "SecurityApi.login":
                return {"message": error.message}, 429
            flash(error.message, "danger")
            page = self.auth_view.render_template(self.auth_view.login_template,
                                                  title=self.auth_view.title,
                                                  form=LoginForm_db())
            return page, 429
        throttle.count(self.session, key, now)
        return None

    # --- sessions and JWTs end with a lock, a deactivation or a new password ---------------
    def create_login_manager(self, app):
        lm = super().create_login_manager(app)
        # For any app (once: blinker keeps one connection per receiver); a sender-bound
        # connection would keep a weak reference per app instance.
        user_logged_in.connect(_remember_generation)
        return lm

    def load_user(self, pk):
        """A browser session: the account is active, not locked, and the session was signed
        in after its last lock, deactivation or password change."""
        try:
            user = self.get_user_by_id(int(pk))
        except (TypeError, ValueError):
            return None
        if user is None or not user.is_active:
            return None
        if session.get(SESSION_GENERATION_KEY) != user.session_generation:
            return None
        observability.note_user(user.username)
        return user

    def create_jwt_manager(self, app):
        app.config.setdefault("JWT_ACCESS_TOKEN_EXPIRES", timedelta(minutes=15))
        app.config.setdefault("JWT_REFRESH_TOKEN_EXPIRES", timedelta(hours=8))
        jwt_manager = super().create_jwt_manager(app)
        jwt_manager.additional_claims_loader(self._jwt_claims)
        jwt_manager.token_in_blocklist_loader(self._jwt_revoked)
        return jwt_manager

    def _jwt_claims(self, identity):
        user = self.get_user_by_id(int(identity))
        return {JWT_GENERATION_CLAIM: user.session_generation if user else -1}

    def _jwt_user(self, jwt_data):
        try:
            user = self.get_user_by_id(int(jwt_data["sub"]))
        except (KeyError, TypeError, ValueError):
            return None
        if user is None or not user.is_active:
            return None
        if jwt_data.get(JWT_GENERATION_CLAIM) != user.session_generation:
            return None
        return user

    def _jwt_revoked(self, _jwt_header, jwt_data) -> bool:
        """Access and refresh tokens alike: refused once the account changed."""
        return self._jwt_user(jwt_data) is None

    def load_user_jwt(self, _jwt_header, jwt_data):
        user = self._jwt_user(jwt_data)
        if user is not None:
            g.user = user  # as FAB does: g.user is the JWT's user
            observability.note_user(user.username)
        return user

    # --- authentication with lockout -------------------------------------------------
    def auth_user_db(self, username, password):
        """FAB's check, with the lock: the account is found by user ID or e-mail address,
        counted and locked as one; a locked, inactive or unknown account and a wrong
        password all answer alike (None, the same message, a password hash checked)."""
        if not username:
            return None
        username = str(username)
        if is_null_password(password):
            return None
        first_user = self.get_first_user()
        user = accounts.find_account(self, username)
        if user is None or not user.active or user.locked_now(clock.now()):
            if user is not None and user.password:
                check_password_hash(user.password, password)  # the time a real check takes
            else:
                check_password_hash(current_app.config["AUTH_DB_FAKE_PASSWORD_HASH_CHECK"],
                                    "password")
                if first_user:
                    self.noop_user_update(first_user)
            reason = ("unknown user" if user is None
                      else "inactive" if not user.active else "locked")
            audit.record_event(audit.ACTION_LOGIN_FAILED, "ab_user" if user else None,
                               user.id if user else None,
                               {"username": username[:100], "reason": reason},
                               actor=audit.Actor(None, username[:100], _ip()))
            return None
        if check_password_hash(user.password, password):
            self.update_user_auth_stat(user, True)
            return user
        self.update_user_auth_stat(user, False)
        return None

    def update_user_auth_stat(self, user, success=True):
        if success:
            accounts.register_successful_login(user)
            return super().update_user_auth_stat(user, True)
        accounts.count_failed_login(self.session, user)
        self.on_user_login_failed(user)

    def on_user_login(self, user) -> None:
        audit.record_event(audit.ACTION_LOGIN, "ab_user", user.id, None,
                           actor=audit.Actor(user.id, user.username, _ip()))

    def on_user_login_failed(self, user) -> None:
        audit.record_event(audit.ACTION_LOGIN_FAILED, "ab_user", user.id,
                           {"username": user.username, "failures": user.fail_login_count},
                           actor=audit.Actor(None, user.username, _ip()))
        accounts.register_failed_login(self.session, user, clock.now(), ip=_ip())

    def on_user_logout(self, user) -> None:
        audit.record_event(audit.ACTION_LOGOUT, "ab_user", user.id, None,
                           actor=audit.Actor(user.id, user.username, _ip()))

    # --- every path that sets a password ------------------------------------------------
    def add_user(self, username, first_name, last_name, email, role=None, password="",
                 hashed_password="", groups=None, commit=True):
        if not hashed_password:
            problems = password_problems(password, username)
            if problems:
                current_app.logger.error("Password policy: %s", " ".join(problems))
                return False
        return super().add_user(username, first_name, last_name, email, role, password,
                                hashed_password, groups, commit)

    def reset_password(self, userid, password):
        """Also ends the account's sessions and JWTs (accounts: the password listener)."""
        user = self.get_user_by_id(userid)
        problems = password_problems(password, user.username if user else None)
        if problems:
            raise PasswordPolicyError(" ".join(problems))
        return super().reset_password(userid, password)


def _remember_generation(_app, user, **_extra):
    """At sign-in the browser session keeps the account's session generation."""
    session[SESSION_GENERATION_KEY] = user.session_generation


def several_workers(environ) -> bool:
    """Running under gunicorn with more than one worker (or an unknown number)."""
    if not str(environ.get("SERVER_SOFTWARE", "")).startswith("gunicorn"):
        return False
    try:
        return int(environ.get("WEB_CONCURRENCY", "2")) > 1
    except ValueError:
        return True


def warn_about_per_worker_limits(app, environ) -> bool:
    """Flask-Limiter's memory:// storage counts per worker: say so at start-up."""
    uri = str(app.config.get("RATELIMIT_STORAGE_URI") or "memory://")
    if not uri.startswith("memory://") or not several_workers(environ):
        return False
    app.logger.warning(
        "RATELIMIT_STORAGE_URI is memory:// while several workers serve the app: each "
        "worker counts Flask-Limiter limits on its own. The sign-in limit is kept in the "
        "database and is shared; set RATELIMIT_STORAGE_URI to redis://... for other limits.")
    return True


def _ip() -> str | None:
    try:
        return request.remote_addr
    except RuntimeError:
        return None
