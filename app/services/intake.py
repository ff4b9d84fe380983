"""Application intake (申請受付, F2.1, F2.2): the applications the city takes at the counter
or off-site (出張申請), checked once here for every entry point (screen, desk, CLI, tests).

An intake's state follows its card: 受付済 → 送付済 (sent on to J-LIS, or its card has
arrived) → 交付済 (its card was handed over), or 取下げ with a reason. The card ledger
(app/services/cards.py, above this module) calls ``card_arrived`` and ``card_handed_over``
when a card enters the ledger or leaves the office; this module never imports the ledger.
Each change of an intake's state is a compare-and-set on the state it expects.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Iterable

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update
from sqlalchemy.orm.attributes import set_committed_value

from app import clock
from app.clock import JST
from app.models.card import VISIT_AT_APPLICATION, VISIT_AT_HANDOVER, Card
from app.models.card_states import HANDED_OVER as CARD_HANDED_OVER
from app.models.intake import (ACCEPTED, FEE_CHARGED, FEE_PAID, FEE_STATE_LABELS, HANDED_OVER,
                               KIND_CERT_RENEWAL, KIND_LABELS, KIND_NEW,
                               KIND_REISSUE, KINDS, METHOD_COUNTER, METHOD_LABELS,
                               METHOD_OUTREACH, METHODS, PHOTO_LABELS, PHOTOS,
                               REISSUE_REASON_LABELS, REISSUE_REASONS, SENT, SITE_LABELS, SITES,
                               STATE_LABELS, WITHDRAWN, Intake, OutreachSession, label)
from app.models.reservation import Reservation
from app.models.venue import Venue
from app.services import actors, audit, fields, identity, japanese, unit
from app.services.actors import CardActor
from app.services.errors import BulkTransitionError, InputError, InvalidTransitionError

# --- who may (docs/roles.md "Application intake") --------------------------------------
STAFF = ("ROLE_MANAGER", "ROLE_CLERK")
WITHDRAW_REASON_MAX = 200  # intake.withdraw_reason
SITE_NAME_MAX = 100
STAFF_MAX = 300

# Purposes of a booking that lead to an intake at check-in, and the kind they suggest.
PURPOSE_KINDS = {"shinsei": KIND_NEW, "denshi": KIND_CERT_RENEWAL}

# The fields of an intake, in the order the form shows them.
FIELDS = ("application_id", "method", "outreach_session_id", "kind", "reissue_reason",
          "old_card_expires_on", "holder_not_at_fault", "official_error", "visit_mode", "name",
          "name_kana", "birth_date", "postal_code", "address", "phone", "wants_sign_cert",
          "wants_auth_cert", "photo", "venue_id", "reservation_id", "notes", "taken_at")


# The fields the fee is computed from (app/services/fees.py quote_for).
FEE_FIELDS = ("kind", "reissue_reason", "old_card_expires_on", "holder_not_at_fault",
              "official_error", "wants_sign_cert", "wants_auth_cert")


def authorize(actor: CardActor) -> None:
    actors.check_roles(actor, STAFF, _l(
        "Your role does not allow this operation. Only %(roles)s may do this.",
        roles="、".join(actors.role_names(STAFF))))


def state_label(value: str | None) -> str:
    return label(STATE_LABELS, value)


def method_label(value: str | None) -> str:
    return label(METHOD_LABELS, value)


def kind_label(value: str | None) -> str:
    return label(KIND_LABELS, value)


def reason_label(value: str | None) -> str:
    return label(REISSUE_REASON_LABELS, value)


def photo_label(value: str | None) -> str:
    return label(PHOTO_LABELS, value)


def site_label(value: str | None) -> str:
    return label(SITE_LABELS, value)


def choices(labels: dict) -> list[tuple[str, str]]:
    """(code, label) pairs for a choice; the labels stay lazy (translated when shown)."""
    return list(labels.items())


# --- checking what a clerk typed -----------------------------------------------------------

class IntakeInputError(InputError):
    """One or more fields are wrong: ``problems`` maps each field to its message (the form
    shows each at its field); the message joins them for other callers."""

    def __init__(self, problems: dict[str, str]):
        super().__init__(" ".join(str(m) for m in problems.values()))
        self.problems = problems


def _today() -> date:
    return clock.now().astimezone(JST).date()


def _flag(value) -> bool:
    return value not in (None, False, "", "0", "n", "no", "false", "False")


def _as_date(value, birth: bool = False) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        if birth and value > _today():
            raise InputError(_l("The birth date is in the future."))
        return value
    text = "" if value is None else str(value)
    return japanese.parse_birth_date(text, _today()) if birth else japanese.parse_date(text)


def _optional(value, parser):
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return parser(value)


def _code(value, allowed: Iterable[str], message) -> str:
    value = (value or "").strip() if isinstance(value, str) else value
    if value not in tuple(allowed):
        raise InputError(message)
    return value


def _id_of(value) -> int | None:
    value = getattr(value, "id", value)  # a row chosen on a form, or its id
    if value in (None, ""):
        return None
    number = fields.parse_id(value)
    if number is None:
        raise InputError(_l("No such record."))
    return number


def _field_parsers(session) -> dict:
    """Each field's own check: the same parsers and messages as the card ledger."""
    return {
        "application_id": japanese.parse_application_id,
        "method": lambda v: _code(v, METHODS, _l("Choose how the application was taken.")),
        "kind": lambda v: _code(v, KINDS, _l("Choose what is applied for.")),
        "reissue_reason": lambda v: _optional(v, lambda x: _code(
            x, REISSUE_REASONS, _l("Choose the reason for the reissue."))),
        "old_card_expires_on": lambda v: _optional(v, _as_date),
        "holder_not_at_fault": _flag, "official_error": _flag,
        "visit_mode": lambda v: _code(v or VISIT_AT_HANDOVER,
                                      (VISIT_AT_HANDOVER, VISIT_AT_APPLICATION),
                                      _l("Choose the visit mode.")),
        "name": fields.clean_name,
        "name_kana": fields.clean_kana,
        "birth_date": lambda v: _as_date(v, birth=True),
        "postal_code": lambda v: _optional(v, japanese.parse_postal_code),
        "address": lambda v: fields.clean_text(v, fields.ADDRESS_MAX),
        "phone": lambda v: _optional(v, fields.clean_phone),
        "wants_sign_cert": _flag, "wants_auth_cert": _flag,
        "photo": lambda v: _optional(v, lambda x: _code(
            x, PHOTOS, _l("Choose whether the photo was taken at the counter or brought."))),
        "venue_id": lambda v: _existing(session, Venue, _id_of(v), _l("No such venue.")),
        "outreach_session_id": lambda v: _existing(
            session, OutreachSession, _id_of(v), _l("No such outreach session.")),
        "reservation_id": lambda v: _existing(session, Reservation, _id_of(v),
                                              _l("No such booking.")),
        "notes": lambda v: fields.clean_text(v, fields.NOTE_MAX, multiline=True),
        "taken_at": lambda v: _optional(v, _taken_at),
    }


