"""Application intake screens (申請受付, F2.1, F2.2): the list with search and choice filters,
the detail with its card, booking and outreach session, add/edit with a Japanese message at
each wrong field (nothing saved on error), withdrawal with a reason, the bulk 送付済; the
outreach sessions (出張申請) with their applications and a printed list per session.

Every check is the service's (app/services/intake.py ``check``): the form runs it once the
field validators have normalised what was typed, and puts each message at its field."""
from __future__ import annotations

from flask import flash, g, redirect, request, url_for
from flask_appbuilder import ModelView, expose, has_access
from flask_appbuilder.actions import action
from flask_appbuilder.fieldwidgets import (BS3TextAreaFieldWidget, BS3TextFieldWidget,
                                           Select2Widget)
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup
from wtforms import BooleanField, HiddenField, RadioField, SelectField, StringField

from app import clock
from app.clock import JST
from app.extensions import session
from app.models.card_states import visit_mode_choices
from app.models.intake import (FEE_STATE_LABELS, KIND_LABELS, METHOD_LABELS, METHOD_OUTREACH, PHOTO_LABELS,
                               REISSUE_REASON_LABELS, SITE_LABELS, STATE_LABELS, Intake,
                               OutreachSession, label)
from app.services import (actors, audit_text, cards, desk, fees, fields, identity, intake,
                          japanese)
from app.views.card import (CardListWidget, CardSearchWidget, birth_date_short, filter_arg,
                            short_date)
from app.views.feedback import refusals_flashed
from app.views.formatting import blank_none, jst, yes_no
from app.views.validators import CleanText, Parsed

INTAKE_LABELS = {
    "application_id": _l("Application ID"), "method": _l("How it was taken"),
    "kind": _l("Application kind"), "reissue_reason": _l("Reason for the reissue"),
    "old_card_expires_on": _l("Old card valid until"),
    "holder_not_at_fault": _l("Stolen through no fault of the holder"),
    "official_error": _l("Caused by the city or J-LIS"), "visit_mode": _l("Visit mode"),
    "name": _l("Name"), "name_kana": _l("Name (kana)"), "birth_date": _l("Birth date"),
    "postal_code": _l("Postal code"), "address": _l("Address"), "phone": _l("Phone"),
    "wants_sign_cert": _l("Signature certificate"),
    "wants_auth_cert": _l("User authentication certificate"),
    "identity_check": _l("Identity check"), "photo": _l("Photo"), "clerk": _l("Clerk"),
    "venue": _l("Venue"), "venue_id": _l("Venue"), "taken_at": _l("Taken at"),
    "outreach_session": _l("Outreach session"), "outreach_session_id": _l("Outreach session"),
    "reservation": _l("Booking"), "notes": _l("Notes"), "state": _l("State"),
    "sent_at": _l("Sent"), "handed_over_at": _l("Handed over"), "withdrawn_at": _l("Withdrawn"),
    "withdraw_reason": _l("Reason for the withdrawal"), "fee_state": _l("Fee"),
    "card": _l("Card"),
    # the identity checklist (app/services/identity.py)
    "identity": _l("Identity documents"), "collector": _l("Who came"),
    "proxy_reason": _l("Reason the resident cannot come"),
    "reason_proof": _l("Proof of the reason"),
    "authority_proof": _l("Proof of authority (delegation / representation)"),
    "proxy_identity": _l("Proxy's identity documents"),
}
SESSION_LABELS = {"day": _l("Date"), "site_kind": _l("Kind of site"),
                  "site_name": _l("Site"), "address": _l("Address"), "staff": _l("Staff on site"),
                  "note": _l("Notes"), "intakes": _l("Applications")}
CHECKLIST = identity.APPLICATION_FIELDS
IDENTITY_CHOICES = [(identity.ID_ONE_A, _l("One A-type document (My Number Card, driving "
                                           "licence, passport, ...)")),
                    (identity.ID_TWO_B, _l("Two B-type documents (health insurance card, "
                                           "pension book, ...)"))]
COLLECTOR_CHOICES = [("self", _l("The resident")),
                     ("legal_representative",
                      _l("Legal representative (under 15, guardianship)")),
                     ("proxy", _l("Proxy"))]


def _blank(labels) -> list[tuple[str, str]]:
    return [("", "—")] + intake.choices(labels)


