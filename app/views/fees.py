"""Fees (手数料, F2.3): the fee panel of an intake (charge, payment, waiver, refund, receipt),
the receipt (領収書), the 日計表 per venue/clerk/day with its close, the 月計表 per venue
and their XLSX downloads; the fee table (手数料表) for supervisors.

The panel is ``fees/_intake_panel.html``: any page with ``intake`` in its context includes
it; it reads its data through the Jinja global ``fee_panel(intake)`` (registered in
app/views/__init__.py). Its forms post here and come back to ``next`` (the page they were
posted from); a refused value is shown at its field on ``/fees/intake/<id>``.
"""
from __future__ import annotations

from datetime import date

from flask import Response, abort, current_app, flash, redirect, request, url_for
from flask_appbuilder import BaseView, ModelView, expose, has_access
from flask_appbuilder.fieldwidgets import BS3TextFieldWidget, Select2Widget
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from wtforms import SelectField, StringField
from wtforms.validators import InputRequired, StopValidation

from app import clock
from app.clock import JST
from app.extensions import session
from app.models.fee import CHARGED_KINDS, ENTRY_LABELS, PAYMENT_METHOD_LABELS, FeeSchedule
from app.models.intake import KIND_LABELS, label
from app.services import (audit_text, cards, export_policy, fees, fields, japanese,
                          protected_zip)
from app.services.errors import DomainError, InputError
from app.views import protected_exports
from app.views.feedback import flash_refusal, refusals_flashed
from app.views.validators import CleanText, Parsed

PANEL_PERMISSIONS = ("can_charge", "can_pay", "can_waive", "can_refund", "can_print_receipt")


def _can(name: str) -> bool:
    return current_app.appbuilder.sm.has_access(name, "FeeView")


def fee_panel(intake) -> dict:
    """The Jinja global behind ``fees/_intake_panel.html``: the intake's fee data and what
    the signed-in user may do with it."""
    return {"data": fees.panel(session(), intake),
            "may": {name[4:]: _can(name) for name in PANEL_PERMISSIONS},
            "yen": fees.yen, "kind": fees.kind_text(intake), "entry_label": _entry_label,
            "method_label": _method_label, "actor_name": audit_text.actor_name}


def _entry_label(value) -> str:
    return label(ENTRY_LABELS, value)


def _method_label(value) -> str:
    return label(PAYMENT_METHOD_LABELS, value) if value else ""


def _paid_message(entry) -> str:
    """After a payment: the change to hand back, where the clerk looks first."""
    if entry is not None and entry.tendered and entry.change_due is not None:
        return _("The payment was received. Received %(given)s, change %(change)s.",
                 given=fees.yen(entry.tendered), change=fees.yen(entry.change_due))
    return _("The payment was received.")


def _today() -> date:
    return clock.now().astimezone(JST).date()


def _next(default: str) -> str:
    """Back to the page the form was posted from (a path on this site only)."""
    target = request.form.get("next") or ""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default


def _back_to_panel(view, pk, *args, **kwargs) -> str:
    return _next(url_for(".intake", pk=pk))


def _back_to_daily(view, *args, **kwargs) -> str:
    return url_for(".daily", venue=request.form.get("venue"), day=request.form.get("day"))