TAKEN_AT_PAST_DAYS = 366  # an application typed in later: at most a year back


def _taken_at(value) -> datetime:
    """When the application was taken, for one typed in later (an outreach session's):
    ``2026-12-01 10:30`` (full-width digits fine), Japan time; not in the future, at most
    a year back. Empty means now (the caller's)."""
    if isinstance(value, datetime):
        moment = value
    else:
        text = japanese.half_width(str(value)).strip().replace("/", "-")
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise InputError(_l("Enter the date and time as 2026-12-01 10:30.")) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=JST)
    now = clock.now()
    if moment > now + timedelta(minutes=5) or moment < now - timedelta(days=TAKEN_AT_PAST_DAYS):
        raise InputError(_l("The time taken must be within the past year and not in the "
                            "future."))
    return moment


def _existing(session, model, pk: int | None, message) -> int | None:
    if pk is None:
        return None
    if session.get(model, pk) is None:
        raise InputError(message)
    return pk


def application_id_taken(session, application_id: str, except_id: int | None = None) -> bool:
    query = select(Intake.id).where(Intake.application_id == application_id)
    if except_id:
        query = query.where(Intake.id != except_id)
    return session.execute(query.execution_options(autoflush=False)).first() is not None


def check(session, values: dict, *, intake_id: int | None = None,
          skip: Iterable[str] = ()) -> tuple[dict, dict[str, str]]:
    """Every field of an intake checked: (clean values, {field: message}). ``skip`` names
    fields a form has already refused (their message stays the form's)."""
    clean, problems = {}, {}
    skip = set(skip)
    for name, parser in _field_parsers(session).items():
        if name in skip:
            continue
        try:
            clean[name] = parser(values.get(name))
        except InputError as error:
            problems[name] = str(error.message)
    # the rules between fields
    kind, method = clean.get("kind"), clean.get("method")
    if kind == KIND_REISSUE and "reissue_reason" not in skip and not clean.get("reissue_reason"):
        problems.setdefault("reissue_reason", _("Choose the reason for the reissue."))
    elif kind and kind != KIND_REISSUE:
        clean["reissue_reason"] = None  # only a reissue has a reason
    if method == METHOD_OUTREACH:
        if "outreach_session_id" not in skip and not clean.get("outreach_session_id"):
            problems.setdefault("outreach_session_id",
                                _("Choose the outreach session of this application."))
    elif method:
        if "venue_id" not in skip and not clean.get("venue_id"):
            problems.setdefault("venue_id", _("Choose the venue where it was taken."))
    if clean.get("application_id") and application_id_taken(session, clean["application_id"],
                                                            intake_id):
        problems["application_id"] = _(
            "An application with this application ID is already registered.")
    if intake_id is not None:  # what the fee was computed from stays while money is open
        stored = session.get(Intake, intake_id)
        if stored is not None and stored.fee_state in (FEE_CHARGED, FEE_PAID):
            changed = [name for name in FEE_FIELDS if name in clean
                       and clean[name] != getattr(stored, name)]
            if changed:
                problems.setdefault(changed[0], _(
                    "The fee of this application is %(state)s: what it was computed from "
                    "cannot change now. Waive or refund the fee first.",
                    state=label(FEE_STATE_LABELS, stored.fee_state)))
    check_list = {key: value for key, value in (values.get("identity_check") or {}).items()
                  if key in identity.APPLICATION_FIELDS and value}
    missing = identity.checklist_problems(check_list, at_handover=False)
    if missing:
        problems["identity"] = " ".join(missing)
    clean["identity_check"] = identity.as_json(check_list)
    return clean, problems