def _int_or_none(value):
    if value in (None, "", "None"):
        return None
    number = fields.parse_id(value)
    return number if number is not None else str(value)


def _venue_choices():
    return [("", "—")] + [(str(v.id), v.name) for v in desk.venues(session()) if v.active]


def _session_choices():
    return [("", "—")] + [(str(s.id), str(s)) for s in intake.recent_sessions(session())]


def _select(name, choices, **kwargs):
    return SelectField(INTAKE_LABELS[name], choices=choices, validate_choice=False,
                       widget=Select2Widget(), **kwargs)


def _today():
    return clock.now().date()


def _intake_form_fields() -> dict:
    text = BS3TextFieldWidget()
    return {
        "application_id": StringField(INTAKE_LABELS["application_id"],
                                      [Parsed(japanese.parse_application_id)], widget=text,
                                      description=_l("23 digits; full-width, spaces and "
                                                     "hyphens are fine.")),
        "method": _select("method", intake.choices(METHOD_LABELS)),
        "outreach_session_id": _select("outreach_session_id", _session_choices,
                                       coerce=_int_or_none,
                                       description=_l("Only for an outreach application.")),
        "kind": _select("kind", intake.choices(KIND_LABELS)),
        "reissue_reason": _select("reissue_reason", _blank(REISSUE_REASON_LABELS),
                                  description=_l("Only for a reissue.")),
        "old_card_expires_on": StringField(INTAKE_LABELS["old_card_expires_on"],
                                           [Parsed(japanese.parse_date, optional=True)],
                                           widget=text),
        "holder_not_at_fault": BooleanField(INTAKE_LABELS["holder_not_at_fault"]),
        "official_error": BooleanField(INTAKE_LABELS["official_error"]),
        "visit_mode": _select("visit_mode", visit_mode_choices()),
        "name": StringField(INTAKE_LABELS["name"], [Parsed(fields.clean_name)], widget=text),
        "name_kana": StringField(INTAKE_LABELS["name_kana"], [Parsed(fields.clean_kana)],
                                 widget=text,
                                 description=_l("Hiragana and half-width kana are converted.")),
        "birth_date": StringField(INTAKE_LABELS["birth_date"],
                                  [Parsed(lambda v: japanese.parse_birth_date(v, _today()))],
                                  widget=text,
                                  description=_l("1980-03-01, 19800301, S55.3.1 or 昭和55年3月1日")),
        "postal_code": StringField(INTAKE_LABELS["postal_code"],
                                   [Parsed(japanese.parse_postal_code, optional=True)],
                                   widget=text),
        "address": StringField(INTAKE_LABELS["address"], [CleanText(fields.ADDRESS_MAX)],
                               widget=text),
        "phone": StringField(INTAKE_LABELS["phone"],
                             [Parsed(fields.clean_phone, optional=True)], widget=text),
        "wants_sign_cert": BooleanField(INTAKE_LABELS["wants_sign_cert"], default=True),
        "wants_auth_cert": BooleanField(INTAKE_LABELS["wants_auth_cert"], default=True),
        "photo": _select("photo", _blank(PHOTO_LABELS)),
        "identity": RadioField(INTAKE_LABELS["identity"], choices=IDENTITY_CHOICES,
                               validate_choice=False),
        "collector": RadioField(INTAKE_LABELS["collector"], choices=COLLECTOR_CHOICES,
                                default="self", validate_choice=False),
        "proxy_reason": _select("proxy_reason", [("", "—")] + identity.PROXY_REASON_LABELS),
        "reason_proof": BooleanField(INTAKE_LABELS["reason_proof"]),
        "authority_proof": BooleanField(INTAKE_LABELS["authority_proof"]),
        "proxy_identity": BooleanField(INTAKE_LABELS["proxy_identity"]),
        "venue_id": _select("venue_id", _venue_choices, coerce=_int_or_none),
        "notes": StringField(INTAKE_LABELS["notes"],
                             [CleanText(fields.NOTE_MAX, multiline=True)],
                             widget=BS3TextAreaFieldWidget()),
        "taken_at": StringField(INTAKE_LABELS["taken_at"], widget=text,
                                description=_l("Leave empty for now. For an application typed "
                                               "in later (an outreach session's), when it was "
                                               "taken: 2026-12-01 10:30.")),
        "reservation_id": HiddenField(),
        "next": HiddenField(),
    }


