"""Flask-AppBuilder's own screens, as a city uses them: staff accounts with Japanese labels
and only the roles a city has (no groups, no LDAP/OpenID hints, no "Public"), and the roles
as a read-only matrix of what each one may do (docs/roles.md), computed from the same
permission check every page makes, so it cannot drift from the truth.

The roles are declared in code (config.FAB_ROLES) and synced into the database by
``flask init``: the role screen shows them and changes nothing."""
from __future__ import annotations

from dataclasses import dataclass

from flask import abort, current_app, flash, redirect
from flask_appbuilder import expose, has_access
from flask_appbuilder.actions import action
from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
from flask_appbuilder.forms import DynamicForm
from flask_appbuilder.models.sqla.filters import FilterInFunction
from flask_appbuilder.security.forms import UserInfoEdit
from flask_appbuilder.security.views import ResetPasswordView as FabResetPasswordView
from flask_appbuilder.security.views import RoleModelView as FabRoleModelView
from flask_appbuilder.security.views import UserDBModelView as FabUserDBModelView
from flask_appbuilder.security.views import UserInfoEditView as FabUserInfoEditView
from flask_appbuilder.validators import PasswordComplexityValidator
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo

from app import clock
from app.services import accounts
from app.views.formatting import jst, yes_no

# --- staff accounts ------------------------------------------------------------------------

USER_LABELS = {
    "get_full_name": _l("Full name"),
    "last_name": _l("Family name"),
    "first_name": _l("Given name"),
    "username": _l("User ID"),
    "password": _l("Password"),
    "conf_password": _l("Confirm the password"),
    "active": _l("Active"),
    "email": _l("E-mail address"),
    "roles": _l("Roles"),
    "last_login": _l("Last sign-in"),
    "login_count": _l("Sign-ins"),
    "fail_login_count": _l("Failed sign-ins"),
    "created_on": _l("Created at"),
    "created_by": _l("Created by"),
    "changed_on": _l("Changed at"),
    "changed_by": _l("Changed by"),
    "locked_at": _l("Locked at"),
    "locked_until": _l("Locked until"),
    "lock_state": _l("Lock"),
}
USER_DESCRIPTIONS = {
    "username": _l("The ID the person signs in with (letters and digits)."),
    "active": _l("Clear this instead of deleting an account: the person can no longer "
                 "sign in and the records keep their name."),
    "roles": _l("What the person may do: see the role matrix under System, Roles."),
    "password": _l("At least the length the password policy asks for; the person changes "
                   "it after the first sign-in."),
    "conf_password": _l("Type the password again."),
}


def role_names(roles) -> str:
    return ", ".join(role.name for role in roles or ())


def count(value) -> str:
    return str(value or 0)


def person(user) -> str:
    return user.get_full_name() if user is not None else ""


def used_role_names() -> list[str]:
    """The roles a city gives to its staff (one rule, in the accounts service)."""
    return accounts.city_role_names()