def cleaned(session, values: dict, *, intake_id: int | None = None) -> dict:
    with session.no_autoflush:  # a screen's half-filled row waits until it is clean
        clean, problems = check(session, values, intake_id=intake_id)
    if problems:
        raise IntakeInputError(problems)
    return clean


def _state_of_its_card(session, application_id: str) -> str:
    """A new intake whose card is in the ledger already starts where the card is."""
    card_state = session.execute(select(Card.state).where(
        Card.application_id == application_id).execution_options(autoflush=False)).scalar()
    if card_state is None:
        return ACCEPTED
    return HANDED_OVER if card_state == CARD_HANDED_OVER else SENT


def fill_new(session, intake: Intake, values: dict, *, actor: CardActor,
             now: datetime | None = None) -> Intake:
    """A new intake from what was typed (part of the caller's unit: the screen's save).
    Raises IntakeInputError or NotPermittedError changing nothing."""
    authorize(actor)
    clean = cleaned(session, values)
    now = now or clock.now()
    for key, value in clean.items():
        setattr(intake, key, value)
    intake.clerk = actors.name_of(actor)
    intake.taken_at = clean.get("taken_at") or now
    intake.state = _state_of_its_card(session, clean["application_id"])
    if intake.state != ACCEPTED:
        intake.sent_at = now
    if intake.state == HANDED_OVER:
        intake.handed_over_at = now
    session.add(intake)
    return intake


@unit.operation
def create_intake(session, values: dict, *, actor: CardActor,
                  now: datetime | None = None) -> Intake:
    """Take an application: every field checked, the clerk is the one who asks."""
    return fill_new(session, Intake(), values, actor=actor, now=now)


def fill_update(session, intake: Intake, values: dict, *, actor: CardActor) -> Intake:
    """Change what was typed (part of the caller's unit). A withdrawn or handed-over
    application is no longer changed; its state and clerk are not fields."""
    authorize(actor)
    if intake.id is not None:
        # Compare-and-set on the state it may be edited in: the row stays locked until this
        # unit commits (PostgreSQL), so a withdrawal or hand-over cannot slip in between.
        kept = session.execute(update(Intake).where(Intake.id == intake.id,
                                                    Intake.state.in_((ACCEPTED, SENT)))
                               .values(state=Intake.state)
                               .execution_options(synchronize_session=False,
                                                  autoflush=False)).rowcount
        if kept != 1:
            current = session.execute(select(Intake.state).where(Intake.id == intake.id)
                                      .execution_options(autoflush=False)).scalar()
            raise InvalidTransitionError(_("This application is %(state)s and can no longer "
                                           "be changed.", state=state_label(current)))
    clean = cleaned(session, values, intake_id=intake.id)
    if clean.get("taken_at") is None:  # left empty: stays when it was taken
        clean["taken_at"] = session.execute(
            select(Intake.taken_at).where(Intake.id == intake.id)
            .execution_options(autoflush=False)).scalar() if intake.id else None
    stored_id = session.execute(select(Intake.application_id).where(Intake.id == intake.id)
                                .execution_options(autoflush=False)).scalar()
    for key, value in clean.items():
        if getattr(intake, key) != value:
            setattr(intake, key, value)
    if stored_id and clean.get("application_id") not in (None, stored_id):
        _follow_its_card(session, intake)  # a corrected ID may name a card already here
    return intake