def _values_of_form(form) -> dict:
    values = {name: form[name].data for name in intake.FIELDS if name in form}
    values["identity_check"] = {key: form[key].data for key in CHECKLIST if key in form}
    return values


def _values_of_item(item: Intake) -> dict:
    values = {name: getattr(item, name, None) for name in intake.FIELDS}
    values["identity_check"] = {key: getattr(item, key, None) for key in CHECKLIST}
    return values


def _desk_next(value: str | None) -> str | None:
    """Only a way back to the check-in desk is followed."""
    value = value or ""
    return value if value.startswith("/desk/") and "//" not in value else None


def _prefill() -> dict:
    """A new intake's fields from the query: a booking (the desk's check-in), a venue (a
    walk-in at the desk) or an outreach session."""
    args = request.args
    data: dict = {"method": args.get("method") or "counter"}
    reservation = intake.reservation_by_id(session(), args.get("reservation"))
    if reservation is not None:
        data.update(intake.prefill_from_reservation(reservation))
    venue = intake.venue_by_id(session(), args.get("venue"))
    if venue is not None:
        data["venue_id"] = venue.id
    outreach = intake.get_session(session(), args.get("outreach_session"))
    if outreach is not None:
        data.update(method=METHOD_OUTREACH, outreach_session_id=outreach.id)
    if _desk_next(args.get("next")):
        data["next"] = args.get("next")
    return data


def _checked_form(base, view):
    """The generated form, with the service's checks after the field validators."""

    class CheckedForm(base):
        @classmethod
        def refresh(cls, obj=None):
            if obj is None and request.method == "GET" and request.endpoint.endswith(".add"):
                return cls(data=_prefill())
            return cls(obj=obj)

        def validate(self, extra_validators=None):
            ok = super().validate(extra_validators)
            refused = {name for name, field in self._fields.items() if field.errors}
            pk = fields.parse_id((request.view_args or {}).get("pk"))
            _clean, problems = intake.check(session(), _values_of_form(self), intake_id=pk,
                                            skip=refused)
            for name, message in problems.items():
                field = self._fields.get(name) or self._fields["application_id"]
                field.errors = [*field.errors, message]
            return ok and not problems

    CheckedForm.__name__ = base.__name__
    return CheckedForm


class IntakeListWidget(CardListWidget):
    formatters = {"birth_date": birth_date_short, "taken_at": short_date}

    def __init__(self, **kwargs):
        rows = list(kwargs.get("value_columns") or [])  # a generator
        for row in rows:  # 手数料なし for a free kind, 未調定 for one not yet charged
            row["fee_state"] = fees.fee_state_text(row.get("fee_state"), row.get("kind"))
        kwargs["value_columns"] = rows
        formatters = dict(kwargs.get("formatters_columns") or {})
        formatters.pop("fee_state", None)
        kwargs["formatters_columns"] = formatters
        super().__init__(**kwargs)


class IntakeSearchWidget(CardSearchWidget):
    choice_filters = ("state", "method", "kind")


