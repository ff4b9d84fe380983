"""The card ledger screens (F3.1, F3.3-F3.6): list, detail with history, add/edit with a
Japanese message at each wrong field, bulk state changes that are all or nothing."""
from __future__ import annotations

from contextvars import ContextVar

from flask import Response, flash, redirect, request, url_for
from markupsafe import Markup, escape
from flask_appbuilder import ModelView, expose, has_access
from flask_appbuilder.actions import action
from flask_appbuilder.fieldwidgets import BS3TextFieldWidget, Select2Widget
from flask_appbuilder.models.sqla.filters import (FilterContains, FilterEqual,
                                                  FilterStartsWith, SQLAFilterConverter)
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.widgets import FormWidget, ListWidget, SearchWidget
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from wtforms import SelectField, StringField

from app import clock
from app.extensions import session
from app.models.card import Card, CardEvent
from app.models.card_states import STATES, visit_mode_choices
from app.services import (audit_text, cards, exports, fields, intake, japanese, ledger,
                          notice_numbers, protected_zip)
from app.views import protected_exports
from app.views.feedback import refusals_flashed
from app.views.formatting import blank_none, jst, yes_no
from app.views.validators import CleanText, Parsed, UniqueValue

CARD_LABELS = {
    "application_id": _l("Application ID"), "shipment_number": _l("Shipment number"),
    "manufacture_number": _l("Manufacturing control number"), "name": _l("Name"),
    "name_kana": _l("Name (kana)"), "postal_code": _l("Postal code"), "address": _l("Address"),
    "birth_date": _l("Birth date"), "has_sign_cert": _l("Signature certificate"),
    "has_auth_cert": _l("User authentication certificate"), "visit_mode": _l("Visit mode"),
    "state": _l("State"), "storage_place": _l("Storage place"),
    "notice_number": _l("Postcard number"), "card_expires_on": _l("Card valid until"),
    "received_at": _l("Received"), "setup_at": _l("Set up"), "notice_sent_at": _l("Notice sent"),
    "renotified_at": _l("Re-notified"), "returned_at": _l("Returned"), "mailed_at": _l("Mailed"),
    "handed_over_at": _l("Handed over"), "discarded_at": _l("Discarded"),
    "handed_over_by": _l("Handed over by"), "identity_check": _l("Identity check"),
    "discard_hold": _l("Discard held back"), "discard_hold_reason": _l("Why held back"),
    "discard_reason": _l("Discard reason"), "notes": _l("Notes"), "held_from": _l("Held from"),
}
VISIT_MODE_CHOICES = visit_mode_choices()


def _today():
    return clock.now().date()


# The ledger at a staff PC's size (issue 12): one card per line. FAB's filter operators
# (〜から開始 ...) make no sense for a state or a visit mode: those two are choices above
# the list, sent as FAB's "equal to" filter (index 3 of a string column).
CHOICE_FILTERS = ("state", "visit_mode")
EQUAL = 3


def filter_arg(column: str) -> str:
    return f"_flt_{EQUAL}_{column}"


def short_date(value) -> str:
    """A date or timestamp in a list: 11/24 within this year, 2025/11/24 before; the full
    Japan time as the tooltip."""
    if value is None:
        return ""
    local = clock.to_jst(value) if hasattr(value, "hour") else value
    shown = local.strftime("%m/%d") if local.year == _today().year else local.strftime("%Y/%m/%d")
    full = jst(value) if hasattr(value, "hour") else local.isoformat()
    return Markup('<span title="{}">{}</span>').format(full, shown)


def birth_date_short(value) -> str:
    """1952/07/06, the era form (昭和27年7月6日) as the tooltip."""
    if value is None:
        return ""
    return Markup('<span title="{}">{}</span>').format(japanese.era_label(value),
                                                      value.strftime("%Y/%m/%d"))


