"""The import of a city's existing card ledger (既存データ取込, F5.4, D1; issue 15 §1).

A city starts with the ledger exported from its current card-progress system, whose layout
we do not know in advance. This module reads such a file and loads it, for every entry
point (the CLI `flask ledger import`, the screen 既存データ取込 through a background job):

- reading: CSV in UTF-8 (with or without BOM) or CP932 (NEC/IBM extension characters
  such as 髙 and 﨑 included), detected without asking; XLSX (openpyxl, read-only);
- columns found by their header (synonyms in data/ledger_import_defaults.toml, compared
  after NFKC with spaces removed), or by a mapping file (TOML) for any other layout; a
  column nobody knows is reported, never guessed;
- values normalised as staff typed them (app/services/japanese.py, fields.py), each
  problem reported with its line in the file, the column, the value and the reason;
- writing: one transaction with Core bulk inserts in chunks (cards, their first history
  event "既存データ取込 <file> sha256:<hex>", missing storage places) and one audit record
  with the counts. Rows are checked chunk by chunk before they are written; if any row is
  bad and bad rows are not to be skipped, the transaction is rolled back at the end, so
  the database is exactly as before (as after a kill -9: nothing is committed until the
  end).

Cards already in the ledger (same 申請書ID) are left alone when the file says the same,
reported with their differences otherwise, and changed only with ``update=True`` (each
change a compare-and-set on the card's state, with an event in its history).
"""
from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json as _json
import os
import re
import secrets as _secrets
import shutil as _shutil
import tempfile
import threading as _threading
import time as _time
import tomllib
import unicodedata
from contextlib import suppress as contextlib_suppress
from dataclasses import dataclass, field
from datetime import date, datetime, time
from datetime import timedelta as _timedelta
from typing import Any, Callable, Iterator

import jaconv
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import String, any_, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY

from app import clock
from app.clock import JST
from app.models.card import VISIT_AT_APPLICATION, VISIT_AT_HANDOVER, Card, CardEvent
from app.models.card_states import (RECEIVED, RESERVED, STATE_LABELS, state_label,
                                    visit_mode_label)
from app.models.ledger_import import LedgerImportJob
from app.models.storage import StoragePlace
from app.services import (actors, audit, cards, export_policy, fields, file_store, japanese,
                          notice_numbers, unit)
from app.services.errors import DomainError, InputError

CHUNK = 2_000  # rows checked and written together
PREVIEW_ROWS = 20
DEFAULTS_FILE = os.path.join(os.path.dirname(__file__), "data", "ledger_import_defaults.toml")
BOM = codecs.BOM_UTF8
PLACE_CODE_MAX = 40
DEFAULT_CAPACITY = 100

# Our fields, in the order a preview shows them, with their labels.
FIELD_LABELS = {
    "application_id": _l("Application ID"),
    "name": _l("Name"),
    "name_kana": _l("Name (kana)"),
    "birth_date": _l("Birth date"),
    "postal_code": _l("Postal code"),
    "address": _l("Address"),
    "shipment_number": _l("Shipment number"),
    "manufacture_number": _l("Manufacturing control number"),
    "has_sign_cert": _l("Signature certificate"),
    "has_auth_cert": _l("User authentication certificate"),
    "state": _l("State"),
    "visit_mode": _l("Visit mode"),
    "storage_place": _l("Storage place"),
    "notice_number": _l("Postcard number"),
    "received_on": _l("Delivered on"),
    "notice_sent_on": _l("Notice sent on"),
    "handed_over_on": _l("Handed over on"),
    "card_expires_on": _l("Card expires on"),
    "notes": _l("Notes"),
}
FIELDS = tuple(FIELD_LABELS)
REQUIRED = ("application_id", "name", "name_kana", "birth_date")
# The file's dates: the card's column each one fills.
DATE_STAMPS = {"received_on": "received_at", "notice_sent_on": "notice_sent_at",
               "handed_over_on": "handed_over_at"}
# States the card's lifecycle stamps with a day the file carries: such a row needs that
# date (an import never invents the day a card was handed over or its notice sent).
DATE_REQUIRED = {state: name for name, column in DATE_STAMPS.items()
                 for state, stamp in cards.STAMPS.items()
                 if stamp == column and state != RECEIVED}
# Dates that cannot come before another one of the same row (earlier, later).
DATE_ORDER = (("birth_date", "received_on"), ("birth_date", "notice_sent_on"),
              ("birth_date", "handed_over_on"), ("received_on", "notice_sent_on"),
              ("received_on", "handed_over_on"), ("notice_sent_on", "handed_over_on"))
# Card columns compared with a card already in the ledger (the file's field -> column).
COMPARED = {"name": "name", "name_kana": "name_kana", "birth_date": "birth_date",
            "postal_code": "postal_code", "address": "address",
            "shipment_number": "shipment_number", "manufacture_number": "manufacture_number",
            "has_sign_cert": "has_sign_cert", "has_auth_cert": "has_auth_cert",
            "state": "state", "visit_mode": "visit_mode", "notice_number": "notice_number",
            "card_expires_on": "card_expires_on", "notes": "notes",
            "storage_place": "storage_place_id", "received_on": "received_at",
            "notice_sent_on": "notice_sent_at", "handed_over_on": "handed_over_at"}
IMPORTABLE_STATES = tuple(s for s in STATE_LABELS if s != RESERVED)


def _unguarded(value: str) -> str:
    """A value as written before the formula guard of our own files (the rejects file,
    app/services/spreadsheet.py): one leading quote before = + - @ is taken off, so that
    file can be imported again as it is."""
    if len(value) > 1 and value[0] == "'" and value[1] in "=+-@":
        return value[1:]
    return value


class ImportFileError(DomainError):
    """The file as a whole cannot be read (encoding, format, header, mapping file)."""


class _Rollback(Exception):
    """Internal: a bad row without skip_invalid, or a dry run, ends the unit unwritten."""


def header_key(text: Any) -> str:
    """A header or word as compared: NFKC, hiragana as katakana, no spaces of any width,
    upper case (ｱﾘ, あり and アリ are one word)."""
    value = unicodedata.normalize("NFKC", str(text if text is not None else ""))
    return jaconv.hira2kata(re.sub(r"\s+", "", value)).upper()


# --- the mapping ------------------------------------------------------------------------

@dataclass
class Mapping:
    columns: dict[str, str]
    states: dict[str, str]
    visit_modes: dict[str, str]
    true_words: set[str]
    false_words: set[str]
    defaults: dict[str, Any]
    header_row: int = 1
    sheet: str | None = None