class UserDBModelView(FabUserDBModelView):
    """The user list shows locked accounts; an administrator locks and unlocks them."""

    list_title = _l("Staff accounts")
    show_title = _l("Staff account")
    add_title = _l("Add a staff account")
    edit_title = _l("Edit a staff account")
    list_columns = ["username", "get_full_name", "roles", "active", "locked_at", "lock_state",
                    "last_login"]
    search_columns = ["username", "last_name", "first_name", "email", "roles", "active",
                      "locked_at"]
    show_fieldsets = [
        (_l("Account"), {"fields": ["username", "active", "locked_at", "locked_until",
                                    "roles", "login_count", "fail_login_count"]}),
        (_l("Person"), {"fields": ["last_name", "first_name", "email"], "expanded": True}),
        (_l("Changes"), {"fields": ["last_login", "created_on", "created_by",
                                    "changed_on", "changed_by"], "expanded": False}),
    ]
    user_show_fieldsets = [
        (_l("Account"), {"fields": ["username", "active", "roles", "login_count"]}),
        (_l("Person"), {"fields": ["last_name", "first_name", "email"], "expanded": True}),
    ]
    label_columns = USER_LABELS
    description_columns = USER_DESCRIPTIONS
    formatters_columns = {"locked_at": jst, "locked_until": jst, "last_login": jst,
                          "created_on": jst, "changed_on": jst, "active": yes_no,
                          "roles": role_names, "login_count": count,
                          "fail_login_count": count, "created_by": person,
                          "changed_by": person}
    add_columns = ["last_name", "first_name", "username", "active", "email", "roles",
                   "password", "conf_password"]
    edit_columns = ["last_name", "first_name", "username", "active", "email", "roles"]
    # Only the roles a city uses ("Public" is FAB's role for visitors who are not signed in).
    add_form_query_rel_fields = {"roles": [["name", FilterInFunction, used_role_names]]}
    edit_form_query_rel_fields = add_form_query_rel_fields
    search_form_query_rel_fields = add_form_query_rel_fields
    validators_columns = {"roles": [DataRequired(message=_l("Choose at least one role."))]}
    add_form_extra_fields = {
        "password": PasswordField(USER_LABELS["password"],
                                  description=USER_DESCRIPTIONS["password"],
                                  validators=[DataRequired(), PasswordComplexityValidator()],
                                  widget=BS3PasswordFieldWidget()),
        "conf_password": PasswordField(
            USER_LABELS["conf_password"], description=USER_DESCRIPTIONS["conf_password"],
            validators=[DataRequired(), EqualTo("password",
                                                message=_l("The two passwords differ."))],
            widget=BS3PasswordFieldWidget()),
    }
    user_info_title = _l("Your account")
    audit_show = True  # a person's detail page: opening it is audited

    @action("resetpasswords", _l("Set a new password"), "", "fa-lock", multiple=False)
    def resetpasswords(self, item):
        return super().resetpasswords(item)

    @action("resetmypassword", _l("Change your password"), "", "fa-lock", multiple=False)
    def resetmypassword(self, item):
        return super().resetmypassword(item)

    @action("userinfoedit", _l("Edit your name"), "", "fa-edit", multiple=False)
    def userinfoedit(self, item):
        return super().userinfoedit(item)

    @action("unlock", _l("Unlock"), _l("Unlock the selected accounts?"), "fa-unlock")
    def unlock(self, items):
        items = items if isinstance(items, list) else [items]
        session_ = self.datamodel.session
        count = 0
        for user in items:
            if user.locked_at is not None or (user.fail_login_count or 0) > 0:
                accounts.unlock_user(session_, user)
                count += 1
        flash(str(_l("Unlocked %(n)d account(s).", n=count)), "success")
        self.update_redirect()
        return redirect(self.get_redirect())

    @action("lock", _l("Lock"), _l("Lock the selected accounts until they are unlocked? "
                                   "Their sessions end at once."), "fa-lock")
    def lock(self, items):
        items = items if isinstance(items, list) else [items]
        session_ = self.datamodel.session
        count = 0
        for user in items:
            if user.id == current_user.id:
                flash(str(_l("You cannot lock your own account.")), "danger")
                continue
            if user.locked_at is not None and user.locked_until is None:
                continue  # already locked by an administrator
            accounts.lock_user(session_, user, clock.now())
            count += 1
        flash(str(_l("Locked %(n)d account(s).", n=count)), "success")
        self.update_redirect()
        return redirect(self.get_redirect())


class OwnNameForm(UserInfoEdit):
    """The own name: family name first, our labels, no FAB hints."""

    last_name = StringField(USER_LABELS["last_name"], validators=[DataRequired()],
                            widget=BS3TextFieldWidget())
    first_name = StringField(USER_LABELS["first_name"], validators=[DataRequired()],
                             widget=BS3TextFieldWidget())


class UserInfoEditView(FabUserInfoEditView):
    """Same name as FAB's, so the roles' permissions (UserInfoEditView) stay."""

    form = OwnNameForm
    form_title = _l("Edit your name")
    message = _l("Your name was saved.")


class NewPasswordForm(DynamicForm):
    """Someone else's new password, set by a system administrator (FAB's form says the
    application does not check the password: ours does)."""

    password = PasswordField(_l("New password"), description=USER_DESCRIPTIONS["password"],
                             validators=[DataRequired(), PasswordComplexityValidator()],
                             widget=BS3PasswordFieldWidget())
    conf_password = PasswordField(
        USER_LABELS["conf_password"], description=USER_DESCRIPTIONS["conf_password"],
        validators=[DataRequired(), EqualTo("password", message=_l("The two passwords differ."))],
        widget=BS3PasswordFieldWidget())