ORDER = {ACCEPTED: 0, SENT: 1, HANDED_OVER: 2}


def _follow_its_card(session, intake: Intake) -> None:
    """After the 申請書ID changed: move forward to where its card is (never back: 送付済
    may also have been set by hand when the papers went to J-LIS)."""
    target = _state_of_its_card(session, intake.application_id)
    if ORDER.get(target, 0) <= ORDER.get(intake.state, 0):
        return
    now = clock.now()
    intake.state = target
    intake.sent_at = intake.sent_at or now
    if target == HANDED_OVER:
        intake.handed_over_at = intake.handed_over_at or now


@unit.operation
def update_intake(session, intake: Intake, values: dict, *, actor: CardActor) -> Intake:
    return fill_update(session, intake, values, actor=actor)


def values_of(intake: Intake) -> dict:
    """An intake's fields as the checks read them (for an edit that changes some)."""
    values = {name: getattr(intake, name) for name in FIELDS}
    values["identity_check"] = identity.from_json(intake.identity_check)
    return values


# --- its state -------------------------------------------------------------------------

def _set_state(session, intake_ids: list[int], expected: tuple[str, ...], values: dict,
               where=()) -> int:
    """UPDATE intake ... WHERE id IN :ids AND state IN :expected (AND ``where``); audited
    per row changed."""
    olds = {row.id: row for row in session.execute(
        select(Intake.id, Intake.state).where(Intake.id.in_(intake_ids))
        .execution_options(autoflush=False))}
    result = session.execute(update(Intake).where(Intake.id.in_(intake_ids),
                                                  Intake.state.in_(expected), *where)
                             .values(**values).execution_options(synchronize_session=False,
                                                                 autoflush=False))
    if result.rowcount != len(intake_ids):
        return result.rowcount  # the caller refuses: its unit rolls back
    for pk in intake_ids:
        if pk in olds and olds[pk].state in expected:
            audit.record_in_transaction(session, audit.ACTION_UPDATE, "intake", pk, {
                key: {"old": olds[pk].state if key == "state" else None, "new": value}
                for key, value in values.items()})
    return result.rowcount


def _refresh(session, intake: Intake, values: dict) -> None:
    for key, value in values.items():
        set_committed_value(intake, key, value)


def get_intake(session, intake_id) -> Intake | None:
    pk = fields.parse_id(intake_id)
    return session.get(Intake, pk) if pk else None


def intakes_by_ids(session, ids: Iterable) -> list[Intake]:
    wanted = [pk for pk in (fields.parse_id(i) for i in ids) if pk]
    if not wanted:
        return []
    return list(session.execute(select(Intake).where(Intake.id.in_(wanted))
                                .order_by(Intake.id)).scalars())


@unit.operation
def mark_sent(session, intake_ids: Iterable, *, actor: CardActor,
              now: datetime | None = None) -> list[Intake]:
    """送付済 for every chosen application, all or nothing: one still 受付済 each."""
    authorize(actor)
    chosen = intakes_by_ids(session, intake_ids)
    if not chosen:
        raise InputError(_l("Select at least one application."))
    failures = [(i.application_id, _("It is %(state)s and cannot be marked as sent.",
                                     state=state_label(i.state)))
                for i in chosen if i.state != ACCEPTED]
    if failures:
        raise BulkTransitionError(failures)
    values = {"state": SENT, "sent_at": now or clock.now()}
    if _set_state(session, [i.id for i in chosen], (ACCEPTED,), values) != len(chosen):
        raise BulkTransitionError([("", _changed_meanwhile())])
    for intake in chosen:
        _refresh(session, intake, values)
    return chosen


def _changed_meanwhile() -> str:
    return _("The application was changed by someone else just now. Nothing was changed; "
             "check it and try again.")


