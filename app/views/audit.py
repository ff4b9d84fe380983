"""The audit trail for supervisors (F5.2): search, read, export. Never edit or delete.

The list reads each record as a Japanese sentence (who, what, where: app/services/
audit_text.py), with the stored record behind a <details> on each row."""
import json
import re
from datetime import date

from flask import Response, current_app, redirect, request, url_for
from flask_appbuilder import ModelView, expose, has_access
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from app.extensions import session
from app.models.audit import AuditLog
from app.services import audit, audit_text, export_policy, protected_zip
from app.services.errors import DomainError
from app.views import protected_exports
from app.views.feedback import flash_refusal
from app.views.formatting import blank_none, jst, table_label

ACTION_LABELS = {
    audit.ACTION_CREATE: _l("Created"),
    audit.ACTION_UPDATE: _l("Updated"),
    audit.ACTION_DELETE: _l("Deleted"),
    audit.ACTION_LOGIN: _l("Signed in"),
    audit.ACTION_LOGOUT: _l("Signed out"),
    audit.ACTION_LOGIN_FAILED: _l("Sign-in failed"),
    audit.ACTION_LOCKED: _l("Account locked"),
    audit.ACTION_UNLOCKED: _l("Account unlocked"),
    audit.ACTION_PASSWORD_CHANGE_FAILED: _l("Password change failed"),
    audit.ACTION_VIEW: _l("Viewed"),
    audit.ACTION_EXPORT: _l("Exported"),
    audit.ACTION_PRINT: _l("Printed"),
    audit.ACTION_DOWNLOAD: _l("Downloaded"),
    audit.ACTION_IMPORT: _l("Imported"),
    audit.ACTION_BACKUP: _l("Backup created"),
    audit.ACTION_BACKUP_VERIFY: _l("Backup verified"),
    audit.ACTION_RESTORE: _l("Restored from a backup"),
    audit.ACTION_BACKUP_PRUNE: _l("Old backups pruned"),
    audit.ACTION_REFRESH: _l("Refreshed"),
}
_LEGACY_FILTER = re.compile(r"^_flt_\d+_(username|action|target_table|target_id)$")


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat((value or "").strip()) if value else None
    except ValueError:
        return None


FILTER_ARGS = ("person", "kind", "record_id", "action", "generated", "date_from", "date_to")


def criteria_from(args) -> tuple[audit_text.Criteria, list[str]]:
    """The list's filters from the query string (and FAB's ``_flt_<n>_<column>`` of older
    links); bad dates are named, never a 500."""
    problems = []
    criteria = audit_text.Criteria(
        person=(args.get("person") or "").strip() or None,
        kind=(args.get("kind") or "").strip() or None,
        record_id=(args.get("record_id") or "").strip()[:80] or None,
        action=(args.get("action") or "").strip() or None,
        generated=args.get("generated") == "1")
    for name in ("date_from", "date_to"):
        raw = args.get(name)
        setattr(criteria, name, _day(raw))
        if raw and getattr(criteria, name) is None:
            problems.append(_("Write the date as YYYY-MM-DD: %(value)s", value=raw[:20]))
    for key, value in args.items():
        match = _LEGACY_FILTER.match(key)
        if match and value:
            column = match.group(1)
            target = {"username": "person", "target_table": "kind",
                      "target_id": "record_id"}.get(column, column)
            setattr(criteria, target, value)
    return criteria, problems


def action_label(value: str) -> str:
    label = ACTION_LABELS.get(value)
    return f"{label} ({value})" if label else value


def _changes(value: str | None) -> str:
    if not value:
        return ""
    try:
        return json.dumps(json.loads(value), ensure_ascii=False, indent=1)
    except ValueError:
        return value