def _load_toml(text: str, source: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ImportFileError(_l("The mapping file %(file)s cannot be read: %(error)s",
                                 file=source, error=str(error))) from None


def load_mapping(path: str | None = None, text: str | None = None) -> Mapping:
    """The defaults, with a mapping file's tables added on top (a path or its text)."""
    with open(DEFAULTS_FILE, encoding="utf-8") as handle:
        base = _load_toml(handle.read(), "defaults")
    extra: dict = {}
    source = os.path.basename(path) if path else "mapping"
    if path is not None:
        try:
            with open(path, "rb") as handle:
                raw = handle.read()
        except OSError:
            raise ImportFileError(_l("The mapping file %(file)s cannot be opened.",
                                     file=source)) from None
        text = raw.decode("utf-8-sig", errors="replace")
    if text:
        extra = _load_toml(text, source)
    columns = {header_key(k): v for k, v in base["columns"].items()}
    for key, value in (extra.get("columns") or {}).items():
        if value not in FIELDS and value != "":
            raise ImportFileError(_l(
                "The mapping file names an unknown field %(field)s for the column %(column)s. "
                "Use one of: %(fields)s (or \"\" to leave the column out).",
                field=value, column=key, fields=", ".join(FIELDS)))
        columns[header_key(key)] = value
    states = {header_key(k): v for k, v in base["states"].items()}
    for key in STATE_LABELS:
        states.setdefault(header_key(key), key)
    for key, value in (extra.get("states") or {}).items():
        if value not in IMPORTABLE_STATES:
            raise ImportFileError(_l(
                "The mapping file maps the word %(word)s to an unknown state %(state)s. "
                "Use one of: %(states)s.", word=key, state=value,
                states=", ".join(IMPORTABLE_STATES)))
        states[header_key(key)] = value
    modes = {header_key(k): v for k, v in base["visit_modes"].items()}
    for key, value in (extra.get("visit_modes") or {}).items():
        if value not in (VISIT_AT_HANDOVER, VISIT_AT_APPLICATION):
            raise ImportFileError(_l("The mapping file maps %(word)s to %(mode)s; a visit "
                                     "mode is K or S.", word=key, mode=value))
        modes[header_key(key)] = value
    flags = {**base["flags"], **(extra.get("flags") or {})}
    defaults = {**base["defaults"], **(extra.get("defaults") or {})}
    options = extra.get("options") or {}
    header_row = options.get("header_row", 1)
    if not isinstance(header_row, int) or header_row < 1:
        raise ImportFileError(_l("header_row in the mapping file must be 1 or more."))
    return Mapping(columns=columns, states=states, visit_modes=modes,
                   true_words={header_key(w) for w in flags.get("true", [])},
                   false_words={header_key(w) for w in flags.get("false", [])},
                   defaults=defaults, header_row=header_row, sheet=options.get("sheet"))


# --- reading the file --------------------------------------------------------------------

def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_xlsx(path: str) -> bool:
    with open(path, "rb") as handle:
        return handle.read(4) == b"PK\x03\x04"


def detect_encoding(path: str) -> str:
    """utf-8-sig (a BOM), utf-8 when the whole file decodes strictly, else cp932 when it
    does; anything else is refused (never read with replaced characters)."""
    with open(path, "rb") as handle:
        if handle.read(3) == BOM:
            return "utf-8-sig"
    for encoding in ("utf-8", "cp932"):
        decoder = codecs.getincrementaldecoder(encoding)("strict")
        try:
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    decoder.decode(block)
                decoder.decode(b"", final=True)
            return encoding
        except UnicodeDecodeError:
            continue
    raise ImportFileError(_l("The file is neither UTF-8 nor Shift_JIS (CP932) text. Save it "
                             "as CSV (UTF-8 or Shift_JIS) or as XLSX and try again."))


@dataclass
class Source:
    """Rows of a file: (line in the file, values), with progress as (done, total)."""
    header: list[str]
    header_line: int
    rows: Iterator[tuple[int, list[str]]]
    position: Callable[[], tuple[int, int]]
    encoding: str
    close: Callable[[], None]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def open_source(path: str, mapping: Mapping) -> Source:
    if is_xlsx(path):
        return _open_xlsx(path, mapping)
    return _open_csv(path, mapping)


def _open_csv(path: str, mapping: Mapping) -> Source:
    encoding = detect_encoding(path)
    total = os.path.getsize(path)
    raw = open(path, "rb")
    text = io.TextIOWrapper(raw, encoding=encoding, newline="")
    reader = csv.reader(text, strict=False)
    state = {"line": 0}

    def records() -> Iterator[tuple[int, list[str]]]:
        while True:
            start = reader.line_num + 1
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                raise ImportFileError(_l("Line %(line)d: the CSV cannot be read (%(error)s).",
                                         line=start, error=str(error))) from None
            state["line"] = start
            yield start, values

    iterator = records()
    header: list[str] | None = None
    header_line = 0
    for line, values in iterator:
        if line >= mapping.header_row or reader.line_num >= mapping.header_row:
            if any(v.strip() for v in values):
                header, header_line = values, line
                break
    if header is None:
        text.close()
        raise ImportFileError(_l("The file has no header row."))
    return Source(header, header_line, iterator, lambda: (raw.tell(), total), encoding,
                  text.close)


# An XLSX is a ZIP: refuse one that would unpack to more than this (a "ZIP bomb"), or
# whose parts are packed far tighter than any sheet of real data, before openpyxl reads it.
XLSX_UNPACKED_TIMES = 10  # the unpacked parts together: at most 10 x the upload cap (1 GB)
XLSX_RATIO_MAX = 200  # uncompressed / compressed, for parts over XLSX_RATIO_FROM bytes
XLSX_RATIO_FROM = 10 * 1024 * 1024


def _check_xlsx_size(path: str) -> None:
    import zipfile

    try:
        with zipfile.ZipFile(path) as packed:
            parts = packed.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise ImportFileError(_l("The file cannot be read as an Excel workbook (XLSX).")) \
            from None
    total = sum(p.file_size for p in parts)
    tight = any(p.file_size > XLSX_RATIO_FROM
                and p.file_size > XLSX_RATIO_MAX * max(p.compress_size, 1) for p in parts)
    most = XLSX_UNPACKED_TIMES * UPLOAD_MAX_BYTES
    if total > most or tight:
        raise ImportFileError(_l("The workbook is too large when unpacked (%(mb)d MB at most, "
                                 "or packed unusually tightly). Save it as CSV, or split it "
                                 "into several files.",
                                 mb=max(most // (1024 * 1024), 1)))


def _open_xlsx(path: str, mapping: Mapping) -> Source:
    import openpyxl

    _check_xlsx_size(path)
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception:  # noqa: BLE001 - any damaged or foreign ZIP
        raise ImportFileError(_l("The file cannot be read as an Excel workbook (XLSX).")) \
            from None
    if mapping.sheet:
        if mapping.sheet not in book.sheetnames:
            book.close()
            raise ImportFileError(_l("The workbook has no sheet named %(sheet)s.",
                                     sheet=mapping.sheet))
        sheet = book[mapping.sheet]
    else:
        sheet = book.worksheets[0]
    total = sheet.max_row or 0
    state = {"line": 0}

    def records() -> Iterator[tuple[int, list[str]]]:
        for line, row in enumerate(sheet.iter_rows(values_only=True), start=1):
            state["line"] = line
            yield line, [_cell(v) for v in row]

    iterator = records()
    header = None
    header_line = 0
    for line, values in iterator:
        if line >= mapping.header_row and any(v.strip() for v in values):
            header, header_line = values, line
            break
    if header is None:
        book.close()
        raise ImportFileError(_l("The file has no header row."))
    return Source(header, header_line, iterator, lambda: (state["line"], max(total, 1)),
                  "xlsx", book.close)


# --- the report -----------------------------------------------------------------------------

@dataclass
class Problem:
    line: int | None
    column: str
    value: str
    reason: str

    def as_row(self) -> list[str]:
        return ["" if self.line is None else str(self.line), self.column, self.value,
                self.reason]


@dataclass
class ImportReport:
    file_name: str
    sha256: str
    encoding: str = ""
    columns: dict[str, str] = field(default_factory=dict)  # header -> field
    unknown_columns: list[str] = field(default_factory=list)
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    places_created: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    differences: list[Problem] = field(default_factory=list)
    preview: list[dict[str, str]] = field(default_factory=list)
    dry_run: bool = False
    written: bool = False
    rejects_file: str | None = None

    @property
    def bad_rows(self) -> int:
        return self.rejected

    @property
    def ok(self) -> bool:
        return not self.problems

    def counts(self) -> dict[str, Any]:
        return {"file": self.file_name, "sha256": self.sha256, "encoding": self.encoding,
                "rows": self.rows, "created": self.created, "updated": self.updated,
                "unchanged": self.unchanged, "rejected": self.rejected,
                "places_created": len(self.places_created),
                "unknown_columns": self.unknown_columns}


PROBLEM_HEADER = (_l("Line"), _l("Column"), _l("Value"), _l("Reason"))


def write_problems(report: ImportReport, stream) -> None:
    """The full list of problems and differences as CSV (line, column, value, reason)."""
    from app.services.spreadsheet import csv_writer

    writer = csv_writer(stream)
    writer.writerow([str(h) for h in PROBLEM_HEADER])
    for problem in report.problems + [d for d in report.differences
                                      if d not in report.problems]:
        writer.writerow(problem.as_row())


# --- normalising one row ----------------------------------------------------------------------

MEMO_FIELDS = ("birth_date", "has_sign_cert", "has_auth_cert", "visit_mode", "state",
               "storage_place", "received_on", "notice_sent_on", "handed_over_on",
               "card_expires_on", "postal_code")
MEMO_MAX = 100_000


@dataclass(frozen=True)
class _Refused:
    reason: str


class _RowChecker:
    def __init__(self, mapping: Mapping, index: dict[str, int], labels: dict[str, str],
                 today: date):
        self.mapping = mapping
        self.index = index  # field -> column position
        self.labels = labels  # field -> the header as in the file
        self.today = today
        # Values that repeat across a ledger (dates, words, places) are parsed once.
        self.memo: dict[str, dict[str, Any]] = {name: {} for name in MEMO_FIELDS}

    def raw(self, values: list[str], name: str) -> str:
        position = self.index.get(name)
        if position is None or position >= len(values):
            return ""
        return values[position]

    def check(self, line: int, values: list[str]) -> tuple[dict | None, list[Problem]]:
        problems: list[Problem] = []
        out: dict[str, Any] = {}

        def field_value(name: str, parse: Callable[[str], Any], required: bool = False,
                        default: Any = None) -> None:
            raw = self.raw(values, name)
            if not raw.strip():
                if required:
                    problems.append(Problem(line, self.labels.get(name, str(FIELD_LABELS[name])),
                                            raw, _("This field is required.")))
                out[name] = default
                return
            memo = self.memo.get(name)
            if memo is not None and raw in memo:
                value = memo[raw]
                if isinstance(value, _Refused):
                    problems.append(Problem(line, self.labels[name], raw, value.reason))
                    out[name] = None
                else:
                    out[name] = value
                return
            try:
                out[name] = parse(raw)
            except InputError as error:
                problems.append(Problem(line, self.labels[name], raw, str(error.message)))
                out[name] = None
                if memo is not None and len(memo) < MEMO_MAX:
                    memo[raw] = _Refused(str(error.message))
                return
            if memo is not None and len(memo) < MEMO_MAX:
                memo[raw] = out[name]

        field_value("application_id", japanese.parse_application_id, required=True)
        field_value("name", fields.clean_name, required=True)
        field_value("name_kana", fields.clean_kana, required=True)
        field_value("birth_date", lambda t: japanese.parse_birth_date(t, self.today),
                    required=True)
        field_value("postal_code", japanese.parse_postal_code)
        field_value("address", lambda t: fields.clean_text(_full_kana(t), fields.ADDRESS_MAX))
        field_value("shipment_number", japanese.parse_shipment_number)
        field_value("manufacture_number", japanese.parse_manufacture_number)
        field_value("notice_number", notice_numbers.parse)
        defaults = self.mapping.defaults
        field_value("has_sign_cert", self.flag, default=bool(defaults.get("has_sign_cert", True)))
        field_value("has_auth_cert", self.flag, default=bool(defaults.get("has_auth_cert", True)))
        field_value("visit_mode", self.visit_mode, default=defaults.get("visit_mode", "K"))
        default_state = defaults.get("state")
        field_value("state", self.state, required=default_state is None,
                    default=default_state)
        field_value("storage_place", self.place, default=defaults.get("storage_place"))
        for name in ("received_on", "notice_sent_on", "handed_over_on"):
            field_value(name, self.past_date)
        field_value("card_expires_on", japanese.parse_date)
        field_value("notes", lambda t: fields.clean_text(_full_kana(t), fields.NOTE_MAX,
                                                         multiline=True))
        if not problems:
            # the dates in their order: born, delivered, notice sent, handed over
            for earlier, later in DATE_ORDER:
                if out.get(earlier) and out.get(later) and out[later] < out[earlier]:
                    problems.append(Problem(
                        line, self.labels.get(later, str(FIELD_LABELS[later])),
                        self.raw(values, later),
                        _("%(later)s (%(later_date)s) is before %(earlier)s "
                          "(%(earlier_date)s).",
                          later=self.labels.get(later, str(FIELD_LABELS[later])),
                          later_date=self.raw(values, later),
                          earlier=self.labels.get(earlier, str(FIELD_LABELS[earlier])),
                          earlier_date=self.raw(values, earlier))))
        if not problems and out["state"] in DATE_REQUIRED:
            # the card's lifecycle stamps this state with its day: never invent it
            name = DATE_REQUIRED[out["state"]]
            if not out.get(name):
                problems.append(Problem(
                    line, self.labels.get(name, str(FIELD_LABELS[name])),
                    self.raw(values, name),
                    _("A card that is %(state)s needs its %(column)s.",
                      state=state_label(out["state"]),
                      column=self.labels.get(name, str(FIELD_LABELS[name])))))
        if not problems and out["state"] and out["visit_mode"]:
            chart = cards.CHARTS[out["visit_mode"]]
            if out["state"] not in chart:
                problems.append(Problem(
                    line, self.labels.get("state", str(FIELD_LABELS["state"])),
                    self.raw(values, "state"),
                    _("A card of the visit mode %(mode)s cannot be %(state)s.",
                      mode=visit_mode_label(out["visit_mode"]),
                      state=state_label(out["state"]))))
        return (None if problems else out), problems

    def flag(self, text: str) -> bool:
        key = header_key(text)
        if key in self.mapping.true_words:
            return True
        if key in self.mapping.false_words:
            return False
        raise InputError(_l("Write yes or no (有/無, ○/×, 1/0, あり/なし)."))

    def visit_mode(self, text: str) -> str:
        mode = self.mapping.visit_modes.get(header_key(text))
        if mode is None:
            raise InputError(_l("Unknown visit mode. Write K (交付時来庁) or S (申請時来庁), or "
                                "add the word to [visit_modes] in a mapping file."))
        return mode

    def state(self, text: str) -> str:
        key = header_key(text)
        state = self.mapping.states.get(key)
        if state is None:
            if key in (header_key(RESERVED), header_key(_("Reserved"))) or \
                    key == header_key(state_label(RESERVED)):
                raise InputError(_l("Cards with a booking cannot be imported as booked: "
                                    "import them as notice sent and book the visit on the "
                                    "booking screen."))
            raise InputError(_l("Unknown state word. Add it to [states] in a mapping file "
                                "with the state it means."))
        if state == RESERVED:
            raise InputError(_l("Cards with a booking cannot be imported as booked: "
                                "import them as notice sent and book the visit on the "
                                "booking screen."))
        return state

    def place(self, text: str) -> str:
        value = "".join(unicodedata.normalize("NFKC", text).split())
        fields.refuse_controls(value)
        if len(value) > PLACE_CODE_MAX:
            raise InputError(_l("Enter at most %(n)d characters (you entered %(given)d).",
                                n=PLACE_CODE_MAX, given=len(value)))
        return value

    def past_date(self, text: str) -> date:
        value = japanese.parse_date(text)
        if value > self.today:
            raise InputError(_l("This date is in the future."))
        if value.year < 1868:
            raise InputError(_l("This date does not exist."))
        return value


def _full_kana(text: str) -> str:
    return jaconv.h2z(text or "", kana=True, ascii=False, digit=False)


def _midnight(day: date | None) -> datetime | None:
    return None if day is None else datetime.combine(day, time(0), tzinfo=JST)


# --- the import ---------------------------------------------------------------------------------

Progress = Callable[[int, int, int], None]  # (done, total, rows written)


def _noop(done: int, total: int, written: int) -> None:
    return None


def import_ledger(session, path: str, *, file_name: str | None = None,
                  mapping: Mapping | None = None, dry_run: bool = False,
                  skip_invalid: bool = False, update: bool = False,
                  actor: cards.CardActor = cards.SYSTEM, now: datetime | None = None,
                  progress: Progress = _noop, rejects_path: str | None = None,
                  preview_rows: int = PREVIEW_ROWS,
                  audit_actor: audit.Actor | None = None) -> ImportReport:
    """Check every row of the file and, unless ``dry_run``, load it in one transaction.
    Returns the report; ``report.written`` says whether anything was committed. Without
    ``skip_invalid`` one bad row means nothing is written; with it the bad rows are
    written to ``rejects_path`` (the file's columns and a 理由 column, UTF-8 with BOM).
    Raises ImportFileError when the file as a whole cannot be read."""
    check_may_import(actor)
    if unit.in_transaction(session):  # its all-or-nothing needs a unit of its own
        raise RuntimeError("import_ledger runs as its own unit of work, not inside another")
    mapping = mapping or load_mapping()
    now = now or clock.now()
    today = clock.to_jst(now).date()
    report = ImportReport(file_name=file_name or os.path.basename(path),
                          sha256=file_sha256(path), dry_run=dry_run)
    source = open_source(path, mapping)
    try:
        report.encoding = source.encoding
        checker = _header(source, mapping, report, today)
        job = _Writer(session, report, checker, mapping, source, actor=actor, now=now,
                      dry_run=dry_run, skip_invalid=skip_invalid, update=update,
                      progress=progress, preview_rows=preview_rows)
        try:
            with unit.transaction(session):
                job.run()
                if dry_run or (report.problems and not skip_invalid):
                    raise _Rollback()
                if report.created or report.updated:
                    job.finish()
                    audit.record_in_transaction(
                        session, audit.ACTION_IMPORT, "card", None, report.counts(),
                        actor=audit_actor)
                report.written = bool(report.created or report.updated)
        except _Rollback:
            report.written = False
    finally:
        source.close()
    if skip_invalid and rejects_path and job.rejected_rows:
        _write_rejects(rejects_path, source.header, job.rejected_rows)
        report.rejects_file = rejects_path
    return report


IMPORT_ROLES = ("ROLE_MANAGER",)  # docs/roles.md: 既存データ取込


def may_import(actor: cards.CardActor) -> bool:
    return actors.has_role(actor, IMPORT_ROLES)


def check_may_import(actor: cards.CardActor) -> None:
    actors.check_roles(actor, IMPORT_ROLES, _l(
        "Your role does not allow importing existing data. Only %(roles)s may do this.",
        roles="、".join(actors.role_names(IMPORT_ROLES))))


def _header(source: Source, mapping: Mapping, report: ImportReport, today: date) -> _RowChecker:
    index: dict[str, int] = {}
    labels: dict[str, str] = {}
    for position, header in enumerate(source.header):
        key = header_key(header)
        if not key:
            continue
        name = mapping.columns.get(key)
        if name is None:
            report.unknown_columns.append(header)
            continue
        if name == "":
            continue
        if name in index:
            raise ImportFileError(_l("Two columns mean the same field %(field)s: %(a)s and "
                                     "%(b)s. Leave one out in a mapping file.",
                                     field=str(FIELD_LABELS[name]), a=labels[name],
                                     b=header))
        index[name] = position
        labels[name] = header
        report.columns[header] = name
    missing = [str(FIELD_LABELS[name]) for name in REQUIRED if name not in index]
    if missing:
        raise ImportFileError(_l("The file has no column for %(fields)s (header on line "
                                 "%(line)d). Name the columns in a mapping file.",
                                 fields="、".join(missing), line=source.header_line))
    return _RowChecker(mapping, index, labels, today)


def _write_rejects(path: str, header: list[str], rows: list[tuple[list[str], str]]) -> None:
    from app.services.spreadsheet import csv_writer

    width = len(header)
    with open(path, "w", encoding="utf-8-sig", newline="") as handle:
        writer = csv_writer(handle)
        writer.writerow(list(header) + [_("Reason")])
        for values, reason in rows:
            values = (list(values) + [""] * width)[:max(width, len(values))]
            writer.writerow(values + [reason])


def _among(session, column, values: list[str]):
    """``column IN (values)``; on PostgreSQL ``column = ANY(:array)``, one parameter instead
    of thousands (the driver parses each placeholder of a long IN list)."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(String)))
    return column.in_(values)


class _Writer:
    """Checks the rows chunk by chunk against the file so far and the ledger, and writes
    the good ones into the caller's transaction."""

    def __init__(self, session, report: ImportReport, checker: _RowChecker, mapping: Mapping,
                 source: Source, *, actor, now: datetime, dry_run: bool, skip_invalid: bool,
                 update: bool, progress: Progress, preview_rows: int):
        self.session = session
        self.report = report
        self.checker = checker
        self.mapping = mapping
        self.source = source
        self.username = cards.name_of(actor)
        self.now = now
        self.dry_run = dry_run
        self.skip_invalid = skip_invalid
        self.update = update
        self.progress = progress
        self.preview_rows = preview_rows
        self.note = f"既存データ取込 {report.file_name} sha256:{report.sha256}"[
            :cards.EVENT_NOTE_MAX]
        self.seen_ids: dict[str, int] = {}
        self.seen_manufacture: dict[str, int] = {}
        self.seen_notice: dict[str, int] = {}
        self.places: dict[str, int] = {}
        self.new_places: dict[str, int] = {}  # code -> id, made by this import
        self.held: dict[int, int] = {}  # place id -> new cards put there
        self.ledger_was_empty = session.execute(select(Card.id).limit(1)).first() is None
        self.postgresql = session.get_bind().dialect.name == "postgresql"
        self.rejected_rows: list[tuple[list[str], str]] = []
        self.card_table = Card.__table__
        self.event_table = CardEvent.__table__
        self.place_table = StoragePlace.__table__

    @property
    def writing(self) -> bool:
        return not self.dry_run and (self.skip_invalid or not self.report.problems)

    def run(self) -> None:
        chunk: list[tuple[int, list[str]]] = []
        for line, values in self.source.rows:
            if not any(v.strip() for v in values):
                continue  # blank lines, trailing empty rows
            if any(v[:1] == "'" for v in values):
                values = [_unguarded(v) for v in values]
            chunk.append((line, values))
            if len(chunk) >= CHUNK:
                self._chunk(chunk)
                chunk = []
        if chunk:
            self._chunk(chunk)
        done, total = self.source.position()
        self.progress(total, total, self.report.created + self.report.updated)

    # one chunk: check, compare, write
    def _chunk(self, chunk: list[tuple[int, list[str]]]) -> None:
        report = self.report
        good: list[tuple[int, list[str], dict]] = []
        for line, values in chunk:
            report.rows += 1
            row, problems = self.checker.check(line, values)
            if row is not None:
                problems = self._duplicates(line, values, row)
            if len(report.preview) < self.preview_rows:
                report.preview.append(self._preview(line, values, row))
            if problems:
                self._reject(values, problems)
            else:
                good.append((line, values, row))
        good = self._against_ledger(good)
        if self.writing and good:
            self._write(good)
        elif good:  # what a real import would create
            for code in sorted({r["storage_place"] for _l_, _v, r in good
                                if r.get("storage_place")
                                and r["state"] not in cards.LEAVES_THE_OFFICE}
                               - set(self.places) - set(self.report.places_created)):
                self.report.places_created.append(code)
        done, total = self.source.position()
        self.progress(done, total, report.created + report.updated)

    def _preview(self, line: int, values: list[str], row: dict | None) -> dict[str, str]:
        shown = {"line": str(line)}
        for name in self.checker.index:
            value = row.get(name) if row else None
            if value is None:
                shown[name] = self.checker.raw(values, name)
            elif isinstance(value, bool):
                shown[name] = _("Yes") if value else _("No")
            elif name == "state":
                shown[name] = state_label(value)
            else:
                shown[name] = str(value)
        return shown

    def _reject(self, values: list[str], problems: list[Problem]) -> None:
        self.report.problems.extend(problems)
        self.report.rejected += 1
        self.rejected_rows.append((values, " / ".join(
            f"{p.column}: {p.reason}" for p in problems)))

    def _duplicates(self, line: int, values: list[str], row: dict) -> list[Problem]:
        problems = []
        labels = self.checker.labels
        for name, seen in (("application_id", self.seen_ids),
                           ("manufacture_number", self.seen_manufacture),
                           ("notice_number", self.seen_notice)):
            value = row.get(name)
            if not value:
                continue
            if value in seen:
                problems.append(Problem(line, labels[name], self.checker.raw(values, name),
                                        _("The same value is on line %(line)d of this file.",
                                          line=seen[value])))
            else:
                seen[value] = line
        return problems

    def _against_ledger(self, good: list[tuple[int, list[str], dict]]):
        """Rows whose card exists: unchanged (skipped), different (reported; kept for an
        update), or in conflict (a number used by another card)."""
        if not good:
            return good
        session = self.session
        ids = [row["application_id"] for _l_, _v, row in good]
        columns = [Card.id] + [getattr(Card, c) for c in set(COMPARED.values())] + \
            [Card.application_id, Card.held_from]
        existing: dict = {}
        numbers: dict[tuple[str, str], str] = {}
        if not self.ledger_was_empty:  # else only this file's rows, checked as duplicates
            existing = {r.application_id: r for r in session.execute(
                select(*columns).where(_among(session, Card.application_id, ids))).all()}
            for name in ("manufacture_number", "notice_number"):
                wanted = [row[name] for _l_, _v, row in good if row.get(name)]
                if wanted:
                    column = getattr(Card, name)
                    numbers.update({(name, value): owner for value, owner in session.execute(
                        select(column, Card.application_id).where(
                            _among(session, column, wanted))).all()})
        self._resolve_places([row for _l_, _v, row in good])
        kept = []
        for line, values, row in good:
            problems = []
            for name in ("manufacture_number", "notice_number"):
                owner = numbers.get((name, row.get(name)))
                if row.get(name) and owner and owner != row["application_id"]:
                    problems.append(Problem(
                        line, self.checker.labels[name], self.checker.raw(values, name),
                        _("This number belongs to another card in the ledger (application "
                          "ID %(other)s).", other=owner)))
            if problems:
                self._reject(values, problems)
                continue
            card = existing.get(row["application_id"])
            if card is None:
                kept.append((line, values, row))
                continue
            changes = self._differences(card, row)
            if not changes:
                self.report.unchanged += 1
                continue
            described = "、".join(f"{self._label(n)}: {self._show(old)} → {self._show(new)}"
                                 for n, (old, new) in changes.items())
            difference = Problem(line, self.checker.labels["application_id"],
                                 row["application_id"],
                                 _("Differs from the card in the ledger: %(changes)s",
                                   changes=described))
            self.report.differences.append(difference)
            if RESERVED in (card.state, card.held_from) and "state" in changes:
                self._reject(values, [Problem(
                    line, self._label("state"), self.checker.raw(values, "state"),
                    _("This card has a booking: its state is not changed by an import. "
                      "Cancel or complete the booking first."))])
                continue
            if "state" in changes and changes["state"][1] not in cards.CHARTS.get(
                    card.visit_mode, {}).get(card.state, ()):
                self._reject(values, [Problem(
                    line, self._label("state"), self.checker.raw(values, "state"),
                    _("A card that is %(old)s cannot become %(new)s: an import changes a "
                      "state only as the card's own steps allow.",
                      old=state_label(card.state), new=state_label(changes["state"][1])))])
                continue
            if not self.update:
                self.report.problems.append(Problem(
                    line, difference.column, difference.value,
                    _("Differs from the card in the ledger: %(changes)s. Nothing is changed "
                      "unless you choose to update existing cards.", changes=described)))
                self.report.rejected += 1
                self.rejected_rows.append((values, self.report.problems[-1].reason))
                continue
            row["_existing"] = card
            row["_changes"] = changes
            kept.append((line, values, row))
        return kept

    def _label(self, name: str) -> str:
        return self.checker.labels.get(name) or str(FIELD_LABELS.get(name, name))

    @staticmethod
    def _show(value: Any) -> str:
        if value is None or value == "":
            return _("(empty)")
        if isinstance(value, bool):
            return _("Yes") if value else _("No")
        if isinstance(value, datetime):
            return clock.to_jst(value).date().isoformat()
        if isinstance(value, str) and value in STATE_LABELS:
            return state_label(value)
        return str(value)

    def _place_id(self, code: str | None) -> int | None:
        return None if not code else self.places.get(code)

    def _differences(self, card, row: dict) -> dict[str, tuple[Any, Any]]:
        changes = {}
        for name, column in COMPARED.items():
            if name not in self.checker.index and name != "state":
                continue
            new = row.get(name)
            old = getattr(card, column)
            if name == "storage_place":
                if row.get("state") in cards.LEAVES_THE_OFFICE or not new:
                    continue
                old_code = self._place_code(old)
                if old_code != new:
                    changes[name] = (old_code, new)
                continue
            if name in DATE_STAMPS:
                old = clock.to_jst(old).date() if old is not None else None
            if (old if old != "" else None) != (new if new != "" else None):
                changes[name] = (old, new)
        return changes

    def _place_code(self, place_id: int | None) -> str | None:
        if place_id is None:
            return None
        for code, known in self.places.items():
            if known == place_id:
                return code
        code = self.session.execute(select(StoragePlace.code).where(
            StoragePlace.id == place_id)).scalar()
        if code:
            self.places[code] = place_id
        return code

    def _resolve_places(self, rows: list[dict]) -> None:
        wanted = {r["storage_place"] for r in rows if r.get("storage_place")} - set(self.places)
        if not wanted:
            return
        self.places.update(dict(self.session.execute(
            select(StoragePlace.code, StoragePlace.id).where(
                _among(self.session, StoragePlace.code, sorted(wanted)))).all()))

    def _ensure_places(self, rows: list[dict]) -> None:
        missing = sorted({r["storage_place"] for r in rows if r.get("storage_place")}
                         - set(self.places))
        if not missing:
            return
        note = _("Created by the import of %(file)s", file=self.report.file_name)[:200]
        made = self.session.execute(
            insert(self.place_table).returning(self.place_table.c.id, self.place_table.c.code,
                                               sort_by_parameter_order=True),
            [{"code": code, "capacity": DEFAULT_CAPACITY, "sort_key": 0, "active": True,
              "note": note} for code in missing]).all()
        for place_id, code in made:
            self.places[code] = place_id
            self.new_places[code] = place_id
            self.report.places_created.append(code)

    def _card_values(self, row: dict) -> dict[str, Any]:
        state = row["state"]
        in_office = state not in cards.LEAVES_THE_OFFICE
        values = {
            "application_id": row["application_id"], "name": row["name"],
            "name_kana": row["name_kana"], "birth_date": row["birth_date"],
            "postal_code": row.get("postal_code"), "address": row.get("address"),
            "shipment_number": row.get("shipment_number"),
            "manufacture_number": row.get("manufacture_number"),
            "notice_number": row.get("notice_number"),
            "has_sign_cert": row["has_sign_cert"], "has_auth_cert": row["has_auth_cert"],
            "visit_mode": row["visit_mode"], "state": state, "held_from": None,
            "storage_place_id": self._place_id(row.get("storage_place")) if in_office
            else None,
            "card_expires_on": row.get("card_expires_on"), "notes": row.get("notes"),
            "discard_hold": False,
        }
        for name, column in DATE_STAMPS.items():
            values[column] = _midnight(row.get(name))
        if values["received_at"] is None:
            values["received_at"] = self.now
        return values

    def _event_at(self, row: dict) -> datetime:
        """When the card reached its state, as far as the file says (the history and the
        statistics read the state changes by day); else the time of the import."""
        state = row["state"]
        for name, column in DATE_STAMPS.items():
            if cards.STAMPS.get(state) == column and row.get(name):
                return _midnight(row[name])
        return self.now

    def _write(self, good: list[tuple[int, list[str], dict]]) -> None:
        session = self.session
        rows = [row for _l_, _v, row in good]
        self._ensure_places([r for r in rows if r["state"] not in cards.LEAVES_THE_OFFICE])
        new = [r for r in rows if "_existing" not in r]
        if new:
            values = [self._card_values(r) for r in new]
            # plain executemany (no RETURNING: SQLite would then insert row by row;
            # psycopg pipelines it), then the new ids by 申請書ID, one query a chunk
            self._insert(self.card_table, values)
            ids = dict(session.execute(select(Card.application_id, Card.id).where(_among(
                session, Card.application_id, [v["application_id"] for v in values]))).all())
            made = [ids[v["application_id"]] for v in values]
            self._insert(self.event_table, [
                {"card_id": card_id, "from_state": None, "to_state": v["state"],
                 "at": self._event_at(r), "username": self.username, "note": self.note,
                 "storage_place_id": v["storage_place_id"]}
                for card_id, v, r in zip(made, values, new)])
            self.report.created += len(made)
            for v in values:
                if v["storage_place_id"] is not None:
                    self.held[v["storage_place_id"]] = self.held.get(v["storage_place_id"], 0) + 1
        for row in rows:
            if "_existing" in row:
                self._update(row)

    def _insert(self, table, rows: list[dict]) -> None:
        """Many rows into ``table`` in the caller's transaction: COPY on PostgreSQL (several
        times faster than INSERTs, triggers and constraints apply alike), a DBAPI
        executemany elsewhere."""
        if not rows:
            return
        if self.postgresql:
            columns = list(rows[0])
            connection = self.session.connection().connection.driver_connection
            with connection.cursor() as cursor:
                with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") \
                        as copy:
                    for row in rows:
                        copy.write_row([row[c] for c in columns])
            return
        self.session.execute(insert(table), rows)

    def _update(self, row: dict) -> None:
        card = row["_existing"]
        values = self._card_values(row)
        changes = {COMPARED[n] for n in row["_changes"]}
        if "storage_place" in row["_changes"] or values["state"] in cards.LEAVES_THE_OFFICE:
            changes.add("storage_place_id")
        values = {column: values[column] for column in changes}
        if "state" in values:
            values["held_from"] = None
        changed = self.session.execute(
            update(self.card_table).where(self.card_table.c.id == card.id,
                                          self.card_table.c.state == card.state)
            .values(**values)).rowcount
        if changed != 1:
            raise InputError(_l("A card of the file was changed by someone else during the "
                                "import. Nothing was imported; try again."))
        self.session.execute(insert(self.event_table).values(
            card_id=card.id, from_state=card.state, to_state=row["state"],
            at=self.now, username=self.username, note=self.note,
            storage_place_id=values.get("storage_place_id", card.storage_place_id)))
        self.report.updated += 1

    def finish(self) -> None:
        """New places hold what the file put there: their capacity is at least that."""
        made = set(self.new_places.values())
        for place_id, held in self.held.items():
            if held > DEFAULT_CAPACITY and place_id in made:
                self.session.execute(update(self.place_table).where(
                    self.place_table.c.id == place_id).values(capacity=held))


# --- the screen's background jobs ----------------------------------------------------------
#
# A 300,000-row file takes minutes: the screen never reads or writes it inside a request.
# The job is a row of ``ledger_import_job`` (its state, and what the check found as JSON);
# the uploaded file and the reports are in the shared file store (app/services/
# file_store.py, kind "ledger_import"), so any app server shows the job, serves the reports
# and may start the import. A thread of the server checks the file (a dry run: the preview
# and the validation report) on a local copy, then, when the 管理者 chooses the options and
# starts the import (a compare-and-set checked → importing: a double click, or two
# servers, start it once), imports it. The page polls the status (same origin). The
# uploaded file is removed when the import has ended; jobs older than JOB_KEEP_HOURS are
# removed when the next file is uploaded and by the worker's housekeeping. A job whose
# status has not moved for JOB_STALE_MINUTES (its process died) is shown as failed; its
# import, if any, was never committed (one transaction).
#
# Progress while the file is read: on PostgreSQL written to the row (a short transaction of
# its own); on SQLite, where that write would wait for the import's own transaction, kept
# in this process only (_LIVE) and written when the step ends.

JOB_CHECKING, JOB_CHECKED, JOB_IMPORTING, JOB_DONE, JOB_FAILED = (
    "checking", "checked", "importing", "done", "failed")
JOB_LABELS = {
    JOB_CHECKING: _l("Checking the file"),
    JOB_CHECKED: _l("Checked: choose the options and import"),
    JOB_IMPORTING: _l("Importing"),
    JOB_DONE: _l("Finished"),
    JOB_FAILED: _l("Failed"),
}
UPLOAD_MAX_BYTES = 100 * 1024 * 1024  # below MAX_CONTENT_LENGTH (config.py)
UPLOAD_EXTENSIONS = (".csv", ".txt", ".xlsx")
MAPPING_MAX_BYTES = 64 * 1024
JOB_KEEP_HOURS = 24
JOB_STALE_MINUTES = 10
PROBLEMS_SHOWN = 100
STORE_KIND = "ledger_import"  # stored_file.kind of the uploads and reports
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{20,64}")
_ROW_KEYS = ("token", "owner", "state", "created_at", "heartbeat_at")
_LIVE: dict[str, dict] = {}  # token → progress of a step running in this process
_RUNNING = (JOB_CHECKING, JOB_IMPORTING)


def _app_session():
    from app.extensions import session as app_session

    return app_session()


def scratch_folder() -> str:
    """instance/ledger-imports/: this server's scratch space while a file is checked or
    imported (a local copy of the upload, the reports being written)."""
    from flask import current_app

    folder = os.path.join(current_app.instance_path, "ledger-imports")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    return folder


def _file_token(token: str, which: str) -> str:
    """The stored file of a job: ``upload``, ``problems`` or ``rejects``."""
    return f"{token}.{which}"


def _status_of(row: LedgerImportJob) -> dict:
    status = _json.loads(row.status or "{}")
    status.update(token=row.token, owner=row.owner, state=row.state,
                  created_at=row.created_at.isoformat(),
                  heartbeat_at=row.heartbeat_at.isoformat())
    live = _LIVE.get(row.token)
    if live and row.state in _RUNNING:
        status.update(live)
    return status


def _read_status(token: str, session=None) -> dict | None:
    if not isinstance(token, str) or not _TOKEN_RE.fullmatch(token):
        return None
    session = session if session is not None else _app_session()
    row = session.execute(select(LedgerImportJob).where(LedgerImportJob.token == token)
                          ).scalar_one_or_none()
    return None if row is None else _status_of(row)


def _values(status: dict) -> dict:
    return dict(state=status["state"],
                heartbeat_at=datetime.fromisoformat(str(status["heartbeat_at"])),
                status=_json.dumps({k: v for k, v in status.items() if k not in _ROW_KEYS},
                                   ensure_ascii=False, default=str))


def _write_status(session, status: dict, from_states: tuple[str, ...]) -> bool:
    """Compare-and-set of the job's row: True when it was in one of ``from_states``."""
    with unit.transaction(session):
        return session.execute(
            update(LedgerImportJob).where(LedgerImportJob.token == status["token"],
                                          LedgerImportJob.state.in_(from_states))
            .values(**_values(status)).execution_options(synchronize_session=False)
        ).rowcount == 1


def get_job(token: str | None, actor: cards.CardActor) -> dict | None:
    """The person's own job (another person's is not found). Reads only."""
    status = _read_status(token or "")
    if status is None or status.get("owner") != actor.username or not may_import(actor):
        return None
    return status


def effective_state(status: dict, now: datetime | None = None) -> str:
    state = status["state"]
    if state in _RUNNING:
        beat = datetime.fromisoformat(str(status["heartbeat_at"]))
        if beat < (now or clock.now()) - _timedelta(minutes=JOB_STALE_MINUTES):
            return JOB_FAILED
    return state


def job_progress(status: dict, now: datetime | None = None) -> dict:
    """What the page polls (the shape static/extraction_job.js reads)."""
    state = effective_state(status, now)
    finished = state not in _RUNNING
    done, total = status.get("done", 0), max(status.get("total", 0), 1)
    percent = 100 if finished else min(99, int(done * 100 / total))
    error = status.get("error")
    if state == JOB_FAILED and not error:
        error = _("The job stopped without finishing (the server was restarted or the "
                  "process ended). Nothing was imported; upload the file again.")
    return {"state": state, "label": str(JOB_LABELS[state]), "percent": percent,
            "rows_written": status.get("rows", 0), "rows_total": status.get("rows", 0),
            "finished": finished, "error": error}


def _remove_job(session, token: str) -> None:
    for which in ("upload", "problems", "rejects"):
        file_store.delete_token(session, _file_token(token, which), STORE_KIND)
    session.execute(delete(LedgerImportJob).where(LedgerImportJob.token == token)
                    .execution_options(synchronize_session=False))


def purge_jobs(now: datetime | None = None, session=None) -> int:
    """Remove jobs older than JOB_KEEP_HOURS (their uploads and reports) but those still
    running, and stored files whose job is gone. One unit; returns the jobs removed."""
    stamp = now or clock.now()
    limit = stamp - _timedelta(hours=JOB_KEEP_HOURS)
    session = session if session is not None else _app_session()
    removed = 0
    with unit.transaction(session):
        old = session.execute(select(LedgerImportJob).where(
            LedgerImportJob.created_at < limit)).scalars().all()
        for row in old:
            status = _status_of(row)
            if row.state in _RUNNING and effective_state(status, stamp) != JOB_FAILED:
                continue
            _remove_job(session, row.token)
            removed += 1
        live = set(session.execute(select(LedgerImportJob.token)).scalars())
        keep = {_file_token(t, w) for t in live for w in ("upload", "problems", "rejects")}
        file_store.purge(session, kind=STORE_KIND, older_than=limit, keep_tokens=keep)
    folder = scratch_folder()  # what a process that died while checking or importing left
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        with contextlib_suppress(FileNotFoundError):
            # the files' own age (wall clock): a job running here is younger than this
            if _time.time() - os.path.getmtime(path) > JOB_KEEP_HOURS * 3600:
                _shutil.rmtree(path, ignore_errors=True)
                removed += 1
    return removed


class _Limited:
    """The uploaded stream, refused past UPLOAD_MAX_BYTES while it is stored."""

    def __init__(self, stream):
        self.stream, self.size = stream, 0

    def read(self, size: int = -1) -> bytes:
        block = self.stream.read(size)
        self.size += len(block)
        if self.size > UPLOAD_MAX_BYTES:
            raise InputError(_l("The file is larger than %(mb)d MB. Split it and import "
                                "the parts one after the other.",
                                mb=UPLOAD_MAX_BYTES // (1024 * 1024)))
        return block


def start_check(stream, filename: str, *, actor: cards.CardActor,
                mapping_text: str | None = None, now: datetime | None = None) -> dict:
    """Keep an uploaded file and queue its check (a dry run): the role, the kind of file,
    its size and the mapping file are checked here, in the request. One unit: the job and
    its file are kept together or not at all."""
    check_may_import(actor)
    name = os.path.basename((filename or "").replace("\\", "/")).strip()
    extension = os.path.splitext(name)[1].lower()
    if not name:
        raise InputError(_l("Choose the file to import."))
    if extension not in UPLOAD_EXTENSIONS:
        raise InputError(_l("Choose a CSV or XLSX file."))
    if mapping_text is not None:
        if len(mapping_text.encode("utf-8")) > MAPPING_MAX_BYTES:
            raise InputError(_l("The mapping file is too large."))
        load_mapping(text=mapping_text)  # refused here with its message
    stamp = now or clock.now()
    purge_jobs(stamp)
    token = _secrets.token_urlsafe(24)
    status = {"token": token, "owner": actor.username, "file_name": name[:200],
              "extension": extension, "mapping": mapping_text, "state": JOB_CHECKING,
              "created_at": stamp.isoformat(), "heartbeat_at": stamp.isoformat(),
              "done": 0, "total": 1, "rows": 0}
    session = _app_session()
    with unit.transaction(session):
        stored = file_store.put(session, _Limited(stream), kind=STORE_KIND,
                                token=_file_token(token, "upload"), owner=actor.username,
                                filename=name[:200], now=stamp)
        if stored.size == 0:
            raise InputError(_l("The file is empty."))
        session.add(LedgerImportJob(token=token, owner=actor.username, created_at=stamp,
                                    **_values(status)))
    return status


def start_import(token: str | None, *, actor: cards.CardActor, skip_invalid: bool,
                 update: bool, now: datetime | None = None) -> dict:
    """Queue the import of a checked file with the chosen options (compare-and-set on the
    job's state, so a double click, or two servers, start it once)."""
    check_may_import(actor)
    refused = _l("This file was already imported or is not checked yet.")
    status = get_job(token, actor)
    if status is None:
        raise InputError(_l("This import does not exist or is not yours."))
    session = _app_session()
    if status["state"] != JOB_CHECKED or file_store.find(
            session, _file_token(status["token"], "upload"), STORE_KIND) is None:
        raise InputError(refused)
    stamp = (now or clock.now()).isoformat()
    status.update(state=JOB_IMPORTING, skip_invalid=bool(skip_invalid),
                  update=bool(update), heartbeat_at=stamp, done=0, error=None)
    if not _write_status(session, status, (JOB_CHECKED,)):
        raise InputError(refused)
    return status


def launch(app, status: dict, *, actor: cards.CardActor) -> _threading.Thread | None:
    """Run the job's next step in a thread of this server (or at once, when
    EXPORT_JOBS_INLINE is set, as the tests do)."""
    from app.settings import settings as app_settings

    engine = _app_session().get_bind()
    audit_actor = audit.current_actor()
    args = (app, engine, status["token"], actor, audit_actor)
    if app_settings().export_jobs_inline:
        run_job(*args)
        return None
    thread = _threading.Thread(target=run_job, args=args, daemon=True,
                               name=f"ledger-import-{status['token'][:8]}")
    thread.start()
    return thread


def run_job(app, engine, token: str, actor: cards.CardActor,
            audit_actor: audit.Actor | None) -> None:
    """Check or import (by the job's state), with an app context and sessions of its own
    (one for the import, one for the job's row and files). Never raises: the job ends
    checked, done or failed."""
    from sqlalchemy.orm import Session as OrmSession

    with app.app_context(), app.test_request_context("/"):
        session = OrmSession(bind=engine)
        jobs = OrmSession(bind=engine)
        try:
            _run_job(session, jobs, token, actor, audit_actor)
        except Exception as error:  # noqa: BLE001 - the job must end in a state
            session.rollback()
            jobs.rollback()
            status = _read_status(token, jobs) or {}
            jobs.rollback()
            if status:
                status.update(state=JOB_FAILED, heartbeat_at=clock.now().isoformat(),
                              error=str(error.message)
                              if isinstance(error, DomainError) else
                              _("The import stopped because of an error on the server. "
                                "Nothing was imported. Tell the system administrator."))
                _write_status(jobs, status, _RUNNING)
            if not isinstance(error, DomainError):
                app.logger.exception("ledger import job %s failed", token)
        finally:
            _LIVE.pop(token, None)
            session.close()
            jobs.close()


def _run_job(session, jobs, token: str, actor, audit_actor) -> None:
    status = _read_status(token, jobs)
    jobs.rollback()
    if status is None or status["state"] not in _RUNNING:
        return
    checking = status["state"] == JOB_CHECKING
    step = status["state"]
    write_progress = jobs.get_bind().dialect.name != "sqlite"
    last = {"at": 0.0}

    def progress(done: int, total: int, written: int) -> None:
        if _time.monotonic() - last["at"] < 1.0:
            return
        last["at"] = _time.monotonic()
        beat = clock.now().isoformat()
        _LIVE[token] = {"done": done, "total": total, "heartbeat_at": beat}
        if write_progress:
            status.update(done=done, total=total, heartbeat_at=beat)
            _write_status(jobs, status, (step,))

    folder = tempfile.mkdtemp(prefix=f"{token}.", dir=scratch_folder())
    try:
        upload = os.path.join(folder, "upload" + status["extension"])
        file_store.save_to(file_store.get(jobs, _file_token(token, "upload"), STORE_KIND),
                           upload)
        jobs.rollback()
        mapping = load_mapping(text=status.get("mapping"))
        rejects = os.path.join(folder, "rejects.csv")
        report = import_ledger(
            session, upload, file_name=status["file_name"], mapping=mapping,
            dry_run=checking, skip_invalid=bool(status.get("skip_invalid")),
            update=bool(status.get("update")), actor=actor, progress=progress,
            rejects_path=None if checking else rejects, audit_actor=audit_actor)
        problems = os.path.join(folder, "problems.csv")
        with open(problems, "w", encoding="utf-8-sig", newline="") as handle:
            write_problems(report, handle)
        status.update(
            state=JOB_CHECKED if checking else JOB_DONE,
            heartbeat_at=clock.now().isoformat(),
            done=1, total=1, rows=report.rows, created=report.created, updated=report.updated,
            unchanged=report.unchanged, rejected=report.rejected, written=report.written,
            encoding=report.encoding, sha256=report.sha256,
            places_created=report.places_created, unknown_columns=report.unknown_columns,
            columns=report.columns, differences=len(report.differences),
            problem_count=len(report.problems),
            problems=[p.as_row() for p in report.problems[:PROBLEMS_SHOWN]],
            preview=report.preview, rejects=bool(report.rejects_file))
        stem = os.path.splitext(status["file_name"])[0]
        with unit.transaction(jobs):
            file_store.delete_token(jobs, _file_token(token, "problems"), STORE_KIND)
            file_store.put(jobs, problems, kind=STORE_KIND,
                           token=_file_token(token, "problems"), owner=status["owner"],
                           filename=f"{stem}_problems.csv")
            if not checking and report.rejects_file and os.path.isfile(rejects):
                file_store.put(jobs, rejects, kind=STORE_KIND,
                               token=_file_token(token, "rejects"), owner=status["owner"],
                               filename=f"{stem}_rejects.csv")
            if not checking:
                file_store.delete_token(jobs, _file_token(token, "upload"), STORE_KIND)
            _write_status(jobs, status, (step,))
    finally:
        _shutil.rmtree(folder, ignore_errors=True)


def job_file(token: str | None, which: str, *, actor: cards.CardActor, session,
             encrypted: bool = False) -> tuple[file_store.Handle, str]:
    """The job's report (``problems``) or rejected rows (``rejects``) as (stored file,
    download name), for its owner, from any app server; audited as a download. Both hold
    personal data: a plain file is refused while the office requires encrypted exports
    (export_policy ``ledger_import_report``); ``encrypted``: the caller hands it out as an
    AES-256 ZIP."""
    check_may_import(actor)
    export_policy.require(session, "ledger_import_report", encrypted)
    status = get_job(token, actor)
    if status is None or which not in ("problems", "rejects"):
        raise InputError(_l("This import does not exist or is not yours."))
    stored = file_store.find(session, _file_token(status["token"], which), STORE_KIND)
    if stored is None:
        raise InputError(_l("This file is not there (any more)."))
    stem = os.path.splitext(status["file_name"])[0]
    name = f"{stem}_{'problems' if which == 'problems' else 'rejects'}.csv"
    handle = file_store.handle_of(session, stored)
    audit.record_event(audit.ACTION_DOWNLOAD, "card", None,
                       {"what": f"ledger_import_{which}", "file": status["file_name"],
                        "encrypted": encrypted})
    return handle, name


def discard_job(token: str | None, *, actor: cards.CardActor) -> None:
    """Remove a checked job's upload and reports without importing (compare-and-set: a job
    being checked or imported is refused)."""
    check_may_import(actor)
    status = get_job(token, actor)
    if status is None:
        raise InputError(_l("This import does not exist or is not yours."))
    busy = _l("The file is being checked or imported; wait until it has finished.")
    if status["state"] in _RUNNING:
        # also when it has not reported for a while: a slow import may still commit its
        # rows (its own transaction), so only the purge removes a job that stopped
        raise InputError(_l("The file is being checked or imported; wait until it has "
                            "finished. An import that stopped is removed by itself after "
                            "%(hours)d hours.", hours=JOB_KEEP_HOURS))
    session = _app_session()
    with unit.transaction(session):
        removed = session.execute(
            delete(LedgerImportJob).where(LedgerImportJob.token == status["token"],
                                          LedgerImportJob.state == status["state"],
                                          LedgerImportJob.heartbeat_at == datetime
                                          .fromisoformat(str(status["heartbeat_at"])))
            .execution_options(synchronize_session=False)).rowcount
        if removed != 1:
            raise InputError(busy)
        _remove_job(session, status["token"])


def jobs_of(actor: cards.CardActor, limit: int = 10) -> list[dict]:
    """The person's recent jobs, newest first. Reads only."""
    if not may_import(actor):
        return []
    rows = _app_session().execute(
        select(LedgerImportJob).where(LedgerImportJob.owner == actor.username)
        .order_by(LedgerImportJob.created_at.desc(), LedgerImportJob.id.desc())
        .limit(limit)).scalars()
    return [_status_of(row) for row in rows]


def header_synonyms() -> list[tuple[str, list[str]]]:
    """(our field's label, the headers understood for it) from the defaults file."""
    with open(DEFAULTS_FILE, encoding="utf-8") as handle:
        columns = tomllib.loads(handle.read())["columns"]
    return [(str(label), [h for h, f in columns.items() if f == name])
            for name, label in FIELD_LABELS.items()]


def choose_file_message():
    return _l("Choose the file to import.")


def mapping_text(raw: bytes) -> str:
    """An uploaded mapping file's text (UTF-8, with or without BOM)."""
    if len(raw) > MAPPING_MAX_BYTES:
        raise InputError(_l("The mapping file is too large."))
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(_l("Save the mapping file in UTF-8.")) from None