class FeeView(BaseView):
    route_base = "/fees"
    default_view = "daily"

    def _intake(self, pk):
        intake = fees.get_intake(session(), pk)
        if intake is None:
            abort(404)
        return intake

    def _panel_page(self, intake, errors=None, values=None, status=200):
        return self.render_template("fees/intake.html", intake=intake,
                                    fee_errors=errors or {}, fee_values=values or {},
                                    fee_next=_next(url_for(".intake", pk=intake.id)),
                                    kind=fees.kind_text(intake)), status

    def _act(self, intake, operation, success: str):
        """Run an operation of the panel: a refused value comes back at its field on the
        panel's page; other refusals are flashed by ``refusals_flashed``."""
        try:
            result = operation()
        except fees.FeeFieldError as error:
            return self._panel_page(intake, {error.field: str(error.message)},
                                    request.form.to_dict())
        flash(success(result) if callable(success) else success, "success")
        return redirect(_back_to_panel(self, intake.id))

    def _venue_id(self, intake):
        return fields.parse_id(request.form.get("venue_id")) or intake.venue_id

    @expose("/intake/<id:pk>")
    @has_access
    def intake(self, pk):
        """The fee panel of one intake on a page of its own."""
        return self._panel_page(self._intake(pk))

    @expose("/intake/<id:pk>/charge", methods=["POST"])
    @has_access
    @refusals_flashed(back=_back_to_panel)
    def charge(self, pk):
        intake = self._intake(pk)
        return self._act(intake, lambda: fees.charge(
            session(), intake, actor=cards.actor_of(current_user),
            venue_id=self._venue_id(intake), now=clock.now(),
            amount=request.form.get("amount") or None,
            override_reason=request.form.get("override_reason"),
            seen_amount=request.form.get("seen_amount") or None),
            _("The fee was charged."))

    @expose("/intake/<id:pk>/pay", methods=["POST"])
    @has_access
    @refusals_flashed(back=_back_to_panel)
    def pay(self, pk):
        intake = self._intake(pk)
        return self._act(intake, lambda: fees.pay(
            session(), intake, actor=cards.actor_of(current_user),
            venue_id=self._venue_id(intake), now=clock.now(),
            tendered=request.form.get("tendered"), method=request.form.get("method", "")),
            _paid_message)

    @expose("/intake/<id:pk>/waive", methods=["POST"])
    @has_access
    @refusals_flashed(back=_back_to_panel)
    def waive(self, pk):
        intake = self._intake(pk)
        return self._act(intake, lambda: fees.waive(
            session(), intake, actor=cards.actor_of(current_user),
            venue_id=self._venue_id(intake), now=clock.now(),
            reason=request.form.get("reason")), _("The fee was waived."))

    @expose("/refund/<id:entry_id>", methods=["POST"])
    @has_access
    @refusals_flashed()
    def refund(self, entry_id):
        """還付 of a payment (管理者): a new negative entry, with its reason."""
        payment = fees.get_entry(session(), entry_id)
        if payment is None:
            abort(404)
        intake = payment.intake
        return self._act(intake, lambda: fees.refund(
            session(), payment, actor=cards.actor_of(current_user),
            venue_id=self._venue_id(intake), now=clock.now(),
            reason=request.form.get("refund_reason")), _("The payment was refunded."))

    @expose("/receipt/<id:entry_id>", methods=["POST"])
    @has_access
    @refusals_flashed()
    def print_receipt(self, entry_id):
        """The receipt (領収書), rendered by the POST that counts the print: the first is
        the original, every later one says 再発行."""
        payment = fees.get_entry(session(), entry_id)
        if payment is None:
            abort(404)
        paper = "A4" if request.form.get("paper") == "A4" else "A5"
        copy = fees.record_receipt_print(session(), payment,
                                         actor=cards.actor_of(current_user), paper=paper)
        slip = fees.receipt(session(), payment, copy)
        return self.render_template(
            "fees/receipt.html", r=slip, paper=paper, yen=fees.yen,
            kind=fees.kind_text(slip.intake), method=_method_label(payment.method),
            city=current_app.config["CITY_NAME"],
            day=payment.at.astimezone(JST).date(), era=japanese.era_label,
            clerk=audit_text.actor_name(payment.clerk))

    # --- 日計表 ---------------------------------------------------------------------------

    def _venue_and_day(self, values):
        venues = fees.venues(session())
        venue = fees.get_venue(session(), fields.parse_id(values.get("venue")))
        if venue is None and venues:
            venue = venues[0]
        return venues, venue, fields.parse_day(values.get("day")) or _today()

    @expose("/daily")
    @has_access
    def daily(self):
        """The 日計表 of a venue and day, per clerk; each clerk closes their day here."""
        return self._daily_page(request.args)

    def _daily_page(self, args, errors=None, values=None, status=200):
        venues, venue, day = self._venue_and_day(args)
        me = current_user.username if _can("can_close_day") else None
        sheet = fees.daily_sheet(session(), venue, day, include_clerk=me) if venue else None
        values = dict(values or {})
        block = next((c for c in (sheet.clerks if sheet else []) if c.clerk == values.get("clerk")),
                     None)
        if block is not None:  # a refused close: show the difference of the typed count
            try:
                counted = fees.parse_yen(values.get("counted_cash"))
            except InputError:
                counted = None
            values["difference"] = None if counted is None else counted - block.expected_cash
        return self.render_template(
            "fees/daily.html", venues=venues, venue=venue, day=day, sheet=sheet,
            yen=fees.yen, kind_label=lambda k: label(KIND_LABELS, k),
            entry_label=_entry_label, method_label=_method_label, me=me,
            is_manager=fees.may_refund(cards.actor_of(current_user)),
            can_close=_can("can_close_day") and day <= _today(),  # never ahead of the day
            can_download=_can("can_daily_xlsx"),
            encryption_required=protected_exports.encryption_required("fees_daily"),
            errors=errors or {}, values=values, era=japanese.era_label,
            actor_name=audit_text.actor_name), status

    @expose("/daily/close", methods=["POST"])
    @has_access
    @refusals_flashed(back=_back_to_daily)
    def close_day(self):
        venue_id = fields.parse_id(request.form.get("venue"))
        day = fields.parse_day(request.form.get("day")) or _today()
        clerk = request.form.get("clerk") or current_user.username
        try:
            fees.close_day(session(), venue_id=venue_id, clerk=clerk, day=day,
                           counted_cash=request.form.get("counted_cash"),
                           explanation=request.form.get("explanation"),
                           actor=cards.actor_of(current_user), now=clock.now())
        except fees.FeeFieldError as error:
            if error.field not in ("counted_cash", "explanation"):
                raise DomainError(error.message) from None  # flashed: no field of its own
            values = request.form.to_dict()
            return self._daily_page(request.form, {(clerk, error.field): str(error.message)},
                                    values)
        flash(_("The day was closed."), "success")
        return redirect(_back_to_daily(self))

    @expose("/daily.xlsx", methods=["GET", "POST"])
    @has_access
    def daily_xlsx(self):
        """The 日計表 as XLSX; posted with 「暗号化ZIPで出力する」, as an AES-256 ZIP."""
        _venues, venue, day = self._venue_and_day(request.args)
        if venue is None:
            abort(404)
        back = url_for(".daily", venue=venue.id, day=day.isoformat())
        try:
            chosen = _choice()
            sheet = fees.daily_sheet(session(), venue, day)
            fees.record_sheet_export(
                session(), "fees_daily",
                {"what": "daily fees", "venue": venue.name, "day": day.isoformat(),
                 "rows": sum(len(c.entries) for c in sheet.clerks)},
                encrypted=chosen.encrypt)
        except DomainError as refused:
            flash_refusal(refused)
            return redirect(back)
        data = fees.daily_xlsx(sheet, name_of=audit_text.actor_name)
        return _xlsx(self, data, f"daily_fees_{venue.id}_{day:%Y%m%d}.xlsx", chosen, back)

    # --- 月計表 ---------------------------------------------------------------------------

    def _venue_and_month(self):
        venues = fees.venues(session())
        venue = fees.get_venue(session(), fields.parse_id(request.args.get("venue")))
        if venue is None and venues:
            venue = venues[0]
        month = fields.parse_month(request.args.get("month")) or _today().replace(day=1)
        return venues, venue, month

    @expose("/monthly")
    @has_access
    def monthly(self):
        venues, venue, month = self._venue_and_month()
        sheet = fees.monthly_sheet(session(), venue, month) if venue else None
        return self.render_template(
            "fees/monthly.html", venues=venues, venue=venue, month=month, sheet=sheet,
            yen=fees.yen, kind_label=lambda k: label(KIND_LABELS, k),
            method_label=_method_label, can_download=_can("can_monthly_xlsx"),
            encryption_required=protected_exports.encryption_required("fees_monthly"))

    @expose("/monthly.xlsx", methods=["GET", "POST"])
    @has_access
    def monthly_xlsx(self):
        """The 月計表 as XLSX; posted with 「暗号化ZIPで出力する」, as an AES-256 ZIP."""
        _venues, venue, month = self._venue_and_month()
        if venue is None:
            abort(404)
        back = url_for(".monthly", venue=venue.id, month=month.strftime("%Y-%m"))
        try:
            chosen = _choice()
            sheet = fees.monthly_sheet(session(), venue, month)
            fees.record_sheet_export(
                session(), "fees_monthly",
                {"what": "monthly fees", "venue": venue.name,
                 "month": month.strftime("%Y-%m"), "rows": len(sheet.rows)},
                encrypted=chosen.encrypt)
        except DomainError as refused:
            flash_refusal(refused)
            return redirect(back)
        data = fees.monthly_xlsx(sheet)
        return _xlsx(self, data, f"monthly_fees_{venue.id}_{month:%Y%m}.xlsx", chosen, back)