class AuditLogModelView(ModelView):
    datamodel = SQLAInterface(AuditLog)
    base_permissions = ["can_list", "can_show", "can_export", "can_verify"]
    list_title = _l("Audit log")
    show_title = _l("Audit record")
    list_template = "audit_list.html"
    label_columns = {
        "id": _l("No."), "created_at": _l("When"), "username": _l("User"), "ip": _l("IP address"),
        "action": _l("Action"), "target_table": _l("Target table"), "target_id": _l("Target ID"),
        "changes": _l("Details"), "prev_hash": _l("Previous hash"), "row_hash": _l("Hash"),
        "user_id": _l("User number"),
    }
    list_columns = ["id", "created_at", "username", "ip", "action", "target_table", "target_id"]
    show_columns = ["id", "created_at", "username", "user_id", "ip", "action", "target_table",
                    "target_id", "changes", "prev_hash", "row_hash"]
    search_columns = ["username", "created_at", "action", "target_table", "target_id", "ip"]
    base_order = ("id", "desc")
    page_size = 50
    formatters_columns = {"created_at": jst, "action": action_label, "changes": _changes,
                          "username": audit_text.actor_name,
                          "target_table": table_label, "ip": blank_none,
                          "target_id": blank_none}

    @expose("/list/")
    @has_access
    def list(self):
        """The records as sentences, newest first, 50 a page, with the filters."""
        criteria, problems = criteria_from(request.args)
        try:
            page = max(int(request.args.get("page", 0)), 0)
        except ValueError:
            page = 0
        count, rows = audit_text.search(session(), criteria, page, self.page_size)
        lines = audit_text.render_all(session(), rows)
        # Only the list's own filters travel into its links (an unknown name such as
        # ``encoding`` or ``endpoint`` would collide with url_for's own arguments).
        args = {k: v for k, v in request.args.items()
                if k in FILTER_ARGS or _LEGACY_FILTER.match(k)}
        pages = max((count + self.page_size - 1) // self.page_size, 1)
        return self.render_template(
            "audit_list.html", lines=lines, count=count, page=page, pages=pages,
            page_size=self.page_size, args=args, criteria=criteria, problems=problems,
            people=audit_text.person_choices(session()), kinds=audit_text.kind_choices(),
            actions=[(k, str(v)) for k, v in ACTION_LABELS.items()],
            action_label=action_label, title=self.list_title, appbuilder=self.appbuilder)

    @expose("/export/", methods=["GET", "POST"])
    @has_access
    def export(self):
        """The records matching the list's current search, as CSV for Excel; posted with
        「暗号化ZIPで出力する」, as an AES-256 ZIP (app/views/protected_exports.py). A plain
        file is refused while the office requires encryption (staff names, IP addresses
        and changed values of residents' records are personal data)."""
        args = {k: v for k, v in request.args.items()
                if k in FILTER_ARGS or _LEGACY_FILTER.match(k)}
        back = url_for(".list", **args)
        try:
            chosen = (protected_exports.choice() if request.method == "POST"
                      else export_policy.PLAIN)
            made = audit_text.export_csv(
                session(), criteria_from(request.args)[0],
                encoding="cp932" if request.values.get("encoding") == "cp932" else "utf-8-sig",
                encrypted=chosen.encrypt, filters=request.args.to_dict(),
                note=chosen.audit_note())
        except DomainError as refused:
            flash_refusal(refused)
            return redirect(back)
        data, filename = made.data, made.filename
        if chosen.encrypt:
            return protected_exports.offer(self, [protected_zip.Part(filename, data)],
                                           chosen, filename, back=back)
        return Response(data, mimetype="text/csv",
                        headers={"Content-Disposition": f"attachment; filename={filename}"})

    @expose("/verify/")
    @has_access
    def verify(self):
        """Check the hash chain from the first record to the last."""
        report = audit.verify_chain(session())
        return self.render_template("audit_verify.html", report=report,
                                    appbuilder=self.appbuilder,
                                    title=_("Audit log integrity"))

    def _export_allowed(self) -> bool:
        return self.appbuilder.sm.has_access("can_export", self.class_permission_name)

    def _verify_allowed(self) -> bool:
        return self.appbuilder.sm.has_access("can_verify", self.class_permission_name)

    def render_template(self, template, **kwargs):
        kwargs.setdefault("export_allowed", self._export_allowed())
        kwargs.setdefault("verify_allowed", self._verify_allowed())
        kwargs.setdefault("app_config", current_app.config)
        if template == "audit_list.html" and kwargs["export_allowed"]:
            kwargs.setdefault("encryption_required",
                              protected_exports.encryption_required("audit_csv"))
        return super().render_template(template, **kwargs)