def name_with_kana(name: str | None, kana: str | None) -> Markup:
    """山田　恵子（ヤマダ　ケイコ）in one cell, cut with … when narrow, whole as the tooltip."""
    text = f"{name or ''}（{kana}）" if kana else (name or "")
    return Markup('<span class="clip" title="{0}">{0}</span>').format(text)


class CardListWidget(ListWidget):
    """The ledger's table: the kana joins the name in one cell, short dates."""

    formatters = {"birth_date": birth_date_short, "received_at": short_date}

    def __init__(self, **kwargs):
        columns = kwargs.get("include_columns") or []
        formatters = {**(kwargs.get("formatters_columns") or {}), **self.formatters}
        if "name" in columns and "name_kana" in columns:
            kwargs["value_columns"] = list(kwargs.get("value_columns") or [])  # a generator
            for row in kwargs["value_columns"]:
                row["name"] = name_with_kana(row.get("name"), row.get("name_kana"))
            kwargs["include_columns"] = [c for c in columns if c != "name_kana"]
            formatters.pop("name", None)
        kwargs["formatters_columns"] = formatters
        super().__init__(**kwargs)


class CardSearchWidget(SearchWidget):
    """FAB's search panel without the state and visit mode (they are choices above)."""

    choice_filters = CHOICE_FILTERS  # shown as choices above the list instead

    def __call__(self, **kwargs):
        include = [c for c in self.template_args["include_cols"]
                   if c not in self.choice_filters]
        self.template_args["include_cols"] = include
        form, searchable = self.template_args["form"], self.filters.get_search_filters()
        kwargs["label_columns"] = {c: str(form[c].label.text) for c in include}
        kwargs["form_fields"] = {c: form[c]() for c in include}
        kwargs["search_filters"] = {c: [str(f.name) for f in searchable[c]] for c in include}
        kwargs["active_filters"] = [f for f in self.filters.get_filters_values_tojson()
                                    if f[0] not in self.choice_filters]
        return FormWidget.__call__(self, **kwargs)


def _zip_response(filename: str, data: bytes) -> Response:
    return Response(data, mimetype="application/zip", headers={
        "Content-Disposition": f"attachment; filename={filename}"})


def _back_to_list(view, *args, **kwargs) -> str:
    """Where a bulk action goes back to: the list the person came from."""
    return request.referrer or url_for(".list")


def _back_to_card(view, pk) -> str:
    return url_for(".show", pk=pk)


# --- searches the indexes answer (issue 14 §3; app/services/ledger.py) -------------------
# FAB's own text filters are ``lower(col) LIKE lower('ヤマダ%')``: no index serves them,
# so each search read every card. The ledger's keep FAB's order of operators (the URLs
# ``_flt_0_`` starts with, ``_flt_2_`` contains, ``_flt_3_`` equal stay) and hand the
# condition to the ledger service, with the input normalised as the ledger stores it.
_COUNTING = ContextVar("ledger_counting", default=False)


class _LedgerFilter(FilterStartsWith):
    arg_name = None  # FAB's REST map of filters by name stays FAB's own

    def condition(self, value):
        raise NotImplementedError

    def apply(self, query, value):
        return query.filter(self.condition(value))


class KanaStartsWith(_LedgerFilter):
    def condition(self, value):
        return ledger.kana_starts_with(session(), value, counting=_COUNTING.get())


class KanaContains(_LedgerFilter):
    name = FilterContains.name

    def condition(self, value):
        return ledger.kana_contains(session(), value)


class KanaEqual(_LedgerFilter):
    name = FilterEqual.name

    def condition(self, value):
        return ledger.kana_is(value)


class NameContains(_LedgerFilter):
    name = FilterContains.name

    def condition(self, value):
        return ledger.name_contains(session(), value)


class ApplicationIdStartsWith(_LedgerFilter):
    def condition(self, value):
        return ledger.application_id_starts_with(session(), value, counting=_COUNTING.get())