@unit.operation
def withdraw(session, intake: Intake, reason: str | None, *, actor: CardActor,
             now: datetime | None = None) -> Intake:
    """取下げ with a reason; refused once its card was handed over."""
    authorize(actor)
    reason = fields.clean_text(reason, WITHDRAW_REASON_MAX)
    if not reason:
        raise InputError(_l("Write the reason for the withdrawal."))
    if intake.state in (WITHDRAWN, HANDED_OVER):
        raise InvalidTransitionError(_("This application is %(state)s and cannot be "
                                       "withdrawn.", state=state_label(intake.state)))
    values = {"state": WITHDRAWN, "withdraw_reason": reason,
              "withdrawn_at": now or clock.now()}
    # Money first: a fee still due is waived, a fee paid is refunded, before the
    # application goes (compare-and-set on the fee's state too).
    money_open = (FEE_CHARGED, FEE_PAID)
    if _set_state(session, [intake.id], (intake.state,), values,
                  where=(Intake.fee_state.notin_(money_open),)) != 1:
        fee_state = session.execute(select(Intake.fee_state).where(Intake.id == intake.id)
                                    .execution_options(autoflush=False)).scalar()
        if fee_state in money_open:
            raise InvalidTransitionError(_(
                "The fee of this application is %(state)s. Waive it or refund it first, then "
                "withdraw the application.", state=label(FEE_STATE_LABELS, fee_state)))
        raise InvalidTransitionError(_changed_meanwhile())
    _refresh(session, intake, values)
    return intake


# --- the hooks of the card ledger (app/services/cards.py calls them, in its unit) -------

def card_arrived(session, application_id: str, now: datetime | None = None) -> None:
    """The card with this 申請書ID entered the ledger: its intake (if any) is 送付済."""
    ids = _ids_for(session, application_id)
    if ids:
        _set_state(session, ids, (ACCEPTED,), {"state": SENT, "sent_at": now or clock.now()})


def card_handed_over(session, application_id: str, now: datetime | None = None) -> None:
    """The card with this 申請書ID was handed over: its intake (if any) is 交付済."""
    ids = _ids_for(session, application_id)
    if ids:
        _set_state(session, ids, (ACCEPTED, SENT),
                   {"state": HANDED_OVER, "handed_over_at": now or clock.now()})


def _ids_for(session, application_id: str | None) -> list[int]:
    if not application_id:
        return []
    return list(session.execute(select(Intake.id).where(
        Intake.application_id == application_id).execution_options(autoflush=False)).scalars())


# --- reads -----------------------------------------------------------------------------

def intake_for_application(session, application_id: str | None) -> Intake | None:
    if not application_id:
        return None
    return session.execute(select(Intake).where(Intake.application_id == application_id)
                           ).scalar()


def personal_data_for(session, application_id: str) -> dict | None:
    """The personal fields of a short MNC1 code, from the intake with the same 申請書ID
    (None when there is none, or it was withdrawn)."""
    intake = intake_for_application(session, application_id)
    if intake is None or intake.state == WITHDRAWN:
        return None
    return {"name": intake.name, "name_kana": intake.name_kana,
            "birth_date": intake.birth_date, "postal_code": intake.postal_code,
            "address": intake.address, "has_sign_cert": bool(intake.wants_sign_cert),
            "has_auth_cert": bool(intake.wants_auth_cert)}


def intakes_today(session, day: date) -> dict[str, int]:
    """Applications taken on ``day`` per venue (off-site ones under their session's site)."""
    start = datetime.combine(day, datetime.min.time(), tzinfo=JST)
    end = datetime.combine(day, datetime.max.time(), tzinfo=JST)
    rows = session.execute(
        select(func.coalesce(Venue.name, OutreachSession.site_name), func.count(Intake.id))
        .select_from(Intake).outerjoin(Venue, Intake.venue_id == Venue.id)
        .outerjoin(OutreachSession, Intake.outreach_session_id == OutreachSession.id)
        .where(Intake.taken_at >= start, Intake.taken_at <= end)
        .group_by(func.coalesce(Venue.name, OutreachSession.site_name)))
    return {name or "": count for name, count in rows}


def state_counts(session) -> list[tuple[str, str, int]]:
    counts = dict(session.execute(select(Intake.state, func.count(Intake.id))
                                  .group_by(Intake.state)).all())
    return [(state, state_label(state), counts.get(state, 0)) for state in STATE_LABELS]


def reservation_by_id(session, reservation_id) -> Reservation | None:
    pk = fields.parse_id(reservation_id)
    return session.get(Reservation, pk) if pk else None