class IntakeModelView(ModelView):
    datamodel = SQLAInterface(Intake)
    list_title = _l("Applications")
    show_title = _l("Application")
    add_title = _l("Take an application")
    edit_title = _l("Edit application")
    list_template = "intake/list.html"
    show_template = "intake/show.html"
    add_template = "intake/add.html"  # intake_form.js: fields shown when they apply
    edit_template = "intake/edit.html"
    audit_show = True
    base_permissions = ["can_list", "can_show", "can_add", "can_edit", "can_withdraw"]
    label_columns = dict(INTAKE_LABELS)
    list_widget = IntakeListWidget
    search_widget = IntakeSearchWidget
    list_columns = ["application_id", "name", "name_kana", "birth_date", "kind", "method",
                    "state", "fee_state", "venue", "taken_at"]
    search_columns = ["application_id", "name", "name_kana", "birth_date", "state", "method",
                      "kind", "reissue_reason", "visit_mode", "postal_code", "address", "phone",
                      "photo", "clerk", "venue", "outreach_session", "taken_at", "fee_state",
                      "wants_sign_cert", "wants_auth_cert", "sent_at", "handed_over_at",
                      "withdrawn_at", "withdraw_reason", "notes"]
    show_fieldsets = [
        (_l("Application"), {"fields": ["application_id", "state", "kind", "reissue_reason",
                                        "old_card_expires_on", "holder_not_at_fault",
                                        "official_error", "method", "visit_mode",
                                        "wants_sign_cert", "wants_auth_cert", "photo"]}),
        (_l("Resident"), {"fields": ["name", "name_kana", "birth_date", "postal_code",
                                     "address", "phone"]}),
        (_l("Taken"), {"fields": ["taken_at", "clerk", "venue", "outreach_session",
                                  "identity_check"]}),
        (_l("Dates"), {"fields": ["sent_at", "handed_over_at", "withdrawn_at",
                                  "withdraw_reason"]}),
        (_l("Notes"), {"fields": ["notes"]}),
    ]
    _form = ["application_id", "method", "outreach_session_id", "venue_id", "kind",
             "reissue_reason", "old_card_expires_on", "holder_not_at_fault", "official_error",
             "visit_mode", "name", "name_kana", "birth_date", "postal_code", "address", "phone",
             "wants_sign_cert", "wants_auth_cert", "photo", *CHECKLIST, "taken_at", "notes",
             "reservation_id", "next"]
    add_columns = _form
    edit_columns = _form
    add_fieldsets = edit_fieldsets = [
        (_l("Application"), {"fields": ["application_id", "method", "outreach_session_id",
                                        "venue_id", "kind", "reissue_reason",
                                        "old_card_expires_on", "holder_not_at_fault",
                                        "official_error", "visit_mode", "wants_sign_cert",
                                        "wants_auth_cert", "photo"]}),
        (_l("Resident"), {"fields": ["name", "name_kana", "birth_date", "postal_code",
                                     "address", "phone"]}),
        (_l("Identity check"), {"fields": list(CHECKLIST)}),
        (_l("Notes"), {"fields": ["taken_at", "notes", "reservation_id", "next"]}),
    ]
    base_order = ("taken_at", "desc")
    page_size = 50
    formatters_columns = {
        "state": intake.state_label, "method": intake.method_label, "kind": intake.kind_label,
        "reissue_reason": intake.reason_label, "photo": intake.photo_label,
        "visit_mode": cards.visit_mode_label, "birth_date": japanese.date_with_era,
        "fee_state": lambda v: label(FEE_STATE_LABELS, v),
        "wants_sign_cert": yes_no, "wants_auth_cert": yes_no, "holder_not_at_fault": yes_no,
        "official_error": yes_no, "phone": japanese.format_phone,
        "old_card_expires_on": blank_none, "postal_code": blank_none, "address": blank_none,
        "venue": blank_none, "outreach_session": blank_none, "notes": blank_none,
        "withdraw_reason": blank_none, "identity_check": lambda v: checklist_text(v),
        "taken_at": jst, "sent_at": jst, "handed_over_at": jst, "withdrawn_at": jst,
        "clerk": audit_text.actor_name,
    }
    add_form_extra_fields = _intake_form_fields()
    edit_form_extra_fields = _intake_form_fields()

    def _init_forms(self):
        super()._init_forms()
        self.add_form = _checked_form(self.add_form, self)
        self.edit_form = _checked_form(self.edit_form, self)

    def prefill_form(self, form, pk):
        item = intake.get_intake(session(), pk)
        check = identity.from_json(item.identity_check if item else None)
        for key in CHECKLIST:
            form[key].data = check.get(key) or form[key].default
        if item is not None and item.taken_at is not None:
            form.taken_at.data = item.taken_at.astimezone(JST).strftime("%Y-%m-%d %H:%M")

    def pre_add(self, item: Intake) -> None:
        intake.fill_new(session(), item, _values_of_item(item),
                        actor=actors.actor_of(current_user))

    def post_add(self, item: Intake) -> None:
        g.intake_saved = item.id
        taken = _("Application %(id)s taken.", id=item.application_id)
        if _desk_next(request.form.get("next")):  # back to the desk: a way on to the fee
            taken = Markup('{} <a class="alert-link" href="{}" data-testid="intake-saved-link">'
                           '{}</a>').format(taken, url_for(".show", pk=item.id),
                                            _("Open the application (fee, scanned documents)"))
        g.intake_saved_message = taken

    @property
    def add_row_message(self):
        """What FAB flashes after a save: the application, with a way to it from the desk."""
        return getattr(g, "intake_saved_message", None) or _("Added Row")

    def post_add_redirect(self):
        saved = getattr(g, "intake_saved", None)
        back = _desk_next(request.form.get("next"))
        if saved and back:
            return redirect(back)
        if saved:
            return redirect(url_for(".show", pk=saved))
        return redirect(url_for(".list"))

    def pre_update(self, item: Intake) -> None:
        intake.fill_update(session(), item, _values_of_item(item),
                           actor=actors.actor_of(current_user))

    @expose("/withdraw/<id:pk>", methods=["POST"])
    @has_access
    @refusals_flashed(back=lambda view, pk: url_for(".show", pk=pk))
    def withdraw(self, pk):
        item = intake.get_intake(session(), pk)
        if item is None:
            flash(_("No application matches."), "danger")
            return redirect(url_for(".list"))
        intake.withdraw(session(), item, request.form.get("reason"),
                        actor=actors.actor_of(current_user))
        flash(_("The application was withdrawn."), "success")
        return redirect(url_for(".show", pk=pk))

    @action("mark_sent", _l("Mark as sent"), _l("Record the selected applications as sent?"),
            "fa-paper-plane", single=False)
    @refusals_flashed(back=lambda view, items: request.referrer or url_for(".list"))
    def mark_sent(self, items):
        items = items if isinstance(items, list) else [items]
        done = intake.mark_sent(session(), [i.id for i in items],
                                actor=actors.actor_of(current_user))
        flash(_("%(n)d application(s) are now %(state)s.", n=len(done),
                state=intake.state_label(intake.SENT)), "success")
        return redirect(request.referrer or url_for(".list"))

    def render_template(self, template, **kwargs):
        if template == self.show_template and kwargs.get("pk") is not None:
            item = intake.get_intake(session(), kwargs["pk"])
            kwargs["intake"] = item
            kwargs["card_state_label"] = cards.state_label
            kwargs["intake_state_label"] = intake.state_label
            kwargs["can_withdraw"] = (
                item is not None and item.state in (intake.ACCEPTED, intake.SENT)
                and self.appbuilder.sm.has_access("can_withdraw", self.class_permission_name))
            kwargs["can_edit"] = (
                item is not None and item.state in (intake.ACCEPTED, intake.SENT)
                and self.appbuilder.sm.has_access("can_edit", self.class_permission_name))
            kwargs["jst"] = jst
        if template == self.list_template:
            kwargs["state_counts"] = intake.state_counts(session())
            kwargs["filter_arg"] = filter_arg
            kwargs["choice_filters"] = [
                ("state", _("State"), intake.choices(STATE_LABELS)),
                ("method", _("How it was taken"), intake.choices(METHOD_LABELS)),
                ("kind", _("Application kind"), intake.choices(KIND_LABELS))]
        return super().render_template(template, **kwargs)