class ApplicationIdEqual(_LedgerFilter):
    name = FilterEqual.name

    def condition(self, value):
        return ledger.application_id_is(value)


class LedgerFilterConverter(SQLAFilterConverter):
    """FAB's filters per column type, with the ledger's in their places."""

    replaced = {
        "name_kana": {FilterStartsWith: KanaStartsWith, FilterContains: KanaContains,
                      FilterEqual: KanaEqual},
        "name": {FilterContains: NameContains},
        "application_id": {FilterStartsWith: ApplicationIdStartsWith,
                           FilterEqual: ApplicationIdEqual},
    }

    def convert(self, col_name):
        found = super().convert(col_name)
        swap = self.replaced.get(col_name)
        if not swap or found is None:
            return found
        return [swap.get(type(f), type(f))(col_name, self.datamodel) for f in found]


class CardInterface(SQLAInterface):
    """The ledger's data: its own filters, and the count of the list from the tally when
    nothing but a state or a visit mode narrows it (no count of every card per page)."""

    filter_converter_class = LedgerFilterConverter

    def query_count(self, query, filters=None, select_columns=None) -> int:
        chosen = {}
        for flt, values in zip(filters.filters if filters else [],
                               filters.values if filters else []):
            values = values if isinstance(values, list) else [values]
            if flt.column_name not in CHOICE_FILTERS or type(flt) is not FilterEqual \
                    or flt.column_name in chosen or len(values) != 1:
                break
            chosen[flt.column_name] = values[0]
        else:
            return ledger.tally(session(), chosen.get("state"), chosen.get("visit_mode"))
        token = _COUNTING.set(True)
        try:
            return super().query_count(query, filters, select_columns)
        finally:
            _COUNTING.reset(token)


def _card_form_fields():
    text = BS3TextFieldWidget()
    return {
        "application_id": StringField(CARD_LABELS["application_id"], [
            Parsed(japanese.parse_application_id),
            UniqueValue(Card.application_id, _l("A card with this application ID is already in the ledger."))],
            widget=text, description=_l("23 digits; full-width, spaces and hyphens are fine.")),
        "shipment_number": StringField(CARD_LABELS["shipment_number"],
                                       [Parsed(japanese.parse_shipment_number, optional=True)],
                                       widget=text),
        "manufacture_number": StringField(CARD_LABELS["manufacture_number"], [
            Parsed(japanese.parse_manufacture_number, optional=True),
            UniqueValue(Card.manufacture_number,
                        _l("A card with this manufacturing control number is already in the ledger."))],
            widget=text),
        "name": StringField(CARD_LABELS["name"], [Parsed(fields.clean_name)], widget=text),
        "name_kana": StringField(CARD_LABELS["name_kana"], [Parsed(fields.clean_kana)],
                                 widget=text,
                                 description=_l("Hiragana and half-width kana are converted.")),
        "postal_code": StringField(CARD_LABELS["postal_code"],
                                   [Parsed(japanese.parse_postal_code, optional=True)],
                                   widget=text),
        "birth_date": StringField(CARD_LABELS["birth_date"],
                                  [Parsed(lambda v: japanese.parse_birth_date(v, _today()))],
                                  widget=text,
                                  description=_l("1980-03-01, 19800301, S55.3.1 or 昭和55年3月1日")),
        "card_expires_on": StringField(CARD_LABELS["card_expires_on"],
                                       [Parsed(japanese.parse_date, optional=True)],
                                       widget=text),
        "visit_mode": SelectField(CARD_LABELS["visit_mode"], choices=VISIT_MODE_CHOICES,
                                  widget=Select2Widget()),
    }


