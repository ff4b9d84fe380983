"""Our security manager: FAB's, plus account lockout, the password policy on every
path that sets a password, and login/logout in the audit trail (FAB has neither)."""
from __future__ import annotations

from flask import current_app, flash, redirect, request
from flask_appbuilder.actions import action
from flask_appbuilder.security.sqla.manager import SecurityManager
from flask_appbuilder.security.views import UserDBModelView as FabUserDBModelView
from flask_babel import lazy_gettext as _l

from app import clock
from app.models.user import StaffUser
from app.services import accounts, audit
from app.services.passwords import password_problems
from app.views.formatting import jst, yes_no


class UserDBModelView(FabUserDBModelView):
    """The user list shows locked accounts; an administrator unlocks them."""

    list_columns = ["username", "get_full_name", "roles", "active", "locked_at", "last_login"]
    search_columns = ["username", "first_name", "last_name", "email", "roles", "active",
                      "locked_at"]
    show_fieldsets = [
        (_l("User info"), {"fields": ["username", "active", "locked_at", "roles",
                                      "login_count", "fail_login_count"]}),
        (_l("Personal Info"), {"fields": ["first_name", "last_name", "email"],
                               "expanded": True}),
        (_l("Audit Info"), {"fields": ["last_login", "created_on", "created_by",
                                       "changed_on", "changed_by"], "expanded": False}),
    ]
    label_columns = {**FabUserDBModelView.label_columns, "locked_at": _l("Locked at")}
    formatters_columns = {"locked_at": jst, "last_login": jst, "created_on": jst,
                          "changed_on": jst, "active": yes_no}
    edit_columns = ["first_name", "last_name", "username", "active", "email", "roles"]
    audit_show = True  # a person's detail page: opening it is audited

    @action("unlock", _l("Unlock"), _l("Unlock the selected accounts?"), "fa-unlock")
    def unlock(self, items):
        items = items if isinstance(items, list) else [items]
        session = self.datamodel.session
        count = 0
        for user in items:
            if user.locked_at is not None or (user.fail_login_count or 0) > 0:
                accounts.unlock_user(session, user)
                count += 1
        flash(str(_l("Unlocked %(n)d account(s).", n=count)), "success")
        self.update_redirect()
        return redirect(self.get_redirect())


class AppSecurityManager(SecurityManager):
    user_model = StaffUser
    userdbmodelview = UserDBModelView

    def register_views(self):
        super().register_views()
        # FAB rate-limits only the sign-in form; the API's JWT login gets the same limit.
        if self.is_auth_limited:
            for view in self.appbuilder.baseviews:
                if view.__class__.__name__ == "SecurityApi" and view.blueprint is not None:
                    self.limiter.limit(self.auth_rate_limit, methods=["POST"])(view.blueprint)

    # --- authentication with lockout -------------------------------------------------
    def auth_user_db(self, username, password):
        if username:
            user = self.find_user(username=username)
            if user is not None and user.locked_at is not None:
                # The right password does not open a locked account either.
                audit.record_event(audit.ACTION_LOGIN_FAILED, "ab_user", user.id,
                                   {"username": username, "reason": "locked"},
                                   actor=audit.Actor(None, username, _ip()))
                flash(str(_l("This account is locked after repeated failed sign-ins. "
                             "Ask a system administrator to unlock it.")), "danger")
                return None
        user = super().auth_user_db(username, password)
        if user is None and username and self.find_user(username=username) is None:
            audit.record_event(audit.ACTION_LOGIN_FAILED, None, None,
                               {"username": username, "reason": "unknown user"},
                               actor=audit.Actor(None, str(username)[:100], _ip()))
        return user

    def on_user_login(self, user) -> None:
        audit.record_event(audit.ACTION_LOGIN, "ab_user", user.id, None,
                           actor=audit.Actor(user.id, user.username, _ip()))

    def on_user_login_failed(self, user) -> None:
        audit.record_event(audit.ACTION_LOGIN_FAILED, "ab_user", user.id,
                           {"username": user.username, "failures": user.fail_login_count},
                           actor=audit.Actor(None, user.username, _ip()))
        if accounts.register_failed_login(self.session, user, clock.now()):
            flash(str(_l("This account is locked after repeated failed sign-ins. "
                         "Ask a system administrator to unlock it.")), "danger")

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
        user = self.get_user_by_id(userid)
        problems = password_problems(password, user.username if user else None)
        if problems:
            from app.services.errors import PasswordPolicyError

            raise PasswordPolicyError(" ".join(problems))
        return super().reset_password(userid, password)


def _ip() -> str | None:
    try:
        return request.remote_addr
    except RuntimeError:
        return None