def checklist_text(value: str | None) -> str:
    """The stored checklist as a clerk reads it."""
    check = identity.from_json(value)
    if not check:
        return ""
    parts = [str(dict(IDENTITY_CHOICES).get(check.get("identity"), ""))]
    who = check.get("collector") or "self"
    parts.append(str(dict(COLLECTOR_CHOICES).get(who, who)))
    if check.get("proxy_reason"):
        parts.append(identity.proxy_reason_label(check["proxy_reason"]))
    for key in ("reason_proof", "authority_proof", "proxy_identity"):
        if check.get(key):
            parts.append(str(INTAKE_LABELS[key]))
    return "、".join(p for p in parts if p)


# --- 出張申請 --------------------------------------------------------------------------------

def _session_form_fields() -> dict:
    text = BS3TextFieldWidget()
    return {
        "day": StringField(SESSION_LABELS["day"], [Parsed(japanese.parse_date)], widget=text,
                           description=_l("2026-12-01 or R8.12.1")),
        "site_kind": SelectField(SESSION_LABELS["site_kind"], choices=intake.choices(SITE_LABELS),
                                 validate_choice=False, widget=Select2Widget()),
        "site_name": StringField(SESSION_LABELS["site_name"],
                                 [CleanText(intake.SITE_NAME_MAX, empty="")], widget=text),
        "address": StringField(SESSION_LABELS["address"], [CleanText(fields.ADDRESS_MAX)],
                               widget=text),
        "staff": StringField(SESSION_LABELS["staff"], [CleanText(intake.STAFF_MAX)],
                             widget=text, description=_l("Names of the staff who went.")),
        "note": StringField(SESSION_LABELS["note"], [CleanText(fields.NOTE_MAX, multiline=True)],
                            widget=BS3TextAreaFieldWidget()),
    }


