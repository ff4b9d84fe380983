"""REST API (FAB ModelRestApi), same roles as the screens; JWT from /api/v1/security/login.

Reading a record is audited like opening its page; a list records which rows it returned
and the filter (docs/roles.md: the API is personal data leaving the screen, so 閲覧者 have
no API)."""
import sys

from flask import request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_appbuilder.api import ModelRestApi, expose, safe
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import permission_name, protect
from sqlalchemy.exc import OperationalError

from app.extensions import session
from app.models.card import Card
from app.models.card_states import HANDED_OVER, state_label
from app.models.reservation import Reservation
from app.services import audit, cards, desk, fields, japanese, unit
from app.services.deletion import InUseError, ensure_deletable
from app.services.errors import DomainError, InputError, NotPermittedError

CARD_FIELDS = ["id", "application_id", "shipment_number", "manufacture_number", "name",
               "name_kana", "postal_code", "address", "birth_date", "has_sign_cert",
               "has_auth_cert", "visit_mode", "state", "storage_place.code", "notice_number",
               "card_expires_on", "received_at", "setup_at", "notice_sent_at", "renotified_at",
               "returned_at", "mailed_at", "handed_over_at", "discarded_at", "notes"]


class AnswersUnavailable:
    """FAB's ``@safe`` turns every exception of an API method into a 500 before the app's
    error handlers see it. ``response_500`` is called inside safe's ``except`` block, so
    the exception being handled is at hand: a database out of reach (a failover under way)
    is raised on to app/unavailable.py, which answers JSON 503 with Retry-After as for every
    other page, and the desk's REST client knows to try again. Also FAB's sign-in API
    (app/security.py)."""

    def response_500(self, message=None):
        error = sys.exc_info()[1]
        if isinstance(error, OperationalError):
            raise error
        return super().response_500(message)


class _NoCatalogueHeader:
    """FAB translates an empty label or description with gettext(""), which answers the
    catalogue's header ("Project-Id-Version: ..."): an empty text stays empty."""

    def _get_field_info(self, field, filter_rel_field, page=None, page_size=None):
        info = super()._get_field_info(field, filter_rel_field, page, page_size)
        for key in ("label", "description"):
            if not (getattr(self, f"{key}_columns", None) or {}).get(field.name):
                info[key] = ""
        return info


class AuditedReadsMixin:
    """Every successful GET of one record or of a list is an audit event (ACTION_VIEW)."""

    def pre_get(self, data: dict) -> None:
        audit.record_event(audit.ACTION_VIEW, self.datamodel.obj.__tablename__, data.get("id"),
                           {"via": "api"})

    def pre_get_list(self, data: dict) -> None:
        audit.record_event(audit.ACTION_VIEW, self.datamodel.obj.__tablename__, None,
                           {"via": "api", "what": "list", "ids": list(data.get("ids") or []),
                            "count": data.get("count"), "query": request.args.get("q")})


def _optional(parser):
    """Empty means None; else text without control characters, through the parser."""
    def parse(value):
        text = fields.clean_text(value, 100)
        return parser(text) if text else None
    return parse


class CheckedWrites:
    """PUT (and POST) run the same field checks as the screens (app/services/fields.py)
    before anything is loaded into the record: a refused value answers 400 with the
    Japanese message per field and changes nothing. An id that is not a record id is 404."""

    field_checks: dict = {}

    def _check_payload(self):
        payload = request.get_json(silent=True)
        if payload is None:
            return None  # FAB answers "Request is not JSON"
        if not isinstance(payload, dict):
            return self.response_400(message=str(_l("Send a JSON object with the fields to "
                                                     "change.")))
        errors = {}
        for name, check in self.field_checks.items():
            if name in payload:
                try:
                    payload[name] = check(payload[name])
                except InputError as error:
                    errors[name] = str(error.message)
        if errors:
            return self.response_400(message=errors)
        return None

    def put_headless(self, pk):
        if fields.parse_id(pk) is None:
            return self.response_404()
        refused = self._check_payload()
        if refused is not None:
            return refused
        return super().put_headless(pk)

    def post_headless(self):
        refused = self._check_payload()
        if refused is not None:
            return refused
        return super().post_headless()


class _RefusesDeleteInUse:
    """DELETE follows the screens' rule (app.services.deletion): while other rows refer to
    the record, 409 with the Japanese reason, and nothing changes. Checked before FAB's
    delete, as the screens do (app/views/guard.py)."""

    def delete_headless(self, pk):
        item = self.datamodel.get(pk, self._base_filters) if fields.parse_id(pk) else None
        try:
            if item is not None:
                ensure_deletable(session(), item)
            return super().delete_headless(pk)
        except InUseError as error:
            # refused by the check, or by the flush guard inside FAB's own transaction
            # (a reference made meanwhile), which this request then ends unkept
            unit.discard(session())
            return self.response(409, message=str(error.message))


