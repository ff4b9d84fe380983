"""Extraction (抽出, F4.2): pull the records a clerk asks for, by any field, and take them
off the screen as CSV (UTF-8 with BOM, or CP932) or XLSX.

A query is a JSON-able dict, parsed and checked here before anything runs::

    {"subject": "cards", "join": "and",
     "groups": [{"op": "or", "conditions": [
         {"field": "state", "op": "in", "values": ["notice_sent", "renotified"]},
         {"field": "name_kana", "op": "starts", "value": "やまだ"}]}],
     "columns": ["application_id", "name", "state"],
     "order": [{"field": "received_at", "desc": true}]}

The groups are joined by ``join`` (and/or), the conditions of a group by its ``op``. Each
subject (cards, bookings, applications, fees) is declared once in ``SUBJECTS`` with its
fields; a field knows its type (which decides its operators and how a typed value is read),
its SQL expression and the joins it needs. Everything is filtered, sorted and counted in SQL;
nothing is filtered in Python.

Exports stream in constant memory: CSV rows are produced by a generator over a
server-side cursor (``yield_per``), XLSX rows are written by XlsxWriter in
``constant_memory`` mode to a temporary file. CP932 cannot hold every character (𠮷, some
異体字, emoji): such characters are never turned into '?' silently; the person chooses to
stop (the rows and characters are listed, nothing is exported) or to replace them with 〓
(or a character of their choice that CP932 holds), and the number replaced is in the audit
record. Every export is audited with its subject, conditions, columns, format, encoding,
row count and replaced-character count.

Saved queries (app/models/extraction.py ``SavedQuery``) are private to their owner or
shared with the office; only 管理者 share, change or delete shared ones. The rules are
checked here, whatever the screen shows.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import secrets
import tempfile
import threading
import unicodedata
from dataclasses import dataclass, field as dc_field
from datetime import date, datetime, time, timedelta
from typing import Any, Callable, Iterator

import jaconv
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, and_, delete, false, func, or_, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as OrmSession

from app import clock
from app.clock import JST
from app.models import card_states
from app.models import intake as intake_words
from app.models import reservation as booking_words
from app.extensions import session as app_session
from app.models.card import Card
from app.models.extraction import (JOB_DONE, JOB_EXPIRED, JOB_FAILED, JOB_QUEUED,
                                   JOB_RUNNING, JOB_STATE_LABELS, ExportJob, SavedQuery)
from app.models.fee import ENTRY_LABELS, PAYMENT_METHOD_LABELS, FeeEntry
from app.models.intake import Intake, OutreachSession
from app.models.reservation import Reservation
from app.models.storage import StoragePlace
from app.models.venue import Purpose, Venue, VenuePurpose
from app.services import (actors, audit, export_policy, fields, file_store, japanese,
                          notice_numbers, spreadsheet, unit)
from app.services.actors import CardActor
from app.services.errors import (ConcurrentChangeError, DomainError, InputError,
                                 NotPermittedError)
from app.settings import settings as app_settings

PREVIEW_ROWS = 50
CHUNK_ROWS = 500  # rows per CSV chunk and per fetch of the server-side cursor
MAX_GROUPS = 10
MAX_CONDITIONS = 20  # per group
MAX_VALUES = 200  # of one "in" list
MAX_VALUE_LENGTH = 200
NAME_MAX = 100  # saved_query.name
DEFAULT_REPLACEMENT = "〓"
LISTED_PROBLEMS = 200  # rows listed when a CP932 export stops

# --- who may do what (docs/roles.md "抽出") ---------------------------------------------
EXPORTERS = ("ROLE_MANAGER", "ROLE_CLERK")  # personal data off the screen: never 閲覧者
SAVERS = ("ROLE_MANAGER", "ROLE_CLERK", "ROLE_VIEWER")  # own (private) saved queries
SHARERS = ("ROLE_MANAGER",)  # shared queries: save, change, delete

# --- types and operators ------------------------------------------------------------------
TEXT, KANA, DATE, DATETIME, NUMBER, CHOICE, BOOLEAN = (
    "text", "kana", "date", "datetime", "number", "choice", "boolean")
EQ, IN, RANGE, CONTAINS, STARTS, EMPTY, NOT_EMPTY = (
    "eq", "in", "range", "contains", "starts", "empty", "not_empty")
# Relative dates (dates and date-times): resolved against today (Japan time, app.clock) each
# time the query runs, so a saved "more than 6 months ago" needs no editing next month.
OLDER_THAN, WITHIN_LAST = "older_than", "within_last"
RELATIVE = (OLDER_THAN, WITHIN_LAST)
DAYS, MONTHS, YEARS = "days", "months", "years"
UNITS = (DAYS, MONTHS, YEARS)
RELATIVE_MAX = 9999
OPERATOR_LABELS = {
    EQ: _l("is"), IN: _l("is one of"), RANGE: _l("from … to"),
    CONTAINS: _l("contains"), STARTS: _l("starts with"),
    OLDER_THAN: _l("more than N days, months or years ago"),
    WITHIN_LAST: _l("within the last N days, months or years"),
    EMPTY: _l("is empty"), NOT_EMPTY: _l("is not empty"),
}
# The screen offers a relative operator once per unit (one choice, no second box).
RELATIVE_LABELS = {
    (OLDER_THAN, DAYS): _l("more than N days ago"),
    (OLDER_THAN, MONTHS): _l("more than N months ago"),
    (OLDER_THAN, YEARS): _l("more than N years ago"),
    (WITHIN_LAST, DAYS): _l("within the last N days"),
    (WITHIN_LAST, MONTHS): _l("within the last N months"),
    (WITHIN_LAST, YEARS): _l("within the last N years"),
}
OPERATORS = tuple(OPERATOR_LABELS)
TYPE_OPERATORS = {
    TEXT: (EQ, IN, CONTAINS, STARTS, EMPTY, NOT_EMPTY),
    KANA: (EQ, IN, CONTAINS, STARTS, EMPTY, NOT_EMPTY),
    DATE: (EQ, IN, RANGE, OLDER_THAN, WITHIN_LAST, EMPTY, NOT_EMPTY),
    DATETIME: (EQ, RANGE, OLDER_THAN, WITHIN_LAST, EMPTY, NOT_EMPTY),
    NUMBER: (EQ, IN, RANGE, EMPTY, NOT_EMPTY),
    CHOICE: (EQ, IN, EMPTY, NOT_EMPTY),
    BOOLEAN: (EQ,),
}
TYPE_LABELS = {TEXT: _l("text"), KANA: _l("kana"), DATE: _l("date"),
               DATETIME: _l("date and time"), NUMBER: _l("number"), CHOICE: _l("choice"),
               BOOLEAN: _l("yes or no")}
JOINS = ("and", "or")
JOIN_LABELS = {"and": _l("all of (AND)"), "or": _l("any of (OR)")}

FORMAT_CSV, FORMAT_XLSX = "csv", "xlsx"
UTF8_BOM, CP932 = "utf-8-sig", "cp932"
ON_UNMAPPABLE_STOP, ON_UNMAPPABLE_REPLACE = "stop", "replace"
_LIST_SEPARATORS = re.compile(r"[,、，\n\r]+")


# --- how a typed value is read and matched -----------------------------------------------

def _fold_spaces(value: str) -> str:
    return "　".join(value.split())


def norm_plain(value: str) -> str:
    """Free text (address, note, a place's code): width folded (NFKC), spaces folded."""
    return " ".join(unicodedata.normalize("NFKC", value).split())


def norm_name(value: str) -> str:
    """A name as stored (fields.clean_name: NFKC, one full-width space between parts)."""
    return _fold_spaces(unicodedata.normalize("NFKC", value))


def norm_kana(value: str) -> str:
    """Kana as stored (japanese.to_katakana): hiragana and half-width katakana to
    full-width katakana, spaces folded to one full-width space."""
    return japanese.to_katakana(value)


def norm_code(value: str) -> str:
    """Identifiers (申請書ID, 交付通知書番号, 予約番号 ...): half-width, upper case, no
    spaces or hyphens (japanese.normalize_code)."""
    return japanese.normalize_code(value)


def norm_digits(value: str) -> str:
    """Phone numbers and postal codes: digits only (compared without hyphens)."""
    return re.sub(r"[^0-9]", "", japanese.digits_only(value).lstrip("〒"))


def _width_variants(value: str) -> list[str]:
    """The same text in half and full width: free text is stored as typed, so both are
    looked for (ａｂｃ１ and abc1)."""
    half = norm_plain(value)
    full = jaconv.h2z(half, kana=False, ascii=True, digit=True)
    return list(dict.fromkeys(v for v in (value.strip(), half, full) if v))


def _no_hyphens(column):
    return func.replace(column, "-", "")


@dataclass(frozen=True)
class Field:
    """One field of a subject: ``name`` (in saved queries), its label, its type, how to
    reach it in SQL (``column``: a callable returning the expression) and the joins it
    needs. ``norm`` reads a typed text value as the stored data is written; ``match`` is
    the SQL expression compared with it (e.g. without hyphens). ``labels`` are the
    vocabulary of a choice; ``key`` marks the field that names a row in messages; ``code``
    keeps it text in every file (IDs, phone numbers, postal codes with leading zeros)."""

    name: str
    label: Any
    type: str
    column: Callable[[], Any]
    joins: tuple[str, ...] = ()
    norm: Callable[[str], str] | None = None
    match: Callable[[Any], Any] | None = None
    labels: dict | None = None
    display: Callable[[Any], Any] | None = None
    nullable: bool = True
    variants: bool = False  # free text stored as typed: half- and full-width both sought
    code: bool = False
    default: bool = False  # shown when no column is chosen

    @property
    def operators(self) -> tuple[str, ...]:
        ops = TYPE_OPERATORS[self.type]
        if not self.nullable:
            ops = tuple(o for o in ops if o not in (EMPTY, NOT_EMPTY))
        return ops

    @property
    def form_operators(self) -> list[tuple[str, Any]]:
        """The operators as the screen offers them: (form value, label); a relative one
        once per unit (``older_than:months``)."""
        return form_operators(self.operators)

    def expr(self):
        return self.column()

    def matched(self):
        column = self.column()
        return self.match(column) if self.match else column

    def choices(self) -> list[tuple[str, str]]:
        if self.type == BOOLEAN:
            return [("true", _("Yes")), ("false", _("No"))]
        return [(k, str(v)) for k, v in (self.labels or {}).items()]


def form_operators(ops) -> list[tuple[str, Any]]:
    out = []
    for op in ops:
        if op in RELATIVE:
            out.extend((f"{op}:{unit}", RELATIVE_LABELS[op, unit]) for unit in UNITS)
        else:
            out.append((op, OPERATOR_LABELS[op]))
    return out


def form_op(op: str, unit: str | None = None) -> str:
    """The screen's value of an operator (``older_than:months`` for a relative one)."""
    return f"{op}:{unit}" if op in RELATIVE and unit in UNITS else op


def split_form_op(value: str) -> tuple[str, str | None]:
    """``older_than:months`` → (older_than, months); any other → (value, None)."""
    op, _sep, unit = (value or "").partition(":")
    return (op, unit) if op in RELATIVE else (value or "", None)


def months_back(day: date, months: int) -> date:
    """``day`` moved back by whole months; the 31st of a shorter month becomes its last day
    (2026-03-31 less one month is 2026-02-28)."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    if year < 1:
        raise InputError(_l("N is too large: the date would be before the year 1."))
    last = (date(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)).day
    return date(year, month, min(day.day, last))


def relative_cutoff(today: date, n: int, unit: str) -> date:
    """today − N days, months or years (calendar months and years)."""
    if unit == DAYS:
        try:
            return today - timedelta(days=n)
        except OverflowError:
            raise InputError(_l("N is too large: the date would be before the year 1.")) \
                from None
    return months_back(today, n * (12 if unit == YEARS else 1))


def cutoff_today(n, unit) -> date | None:
    """The day "N units ago" stands for today (Japan time), or None when N or the unit
    cannot be read (the check of the query says why). Reads only."""
    try:
        amount = _parse_amount(n)
        if unit not in UNITS:
            return None
        return relative_cutoff(clock.now().astimezone(JST).date(), amount, unit)
    except InputError:
        return None


@dataclass(frozen=True)
class Join:
    name: str
    target: Any
    onclause: Callable[[], Any]
    after: tuple[str, ...] = ()


@dataclass(frozen=True)
class Subject:
    name: str
    label: Any
    model: Any
    key: str  # the field that names a row (messages, the CP932 list)
    fields: tuple[Field, ...]
    joins: tuple[Join, ...] = ()
    order: Callable[[], Any] | None = None  # the default order (its primary key)

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    @property
    def default_columns(self) -> list[str]:
        return [f.name for f in self.fields if f.default]


def _text(name, label, column, **options) -> Field:
    options.setdefault("norm", norm_plain)
    options.setdefault("variants", True)
    return Field(name, label, TEXT, column, **options)


def _name(name, label, column, **options) -> Field:
    return Field(name, label, TEXT, column, norm=norm_name, **options)


def _kana(name, label, column, **options) -> Field:
    return Field(name, label, KANA, column, norm=norm_kana, **options)


def _code(name, label, column, **options) -> Field:
    return Field(name, label, TEXT, column, norm=norm_code, code=True, **options)


def _digits(name, label, column, **options) -> Field:
    return Field(name, label, TEXT, column, norm=norm_digits, match=_no_hyphens, code=True,
                 **options)


def _choice(name, label, column, labels, **options) -> Field:
    return Field(name, label, CHOICE, column, labels=labels, **options)


def _date(name, label, column, **options) -> Field:
    return Field(name, label, DATE, column, **options)


def _datetime(name, label, column, **options) -> Field:
    return Field(name, label, DATETIME, column, **options)


def _number(name, label, column, **options) -> Field:
    return Field(name, label, NUMBER, column, **options)


def _bool(name, label, column, **options) -> Field:
    return Field(name, label, BOOLEAN, column, nullable=False, **options)


def _notice_display(value):
    return notice_numbers.display(value) if value else value


CARDS = Subject(
    "cards", _l("Card ledger"), Card, "application_id",
    fields=(
        _code("application_id", _l("Application ID"), lambda: Card.application_id,
              nullable=False, default=True),
        _code("notice_number", _l("Postcard number"), lambda: Card.notice_number,
              display=_notice_display, default=True),
        _name("name", _l("Name"), lambda: Card.name, nullable=False, default=True),
        _kana("name_kana", _l("Name in kana"), lambda: Card.name_kana, nullable=False,
              default=True),
        _date("birth_date", _l("Birth date"), lambda: Card.birth_date, nullable=False,
              default=True),
        _digits("postal_code", _l("Postal code"), lambda: Card.postal_code),
        _text("address", _l("Address"), lambda: Card.address),
        _choice("state", _l("State"), lambda: Card.state, card_states.STATE_LABELS,
                nullable=False, default=True),
        _choice("visit_mode", _l("Visit mode"), lambda: Card.visit_mode,
                card_states.VISIT_MODE_LABELS, nullable=False),
        _text("storage_place", _l("Storage place"), lambda: StoragePlace.code,
              joins=("storage",), default=True),
        _code("shipment_number", _l("Shipment number"), lambda: Card.shipment_number),
        _code("manufacture_number", _l("Manufacturing control number"),
              lambda: Card.manufacture_number),
        _datetime("received_at", _l("Received on"), lambda: Card.received_at),
        _datetime("setup_at", _l("Set up on"), lambda: Card.setup_at),
        _datetime("notice_sent_at", _l("Notice sent on"), lambda: Card.notice_sent_at),
        _datetime("renotified_at", _l("Re-notified on"), lambda: Card.renotified_at),
        _datetime("returned_at", _l("Returned on"), lambda: Card.returned_at),
        _datetime("mailed_at", _l("Mailed on"), lambda: Card.mailed_at),
        _datetime("handed_over_at", _l("Handed over on"), lambda: Card.handed_over_at),
        _datetime("discarded_at", _l("Discarded on"), lambda: Card.discarded_at),
        _date("card_expires_on", _l("Card valid until"), lambda: Card.card_expires_on),
        _bool("has_sign_cert", _l("Signature certificate"), lambda: Card.has_sign_cert),
        _bool("has_auth_cert", _l("User authentication certificate"),
              lambda: Card.has_auth_cert),
        _bool("discard_hold", _l("Discard held back"), lambda: Card.discard_hold),
        _text("handed_over_by", _l("Handed over by"), lambda: Card.handed_over_by),
        _text("notes", _l("Note"), lambda: Card.notes),
    ),
    joins=(Join("storage", StoragePlace, lambda: StoragePlace.id == Card.storage_place_id),),
    order=lambda: Card.id,
)

BOOKINGS = Subject(
    "bookings", _l("Bookings"), Reservation, "number",
    fields=(
        _code("number", _l("Booking number"), lambda: Reservation.number, nullable=False,
              default=True),
        _datetime("starts_at", _l("Date and time of the visit"), lambda: Reservation.starts_at,
                  nullable=False, default=True),
        _text("venue", _l("Venue"), lambda: Venue.name, joins=("venue",), default=True),
        _text("purpose", _l("Purpose"), lambda: Purpose.name, joins=("purpose",),
              default=True),
        _number("seats", _l("People"), lambda: Reservation.seats, nullable=False),
        _choice("state", _l("State"), lambda: Reservation.state, booking_words.STATE_LABELS,
                nullable=False, default=True),
        _choice("channel", _l("Taken by"), lambda: Reservation.channel,
                booking_words.CHANNEL_LABELS, nullable=False),
        _name("name", _l("Name"), lambda: Reservation.name, default=True),
        _kana("name_kana", _l("Name in kana"), lambda: Reservation.name_kana, default=True),
        _date("birth_date", _l("Birth date"), lambda: Reservation.birth_date, nullable=False),
        _digits("phone", _l("Phone number"), lambda: Reservation.phone, nullable=False,
                default=True),
        _text("email", _l("E-mail address"), lambda: Reservation.email),
        _datetime("created_at", _l("Booked on"), lambda: Reservation.created_at,
                  nullable=False),
        _datetime("checked_in_at", _l("Checked in at"), lambda: Reservation.checked_in_at),
        _text("checked_in_by", _l("Checked in by"), lambda: Reservation.checked_in_by),
        _datetime("cancelled_at", _l("Cancelled at"), lambda: Reservation.cancelled_at),
        _text("cancel_reason", _l("Reason for cancelling"), lambda: Reservation.cancel_reason),
        _text("note", _l("Note"), lambda: Reservation.note),
    ),
    joins=(Join("offer", VenuePurpose, lambda: VenuePurpose.id == Reservation.offer_id),
           Join("venue", Venue, lambda: Venue.id == VenuePurpose.venue_id, after=("offer",)),
           Join("purpose", Purpose, lambda: Purpose.id == VenuePurpose.purpose_id,
                after=("offer",))),
    order=lambda: Reservation.id,
)

APPLICATIONS = Subject(
    "applications", _l("Application intake"), Intake, "application_id",
    fields=(
        _code("application_id", _l("Application ID"), lambda: Intake.application_id,
              nullable=False, default=True),
        _datetime("taken_at", _l("Taken at"), lambda: Intake.taken_at, nullable=False,
                  default=True),
        _choice("method", _l("How it was taken"), lambda: Intake.method,
                intake_words.METHOD_LABELS, nullable=False, default=True),
        _choice("kind", _l("Kind of application"), lambda: Intake.kind,
                intake_words.KIND_LABELS, nullable=False, default=True),
        _choice("reissue_reason", _l("Reason for the reissue"), lambda: Intake.reissue_reason,
                intake_words.REISSUE_REASON_LABELS),
        _choice("visit_mode", _l("Visit mode"), lambda: Intake.visit_mode,
                card_states.VISIT_MODE_LABELS, nullable=False),
        _name("name", _l("Name"), lambda: Intake.name, nullable=False, default=True),
        _kana("name_kana", _l("Name in kana"), lambda: Intake.name_kana, nullable=False,
              default=True),
        _date("birth_date", _l("Birth date"), lambda: Intake.birth_date, nullable=False),
        _digits("postal_code", _l("Postal code"), lambda: Intake.postal_code),
        _text("address", _l("Address"), lambda: Intake.address),
        _digits("phone", _l("Phone number"), lambda: Intake.phone),
        _bool("wants_sign_cert", _l("Signature certificate"), lambda: Intake.wants_sign_cert),
        _bool("wants_auth_cert", _l("User authentication certificate"),
              lambda: Intake.wants_auth_cert),
        _text("clerk", _l("Clerk"), lambda: Intake.clerk),
        _text("venue", _l("Venue"), lambda: Venue.name, joins=("venue",)),
        _text("outreach_site", _l("Site of the outreach application"),
              lambda: OutreachSession.site_name, joins=("outreach",)),
        _choice("state", _l("State"), lambda: Intake.state, intake_words.STATE_LABELS,
                nullable=False, default=True),
        _datetime("sent_at", _l("Sent on"), lambda: Intake.sent_at),
        _datetime("handed_over_at", _l("Handed over on"), lambda: Intake.handed_over_at),
        _datetime("withdrawn_at", _l("Withdrawn on"), lambda: Intake.withdrawn_at),
        _text("withdraw_reason", _l("Reason for withdrawing"), lambda: Intake.withdraw_reason),
        _choice("fee_state", _l("Fee"), lambda: Intake.fee_state,
                intake_words.FEE_STATE_LABELS, nullable=False),
        _text("notes", _l("Note"), lambda: Intake.notes),
    ),
    joins=(Join("venue", Venue, lambda: Venue.id == Intake.venue_id),
           Join("outreach", OutreachSession,
                lambda: OutreachSession.id == Intake.outreach_session_id)),
    order=lambda: Intake.id,
)

FEES = Subject(
    "fees", _l("Fees"), FeeEntry, "receipt_number",
    fields=(
        _date("business_day", _l("Day"), lambda: FeeEntry.business_day, nullable=False,
              default=True),
        _choice("entry_type", _l("Entry"), lambda: FeeEntry.entry_type, ENTRY_LABELS,
                nullable=False, default=True),
        _number("amount", _l("Amount"), lambda: FeeEntry.amount, nullable=False,
                default=True),
        _choice("method", _l("Method"), lambda: FeeEntry.method, PAYMENT_METHOD_LABELS,
                default=True),
        _code("receipt_number", _l("Receipt number"), lambda: FeeEntry.receipt_number,
              default=True),
        _number("fiscal_year", _l("Fiscal year of the receipt"), lambda: FeeEntry.fiscal_year),
        _text("reason", _l("Reason"), lambda: FeeEntry.reason),
        _text("clerk", _l("Clerk"), lambda: FeeEntry.clerk, nullable=False),
        _text("venue", _l("Venue"), lambda: Venue.name, joins=("venue",)),
        _datetime("at", _l("Date and time"), lambda: FeeEntry.at, nullable=False),
        _code("application_id", _l("Application ID"), lambda: Intake.application_id,
              joins=("intake",), nullable=False, default=True),
        _name("name", _l("Name"), lambda: Intake.name, joins=("intake",), nullable=False,
              default=True),
        _kana("name_kana", _l("Name in kana"), lambda: Intake.name_kana, joins=("intake",),
              nullable=False),
        _choice("kind", _l("Kind of application"), lambda: Intake.kind,
                intake_words.KIND_LABELS, joins=("intake",), nullable=False),
    ),
    joins=(Join("intake", Intake, lambda: Intake.id == FeeEntry.intake_id),
           Join("venue", Venue, lambda: Venue.id == FeeEntry.venue_id)),
    order=lambda: FeeEntry.id,
)

SUBJECTS = {s.name: s for s in (CARDS, BOOKINGS, APPLICATIONS, FEES)}


def subject_of(name: str | None) -> Subject:
    subject = SUBJECTS.get(name or "")
    if subject is None:
        raise InputError(_l("Choose what to extract (cards, bookings, applications or fees)."))
    return subject


# --- the parsed query ----------------------------------------------------------------------

@dataclass
class Condition:
    field: Field
    op: str
    values: list = dc_field(default_factory=list)  # eq: one; in: many; range: [from, to];
    # older_than / within_last: [the cutoff day, resolved against today]
    raw: dict = dc_field(default_factory=dict)

    @property
    def resolved(self) -> dict:
        """The condition as it ran: a relative one with the day it resolved to
        (``{"field": "received_at", "op": "older_than", "n": 6, "unit": "months",
        "cutoff": "2026-06-01", "means": "< 2026-06-01"}``); others as they are."""
        if self.op not in RELATIVE:
            return self.raw
        cutoff = self.values[0].isoformat()
        return {**self.raw, "cutoff": cutoff,
                "means": f"{'<' if self.op == OLDER_THAN else '>='} {cutoff}"}


@dataclass
class Group:
    op: str
    conditions: list[Condition]


@dataclass
class Query:
    subject: Subject
    join: str
    groups: list[Group]
    columns: list[Field]
    order: list[tuple[Field, bool]]
    definition: dict  # the normalised, JSON-able definition (saved, audited)
    today: date | None = None  # the day relative dates were resolved against (Japan time)

    @property
    def column_names(self) -> list[str]:
        return [f.name for f in self.columns]

    @property
    def has_relative(self) -> bool:
        return any(c.op in RELATIVE for g in self.groups for c in g.conditions)

    def resolved_groups(self) -> list[dict]:
        """The groups as they ran (relative dates with the day they resolved to)."""
        return [{"op": g.op, "conditions": [c.resolved for c in g.conditions]}
                for g in self.groups]


class QueryError(InputError):
    """Some conditions cannot be used; nothing ran. ``failures`` lists (which condition,
    why) for each, the screen shows them all."""

    message = _l("The conditions have mistakes; nothing was extracted. Please correct them.")

    def __init__(self, failures: list[tuple[str, str]]):
        super().__init__()
        self.failures = failures


def _where(group_no: int, cond_no: int, f: Field | None) -> str:
    where = _("Group %(g)d, condition %(c)d", g=group_no, c=cond_no)
    return f"{where}（{f.label}）" if f is not None else where


def _as_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if not isinstance(value, str):
        raise InputError(_l("Enter text in this field."))
    value = fields.refuse_controls(value, multiline=True).strip()
    return fields.check_length(value, MAX_VALUE_LENGTH)


def _parse_day(text: str) -> date:
    value = japanese.parse_date(text)
    if not date(1868, 1, 1) <= value <= fields.DAY_MAX:
        raise InputError(_l("This date does not exist."))
    return value


def _parse_number(text: str) -> int:
    raw = japanese.half_width(text).replace(",", "").replace("円", "").strip()
    if not re.fullmatch(r"-?[0-9]{1,12}", raw):
        raise InputError(_l("Write a whole number, like 1000."))
    return int(raw)


def _parse_bool(text: str) -> bool:
    raw = japanese.half_width(text).strip().lower()
    if raw in ("true", "1", "yes", "y", "はい", str(_("Yes")).lower(), "あり", "有"):
        return True
    if raw in ("false", "0", "no", "n", "いいえ", str(_("No")).lower(), "なし", "無"):
        return False
    raise InputError(_l("Choose yes or no."))


def _parse_choice(f: Field, text: str) -> str:
    labels = f.labels or {}
    if text in labels:
        return text
    for code, label in labels.items():
        if str(label) == text or norm_plain(str(label)) == norm_plain(text):
            return code
    raise InputError(_l("%(value)s is not one of: %(choices)s", value=text,
                        choices="、".join(str(v) for v in labels.values())))


def _parse_value(f: Field, text: str):
    """One typed value as the field stores it (raises InputError with the reason)."""
    if f.type == DATE or f.type == DATETIME:
        return _parse_day(text)
    if f.type == NUMBER:
        return _parse_number(text)
    if f.type == BOOLEAN:
        return _parse_bool(text)
    if f.type == CHOICE:
        return _parse_choice(f, text)
    value = f.norm(text) if f.norm else text
    if not value:
        raise InputError(_l("Enter the value to look for."))
    return value


def _split_list(raw) -> list[str]:
    if isinstance(raw, (list, tuple)):
        items = [_as_text(v) for v in raw]
    else:
        items = _LIST_SEPARATORS.split(_as_text(raw))
    return [i.strip() for i in items if i and i.strip()]


def _parse_amount(raw) -> int:
    """N of a relative date: a whole number 1–9999 (full-width digits are read)."""
    text = japanese.half_width(_as_text(raw)).replace(",", "").strip()
    if not text:
        raise InputError(_l("Enter N, the number of days, months or years (a whole number "
                            "from 1 to 9999)."))
    if not re.fullmatch(r"[0-9]{1,6}", text) or not 1 <= int(text) <= RELATIVE_MAX:
        raise InputError(_l("N must be a whole number from 1 to 9999 (you entered "
                            "%(value)s).", value=text))
    return int(text)


def _parse_condition(subject: Subject, raw: Any, g: int, c: int,
                     today: date | None = None) -> Condition:
    if not isinstance(raw, dict):
        raise _Failure(_where(g, c, None), _("This condition cannot be read."))
    f = subject.field(str(raw.get("field") or ""))
    if f is None:
        raise _Failure(_where(g, c, None),
                       _("Choose a field; %(name)s is not a field of %(subject)s.",
                         name=str(raw.get("field") or "-"), subject=subject.label))
    op, form_unit = split_form_op(str(raw.get("op") or ""))
    where = _where(g, c, f)
    if not op:
        allowed = "、".join(str(OPERATOR_LABELS[o]) for o in f.operators)
        raise _Failure(where, _("Choose how to compare; for a %(type)s field: %(allowed)s.",
                                type=TYPE_LABELS[f.type], allowed=allowed))
    if op not in f.operators:
        allowed = "、".join(str(OPERATOR_LABELS[o]) for o in f.operators)
        shown = str(OPERATOR_LABELS.get(op, op or "-"))
        raise _Failure(where, _("“%(op)s” cannot be used for a %(type)s field; use one of: "
                                "%(allowed)s.", op=shown, type=TYPE_LABELS[f.type],
                                allowed=allowed))
    clean = {"field": f.name, "op": op}
    try:
        if op in (EMPTY, NOT_EMPTY):
            values: list = []
        elif op in RELATIVE:
            unit = str(raw.get("unit") or form_unit or "")
            if unit not in UNITS:
                raise InputError(_l("Choose days, months or years."))
            n = _parse_amount(raw.get("n", raw.get("value")))
            values = [relative_cutoff(today or clock.now().astimezone(JST).date(), n, unit)]
            clean["n"], clean["unit"] = n, unit
        elif op == IN:
            items = _split_list(raw.get("values", raw.get("value")))
            if not items:
                raise InputError(_l("Enter one or more values, separated by commas."))
            if len(items) > MAX_VALUES:
                raise InputError(_l("At most %(n)d values.", n=MAX_VALUES))
            values = list(dict.fromkeys(_parse_value(f, item) for item in items))
            clean["values"] = [_jsonable(v) for v in values]
        elif op == RANGE:
            start, end = _as_text(raw.get("from")), _as_text(raw.get("to"))
            if not start and not end:
                raise InputError(_l("Enter the start, the end, or both."))
            values = [_parse_value(f, start) if start else None,
                      _parse_value(f, end) if end else None]
            if values[0] is not None and values[1] is not None and values[0] > values[1]:
                raise InputError(_l("The start is after the end."))
            clean["from"], clean["to"] = (_jsonable(values[0]), _jsonable(values[1]))
        else:
            text = _as_text(raw.get("value"))
            if not text:
                raise InputError(_l("Enter the value to look for."))
            values = [_parse_value(f, text)]
            clean["value"] = _jsonable(values[0])
    except InputError as error:
        raise _Failure(where, str(error.message)) from None
    return Condition(f, op, values, clean)


class _Failure(Exception):
    def __init__(self, where: str, why: str):
        super().__init__(why)
        self.where, self.why = where, why


def _jsonable(value):
    if isinstance(value, date):
        return value.isoformat()
    return value


def parse_definition(data: Any, *, today: date | None = None) -> Query:
    """A definition dict (from the screen or a saved query) as a checked :class:`Query`;
    raises :class:`QueryError` listing every condition that cannot be used. Relative dates
    are resolved against ``today`` (default: today in Japan time, app.clock), so the same
    saved query finds what is older than six months on the day it runs."""
    today = today or clock.now().astimezone(JST).date()
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            raise InputError(_l("The saved conditions cannot be read.")) from None
    if not isinstance(data, dict):
        raise InputError(_l("The saved conditions cannot be read."))
    subject = subject_of(data.get("subject"))
    failures: list[tuple[str, str]] = []
    join = data.get("join") or "and"
    if join not in JOINS:
        failures.append((_("Groups"), _("Join the groups with AND or OR.")))
    raw_groups = data.get("groups") or []
    if not isinstance(raw_groups, list):
        raw_groups = []
    if len(raw_groups) > MAX_GROUPS:
        failures.append((_("Groups"), _("At most %(n)d groups.", n=MAX_GROUPS)))
        raw_groups = raw_groups[:MAX_GROUPS]
    groups: list[Group] = []
    for g, raw_group in enumerate(raw_groups, start=1):
        if not isinstance(raw_group, dict):
            failures.append((_("Group %(g)d", g=g), _("This group cannot be read.")))
            continue
        op = raw_group.get("op") or "and"
        if op not in JOINS:
            failures.append((_("Group %(g)d", g=g),
                             _("Join the conditions with AND or OR.")))
        raw_conditions = raw_group.get("conditions") or []
        if not isinstance(raw_conditions, list):
            raw_conditions = []
        if len(raw_conditions) > MAX_CONDITIONS:
            failures.append((_("Group %(g)d", g=g),
                             _("At most %(n)d conditions in a group.", n=MAX_CONDITIONS)))
            raw_conditions = raw_conditions[:MAX_CONDITIONS]
        conditions = []
        for c, raw in enumerate(raw_conditions, start=1):
            try:
                conditions.append(_parse_condition(subject, raw, g, c, today))
            except _Failure as failure:
                failures.append((failure.where, failure.why))
        if conditions:
            groups.append(Group(op if op in JOINS else "and", conditions))
    columns = _parse_columns(subject, data.get("columns"), failures)
    order = _parse_order(subject, data.get("order"), failures)
    if failures:
        raise QueryError(failures)
    definition = {
        "subject": subject.name, "join": join,
        "groups": [{"op": g.op, "conditions": [c.raw for c in g.conditions]} for g in groups],
        "columns": [f.name for f in columns],
        "order": [{"field": f.name, "desc": desc} for f, desc in order],
    }
    return Query(subject, join, groups, columns, order, definition, today)


def _parse_columns(subject: Subject, raw, failures) -> list[Field]:
    names = raw if isinstance(raw, list) and raw else subject.default_columns
    columns = []
    for name in names:
        f = subject.field(str(name))
        if f is None:
            failures.append((_("Columns"), _("%(name)s is not a field of %(subject)s.",
                                             name=str(name), subject=subject.label)))
        elif f not in columns:
            columns.append(f)
    return columns


def _parse_order(subject: Subject, raw, failures) -> list[tuple[Field, bool]]:
    order = []
    for item in raw if isinstance(raw, list) else []:
        name = item.get("field") if isinstance(item, dict) else item
        if not name:
            continue
        f = subject.field(str(name))
        if f is None:
            failures.append((_("Order"), _("%(name)s is not a field of %(subject)s.",
                                           name=str(name), subject=subject.label)))
            continue
        order.append((f, bool(item.get("desc")) if isinstance(item, dict) else False))
    return order


# --- the SQL -------------------------------------------------------------------------------

def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, JST)


def _is_empty(f: Field, column):
    if f.type in (TEXT, KANA):
        return or_(column.is_(None), column == "")
    return column.is_(None)


def _text_clause(f: Field, op: str, values: list):
    column = f.matched()
    patterns = []
    for value in values:
        patterns.extend(_width_variants(value) if f.variants else [value])
    patterns = list(dict.fromkeys(patterns))
    if op == EQ or op == IN:
        return column.in_(patterns)
    if op == CONTAINS:
        return or_(*[column.ilike(f"%{_like_escape(p)}%", escape="\\") for p in patterns])
    return or_(*[column.ilike(f"{_like_escape(p)}%", escape="\\") for p in patterns])


def _clause(condition: Condition):
    f, op, values = condition.field, condition.op, condition.values
    column = f.expr()
    if op == EMPTY:
        return _is_empty(f, column)
    if op == NOT_EMPTY:
        return ~_is_empty(f, column)
    if f.type in (TEXT, KANA):
        return _text_clause(f, op, values)
    if op in RELATIVE:  # the cutoff day: before it, or from it on (a date-time: Japan time)
        cutoff = _day_start(values[0]) if f.type == DATETIME else values[0]
        return column < cutoff if op == OLDER_THAN else column >= cutoff
    if f.type == DATETIME:  # days in Japan time
        if op == EQ:
            return and_(column >= _day_start(values[0]),
                        column < _day_start(values[0] + timedelta(days=1)))
        start, end = values
        parts = []
        if start is not None:
            parts.append(column >= _day_start(start))
        if end is not None:
            parts.append(column < _day_start(end + timedelta(days=1)))
        return and_(*parts)
    if f.type == BOOLEAN:
        return column.is_(true()) if values[0] else column.is_(false())
    if op == EQ:
        return column == values[0]
    if op == IN:
        return column.in_(values)
    start, end = values
    parts = []
    if start is not None:
        parts.append(column >= start)
    if end is not None:
        parts.append(column <= end)
    return and_(*parts)


def _where_clause(query: Query):
    groups = []
    for group in query.groups:
        clauses = [_clause(c) for c in group.conditions]
        groups.append(and_(*clauses) if group.op == "and" else or_(*clauses))
    if not groups:
        return None
    return and_(*groups) if query.join == "and" else or_(*groups)


def _joins_needed(query: Query, fields_used) -> list[Join]:
    wanted: set[str] = set()
    for f in fields_used:
        wanted.update(f.joins)
    by_name = {j.name: j for j in query.subject.joins}
    changed = True
    while changed:
        changed = False
        for name in list(wanted):
            for before in by_name[name].after:
                if before not in wanted:
                    wanted.add(before)
                    changed = True
    return [j for j in query.subject.joins if j.name in wanted]


def _used_fields(query: Query, extra=()) -> list[Field]:
    used = list(query.columns) + [f for f, _desc in query.order] + list(extra)
    used += [c.field for g in query.groups for c in g.conditions]
    return used


def _base(query: Query, *entities, extra=()) -> Select:
    statement = select(*entities).select_from(query.subject.model)
    for join in _joins_needed(query, _used_fields(query, extra)):
        statement = statement.outerjoin(join.target, join.onclause())
    where = _where_clause(query)
    if where is not None:
        statement = statement.where(where)
    return statement


def count_statement(query: Query) -> Select:
    subject = query.subject
    statement = select(func.count()).select_from(subject.model)
    for join in _joins_needed(query, [c.field for g in query.groups for c in g.conditions]):
        statement = statement.outerjoin(join.target, join.onclause())
    where = _where_clause(query)
    return statement.where(where) if where is not None else statement


def rows_statement(query: Query, with_key: bool = False) -> Select:
    """The chosen columns (and the row's key first when ``with_key``), in the chosen order
    then the subject's own (its primary key, so pages and exports are stable)."""
    key = query.subject.field(query.subject.key)
    entities = [f.expr().label(f"c{i}") for i, f in enumerate(query.columns)]
    if with_key:
        entities.insert(0, key.expr().label("row_key"))
    statement = _base(query, *entities, extra=(key,) if with_key else ())
    ordering = []
    for f, desc in query.order:
        ordering.append(f.expr().desc() if desc else f.expr().asc())
    ordering.append(query.subject.order())
    return statement.order_by(*ordering)


# --- values as people read them --------------------------------------------------------------

def cell_value(f: Field, value):
    """A stored value as a file cell: text for IDs and labels, int for numbers, date and
    datetime (Japan time, no zone) for dates; None stays None."""
    if value is None:
        return None
    if f.display is not None:
        value = f.display(value)
    if f.type == CHOICE:
        return str((f.labels or {}).get(value, value))
    if f.type == BOOLEAN:
        return _("Yes") if value else _("No")
    if f.type == DATETIME:
        return clock.to_jst(value).replace(tzinfo=None, second=0, microsecond=0)
    if f.type == NUMBER:
        return int(value)
    if f.type == DATE:
        return value
    return str(value)


@dataclass
class Preview:
    query: Query
    count: int
    headers: list[str]
    rows: list[list[str]]


def preview(session, data: Any, *, limit: int = PREVIEW_ROWS) -> Preview:
    """The count and the first ``limit`` rows (read only: nothing is written)."""
    query = parse_definition(data)
    count = session.execute(count_statement(query)).scalar_one()
    result = session.execute(rows_statement(query).limit(limit))
    convert = text_converters(query)
    rows = [[c(v) for c, v in zip(convert, row)] for row in result]
    return Preview(query, count, [str(f.label) for f in query.columns], rows)


# --- CP932 ---------------------------------------------------------------------------------

def unmappable(text: str) -> list[str]:
    """The characters of ``text`` that CP932 cannot hold, in order (repeats kept)."""
    try:
        text.encode(CP932)
        return []
    except UnicodeEncodeError:
        pass
    found = []
    for char in text:
        try:
            char.encode(CP932)
        except UnicodeEncodeError:
            found.append(char)
    return found


def check_replacement(text: str | None) -> str:
    """The character the person chose for what CP932 cannot hold: one character (〓 when
    none) that CP932 holds, never a control character."""
    value = (text or "").strip() or DEFAULT_REPLACEMENT
    if len(value) != 1 or unicodedata.category(value) in ("Cc", "Cf", "Cs", "Zl", "Zp"):
        raise InputError(_l("The replacement must be one character, like 〓."))
    if unmappable(value):
        raise InputError(_l("The replacement %(char)s cannot be written in Shift_JIS (CP932) "
                            "either; choose another, like 〓.", char=value))
    if value in "\"',=+-@\r\n\t":
        raise InputError(_l("The replacement must be one character, like 〓."))
    return value


def replace_unmappable(text: str, replacement: str) -> tuple[str, int]:
    """``text`` with each character CP932 cannot hold replaced, and how many were."""
    return spreadsheet.replace_unmappable(text, replacement, CP932)


@dataclass
class Problem:
    """A row CP932 cannot hold: its key, and per column the characters."""
    key: str
    columns: list[tuple[str, str]]  # (column label, characters)


@dataclass
class Cp932Check:
    rows: int
    problem_rows: int
    characters: int
    problems: list[Problem]  # the first LISTED_PROBLEMS rows

    @property
    def ok(self) -> bool:
        return self.characters == 0


class UnmappableError(InputError):
    """A CP932 export with characters CP932 cannot hold, and the person chose to stop:
    nothing was exported. ``check`` lists the rows and characters."""

    def __init__(self, check: Cp932Check):
        super().__init__(_l("Nothing was exported: %(chars)d characters in %(rows)d rows "
                            "cannot be written in Shift_JIS (CP932). They are listed below. "
                            "Export as UTF-8 or XLSX, or choose to replace them.",
                            chars=check.characters, rows=check.problem_rows))
        self.check = check


def check_cp932(session, query: Query) -> Cp932Check:
    """One pass over the rows (server-side cursor, constant memory): which rows and
    characters CP932 cannot hold. Only text cells can hold such characters."""
    statement = rows_statement(query, with_key=True)
    rows = problem_rows = characters = 0
    problems: list[Problem] = []
    text_columns = [i for i, f in enumerate(query.columns) if f.type in (TEXT, KANA)]
    convert = text_converters(query)
    result = session.execute(statement.execution_options(yield_per=CHUNK_ROWS))
    try:
        for row in result:
            rows += 1
            found = []
            for i in text_columns:
                value = row[i + 1]
                if isinstance(value, str):
                    chars = unmappable(convert[i](value))
                    if chars:
                        characters += len(chars)
                        found.append((str(query.columns[i].label), "".join(chars)))
            if found:
                problem_rows += 1
                if len(problems) < LISTED_PROBLEMS:
                    problems.append(Problem(str(row[0]), found))
    finally:
        result.close()
    return Cp932Check(rows, problem_rows, characters, problems)


# --- exports -------------------------------------------------------------------------------

@dataclass
class ExportPlan:
    """What an export will write, checked and audited before the first byte."""
    query: Query
    fmt: str
    encoding: str
    rows: int
    replacement: str | None = None
    replaced: int = 0
    filename: str = ""
    headers: list[str] = dc_field(default_factory=list)
    converters: list = dc_field(default_factory=list)
    actor: Any = None  # audit.Actor of the request, for a record written after it
    engine: Any = None  # the database the stream reads (its own session, after the request)


def may_export(actor: CardActor) -> bool:
    return actors.has_role(actor, EXPORTERS)


def _check_export(actor: CardActor) -> None:
    actors.check_roles(actor, EXPORTERS, _("Your role does not allow exporting personal data. "
                                           "Only %(roles)s may do this.",
                                           roles="、".join(actors.role_names(EXPORTERS))))


def _table(query: Query) -> str:
    """The audited table of an export: the subject's own (card, reservation, intake,
    fee_entry); the subject's name is in the detail."""
    return query.subject.model.__tablename__


def _audit_detail(plan: ExportPlan, **extra) -> dict:
    """What an export wrote. Relative dates are recorded both as written (6 months ago)
    and with the day they resolved to (``cutoff``, ``means``; ``today`` is the day)."""
    if plan.query.has_relative:
        extra = {"today": plan.query.today.isoformat(), **extra}
    return {"what": "extraction", "subject": plan.query.subject.name,
            "conditions": {"join": plan.query.definition["join"],
                           "groups": plan.query.resolved_groups()},
            "columns": plan.query.column_names,
            "order": plan.query.definition["order"],
            "format": plan.fmt, "encoding": plan.encoding if plan.fmt == FORMAT_CSV else None,
            "rows": plan.rows, "replaced": plan.replaced,
            "replacement": plan.replacement, **extra}


def _filename(query: Query, fmt: str, encoding: str, now: datetime) -> str:
    stamp = clock.to_jst(now).strftime("%Y%m%d-%H%M")
    suffix = "_sjis" if fmt == FORMAT_CSV and encoding == CP932 else ""
    return f"extraction_{query.subject.name}_{stamp}{suffix}.{fmt}"


def plan_csv(session, data: Any, *, actor: CardActor, encoding: str = UTF8_BOM,
             on_unmappable: str = ON_UNMAPPABLE_STOP, replacement: str | None = None,
             now: datetime | None = None, encrypted: bool = False) -> ExportPlan:
    """Check and audit a CSV export before it streams: the role, the conditions, the
    office's encryption policy (a plain file of personal data is refused while it
    requires encryption; ``encrypted``: the caller wraps the CSV in an AES-256 ZIP), and
    for CP932 the characters it cannot hold (stop: :class:`UnmappableError`, nothing
    audited as exported; replace: counted). The audit record is committed here, so the
    export is on record before the first byte leaves; :func:`csv_chunks` then writes it."""
    _check_export(actor)
    export_policy.require(session, "extraction", encrypted)
    if encoding not in (UTF8_BOM, CP932):
        raise InputError(_l("Choose UTF-8 or Shift_JIS (CP932)."))
    if on_unmappable not in (ON_UNMAPPABLE_STOP, ON_UNMAPPABLE_REPLACE):
        raise InputError(_l("Choose what to do with characters Shift_JIS cannot hold."))
    query = parse_definition(data, today=now.astimezone(JST).date() if now else None)
    with unit.transaction(session):
        rows = session.execute(count_statement(query)).scalar_one()
        plan = ExportPlan(query, FORMAT_CSV, encoding, rows,
                          filename=_filename(query, FORMAT_CSV, encoding, now or clock.now()),
                          headers=[str(f.label) for f in query.columns],
                          converters=text_converters(query, safe=True), actor=audit.current_actor(),
                          engine=session.get_bind())
        if encoding == CP932:
            char = check_replacement(replacement) if on_unmappable == ON_UNMAPPABLE_REPLACE \
                else None
            check = check_cp932(session, query)
            plan.rows = check.rows
            if not check.ok and char is None:
                raise UnmappableError(check)
            if char is not None:
                plan.replacement, plan.replaced = char, check.characters
        audit.record_in_transaction(session, audit.ACTION_EXPORT, _table(query), None,
                                    _audit_detail(plan, encrypted=encrypted))
    return plan


def text_converters(query: Query, *, safe: bool = False) -> list[Callable[[Any], str]]:
    """Per column, a function from the stored value to its text, with every label already
    translated: the CSV generator runs after the request (no locale to ask then). Each is
    made once per export for its column's type, so a row costs one call per cell.
    ``safe``: text that a spreadsheet would read as a formula (=, +, -, @ ...) gets a
    leading single quote (spreadsheet.safe_cell), as in every file the product writes."""
    yes, no = _("Yes"), _("No")
    danger = spreadsheet.DANGEROUS_FIRST

    def guarded(convert: Callable[[Any], str]) -> Callable[[Any], str]:
        if not safe:
            return convert

        def guard(value) -> str:
            text = convert(value)
            return "'" + text if text.startswith(danger) else text
        return guard

    def make(f: Field) -> Callable[[Any], str]:
        if f.display is not None or f.type in (NUMBER, CHOICE):
            labels = {k: str(v) for k, v in (f.labels or {}).items()}
            display = f.display

            def generic(value) -> str:
                if value is None:
                    return ""
                if display is not None:
                    value = display(value)
                return labels.get(value, str(value)) if labels else str(value)
            return guarded(generic)
        if f.type == BOOLEAN:
            return lambda value: "" if value is None else (yes if value else no)
        if f.type == DATETIME:
            return lambda value: "" if value is None else \
                value.astimezone(JST).strftime("%Y-%m-%d %H:%M")
        if f.type == DATE:
            return lambda value: "" if value is None else value.isoformat()
        if not safe:
            return lambda value: "" if value is None else str(value)

        def text(value) -> str:
            if value is None:
                return ""
            value = value if value.__class__ is str else str(value)
            return "'" + value if value.startswith(danger) else value
        return text
    return [make(f) for f in query.columns]


_DANGER_AT_START = re.compile("(?:^|\x00)[" + re.escape("".join(spreadsheet.DANGEROUS_FIRST))
                              + "]")


def bulk_converters(query: Query, convert: list | None = None) -> list[Callable[[tuple], Any]]:
    """Per column, a function from a chunk's column of stored values to the CSV cells, as
    :func:`text_converters` (safe) gives them, but doing the common case in C: text that
    needs no quote mark goes as it is (csv writes None as an empty cell), a choice is one
    dict lookup per cell, a date column without blanks ``date.isoformat``, a column that is
    all blank as it is; anything else cell by cell with the column's converter."""
    convert = convert or text_converters(query, safe=True)

    def make(f: Field, each: Callable[[Any], str]):
        if f.type in (TEXT, KANA) and f.display is None:
            def text(column):
                try:
                    joined = "\x00".join(filter(None, column))
                except TypeError:  # not all text
                    return map(each, column)
                return map(each, column) if _DANGER_AT_START.search(joined) else column
            return text
        if f.type == CHOICE and f.display is None:
            labels = {k: str(v) for k, v in (f.labels or {}).items()}
            return lambda column: map(labels.get, column, column)
        if f.type == DATE:
            return lambda column: map(each, column) if None in column else \
                map(date.isoformat, column)

        def other(column):
            return column if column.count(None) == len(column) else map(each, column)
        return other
    return [make(f, c) for f, c in zip(query.columns, convert)]


@dataclass
class Tally:
    """What a CSV or XLSX writer has written so far (and, for CP932 "stop", what it
    found that CP932 cannot hold)."""
    written: int = 0
    replaced: int = 0
    problem_rows: int = 0
    characters: int = 0
    problems: list = dc_field(default_factory=list)


def csv_text(session, query: Query, tally: Tally, *, headers: list[str] | None = None,
             converters: list | None = None, replacement: str | None = None,
             find_unmappable: bool = False) -> Iterator[str]:
    """The CSV of a query as text, one chunk per fetch of the server-side cursor
    (``yield_per``: memory stays flat however many rows). Lines end CRLF; fields with
    commas, quotes or line breaks are quoted (csv.QUOTE_MINIMAL); every value is text, so
    IDs keep their leading zeros. ``replacement``: each character CP932 cannot hold is
    replaced and counted. ``find_unmappable`` (CP932 "stop"): rows with such characters are
    listed in ``tally`` and, from the first one on, nothing more is written.

    The rows are converted column by column (one call of the column's converter per cell,
    ``map`` over the chunk), the fastest way found (bench/exports.py)."""
    convert = converters or text_converters(query, safe=True)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow([spreadsheet.safe_cell(h) for h in
                     (headers if headers is not None else [str(f.label) for f in query.columns])])
    text_columns = [i for i, f in enumerate(query.columns) if f.type in (TEXT, KANA)]
    bulk = bulk_converters(query, convert)
    statement = rows_statement(query, with_key=find_unmappable)
    # Core rows (no ORM loading) from a server-side cursor, CHUNK_ROWS at a time.
    result = session.connection().execution_options(yield_per=CHUNK_ROWS).execute(statement)
    try:
        for part in result.partitions():
            if find_unmappable:
                for row in part:
                    cells = [c(v) for c, v in zip(convert, row[1:])]
                    found = [(str(query.columns[i].label), "".join(chars)) for i in text_columns
                             if (chars := unmappable(cells[i]))]
                    if found:
                        tally.problem_rows += 1
                        tally.characters += sum(len(chars) for _label, chars in found)
                        if len(tally.problems) < LISTED_PROBLEMS:
                            tally.problems.append(Problem(str(row[0]), found))
                    elif not tally.problem_rows:
                        writer.writerow(cells)
            elif replacement is not None:
                for row in part:
                    cells = []
                    for c, v in zip(convert, row):
                        cell, n = replace_unmappable(c(v), replacement)
                        tally.replaced += n
                        cells.append(cell)
                    writer.writerow(cells)
            else:
                columns = zip(*part)
                writer.writerows(zip(*[b(column) for b, column in zip(bulk, columns)]))
            tally.written += len(part)
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        yield buffer.getvalue()
    finally:
        result.close()


def csv_chunks(app, plan: ExportPlan) -> Iterator[bytes]:
    """The CSV of a planned export as bytes, chunk by chunk (:func:`csv_text`) in a session
    of its own, so it needs no request (it runs while the response is sent). UTF-8 starts
    with a BOM. When what was written differs from the audited plan (records changed
    between the check and the export, or the download was cut off), a second audit record
    says what was actually written."""
    query = plan.query
    encoding = "utf-8" if plan.encoding == UTF8_BOM else CP932
    tally = Tally()
    completed = False
    session = OrmSession(bind=plan.engine)
    try:
        if plan.encoding == UTF8_BOM:
            yield "\ufeff".encode("utf-8")
        for text in csv_text(session, query, tally, headers=plan.headers,
                             converters=plan.converters, replacement=plan.replacement):
            # CP932: every character was checked (stop) or replaced before; a character
            # that still cannot be written is a bug, never a silent '?'.
            yield text.encode(encoding, errors="strict")
        completed = True
    finally:
        session.close()
        if not completed or tally.written != plan.rows or tally.replaced != plan.replaced:
            after = ExportPlan(query, plan.fmt, plan.encoding, tally.written, plan.replacement,
                               tally.replaced)
            with app.app_context():
                audit.record_event(audit.ACTION_EXPORT, _table(query), None,
                                   _audit_detail(after, completed=completed,
                                                 planned_rows=plan.rows),
                                   actor=plan.actor)


def write_xlsx(session, query: Query, path: str, tally: Tally,
               on_progress: Callable[[int], None] | None = None) -> None:
    """Write the XLSX of a query to ``path`` (XlsxWriter ``constant_memory``: each row goes
    to disk as it is written, memory stays flat). IDs, phone numbers and postal codes are
    strings (format ``@``); numbers are numbers; dates and times are dates (Japan time).
    ``on_progress(rows)`` is called after each chunk of rows."""
    import xlsxwriter

    workbook = xlsxwriter.Workbook(path, {"constant_memory": True,
                                          "tmpdir": os.path.dirname(path) or None})
    try:
        sheet = workbook.add_worksheet(str(query.subject.label)[:31])
        bold = workbook.add_format({"bold": True})
        day = workbook.add_format({"num_format": "yyyy/mm/dd"})
        moment = workbook.add_format({"num_format": "yyyy/mm/dd hh:mm"})
        text = workbook.add_format({"num_format": "@"})
        for col, f in enumerate(query.columns):
            sheet.write_string(0, col, str(f.label), bold)
            sheet.set_column(col, col, 14 if f.type in (DATE, DATETIME, NUMBER, CHOICE,
                                                          BOOLEAN) else 20)
        columns = list(enumerate(query.columns))
        result = session.execute(rows_statement(query).execution_options(
            yield_per=CHUNK_ROWS))
        try:
            for part in result.partitions():
                for row in part:
                    tally.written += 1
                    line = tally.written
                    for col, f in columns:
                        cell = cell_value(f, row[col])
                        if cell is None:
                            continue
                        if f.code or isinstance(cell, str):
                            sheet.write_string(line, col, str(spreadsheet.safe_cell(cell)),
                                               text if f.code else None)
                        elif isinstance(cell, datetime):
                            sheet.write_datetime(line, col, cell, moment)
                        elif isinstance(cell, date):
                            sheet.write_datetime(line, col, datetime.combine(cell, time.min),
                                                 day)
                        else:
                            sheet.write_number(line, col, cell)
                if on_progress is not None:
                    on_progress(tally.written)
        finally:
            result.close()
    finally:
        workbook.close()


# --- saved queries -------------------------------------------------------------------------

def may_share(actor: CardActor) -> bool:
    return actors.has_role(actor, SHARERS)


def _check_share(actor: CardActor) -> None:
    actors.check_roles(actor, SHARERS, _("Only %(roles)s may save, change or delete queries "
                                         "shared with the office.",
                                         roles="、".join(actors.role_names(SHARERS))))


def _check_save(actor: CardActor) -> None:
    actors.check_roles(actor, SAVERS, _("Your role does not allow this operation."))


def _clean_name(text) -> str:
    value = fields.clean_text(text, NAME_MAX)
    if not value:
        raise InputError(_l("Enter a name for the conditions."))
    return value


def saved_queries(session, actor: CardActor, subject: str | None = None) -> list[SavedQuery]:
    """The person's own queries and the shared ones, shared first, by name."""
    statement = select(SavedQuery).where(or_(SavedQuery.shared.is_(true()),
                                             SavedQuery.owner == actor.username))
    if subject:
        statement = statement.where(SavedQuery.subject == subject)
    statement = statement.order_by(SavedQuery.shared.desc(), SavedQuery.name, SavedQuery.id)
    return list(session.execute(statement).scalars())


def get_saved(session, query_id: int | None, actor: CardActor) -> SavedQuery | None:
    """A saved query the person may use (their own or a shared one), else None."""
    if query_id is None:
        return None
    saved = session.get(SavedQuery, query_id)
    if saved is None or not (saved.shared or saved.owner == actor.username):
        return None
    return saved


def definition_of(saved: SavedQuery) -> dict:
    try:
        data = json.loads(saved.definition)
    except ValueError:
        data = {}
    data = data if isinstance(data, dict) else {}
    data["subject"] = saved.subject
    return data


def version_of(saved: SavedQuery) -> str:
    """The compare-and-set token of a saved query (its last change)."""
    return clock.to_jst(saved.updated_at).isoformat(timespec="microseconds")


def _may_change(saved: SavedQuery, actor: CardActor) -> None:
    if saved.shared:
        _check_share(actor)
    elif saved.owner != actor.username or not actor.username:
        raise NotPermittedError(_l("Only the person who saved these conditions may change "
                                   "or delete them."))


@unit.operation
def save_query(session, data: Any, name, *, actor: CardActor, shared: bool = False,
               now: datetime | None = None) -> SavedQuery:
    """Save a checked query under a name: private (any role of the screen) or shared with
    the office (管理者 only). A name already used (by the person's own private queries, or
    among the shared ones) is refused; change that query instead."""
    _check_save(actor)
    if shared:
        _check_share(actor)
    name = _clean_name(name)
    query = parse_definition(data)
    clash = session.execute(select(SavedQuery.id).where(
        SavedQuery.name == name,
        SavedQuery.shared.is_(true()) if shared else and_(SavedQuery.shared.is_(false()),
                                                          SavedQuery.owner == actor.username)
    )).first()
    if clash:
        raise InputError(_l("Conditions named %(name)s are already saved; choose another "
                            "name or overwrite those.", name=name))
    stamp = now or clock.now()
    saved = SavedQuery(name=name, subject=query.subject.name,
                       definition=json.dumps(query.definition, ensure_ascii=False),
                       owner=actors.name_of(actor), shared=bool(shared), created_at=stamp,
                       updated_at=stamp)
    try:
        with session.begin_nested():
            session.add(saved)
            session.flush()
    except IntegrityError:
        raise InputError(_l("Conditions named %(name)s are already saved; choose another "
                            "name or overwrite those.", name=name)) from None
    return saved


def _stale() -> ConcurrentChangeError:
    return ConcurrentChangeError(_l("Someone else changed or deleted these saved conditions "
                                    "in the meantime. Nothing was changed; open them again."))


def _expected(version: str | None) -> datetime:
    try:
        value = datetime.fromisoformat(str(version or ""))
    except ValueError:
        raise _stale() from None
    return value if value.tzinfo else value.replace(tzinfo=JST)


@unit.operation
def overwrite_query(session, query_id: int, version: str | None, data: Any, *,
                    actor: CardActor, now: datetime | None = None) -> SavedQuery:
    """Replace a saved query's conditions (owner; for a shared one 管理者), compare-and-set
    on its last change: when someone changed it meanwhile, nothing is written."""
    saved = get_saved(session, query_id, actor)
    if saved is None:
        raise _stale()
    _may_change(saved, actor)
    query = parse_definition(data)
    stamp = now or clock.now()
    if stamp <= saved.updated_at:
        stamp = saved.updated_at + timedelta(microseconds=1)
    changed = session.execute(
        update(SavedQuery).where(SavedQuery.id == saved.id,
                                 SavedQuery.updated_at == _expected(version))
        .values(definition=json.dumps(query.definition, ensure_ascii=False),
                subject=query.subject.name, updated_at=stamp)
        .execution_options(synchronize_session=False)).rowcount
    if changed != 1:
        raise _stale()
    audit.record_in_transaction(session, audit.ACTION_UPDATE, "saved_query", saved.id,
                                {"name": saved.name, "shared": saved.shared,
                                 "definition": query.definition})
    session.expire(saved)
    return saved


@unit.operation
def delete_query(session, query_id: int, version: str | None, *, actor: CardActor) -> str:
    """Delete a saved query (owner; a shared one 管理者), compare-and-set on its last
    change. Returns its name."""
    saved = get_saved(session, query_id, actor)
    if saved is None:
        raise _stale()
    _may_change(saved, actor)
    name, shared, owner, definition = saved.name, saved.shared, saved.owner, saved.definition
    gone = session.execute(
        delete(SavedQuery).where(SavedQuery.id == saved.id,
                                 SavedQuery.updated_at == _expected(version))
        .execution_options(synchronize_session=False)).rowcount
    if gone != 1:
        raise _stale()
    audit.record_in_transaction(session, audit.ACTION_DELETE, "saved_query", query_id,
                                {"name": name, "shared": shared, "owner": owner,
                                 "definition": definition})
    session.expunge(saved)
    return name


# --- background exports (jobs) -------------------------------------------------------------
#
# XLSX, and CSV above EXPORT_JOB_MIN_ROWS rows, are not written inside the request: the
# request checks and records the job (:func:`start_job`), a thread of the server (or the
# worker, whichever claims it first: the compare-and-set queued → running) writes the file
# (:func:`run_job`, its own app context and database sessions) into a local temporary
# file, then copies it into the shared file store (app/services/file_store.py) in the same
# transaction that marks the job done, so any app server can serve the download; the
# screen polls the progress (:func:`job_progress`) until the owner can download it
# (:func:`download_job`). Each progress write is a compare-and-set on the job's state and
# attempt, so a job marked failed or expired meanwhile (:func:`purge_exports`), or taken
# over by a worker (:func:`take_over_stalled`), stops at its next chunk.

PROGRESS_ROWS = 5_000  # rows between two progress writes (also at least every second)
JOB_LIST = 10  # the person's recent jobs on the screen
STORE_KIND = "extraction"  # stored_file.kind of the exports' files
TAKE_OVER_AFTER = timedelta(minutes=2)  # a running job silent this long is taken over
HEARTBEAT_SECONDS = 30.0  # a live runner marks its job this often, rows written or not
MAX_ATTEMPTS = 2  # the first run and one take-over
MIME_TYPES = {FORMAT_CSV: "text/csv",
              FORMAT_XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


class JobNotFoundError(DomainError):
    """No such job of this person (another person's job is not found either)."""


class JobCancelled(Exception):
    """The job's row left ``running`` meanwhile (failed or expired by the purge)."""


def exports_folder() -> str:
    """instance/exports/: this server's scratch folder for the file being written (made on
    first use, only the server's user may read it). Finished files are in the store."""
    from flask import current_app

    folder = os.path.join(current_app.instance_path, "exports")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    return folder


def _scratch_path(job: ExportJob) -> str:
    handle, path = tempfile.mkstemp(prefix=f"{job.token}.", suffix=f".{job.format}.part",
                                    dir=exports_folder())
    os.close(handle)
    return path


def _remove_file(path: str | None) -> None:
    if path:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def wants_job(session, data: Any, *, fmt: str, actor: CardActor) -> bool:
    """Whether an export is made in the background: XLSX always; CSV when it has more than
    EXPORT_JOB_MIN_ROWS rows (the count of the conditions, read here)."""
    _check_export(actor)
    if fmt == FORMAT_XLSX:
        return True
    query = parse_definition(data)
    rows = session.execute(count_statement(query)).scalar_one()
    return rows > app_settings().export_job_min_rows


@unit.operation
def start_job(session, data: Any, *, actor: CardActor, fmt: str = FORMAT_XLSX,
              encoding: str = UTF8_BOM, on_unmappable: str = ON_UNMAPPABLE_STOP,
              replacement: str | None = None, now: datetime | None = None) -> ExportJob:
    """Check an export and queue it as a job of the person: the role (never 閲覧者), the
    conditions, the format and the CP932 rule, as a direct export checks them. Old files
    are purged first (:func:`purge_exports`). The export itself is audited when the file
    is complete (:func:`run_job`: rows and replaced characters as written), its download
    when the owner downloads it."""
    _check_export(actor)
    if fmt not in (FORMAT_CSV, FORMAT_XLSX):
        raise InputError(_l("Choose CSV or XLSX."))
    char = None
    if fmt == FORMAT_CSV:
        if encoding not in (UTF8_BOM, CP932):
            raise InputError(_l("Choose UTF-8 or Shift_JIS (CP932)."))
        if on_unmappable not in (ON_UNMAPPABLE_STOP, ON_UNMAPPABLE_REPLACE):
            raise InputError(_l("Choose what to do with characters Shift_JIS cannot hold."))
        if encoding == CP932 and on_unmappable == ON_UNMAPPABLE_REPLACE:
            char = check_replacement(replacement)
    stamp = now or clock.now()
    query = parse_definition(data, today=stamp.astimezone(JST).date())
    purge_exports(session, now=stamp)
    rows = session.execute(count_statement(query)).scalar_one()
    job = ExportJob(
        token=secrets.token_urlsafe(24), owner=actors.name_of(actor),
        subject=query.subject.name,
        definition=json.dumps(query.definition, ensure_ascii=False), format=fmt,
        encoding=encoding if fmt == FORMAT_CSV else None,
        on_unmappable=on_unmappable if fmt == FORMAT_CSV and encoding == CP932 else None,
        replacement=char, state=JOB_QUEUED, rows_total=rows, rows_written=0, replaced=0,
        download_name=_filename(query, fmt, encoding, stamp), created_at=stamp,
        heartbeat_at=stamp)
    session.add(job)
    session.flush()
    job.audit_actor = audit.current_actor()  # not a column: who the thread records
    return job


def launch(app, job: ExportJob) -> threading.Thread | None:
    """Run a queued job in a thread of this server (or at once, in this request, when
    EXPORT_JOBS_INLINE is set). Returns the thread."""
    engine = app_session().get_bind()
    actor = getattr(job, "audit_actor", None)
    if app_settings().export_jobs_inline:
        run_job(app, engine, job.id, actor)
        return None
    thread = threading.Thread(target=run_job, args=(app, engine, job.id, actor),
                              name=f"export-job-{job.id}", daemon=True)
    thread.start()
    return thread


def run_job(app, engine, job_id: int, actor: audit.Actor | None = None) -> bool:
    """Write a job's file (in a thread or the worker: an app context and database sessions
    of its own). queued → running → done (the file copied into the store and the export
    audited in the same transaction) or failed (the temporary file removed, the reason
    kept). Returns whether this call claimed the job. Never raises."""
    with app.app_context(), app.test_request_context("/"):
        writer = OrmSession(bind=engine)  # the job's row, the stored file, the audit record
        reader = OrmSession(bind=engine)  # the rows, from a server-side cursor
        try:
            return _run(writer, reader, job_id, actor)
        except Exception:  # noqa: BLE001 - the job must end in a state, whatever happened
            app.logger.exception("export job %s failed", job_id)
            return True
        finally:
            reader.close()
            writer.close()


def _set(session, job_id: int, from_states: tuple[str, ...], attempt: int | None = None,
         **values) -> bool:
    """Compare-and-set of a job's row: True when it was in one of ``from_states`` (and,
    with ``attempt``, still run by that attempt: not taken over meanwhile)."""
    conditions = [ExportJob.id == job_id, ExportJob.state.in_(from_states)]
    if attempt is not None:
        conditions.append(ExportJob.attempts == attempt)
    with unit.transaction(session):
        changed = session.execute(
            update(ExportJob).where(*conditions)
            .values(**values).execution_options(synchronize_session=False)).rowcount
    return changed == 1


def _claim(session, job_id: int) -> ExportJob | None:
    """queued → running for this runner (one of two runners wins), attempts + 1."""
    with unit.transaction(session):
        row = session.execute(
            update(ExportJob).where(ExportJob.id == job_id, ExportJob.state == JOB_QUEUED)
            .values(state=JOB_RUNNING, heartbeat_at=clock.now(),
                    attempts=ExportJob.attempts + 1)
            .returning(ExportJob.attempts)
            .execution_options(synchronize_session=False)).first()
    if row is None:
        return None
    job = session.get(ExportJob, job_id, populate_existing=True)
    session.expunge(job)
    session.rollback()
    return job


def _keep_heartbeat(engine, job_id: int, attempt: int) -> threading.Event:
    """While the runner works, mark its job alive every HEARTBEAT_SECONDS from a thread of
    its own (a compare-and-set on state and attempt), also while a heavy query gives no row
    yet or a big workbook is being closed: only a runner that is gone falls silent and is
    taken over. Set the returned event to stop it."""
    from flask import current_app

    app, stop = current_app._get_current_object(), threading.Event()

    def beat() -> None:
        with app.app_context():  # the app's clock (and its settings)
            while not stop.wait(HEARTBEAT_SECONDS):
                try:
                    with engine.begin() as connection:
                        kept = connection.execute(
                            update(ExportJob).where(ExportJob.id == job_id,
                                                    ExportJob.state == JOB_RUNNING,
                                                    ExportJob.attempts == attempt)
                            .values(heartbeat_at=clock.now())).rowcount
                except Exception as error:  # noqa: BLE001 - tried again at the next beat
                    app.logger.warning("export job %s: its heartbeat could not be written "
                                       "(%s)", job_id, type(error).__name__)
                    continue
                if kept != 1:  # done, failed or taken over: nothing more to keep
                    return

    threading.Thread(target=beat, name=f"export-heartbeat-{job_id}", daemon=True).start()
    return stop


def _run(writer, reader, job_id: int, actor) -> bool:
    job = _claim(writer, job_id)
    if job is None:
        return False
    attempt = job.attempts
    alive = _keep_heartbeat(writer.get_bind(), job_id, attempt)
    part = None
    tally = Tally()
    last = {"rows": 0, "at": _monotonic()}

    def progress(rows: int) -> None:
        if rows - last["rows"] < PROGRESS_ROWS and _monotonic() - last["at"] < 1.0:
            return
        if not _set(writer, job_id, (JOB_RUNNING,), attempt=attempt, rows_written=rows,
                    heartbeat_at=clock.now()):
            raise JobCancelled()
        last["rows"], last["at"] = rows, _monotonic()

    try:
        part = _scratch_path(job)
        # relative dates: the day the job was started (its count was made then)
        query = parse_definition(job.definition,
                                 today=clock.to_jst(job.created_at).date())
        if job.format == FORMAT_XLSX:
            write_xlsx(reader, query, part, tally, progress)
        else:
            encoding = "utf-8" if job.encoding == UTF8_BOM else CP932
            stop = job.encoding == CP932 and job.on_unmappable != ON_UNMAPPABLE_REPLACE
            with open(part, "wb") as out:
                if job.encoding == UTF8_BOM:
                    out.write("\ufeff".encode("utf-8"))
                for text in csv_text(reader, query, tally, replacement=job.replacement,
                                     find_unmappable=stop):
                    out.write(text.encode(encoding, errors="strict"))
                    progress(tally.written)
        reader.rollback()
        if tally.problem_rows:
            raise UnmappableError(Cp932Check(tally.written, tally.problem_rows,
                                             tally.characters, tally.problems))
        with unit.transaction(writer):
            stamp = clock.now()
            done = writer.execute(
                update(ExportJob).where(ExportJob.id == job_id,
                                        ExportJob.state == JOB_RUNNING,
                                        ExportJob.attempts == attempt)
                .values(state=JOB_DONE, rows_written=tally.written, replaced=tally.replaced,
                        file_name=job.token, finished_at=stamp, heartbeat_at=stamp)
                .execution_options(synchronize_session=False)).rowcount
            if done != 1:
                raise JobCancelled()
            # the file joins the store in the transaction that offers it: both or neither
            file_store.put(writer, part, kind=STORE_KIND, token=job.token, owner=job.owner,
                           filename=job.download_name, now=stamp)
            plan = ExportPlan(query, job.format, job.encoding or "", tally.written,
                              job.replacement, tally.replaced)
            audit.record_in_transaction(writer, audit.ACTION_EXPORT, _table(query), None,
                                        _audit_detail(plan, job=job.id, owner=job.owner,
                                                      planned_rows=job.rows_total),
                                        actor=actor or audit.Actor(None, job.owner, None))
    except JobCancelled:
        pass
    except Exception as error:  # noqa: BLE001 - said on the job's page, never a half file
        reader.rollback()
        _set(writer, job_id, (JOB_QUEUED, JOB_RUNNING), attempt=attempt, state=JOB_FAILED,
             rows_written=tally.written, finished_at=clock.now(),
             error=_job_error(error)[:4000])
        if not isinstance(error, DomainError):
            raise
    finally:
        alive.set()
        _remove_file(part)
    return True


def take_over_stalled(session, now: datetime | None = None) -> tuple[int, int]:
    """Running jobs that have not reported for TAKE_OVER_AFTER (their thread or worker
    died: a restart, a recycled web worker): back to queued for another run when they
    have an attempt left, else failed. Each a compare-and-set on the state, attempt and
    heartbeat seen. Returns (requeued, failed)."""
    stamp = now or clock.now()
    requeued = failed = 0
    with unit.transaction(session):
        stalled = session.execute(
            select(ExportJob.id, ExportJob.attempts, ExportJob.heartbeat_at)
            .where(ExportJob.state == JOB_RUNNING,
                   ExportJob.heartbeat_at < stamp - TAKE_OVER_AFTER)).all()
        for job_id, attempts, heartbeat in stalled:
            again = attempts < MAX_ATTEMPTS
            values = ({"state": JOB_QUEUED, "heartbeat_at": stamp, "rows_written": 0}
                      if again else
                      {"state": JOB_FAILED, "finished_at": stamp, "error": _(
                          "The job stopped without finishing (the server was restarted or "
                          "the process ended). Start the export again.")})
            changed = session.execute(
                update(ExportJob).where(ExportJob.id == job_id,
                                        ExportJob.state == JOB_RUNNING,
                                        ExportJob.attempts == attempts,
                                        ExportJob.heartbeat_at == heartbeat)
                .values(**values).execution_options(synchronize_session=False)).rowcount
            if changed == 1:
                if again:
                    requeued += 1
                else:
                    failed += 1
    return requeued, failed


@dataclass
class WorkerReport:
    ran: int = 0
    requeued: int = 0
    failed: int = 0


def run_queued(app, session, now: datetime | None = None, limit: int = 5) -> WorkerReport:
    """The worker's share (app/services/jobs.py ``exports``): take over stalled jobs, then
    run queued ones, oldest first, at most ``limit`` per call. A job a web thread claims
    first is left to it (the compare-and-set queued → running decides)."""
    report = WorkerReport()
    report.requeued, report.failed = take_over_stalled(session, now)
    engine = session.get_bind()
    tried: set[int] = set()
    while report.ran < limit:
        with unit.transaction(session):
            job_id = session.execute(
                select(ExportJob.id).where(ExportJob.state == JOB_QUEUED,
                                           ExportJob.id.not_in(tried) if tried else true())
                .order_by(ExportJob.created_at, ExportJob.id).limit(1)).scalar()
        if job_id is None:
            break
        tried.add(job_id)
        if run_job(app, engine, job_id):
            report.ran += 1
    return report


def _job_error(error: Exception) -> str:
    if isinstance(error, UnmappableError):
        listed = "、".join(f"{p.key}（{'、'.join(f'{c}: {chars}' for c, chars in p.columns)}）"
                          for p in error.check.problems[:20])
        return f"{error.message} {listed}"
    if isinstance(error, DomainError):
        return str(error.message)
    return _("The file could not be made because of an error on the server. Try again; if "
             "it happens again, tell the system administrator.")


def _monotonic() -> float:
    import time as _time

    return _time.monotonic()


def get_job(session, token: str | None, actor: CardActor) -> ExportJob | None:
    """The person's own job by its token, else None (another person's job is not found)."""
    if not token or not isinstance(token, str) or len(token) > 64:
        return None
    job = session.execute(select(ExportJob).where(ExportJob.token == token)).scalar_one_or_none()
    if job is None or job.owner != actor.username or not may_export(actor):
        return None
    return job


def effective_state(job: ExportJob, now: datetime | None = None) -> str:
    """The state as the person should read it: a job that has not reported for
    EXPORT_STALE_MINUTES (its process died) is failed; a file past EXPORT_KEEP_MINUTES is
    expired, whether or not the purge has run yet. Reads only."""
    now = now or clock.now()
    config = app_settings()
    if job.state in (JOB_QUEUED, JOB_RUNNING) and \
            job.heartbeat_at < now - timedelta(minutes=config.export_stale_minutes):
        return JOB_FAILED
    if job.state == JOB_DONE and job.finished_at is not None and \
            job.finished_at < now - timedelta(minutes=config.export_keep_minutes):
        return JOB_EXPIRED
    return job.state


def job_progress(job: ExportJob, now: datetime | None = None) -> dict:
    """The JSON the screen polls: state, its label, rows written of the total, percent,
    the reason of a failure, when the file is removed."""
    state = effective_state(job, now)
    written, total = job.rows_written, job.rows_total
    if state == JOB_DONE:
        percent = 100
    elif total:
        percent = min(99, int(job.rows_written * 100 / total))
    else:
        percent = 0
    error = job.error
    if state == JOB_FAILED and not error:
        error = _("The job stopped without finishing (the server was restarted or the "
                  "process ended). Start the export again.")
    keep_until = None
    if state == JOB_DONE and job.finished_at is not None:
        keep_until = clock.to_jst(job.finished_at + timedelta(
            minutes=app_settings().export_keep_minutes)).strftime("%H:%M")
    return {"state": state, "label": str(JOB_STATE_LABELS[state]), "rows_written": written,
            "rows_total": total, "percent": percent, "error": error,
            "replaced": job.replaced, "keep_until": keep_until,
            "finished": state in (JOB_DONE, JOB_FAILED, JOB_EXPIRED)}


def jobs_of(session, actor: CardActor, limit: int = JOB_LIST) -> list[ExportJob]:
    """The person's latest jobs, newest first (reads only)."""
    if not may_export(actor):
        return []
    return list(session.execute(
        select(ExportJob).where(ExportJob.owner == actor.username)
        .order_by(ExportJob.created_at.desc(), ExportJob.id.desc()).limit(limit)).scalars())


@unit.operation
def download_job(session, token: str | None, *, actor: CardActor,
                 now: datetime | None = None,
                 encrypted: bool = False) -> tuple[file_store.Handle, str, str]:
    """The file of the person's own finished job: (the stored file, download name, MIME
    type), read from the shared store by any app server. Audited as a download, with
    whether it leaves as an encrypted ZIP (``encrypted``: the caller wraps it; a plain
    file is refused while the office requires encryption); ``downloaded_at`` set
    (compare-and-set on ``done``). Another person's job is not found; a job not done (or
    whose file is gone) is refused."""
    _check_export(actor)
    export_policy.require(session, "extraction", encrypted)
    job = get_job(session, token, actor)
    if job is None:
        raise JobNotFoundError(_l("This export does not exist or is not yours."))
    stamp = now or clock.now()
    not_ready = _l("This file is not ready, or was already removed. Start the export again.")
    if effective_state(job, stamp) != JOB_DONE or not job.file_name:
        raise InputError(not_ready)
    stored = file_store.find(session, job.file_name, STORE_KIND)
    if stored is None or stored.owner != job.owner:
        raise InputError(not_ready)
    changed = session.execute(
        update(ExportJob).where(ExportJob.id == job.id, ExportJob.state == JOB_DONE)
        .values(downloaded_at=stamp).execution_options(synchronize_session=False)).rowcount
    if changed != 1:
        raise InputError(not_ready)
    audit.record_in_transaction(session, audit.ACTION_DOWNLOAD, _table(parse_definition(
        job.definition)), None, {"what": "extraction", "job": job.id, "subject": job.subject,
                                 "format": job.format, "rows": job.rows_written,
                                 "file": job.download_name, "encrypted": encrypted})
    return file_store.handle_of(session, stored), job.download_name, MIME_TYPES[job.format]


@dataclass
class PurgeReport:
    expired: int = 0
    failed: int = 0
    files: int = 0


def purge_exports(session, now: datetime | None = None) -> PurgeReport:
    """Remove what the file store should no longer hold: files of finished jobs past
    EXPORT_KEEP_MINUTES (→ expired), jobs that stopped reporting for EXPORT_STALE_MINUTES
    (→ failed, this server's temporary file removed), and leftovers of failed or expired
    jobs.
    Each change is a compare-and-set; a running job marked failed stops at its next chunk.
    Runs inside the caller's unit (each job start) or on its own
    (`flask extraction purge-exports`)."""
    stamp = now or clock.now()
    config = app_settings()
    report = PurgeReport()
    with unit.transaction(session):
        keep = stamp - timedelta(minutes=config.export_keep_minutes)
        stale = stamp - timedelta(minutes=config.export_stale_minutes)
        old = list(session.execute(select(ExportJob).where(or_(
            and_(ExportJob.state == JOB_DONE, ExportJob.finished_at < keep),
            and_(ExportJob.state.in_((JOB_QUEUED, JOB_RUNNING)),
                 ExportJob.heartbeat_at < stale)))).scalars())
        for job in old:
            expire = job.state == JOB_DONE
            changed = session.execute(
                update(ExportJob).where(ExportJob.id == job.id, ExportJob.state == job.state,
                                        ExportJob.heartbeat_at == job.heartbeat_at)
                .values(**({"state": JOB_EXPIRED} if expire else {
                    "state": JOB_FAILED, "finished_at": stamp,
                    "error": _("The job stopped without finishing (the server was restarted "
                               "or the process ended). Start the export again.")}))
                .execution_options(synchronize_session=False)).rowcount
            if changed == 1:
                if expire:
                    report.expired += 1
                else:
                    report.failed += 1
    # Files: every stored file whose job is neither running nor done goes (also files of
    # jobs whose row is gone); only after the rows changed, so a running job is never cut
    # off unless it was marked failed. Then this server's scratch files of such jobs.
    with unit.transaction(session):
        live = set(session.execute(select(ExportJob.token).where(
            ExportJob.state.in_((JOB_QUEUED, JOB_RUNNING, JOB_DONE)))).scalars())
        report.files += file_store.purge(session, kind=STORE_KIND, keep_tokens=live)
    # The scratch files: the live tokens are read again now (a job started while the files
    # above were purged is live too), and a file is removed only when it is also older
    # than a job could be without being marked stale (its runner is gone).
    folder = exports_folder()
    listed = os.listdir(folder)
    live = set(session.execute(select(ExportJob.token).where(
        ExportJob.state.in_((JOB_QUEUED, JOB_RUNNING, JOB_DONE)))).scalars())
    oldest = (now or clock.now()).timestamp() - app_settings().export_stale_minutes * 60
    for name in listed:
        token = name.split(".", 1)[0]
        path = os.path.join(folder, name)
        with contextlib.suppress(FileNotFoundError):
            if token not in live and os.path.getmtime(path) < oldest:
                os.unlink(path)
                report.files += 1
    for job in old:
        session.expire(job)
    return report