def _checked_session_form(base):
    class CheckedSessionForm(base):
        def validate(self, extra_validators=None):
            ok = super().validate(extra_validators)
            refused = {name for name, field in self._fields.items() if field.errors}
            _clean, problems = intake.check_session(
                {name: self._fields[name].data for name in self._fields})
            for name, message in problems.items():
                if name in self._fields and name not in refused:
                    self._fields[name].errors = [*self._fields[name].errors, message]
            return ok and not (set(problems) - refused)

    CheckedSessionForm.__name__ = base.__name__
    return CheckedSessionForm


class OutreachSessionModelView(ModelView):
    datamodel = SQLAInterface(OutreachSession)
    list_title = _l("Outreach sessions")
    show_title = _l("Outreach session")
    add_title = _l("Add an outreach session")
    edit_title = _l("Edit outreach session")
    show_template = "intake/session_show.html"
    audit_show = True
    base_permissions = ["can_list", "can_show", "can_add", "can_edit", "can_print_list"]
    label_columns = dict(SESSION_LABELS)
    list_columns = ["day", "site_kind", "site_name", "address", "staff"]
    search_columns = ["day", "site_kind", "site_name", "address", "staff", "note"]
    show_columns = ["day", "site_kind", "site_name", "address", "staff", "note"]
    add_columns = edit_columns = ["day", "site_kind", "site_name", "address", "staff", "note"]
    base_order = ("day", "desc")
    formatters_columns = {"site_kind": intake.site_label, "address": blank_none,
                          "staff": blank_none, "note": blank_none,
                          "day": lambda d: japanese.date_with_era(d)}
    add_form_extra_fields = _session_form_fields()
    edit_form_extra_fields = _session_form_fields()

    def _init_forms(self):
        super()._init_forms()
        self.add_form = _checked_session_form(self.add_form)
        self.edit_form = _checked_session_form(self.edit_form)

    def _values(self, item: OutreachSession) -> dict:
        return {name: getattr(item, name) for name in
                ("day", "site_kind", "site_name", "address", "staff", "note")}

    def pre_add(self, item: OutreachSession) -> None:
        intake.fill_session(session(), item, self._values(item),
                            actor=actors.actor_of(current_user))

    def pre_update(self, item: OutreachSession) -> None:
        intake.fill_session(session(), item, self._values(item),
                            actor=actors.actor_of(current_user))

    @expose("/print/<id:pk>")
    @has_access
    def print_list(self, pk):
        """The session's applications on A4 (print CSS, numbered pages); audited."""
        outreach = intake.get_session(session(), pk)
        if outreach is None:
            flash(_("No outreach session matches."), "danger")
            return redirect(url_for(".list"))
        printed = intake.session_print_list(session(), outreach)
        return self.render_template(
            "intake/session_print.html", outreach=printed.outreach, intakes=printed.intakes,
            now=clock.now(), jst=jst, kind_label=intake.kind_label,
            state_label=intake.state_label, site_label=intake.site_label,
            date_with_era=japanese.date_with_era, format_phone=japanese.format_phone)

    def render_template(self, template, **kwargs):
        if template == self.show_template and kwargs.get("pk") is not None:
            outreach = intake.get_session(session(), kwargs["pk"])
            kwargs["outreach"] = outreach
            kwargs["intakes"] = intake.session_intakes(session(), outreach) if outreach else []
            kwargs["kind_label"] = intake.kind_label
            kwargs["state_label"] = intake.state_label
            kwargs["jst"] = jst
            sm = self.appbuilder.sm
            kwargs["can_add_intake"] = sm.has_access("can_add", "IntakeModelView")
            kwargs["can_print"] = sm.has_access("can_print_list", self.class_permission_name)
        return super().render_template(template, **kwargs)