class ResetPasswordView(FabResetPasswordView):
    """A system administrator sets someone's password (same name: permissions stay)."""

    form = NewPasswordForm
    form_title = _l("Set a new password for the account")
    message = _l("The new password was set. The person's sessions have ended.")


# --- roles -----------------------------------------------------------------------------------

# The four roles, described as docs/roles.md ("Rules the later screens follow").
ROLE_DESCRIPTIONS = {
    "ROLE_SYSADMIN": _l("Users, roles, maintenance of the residents' site and the audit "
                        "trail. No daily business screens unless also given 管理者."),
    "ROLE_MANAGER": _l("Every business screen, booking and storage settings, deleting "
                       "ledger rows, discarding cards, exports of personal data, the audit "
                       "trail read-only."),
    "ROLE_CLERK": _l("The daily work: bookings, check-in, deliveries, card updates and "
                     "hand-over. No deleting ledger rows, no user administration, no audit "
                     "trail."),
    "ROLE_VIEWER": _l("Reads the business screens; no change, no export of personal data."),
}


@dataclass(frozen=True)
class Ability:
    """One row of the matrix: what one can do, and the permissions it takes (all of them).
    ``doc`` is the row's text in docs/roles.md (a test compares the two tables)."""

    doc: str
    label: object
    needs: tuple[tuple[str, str], ...]  # (permission, view)


def _on(view: str, *permissions: str) -> tuple[tuple[str, str], ...]:
    return tuple((permission, view) for permission in permissions)


_SETTINGS_VIEWS = ("VenuePurposeModelView", "VenueModelView", "PurposeModelView",
                   "WeeklyRuleModelView", "DateExceptionModelView")


def _settings(*permissions: str) -> tuple[tuple[str, str], ...]:
    return tuple(pair for view in _SETTINGS_VIEWS for pair in _on(view, *permissions))