class CardApi(AnswersUnavailable, AuditedReadsMixin, CheckedWrites, _RefusesDeleteInUse, _NoCatalogueHeader,
              ModelRestApi):
    """`/api/v1/card/`: read the ledger; state changes only through POST .../transition."""

    resource_name = "card"
    datamodel = SQLAInterface(Card)
    allow_browser_login = True
    list_columns = show_columns = CARD_FIELDS
    edit_columns = ["shipment_number", "postal_code", "address", "notes", "card_expires_on"]
    add_columns = []  # new cards come from the ledger screen or the QR scanner
    search_columns = ["application_id", "name", "name_kana", "state", "visit_mode",
                      "notice_number", "shipment_number"]
    order_columns = ["application_id", "received_at", "state", "name_kana"]
    base_permissions = ["can_get", "can_info", "can_put", "can_delete", "can_transition"]
    field_checks = {
        "shipment_number": _optional(japanese.parse_shipment_number),
        "postal_code": _optional(japanese.parse_postal_code),
        "address": lambda v: fields.clean_text(v, fields.ADDRESS_MAX),
        "notes": lambda v: fields.clean_text(v, fields.NOTE_MAX, multiline=True),
    }

    @expose("/<id:pk>/transition", methods=["POST"])
    @protect()
    @safe
    @permission_name("transition")
    def transition(self, pk):
        """Move a card to another state.
        ---
        post:
          requestBody:
            content:
              application/json:
                schema:
                  type: object
                  properties:
                    to: {type: string}
                    note: {type: string}
          responses:
            200: {description: the card's new state}
            404: {description: no such card}
            409: {description: refused with the reason; nothing changed}
        """
        card = cards.card_by_id(session(), pk)
        if card is None:
            return self.response_404()
        payload = request.get_json(silent=True)
        if payload is None:
            payload = {}
        if not isinstance(payload, dict) or not isinstance(payload.get("note"), (str, type(None))):
            return self.response_400(message=str(_l("Send a JSON object: "
                                                     "{\"to\": state, \"note\": text}.")))
        to_state = str(payload.get("to", ""))
        if to_state == HANDED_OVER:
            return self.response(409, message=_("Hand cards over on the hand-over screen, "
                                                "with the identity check."))
        try:  # the unit of work has rolled back: each refusal is its HTTP status
            cards.transition_card(session(), card, to_state, payload.get("note"),
                                  actor=cards.actor_of(self.appbuilder.sm.current_user))
        except InputError as error:
            return self.response_400(message=str(error.message))
        except NotPermittedError as error:
            return self.response(403, message=str(error.message), state=card.state)
        except DomainError as error:
            return self.response(409, message=str(error.message), state=card.state)
        return self.response(200, id=card.id, state=card.state,
                             state_label=state_label(card.state),
                             notice_number=card.notice_number)


RESERVATION_FIELDS = ["id", "number", "state", "starts_at", "offer.id", "slot.ends_at",
                      "seats", "channel", "name", "name_kana", "phone",
                      "email", "note", "created_at", "checked_in_at", "checked_in_by",
                      "completed_at", "cancelled_at", "cancel_reason"]


class ReservationApi(AnswersUnavailable, AuditedReadsMixin, CheckedWrites, _RefusesDeleteInUse,
                     _NoCatalogueHeader, ModelRestApi):
    """`/api/v1/reservation/`: bookings; arrival through POST .../check-in (F1.6)."""

    resource_name = "reservation"
    datamodel = SQLAInterface(Reservation)
    allow_browser_login = True
    list_columns = show_columns = RESERVATION_FIELDS
    edit_columns = ["name", "name_kana", "phone", "email", "note"]
    add_columns = []  # bookings come through the engine (residents' site or the desk)
    search_columns = ["number", "state", "starts_at", "channel", "name", "name_kana", "phone"]
    order_columns = ["number", "starts_at", "state", "name_kana"]
    base_permissions = ["can_get", "can_info", "can_put", "can_check_in"]
    field_checks = {
        "name": fields.clean_optional_name,
        "name_kana": fields.clean_optional_kana,
        "phone": fields.clean_phone,
        "email": fields.clean_email,
        "note": lambda v: fields.clean_text(v, fields.NOTE_MAX, multiline=True),
    }

    @expose("/<id:pk>/check-in", methods=["POST"])
    @protect()
    @safe
    @permission_name("check_in")
    def check_in(self, pk):
        """Mark the visitor arrived (来庁済).
        ---
        post:
          responses:
            200: {description: checked in; the booking's state and time}
            404: {description: no such booking}
            409: {description: refused with the reason (e.g. already checked in); nothing changed}
        """
        reservation = desk.get_reservation(session(), pk)
        if reservation is None:
            return self.response_404()
        try:  # the unit of work has rolled back: the refusal is a 409
            desk.check_in(session(), reservation,
                          actor=cards.actor_of(self.appbuilder.sm.current_user))
        except DomainError as error:
            return self.response(409, message=str(error.message))
        return self.response(200, id=reservation.id, number=reservation.number,
                             state=reservation.state,
                             checked_in_at=reservation.checked_in_at.isoformat(),
                             checked_in_by=reservation.checked_in_by)