def venue_by_id(session, venue_id) -> Venue | None:
    pk = fields.parse_id(venue_id)
    return session.get(Venue, pk) if pk else None


def leads_to_intake(reservation: Reservation | None) -> bool:
    """A booking whose check-in goes on to a new application (申請, 電子証明書)."""
    return reservation is not None and reservation.offer.purpose.code in PURPOSE_KINDS


def prefill_from_reservation(reservation: Reservation) -> dict:
    """A new intake's fields from the booking the visitor came with."""
    return {"name": reservation.name or "", "name_kana": reservation.name_kana or "",
            "birth_date": reservation.birth_date.isoformat() if reservation.birth_date else "",
            "phone": japanese.format_phone(reservation.phone),
            "venue_id": reservation.offer.venue_id,
            "kind": PURPOSE_KINDS.get(reservation.offer.purpose.code, KIND_NEW),
            "method": METHOD_COUNTER, "reservation_id": reservation.id}


def intakes_of_reservations(session, reservation_ids) -> dict[int, int]:
    """{booking id: its (first) application's id} for the desk's list, in one query."""
    ids = [i for i in reservation_ids if i]
    if not ids:
        return {}
    found: dict[int, int] = {}
    for reservation_id, intake_id in session.execute(
            select(Intake.reservation_id, Intake.id).where(Intake.reservation_id.in_(ids))
            .order_by(Intake.id)):
        found.setdefault(reservation_id, intake_id)
    return found


def intake_of_reservation(session, reservation_id: int) -> Intake | None:
    return session.execute(select(Intake).where(Intake.reservation_id == reservation_id)
                           .order_by(Intake.id)).scalars().first()


# --- outreach sessions (出張申請) -----------------------------------------------------------

def check_session(values: dict) -> tuple[dict, dict[str, str]]:
    parsers = {
        "day": lambda v: _as_date(v),
        "site_kind": lambda v: _code(v, SITES, _l("Choose the kind of site.")),
        "site_name": lambda v: fields.clean_required_text(v, SITE_NAME_MAX),
        "address": lambda v: fields.clean_text(v, fields.ADDRESS_MAX),
        "staff": lambda v: fields.clean_text(v, STAFF_MAX),
        "note": lambda v: fields.clean_text(v, fields.NOTE_MAX, multiline=True),
    }
    clean, problems = {}, {}
    for name, parser in parsers.items():
        try:
            clean[name] = parser(values.get(name))
        except InputError as error:
            problems[name] = str(error.message)
    return clean, problems


def fill_session(session, outreach: OutreachSession, values: dict, *,
                 actor: CardActor) -> OutreachSession:
    """A new or changed 出張申請 session (part of the caller's unit)."""
    authorize(actor)
    clean, problems = check_session(values)
    if problems:
        raise IntakeInputError(problems)
    for key, value in clean.items():
        if getattr(outreach, key) != value:
            setattr(outreach, key, value)
    session.add(outreach)
    return outreach


@unit.operation
def create_session(session, values: dict, *, actor: CardActor) -> OutreachSession:
    return fill_session(session, OutreachSession(), values, actor=actor)


@unit.operation
def update_session(session, outreach: OutreachSession, values: dict, *,
                   actor: CardActor) -> OutreachSession:
    return fill_session(session, outreach, values, actor=actor)


def recent_sessions(session, limit: int = 200) -> list[OutreachSession]:
    """The sessions a new application may belong to, the latest first."""
    return list(session.execute(select(OutreachSession).order_by(
        OutreachSession.day.desc(), OutreachSession.id.desc()).limit(limit)).scalars())


def get_session(session, session_id) -> OutreachSession | None:
    pk = fields.parse_id(session_id)
    return session.get(OutreachSession, pk) if pk else None


def session_intakes(session, outreach: OutreachSession) -> list[Intake]:
    return list(session.execute(select(Intake).where(
        Intake.outreach_session_id == outreach.id).order_by(Intake.taken_at, Intake.id))
        .scalars())


@dataclass
class SessionList:
    outreach: OutreachSession
    intakes: list[Intake]


@unit.operation
def session_print_list(session, outreach: OutreachSession) -> SessionList:
    """The printed list of one session (A4); printing it is recorded in the audit trail."""
    intakes = session_intakes(session, outreach)
    audit.record_in_transaction(session, audit.ACTION_PRINT, "outreach_session", outreach.id,
                                {"what": "outreach list", "rows": len(intakes)})
    return SessionList(outreach, intakes)