ABILITY_GROUPS: list[tuple[object, list[Ability]]] = [
    (_l("Everyone"), [
        Ability("ホーム (staff notices)", _l("Home (notices to staff)"), ()),
        Ability("own profile, own password", _l("Own account and password"),
                _on("UserDBModelView", "can_userinfo", "userinfoedit")
                + _on("UserInfoEditView", "can_this_form_get", "can_this_form_post")
                + _on("ResetMyPasswordView", "can_this_form_get", "can_this_form_post")),
        Ability("お知らせ: list, detail", _l("Notices: list, detail"),
                _on("NoticeModelView", "can_list", "can_show")),
        Ability("暗号化ZIP: the page of a prepared file and its one download (own files only)",
                _l("Encrypted ZIP: the page of a prepared file and its one download (own "
                   "files only)"),
                _on("ProtectedExportView", "can_show", "can_download")),
    ]),
    (_l("System"), [
        Ability("お知らせ: add, edit, delete", _l("Notices: add, edit, delete"),
                _on("NoticeModelView", "can_add", "can_edit", "can_delete")),
        Ability("操作ログ: list, detail, CSV export", _l("Audit log: list, detail, CSV export"),
                _on("AuditLogModelView", "can_list", "can_show", "can_export")),
        Ability("操作ログ: integrity check (改ざん検査)", _l("Audit log: tampering check"),
                _on("AuditLogModelView", "can_verify")),
        Ability("操作ログ: add, edit, delete", _l("Audit log: add, edit, delete"),
                _on("AuditLogModelView", "can_add", "can_edit", "can_delete")),
        Ability("メンテナンス (residents' site): list, announce, start/end now",
                _l("Maintenance of the residents' site: list, announce, start and end now"),
                _on("MaintenanceWindowModelView", "can_list", "can_add", "can_start_now",
                    "can_end_now")),
        Ability("出力の暗号化: read and change the export policy (encryption required for "
                "personal data)",
                _l("Export encryption: read and change the policy"),
                _on("ExportPolicyView", "can_index", "can_save")),
        Ability("定期処理: the worker's jobs, last run and result (read only)",
                _l("Scheduled jobs: the worker's jobs, last run and result (read only)"),
                _on("JobsView", "can_index")),
        Ability("ユーザー: list, detail, add, edit, lock, unlock, reset password",
                _l("Staff accounts: list, detail, add, edit, lock, unlock, set a password"),
                _on("UserDBModelView", "can_list", "can_show", "can_add", "can_edit", "lock",
                    "unlock", "resetpasswords")
                + _on("ResetPasswordView", "can_this_form_get", "can_this_form_post")),
        Ability("ロール: list, detail (read only)", _l("Roles: list, detail (read only)"),
                _on("RoleModelView", "can_list", "can_show")),
    ]),
    (_l("Cards"), [
        Ability("カード管理簿: list, detail, history", _l("Card ledger: list, detail, history"),
                _on("CardModelView", "can_list", "can_show")
                + _on("CardEventModelView", "can_list", "can_show")),
        Ability("カード管理簿: add, edit, change state, bulk actions, print data, move",
                _l("Card ledger: add, edit, change state, bulk actions, print data, move"),
                _on("CardModelView", "can_add", "can_edit", "can_transition", "to_setup",
                    "to_notice_sent", "to_mailed", "to_on_hold", "to_renotified",
                    "to_returned", "release_hold", "print_data", "print_data_sjis",
                    "print_data_encrypted", "move_storage")
                + _on("StorageView", "can_move")),
        Ability("カード管理簿: delete a row", _l("Card ledger: delete a row"),
                _on("CardModelView", "can_delete")),
        Ability("交付 (hand-over)", _l("Hand-over"),
                _on("HandoverView", "can_index", "can_hand_over")),
        Ability("納品登録（QR読取）: scan station, upload pages, register, ledger sheet",
                _l("Register deliveries (QR): scan station, upload pages, register, "
                   "ledger sheet"),
                _on("ScanView", "can_index", "can_new", "can_batch", "can_add", "can_upload",
                    "can_remove", "can_discard", "can_register", "can_sheet")),
        Ability("保管場所: list", _l("Storage places: list"),
                _on("StoragePlaceModelView", "can_list", "can_show")),
        Ability("棚卸し一覧 (printable, names and birth dates)",
                _l("Stocktaking list (printable, with names and birth dates)"),
                _on("StorageView", "can_inventory")),
        Ability("保管場所: add, edit, delete", _l("Storage places: add, edit, delete"),
                _on("StoragePlaceModelView", "can_add", "can_edit", "can_delete")),
        Ability("廃棄候補: read", _l("Discard candidates: read"),
                _on("DiscardView", "can_candidates")),
        Ability("廃棄簿 (printable, names and birth dates)",
                _l("Discard register (printable, with names and birth dates)"),
                _on("DiscardView", "can_register")),
        Ability("廃棄候補: hold back, discard; 廃棄 from a card's page or the API",
                _l("Discard candidates: hold back, discard"),
                _on("DiscardView", "can_hold", "can_execute")),
        Ability("廃棄候補: refresh now (今すぐ更新; nightly the job does it)",
                _l("Discard candidates: refresh now"),
                _on("DiscardView", "can_refresh")),
        Ability("既存データ取込: upload, preview, validation report, import (CSV, XLSX)",
                _l("Import existing data: upload, preview, validation report, import"),
                _on("LedgerImportView", "can_index", "can_import")),
    ]),
    (_l("Reservations"), [
        Ability("予約 settings (venues, purposes, weekly pattern, date exceptions): read",
                _l("Booking settings (venues, purposes, weekly pattern, date exceptions): "
                   "read"),
                _settings("can_list", "can_show")),
        Ability("予約 settings: add, edit, delete", _l("Booking settings: add, edit, delete"),
                _settings("can_add", "can_edit", "can_delete")),
        Ability("予約カレンダー: month and day views", _l("Booking calendar: month and day views"),
                _on("BookingCalendarView", "can_month", "can_day")),
        Ability("予約カレンダー: close and reopen slots and days",
                _l("Booking calendar: close and reopen times and days"),
                _on("BookingCalendarView", "can_close", "can_reopen")),
        Ability("予約一覧: list, detail", _l("Booking list: list, detail"),
                _on("ReservationModelView", "can_list", "can_show")),
        Ability("予約一覧: edit contact and note, move, cancel, booking slip",
                _l("Booking list: edit contact and note, move, cancel, booking slip"),
                _on("ReservationModelView", "can_edit", "can_move", "can_cancel", "can_slip")),
        Ability("受付（消し込み）: today's list, counts", _l("Check-in desk: today's list, counts"),
                _on("DeskView", "can_index", "can_day", "can_live_counts")),
        Ability("受付: check in, undo, complete, walk-in, phone/counter booking, close the "
                "day, print the day's list",
                _l("Check-in desk: check in, undo, complete, walk-in, phone or counter "
                   "booking, close the day, print the day's list"),
                _on("DeskView", "can_check_in", "can_new", "can_close_day", "can_print_day")
                + _on("ReservationModelView", "can_check_in")),
    ]),
    (_l("Application intake"), [
        Ability("申請受付一覧, 出張申請: list, detail (with the card's state, the booking, the "
                "session)", _l("Applications and outreach sessions: list, detail"),
                _on("IntakeModelView", "can_list", "can_show")
                + _on("OutreachSessionModelView", "can_list", "can_show")),
        Ability("申請受付: take (add, also from the desk's check-in), edit, 送付済にする (bulk), "
                "取下げ with a reason",
                _l("Applications: take, edit, mark as sent, withdraw with a reason"),
                _on("IntakeModelView", "can_add", "can_edit", "mark_sent", "can_withdraw")),
        Ability("出張申請: add, edit; print a session's list (A4, names and birth dates)",
                _l("Outreach sessions: add, edit, print a session's list"),
                _on("OutreachSessionModelView", "can_add", "can_edit", "can_print_list")),
        # fees (issue 13 §2)
        Ability("手数料: an application's fee panel, 調定, 収納, 免除, print the 領収書 (再発行)",
                _l("Fees: an application's fee panel, charge, payment, waiver, receipt "
                   "(and its reissue)"),
                _on("FeeView", "can_intake", "can_charge", "can_pay", "can_waive",
                    "can_print_receipt")),
        Ability("手数料: 還付 (refund)", _l("Fees: refund"), _on("FeeView", "can_refund")),
        Ability("日計表, 月計表: on screen (no resident's name on them)",
                _l("Daily and monthly fees: on screen (no resident's name on them)"),
                _on("FeeView", "can_daily", "can_monthly")),
        Ability("日計表: close the day with the counted cash (窓口職員 their own, 管理者 anyone's)",
                _l("Daily fees: close the day with the counted cash (a clerk their own, a "
                   "supervisor anyone's)"), _on("FeeView", "can_close_day")),
        Ability("日計表, 月計表: download (XLSX)", _l("Daily and monthly fees: download (XLSX)"),
                _on("FeeView", "can_daily_xlsx", "can_monthly_xlsx")),
        Ability("手数料表: list, detail", _l("Fee table: list, detail"),
                _on("FeeScheduleModelView", "can_list", "can_show")),
        Ability("手数料表: add, edit, delete (a fee already applied: never)",
                _l("Fee table: add, edit, delete (a fee already applied: never)"),
                _on("FeeScheduleModelView", "can_add", "can_edit", "can_delete")),
        # scanned documents (issue 13 §3)
        Ability("スキャンした書類 (`/documents/`): the panel of an intake (thumbnails), page "
                "viewer, page images", _l("Scanned documents: an application's panel, viewer, "
                                          "page images"),
                _on("DocumentView", "can_intake", "can_view", "can_page", "can_thumbnail")),
        Ability("スキャンした書類: 取り込む (upload, several files at once)",
                _l("Scanned documents: upload"), _on("DocumentView", "can_upload")),
        Ability("スキャンした書類: download the original file",
                _l("Scanned documents: download the original file"),
                _on("DocumentView", "can_download")),
        Ability("スキャンした書類: delete one (with a reason, in the audit trail)",
                _l("Scanned documents: delete one (with a reason)"),
                _on("DocumentView", "can_delete")),
    ]),
    (_l("Statistics and extraction"), [
        # statistics (issue 14 §1): aggregate figures, no personal data
        Ability("集計: on screen (bookings, applications, cards, fees; figures only, no "
                "personal data)", _l("Statistics: on screen (figures only, no personal data)"),
                _on("StatisticsView", "can_index")),
        Ability("集計: download (CSV, XLSX)", _l("Statistics: download (CSV, XLSX)"),
                _on("StatisticsView", "can_csv", "can_xlsx")),
        Ability("抽出: screen, preview (count and first 50 rows), own saved queries (save, "
                "change, delete)",
                _l("Extraction: screen, preview, own saved conditions"),
                _on("ExtractionView", "can_index", "can_preview", "can_save",
                    "can_delete_own")),
        Ability("抽出: export CSV (UTF-8 with BOM, Shift_JIS/CP932) and XLSX",
                _l("Extraction: export CSV and XLSX"), _on("ExtractionView", "can_export")),
        Ability("抽出: save, change and delete queries shared with the office",
                _l("Extraction: conditions shared with the office"),
                _on("ExtractionView", "can_share")),
    ]),
    (_l("REST API"), [
        Ability("API `/api/v1/reservation/`: read", _l("API of bookings: read"),
                _on("ReservationApi", "can_get", "can_info")),
        Ability("API `/api/v1/reservation/`: edit, check-in", _l("API of bookings: edit, "
                                                                 "check in"),
                _on("ReservationApi", "can_put", "can_check_in")),
        Ability("API `/api/v1/card/`: read", _l("API of cards: read"),
                _on("CardApi", "can_get", "can_info")),
        Ability("API: change state, edit", _l("API of cards: change state, edit"),
                _on("CardApi", "can_transition", "can_put")),
        Ability("API: delete", _l("API of cards: delete"), _on("CardApi", "can_delete")),
    ]),
]