def _choice() -> export_policy.Choice:
    """A GET is the plain file; the form posts the encryption choice."""
    return protected_exports.choice() if request.method == "POST" else export_policy.PLAIN


def _xlsx(view, data: bytes, filename: str, chosen: export_policy.Choice,
          back: str) -> Response:
    if chosen.encrypt:
        return protected_exports.offer(view, [protected_zip.Part(filename, data)], chosen,
                                       filename, back=back)
    return Response(data, mimetype="application/vnd.openxmlformats-officedocument."
                                   "spreadsheetml.sheet",
                    headers={"Content-Disposition": f"attachment; filename={filename}"})



# --- 手数料表 ---------------------------------------------------------------------------

def _yen_field(text):
    return fees.parse_yen(text, "amount")


class FreeValidFrom:
    """The valid-from date of a row: not taken for its kind, and not a past day that would
    re-price applications already charged (fees.check_row_values), at the field."""

    def __call__(self, form, field):
        if not isinstance(field.data, date):
            return
        pk = fields.parse_id((request.view_args or {}).get("pk"))
        try:
            fees.check_row_values(session(), form.kind.data, field.data, _today(),
                                  except_id=pk)
        except DomainError as error:
            raise StopValidation(str(error.message)) from None


class FeeScheduleModelView(ModelView):
    """The fee table: 管理者 add rows with a valid-from date; a row already applied is
    never edited or deleted (app/services/fees.py refuses it, whatever the entry point)."""

    datamodel = SQLAInterface(FeeSchedule)
    list_title = _l("Fee table")
    show_title = _l("Fee")
    add_title = _l("Add a fee")
    edit_title = _l("Edit a fee")
    label_columns = {"kind": _l("Kind"), "valid_from": _l("Valid from"),
                     "card_amount": _l("Card (yen)"), "cert_amount": _l("Certificates (yen)"),
                     "note": _l("Note")}
    description_columns = {
        "valid_from": _l("The fee applies to applications from this day. A fee already "
                         "applied is never changed: add a new row from a later day."),
        "cert_amount": _l("Added when the applicant wants electronic certificates.")}
    list_columns = ["kind", "valid_from", "card_amount", "cert_amount", "note"]
    add_columns = edit_columns = show_columns = list_columns
    search_columns = ["kind", "valid_from"]
    base_order = ("valid_from", "desc")
    formatters_columns = {"kind": lambda v: label(KIND_LABELS, v), "card_amount": fees.yen,
                          "cert_amount": fees.yen, "valid_from": japanese.date_with_era,
                          "note": lambda v: v or ""}
    validators_columns = {"note": [CleanText(200)]}
    add_form_extra_fields = edit_form_extra_fields = {
        "kind": SelectField(_l("Kind"), choices=[(k, KIND_LABELS[k]) for k in CHARGED_KINDS],
                            widget=Select2Widget()),
        "valid_from": StringField(_l("Valid from"), [Parsed(japanese.parse_date), FreeValidFrom()],
                                  widget=BS3TextFieldWidget(),
                                  description=_l("For example 2027-04-01 or R9.4.1")),
        "card_amount": StringField(_l("Card (yen)"), [InputRequired(_l("Enter the amount in yen.")),
                                                      Parsed(_yen_field)],
                                   widget=BS3TextFieldWidget()),
        "cert_amount": StringField(_l("Certificates (yen)"),
                                   [InputRequired(_l("Enter the amount in yen.")),
                                    Parsed(_yen_field)], widget=BS3TextFieldWidget()),
    }

    def _actor(self):
        return cards.actor_of(current_user)

    def pre_add(self, item):
        fees.check_new_row(session(), kind=item.kind, valid_from=item.valid_from,
                           card_amount=item.card_amount, cert_amount=item.cert_amount,
                           actor=self._actor(), today=_today())

    def pre_update(self, item):
        fees.check_row_change(session(), item, actor=self._actor(), today=_today())

    def pre_delete(self, item):
        fees.check_row_change(session(), item, actor=self._actor(), today=_today(),
                              deleting=True)