class CardModelView(ModelView):
    datamodel = CardInterface(Card)
    list_title = _l("Card ledger")
    show_title = _l("Card")
    add_title = _l("Add a card")
    edit_title = _l("Edit card")
    list_template = "cards/list.html"
    audit_show = True
    show_template = "cards/show.html"
    label_columns = dict(CARD_LABELS)
    list_widget = CardListWidget
    search_widget = CardSearchWidget
    list_columns = ["application_id", "name", "name_kana", "birth_date", "visit_mode", "state",
                    "storage_place", "notice_number", "received_at"]
    search_columns = ["application_id", "name", "name_kana", "birth_date", "state",
                      "visit_mode", "storage_place", "notice_number", "shipment_number",
                      "manufacture_number", "postal_code", "address", "received_at",
                      "setup_at", "notice_sent_at", "handed_over_at", "discard_hold"]
    show_fieldsets = [
        (_l("Card"), {"fields": ["application_id", "state", "visit_mode",
                                 "storage_place", "notice_number", "shipment_number",
                                 "manufacture_number", "has_sign_cert", "has_auth_cert",
                                 "card_expires_on"]}),
        (_l("Resident"), {"fields": ["name", "name_kana", "birth_date", "postal_code",
                                     "address"]}),
        (_l("Dates"), {"fields": ["received_at", "setup_at", "notice_sent_at", "renotified_at",
                                  "returned_at", "mailed_at", "handed_over_at", "handed_over_by",
                                  "discarded_at", "discard_reason", "discard_hold",
                                  "discard_hold_reason"]}),
        (_l("Notes"), {"fields": ["notes"]}),
    ]
    add_columns = ["application_id", "visit_mode", "name", "name_kana", "birth_date",
                   "postal_code", "address", "shipment_number", "manufacture_number",
                   "has_sign_cert", "has_auth_cert", "card_expires_on", "storage_place", "notes"]
    edit_columns = ["application_id", "visit_mode", "name", "name_kana", "birth_date",
                    "postal_code", "address", "shipment_number", "manufacture_number",
                    "has_sign_cert", "has_auth_cert", "card_expires_on", "notes"]
    base_order = ("received_at", "desc")
    page_size = 50
    formatters_columns = {
        "state": cards.state_label, "visit_mode": cards.visit_mode_label,
        "birth_date": japanese.date_with_era, "notice_number": notice_numbers.display,
        "has_sign_cert": yes_no, "has_auth_cert": yes_no, "discard_hold": yes_no,
        "storage_place": blank_none, "shipment_number": blank_none,
        "manufacture_number": blank_none, "card_expires_on": blank_none,
        "postal_code": blank_none, "address": blank_none, "handed_over_by": blank_none,
        "discard_reason": blank_none, "discard_hold_reason": blank_none, "notes": blank_none,
        "received_at": jst, "setup_at": jst, "notice_sent_at": jst, "renotified_at": jst,
        "returned_at": jst, "mailed_at": jst, "handed_over_at": jst, "discarded_at": jst,
    }
    add_form_extra_fields = _card_form_fields()
    edit_form_extra_fields = _card_form_fields()
    description_columns = {"storage_place": _l("Leave empty to use the next free place.")}
    validators_columns = {"address": [CleanText(fields.ADDRESS_MAX)],
                          "notes": [CleanText(fields.NOTE_MAX, multiline=True)]}

    def _init_forms(self):
        super()._init_forms()
        # Empty means the next free place (cards.prepare_received), not FAB's "__None".
        self.add_form.storage_place.kwargs["blank_text"] = _l("(the next free place)")

    def pre_add(self, item: Card) -> None:
        cards.prepare_received(session(), item, actor=cards.actor_of(current_user))

    @expose("/transition/<id:pk>", methods=["POST"])
    @has_access
    @refusals_flashed(back=_back_to_card)
    def transition(self, pk):
        """One card, from its detail page: the target state and a note."""
        card = cards.card_by_id(session(), pk)
        if card is None:
            flash(_("No card matches."), "danger")
            return redirect(url_for(".list"))
        if request.form.get("to") == cards.HANDED_OVER:
            flash(_("Hand cards over on the hand-over screen, with the identity check."), "warning")
            return redirect(url_for("HandoverView.index", q=card.application_id))
        cards.transition_card(session(), card, request.form.get("to", ""),
                              fields.clean_text(request.form.get("note"), 500, multiline=True),
                              actor=cards.actor_of(current_user))
        flash(_("The card is now %(state)s.", state=cards.state_label(card.state)), "success")
        return redirect(url_for(".show", pk=pk))

    # --- bulk state changes (all or nothing) ---------------------------------------------
    @refusals_flashed(back=_back_to_list)
    def _bulk(self, items, to_state):
        items = items if isinstance(items, list) else [items]
        moved = cards.bulk_transition(session(), [i.id for i in items], to_state,
                                      fields.clean_text(request.form.get("note"), 500,
                                                        multiline=True),
                                      actor=cards.actor_of(current_user))
        flash(_("%(n)d card(s) are now %(state)s.", n=len(moved),
                state=cards.state_label(to_state)), "success")
        return redirect(_back_to_list(self))

    @action("to_setup", _l("Mark set up"), _l("Mark the selected cards as set up?"),
            "fa-cog", single=False)
    def to_setup(self, items):
        return self._bulk(items, cards.SETUP)

    @action("to_notice_sent", _l("Send notices"),
            _l("Record that notices were sent for the selected cards? Each gets a postcard number."),
            "fa-envelope", single=False)
    def to_notice_sent(self, items):
        return self._bulk(items, cards.NOTICE_SENT)

    @action("to_mailed", _l("Mark mailed"), _l("Record the selected cards as mailed?"),
            "fa-truck", single=False)
    def to_mailed(self, items):
        return self._bulk(items, cards.MAILED)

    @action("to_returned", _l("Mark returned"), _l("Record the selected as returned?"),
            "fa-undo", single=False)
    def to_returned(self, items):
        return self._bulk(items, cards.RETURNED)

    @action("to_renotified", _l("Send reminders"), _l("Record reminders for the selected cards?"),
            "fa-repeat", single=False)
    def to_renotified(self, items):
        return self._bulk(items, cards.RENOTIFIED)

    @action("to_on_hold", _l("Put on hold"), _l("Put the selected cards on hold?"),
            "fa-pause", single=False)
    def to_on_hold(self, items):
        return self._bulk(items, cards.ON_HOLD)

    @action("release_hold", _l("Release hold"), _l("Release the hold of the selected cards?"),
            "fa-play", single=False)
    @refusals_flashed(back=_back_to_list)
    def release_hold(self, items):
        items = items if isinstance(items, list) else [items]
        moved = cards.release_holds(session(), [i.id for i in items],
                                    actor=cards.actor_of(current_user))
        flash(_("%(n)d card(s) released from hold.", n=len(moved)), "success")
        return redirect(_back_to_list(self))

    @action("move_storage", _l("Move to another place"), None, "fa-archive", single=False)
    def move_storage(self, items):
        items = items if isinstance(items, list) else [items]
        return redirect(url_for("StorageView.move", ids=",".join(str(i.id) for i in items)))

    @action("print_data", _l("Postcard print data (Excel CSV + QR)"), None,
            "fa-print", single=False)
    def print_data(self, items):
        return self._print_data(items, "utf-8-sig")

    @action("print_data_sjis", _l("Postcard print data (Shift_JIS CSV + QR)"), None,
            "fa-print", single=False)
    def print_data_sjis(self, items):
        return self._print_data(items, "cp932")

    @action("print_data_encrypted", _l("Postcard print data in an encrypted ZIP"), None,
            "fa-lock", single=False)
    @refusals_flashed(back=_back_to_list)
    def print_data_encrypted(self, items):
        """First post (from the list): a page with the chosen cards, the CSV's encoding and
        the encryption choice (writes nothing). Second post (``step=export``, the same
        action): the print data as an AES-256 ZIP offered with its password once."""
        items = items if isinstance(items, list) else [items]
        items = [i for i in items if i is not None]
        if request.form.get("step") != "export":
            return self.render_template(
                "cards/print_data_encrypted.html", items=items,
                encryption_required=protected_exports.encryption_required("postcard_print"),
                title=_("Postcard print data in an encrypted ZIP"))
        chosen = protected_exports.choice()
        encoding = "cp932" if request.form.get("encoding") == "cp932" else "utf-8-sig"
        filename, data = exports.postcard_print_data(session(), [i.id for i in items],
                                                     encoding, encrypted=chosen.encrypt)
        if not chosen.encrypt:
            return _zip_response(filename, data)
        parts = [protected_zip.Part(name, content)
                 for name, content in exports.zip_members(data)]
        return protected_exports.offer(self, parts, chosen, filename, back=url_for(".list"))

    @refusals_flashed(back=_back_to_list)
    def _print_data(self, items, encoding):
        items = items if isinstance(items, list) else [items]
        filename, data = exports.postcard_print_data(session(), [i.id for i in items],
                                                     encoding)
        return _zip_response(filename, data)

    # --- the list's summary bar -------------------------------------------------------------
    def render_template(self, template, **kwargs):
        if template == self.show_template and kwargs.get("pk") is not None:
            card = cards.card_by_id(session(), int(kwargs["pk"]))
            kwargs["card"] = card
            actor = cards.actor_of(current_user)  # only what the service would accept
            kwargs["next_states"] = [(s, cards.state_label(s)) for s in cards.allowed_next(card)
                                     if s != cards.HANDED_OVER and cards.may_transition(actor, s)]
            kwargs["is_final"] = not cards.allowed_next(card)
            kwargs["reason_required"] = [s for s, _label in kwargs["next_states"]
                                         if s in cards.NEEDS_NOTE]
            kwargs["state_label"] = cards.state_label
            kwargs["jst"] = jst
            kwargs["actor_name"] = audit_text.actor_name  # the history's 操作者 by name
            kwargs["can_transition"] = self.appbuilder.sm.has_access(
                "can_transition", self.class_permission_name)
            kwargs["intake"] = intake.intake_for_application(  # its application (申請受付)
                session(), card.application_id if card else None)
            kwargs["intake_labels"] = intake
        if template == self.list_template:
            mode = request.args.get(filter_arg("visit_mode"))  # counts follow the mode filter
            kwargs["current_mode"] = mode
            kwargs["current_state"] = request.args.get(filter_arg("state"))
            kwargs["state_counts"] = cards.state_counts(session(), mode)
            kwargs["visit_modes"] = VISIT_MODE_CHOICES
            kwargs["state_choices"] = [(s, cards.state_label(s)) for s in STATES]
            kwargs["filter_arg"] = filter_arg
        return super().render_template(template, **kwargs)


class CardEventModelView(ModelView):
    """Read-only list of every card's history: state changes and moves between storage
    places (who did what to which card when, and where the card was kept after)."""

    datamodel = SQLAInterface(CardEvent)
    base_permissions = ["can_list", "can_show"]
    list_title = _l("Card history")
    label_columns = {"card": _l("Card"), "from_state": _l("From"), "to_state": _l("To"),
                     "at": _l("When"), "username": _l("Done by"), "note": _l("Note"),
                     "change": _l("What happened"), "storage_place": _l("Storage place")}
    list_columns = ["at", "card", "change", "storage_place", "username", "note"]
    show_columns = ["at", "card", "from_state", "to_state", "storage_place", "username",
                    "note"]
    search_columns = ["at", "from_state", "to_state", "username", "note"]
    base_order = ("id", "desc")
    formatters_columns = {"from_state": cards.state_label, "to_state": cards.state_label,
                          "at": jst, "note": blank_none, "storage_place": blank_none,
                          "username": audit_text.actor_name}