ALL = "all"
NONE = "none"
SOME = "some"


def shown_roles(sm) -> list:
    """The roles staff hold: those declared in code first, in their order, then any other
    role in the database except FAB's role for visitors who are not signed in."""
    roles = {role.name: role for role in sm.get_all_roles()}
    names = [name for name in sm.builtin_roles if name in roles]
    names += sorted(name for name in roles
                    if name not in sm.builtin_roles and name != sm.auth_role_public)
    return [roles[name] for name in names]


def role_matrix(sm, roles) -> list[tuple[object, list[tuple[Ability, list[str]]]]]:
    """For each ability and role: ALL, NONE or SOME of its permissions granted, by the check
    every page makes (AppSecurityManager.role_grants)."""
    permissions_of = {view.class_permission_name: set(view.base_permissions or ())
                      for view in sm.appbuilder.baseviews}
    result = []
    for group, abilities in ABILITY_GROUPS:
        rows = []
        for ability in abilities:
            cells = []
            for role in roles:
                granted = [permission in permissions_of.get(view, ())
                           and sm.role_grants(role, permission, view)
                           for permission, view in ability.needs]
                cells.append(ALL if all(granted) else NONE if not any(granted) else SOME)
            rows.append((ability, cells))
        result.append((group, rows))
    return result


def role_description(name: str):
    for key, description in ROLE_DESCRIPTIONS.items():
        if current_app.config.get(key) == name:
            return description
    return ""


class RoleModelView(FabRoleModelView):
    """Read only: the roles are declared in code and synced at ``flask init``. Same name as
    FAB's, so the system administrator's permissions (RoleModelView) stay."""

    base_permissions = ["can_list", "can_show"]
    list_title = _l("Role list")
    show_title = _l("Role")
    label_columns = {"name": _l("Role name"), "permissions": _l("Permissions")}
    search_columns = ["name"]

    def copy_role(self, items):
        """FAB's "copy role" action, gone: without the decorator it is no action at all."""
        abort(404)

    def _page(self, roles, title, single=None):
        sm = self.appbuilder.sm
        return self.render_template(
            "security/roles.html", title=title, roles=roles, single=single,
            matrix=role_matrix(sm, roles), describe=role_description,
            ALL=ALL, SOME=SOME)

    @expose("/list/")
    @has_access
    def list(self):
        return self._page(shown_roles(self.appbuilder.sm), self.list_title)

    @expose("/show/<id:pk>", methods=["GET"])
    @has_access
    def show(self, pk):
        role = self.datamodel.get(pk)
        if role is None or role not in shown_roles(self.appbuilder.sm):
            abort(404)
        return self._page([role], self.show_title, single=role)
