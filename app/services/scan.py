"""Registering delivered cards from the QR codes of the card issuance list (F3.2, F3.3).

A batch collects scans (from a keyboard-wedge reader or scanned pages) on the server;
each payload is classified at once. Registration writes every valid row as a card in
state 納品 on its shelf, in one unit of work (app/services/unit.py), or writes nothing.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from app import clock
from app.models.card import VISIT_AT_APPLICATION, VISIT_AT_HANDOVER, Card
from app.models.scan import (BATCH_DISCARDED, BATCH_OPEN, BATCH_REGISTERED, ITEM_DUPLICATE,
                             ITEM_EXISTS, ITEM_INCOMPLETE, ITEM_INVALID, ITEM_OK, ScanBatch,
                             ScanItem)
from app.services import audit, cards, intake, unit
from app.services.cards import SYSTEM, CardActor
from app.services.errors import (BatchClosedError, InputError,  # noqa: F401
                                 RegistrationConflictError)
from app.services.qr_decode import decode_file
from app.services.qr_formats import ParsedCard, decode_bytes, parse_payload

STATUS_LABELS = {
    ITEM_OK: _l("OK"), ITEM_DUPLICATE: _l("Duplicate in this batch"),
    ITEM_EXISTS: _l("Already in the ledger"), ITEM_INVALID: _l("Invalid"),
    ITEM_INCOMPLETE: _l("No personal data"),
}


def status_label(status: str) -> str:
    return str(STATUS_LABELS.get(status, status))


@unit.operation
def open_batch(session, expected_count: int | None = None, *, actor: CardActor = SYSTEM,
               now: datetime | None = None) -> ScanBatch:
    batch = ScanBatch(created_at=now or clock.now(), created_by=cards.name_of(actor),
                      status=BATCH_OPEN, expected_count=expected_count)
    session.add(batch)
    return batch


def get_batch(session, batch_id: int | None) -> ScanBatch | None:
    return session.get(ScanBatch, batch_id) if batch_id else None


def get_item(session, batch_id: int, item_id: int | None) -> ScanItem | None:
    """A scan of the batch (None when the id is another batch's)."""
    item = session.get(ScanItem, item_id) if item_id else None
    return item if item is not None and item.batch_id == batch_id else None


def recent_batches(session, limit: int = 30) -> list[ScanBatch]:
    return list(session.execute(select(ScanBatch).order_by(ScanBatch.id.desc())
                                .limit(limit)).scalars())


def _personal_data_for(session, application_id: str) -> dict | None:
    """Personal data for a short-form code, from the application with the same 申請書ID
    (app/services/intake.py); None when no application was taken for it (or it was
    withdrawn): then staff enter the card by hand."""
    return intake.personal_data_for(session, application_id)


def _classify(session, batch: ScanBatch, payload: str | bytes, today: date,
              taken: set[str]) -> tuple[str, str | None, ParsedCard | None]:
    try:
        parsed = parse_payload(payload, today)
    except InputError as error:
        return ITEM_INVALID, str(error.message), None
    if parsed.application_id in taken:
        return ITEM_DUPLICATE, _("Scanned already in this batch."), parsed
    existing = session.execute(select(Card.id).where(
        (Card.application_id == parsed.application_id)
        | (Card.manufacture_number == parsed.manufacture_number))).first()
    if existing:
        return ITEM_EXISTS, _("This card is already in the ledger."), parsed
    if parsed.is_short:
        personal = _personal_data_for(session, parsed.application_id)
        if not personal:
            return (ITEM_INCOMPLETE, _("Short code without personal data, and no application "
                                       "with this ID: enter the card by hand."), parsed)
        parsed.personal = personal
    return ITEM_OK, None, parsed


def preview(session, payloads: list[tuple[str | bytes, str | None]]) -> list[dict]:
    """Classify payloads as a batch would, writing nothing (for --dry-run)."""
    taken: set[str] = set()
    today = clock.now().date()
    result = []
    for payload, source in payloads:
        status, reason, parsed = _classify(session, None, payload, today, taken)
        if parsed and status in (ITEM_OK, ITEM_INCOMPLETE, ITEM_EXISTS):
            taken.add(parsed.application_id)
        result.append({"source": source, "status": status, "reason": reason,
                       "application_id": parsed.application_id if parsed else None,
                       "visit_mode": parsed.visit_mode if parsed else None})
    return result


def _taken(batch: ScanBatch) -> set[str]:
    return {i.application_id for i in batch.items
            if i.application_id and i.status in (ITEM_OK, ITEM_INCOMPLETE, ITEM_EXISTS)}


@unit.operation
def add_payload(session, batch: ScanBatch, payload: str | bytes,
                source: str | None = None) -> ScanItem:
    """Classify one scan and keep it in the batch (one unit)."""
    if batch.status != BATCH_OPEN:
        raise BatchClosedError()
    text = payload if isinstance(payload, str) else _printable(payload)
    status, reason, parsed = _classify(session, batch, payload, clock.now().date(),
                                       _taken(batch))
    seq = (session.execute(select(func.max(ScanItem.seq)).where(ScanItem.batch_id == batch.id))
           .scalar() or 0) + 1
    item = ScanItem(batch=batch, seq=seq, payload=text[:4000], status=status, reason=reason,
                    application_id=parsed.application_id if parsed else None,
                    visit_mode=parsed.visit_mode if parsed else None,
                    fields=_fields_json(parsed) if parsed and status == ITEM_OK else None,
                    source=source)
    session.add(item)
    session.flush()
    return item


def _printable(data: bytes) -> str:
    try:
        return decode_bytes(data)
    except InputError:
        return data.decode("latin-1")


def _fields_json(parsed: ParsedCard) -> str:
    fields = {"application_id": parsed.application_id,
              "shipment_number": parsed.shipment_number,
              "manufacture_number": parsed.manufacture_number,
              "visit_mode": parsed.visit_mode, **parsed.personal}
    return json.dumps(fields, ensure_ascii=False, default=str)


@unit.operation
def remove_item(session, item: ScanItem) -> None:
    """Take a mistaken scan out of an open batch; later duplicates of it are re-checked."""
    batch = item.batch
    if batch.status != BATCH_OPEN:
        raise BatchClosedError()
    session.delete(item)
    session.flush()
    _recheck(session, batch)


@unit.operation
def recheck(session, batch: ScanBatch) -> list[ScanItem]:
    """Classify the open batch's rows again and keep what changed (one unit)."""
    if batch.status != BATCH_OPEN:
        raise BatchClosedError()
    return _recheck(session, batch)


def _recheck(session, batch: ScanBatch) -> list[ScanItem]:
    """Classify every row again (the ledger may have changed); returns rows that changed."""
    changed, taken, today = [], set(), clock.now().date()
    for item in sorted(batch.items, key=lambda i: i.seq):
        status, reason, parsed = _classify(session, batch, item.payload, today, taken)
        if parsed and status in (ITEM_OK, ITEM_INCOMPLETE, ITEM_EXISTS):
            taken.add(parsed.application_id)
        if status != item.status:
            changed.append(item)
        item.status, item.reason = status, reason
        item.fields = _fields_json(parsed) if parsed and status == ITEM_OK else None
    return changed


@dataclass
class BatchCounts:
    total: int
    ok: int
    ok_by_mode: dict[str, int]
    duplicate: int
    exists: int
    invalid: int
    incomplete: int


def counts(batch: ScanBatch) -> BatchCounts:
    items = batch.items
    ok = [i for i in items if i.status == ITEM_OK]
    return BatchCounts(
        total=len(items), ok=len(ok),
        ok_by_mode={VISIT_AT_HANDOVER: sum(i.visit_mode == VISIT_AT_HANDOVER for i in ok),
                    VISIT_AT_APPLICATION: sum(i.visit_mode == VISIT_AT_APPLICATION for i in ok)},
        duplicate=sum(i.status == ITEM_DUPLICATE for i in items),
        exists=sum(i.status == ITEM_EXISTS for i in items),
        invalid=sum(i.status == ITEM_INVALID for i in items),
        incomplete=sum(i.status == ITEM_INCOMPLETE for i in items))


def register_batch(session, batch: ScanBatch, *, actor: CardActor = SYSTEM,
                   now: datetime | None = None) -> list[Card]:
    """Every valid row becomes a card in 納品 with its shelf, in one unit; K cards first
    then S, each in scan order, so each tray fills consecutive places.

    The rows are classified again first, as a unit of its own: when the ledger changed
    since they were scanned (a card registered meanwhile) the corrected statuses are kept
    for staff to see, and the registration is refused with nothing registered. Called
    outside any other unit, so that the correction is kept."""
    changed = recheck(session, batch)
    if changed:
        raise RegistrationConflictError(
            _l("Nothing was registered: %(n)d row(s) changed since they were scanned "
               "(for example registered meanwhile). Check the list and register again.",
               n=len(changed)))
    return _register(session, batch, actor=actor, now=now)


@unit.operation
def _register(session, batch: ScanBatch, *, actor: CardActor,
              now: datetime | None) -> list[Card]:
    if batch.status != BATCH_OPEN:
        raise BatchClosedError()
    rows = sorted((i for i in batch.items if i.status == ITEM_OK),
                  key=lambda i: (i.visit_mode != VISIT_AT_HANDOVER, i.seq))
    if not rows:
        raise InputError(_l("There is no valid row to register."))
    now = now or clock.now()
    places = cards.allocate_places(session, len(rows))
    created = []
    for item, place in zip(rows, places):
        fields = json.loads(item.fields)
        fields["birth_date"] = date.fromisoformat(fields["birth_date"])
        card = Card(**fields)
        card.storage_place = place
        cards.prepare_received(session, card, actor=actor, now=now)
        session.flush()
        item.card_id = card.id
        created.append(card)
    batch.status = BATCH_REGISTERED
    batch.registered_at = now
    return created


@unit.operation
def discard_batch(session, batch: ScanBatch) -> None:
    if batch.status != BATCH_OPEN:
        raise BatchClosedError()
    batch.status = BATCH_DISCARDED


@unit.operation
def ledger_sheet(session, batch: ScanBatch) -> list[tuple[str, list[Card]]]:
    """The registered batch's ledger sheet (カード管理簿): its cards by visit mode, each
    group in shelf order (cards without a place last), then by application id. Printing
    it is recorded in the audit trail."""
    ids = [i.card_id for i in batch.items if i.card_id]
    rows = list(session.execute(select(Card).where(Card.id.in_(ids))).scalars()) if ids else []

    def shelf_order(card: Card):
        place = card.storage_place
        return (place is None, place.sort_key if place else 0, place.code if place else "",
                card.application_id)

    audit.record_in_transaction(session, audit.ACTION_PRINT, "scan_batch", batch.id,
                                {"what": "ledger sheet", "cards": len(rows)})
    return [(cards.visit_mode_label(mode), sorted((c for c in rows if c.visit_mode == mode),
                                                  key=shelf_order))
            for mode in (VISIT_AT_HANDOVER, VISIT_AT_APPLICATION)]


@dataclass
class UploadReport:
    """What one upload read: (file, page, codes) per page, the codes read from these pages
    and the count staff typed for these pages (None when not typed)."""
    pages: list[tuple[str, int, int]]
    found: int
    expected: int | None

    @property
    def count_differs(self) -> bool:
        """The count printed on the uploaded pages differs from the codes read from them.
        Codes typed or uploaded earlier into the same batch do not count."""
        return self.expected is not None and self.expected != self.found


def pages_read(batch: ScanBatch) -> int:
    """Codes of the batch read from uploaded pages (typed scans have no source)."""
    return sum(1 for i in batch.items if i.source)


def add_scanned_files(session, batch: ScanBatch, files: list[tuple[bytes, str]],
                      expected: int | None = None) -> UploadReport:
    """Decode every page of the uploaded files into the batch.

    Pages are read quickly first; when staff typed the count printed on the list and fewer
    codes were found, every page is read again with every pass before anything is added.
    The codes found, and the count staff typed (added to the batch's expected count), are
    kept in one unit. The typed count is compared with the codes of THIS upload only."""
    def read_all(thorough: bool):
        result = []
        for data, filename in files:
            try:
                result.append((filename, decode_file(data, filename, thorough=thorough)))
            except Exception as error:  # Pillow/pdfium: not an image we can read
                raise InputError(_l("%(file)s could not be read as an image or PDF.",
                                    file=filename)) from error
        return result

    decoded = read_all(thorough=False)
    if expected is not None and sum(len(p.payloads) for _, pages in decoded
                                    for p in pages) < expected:
        decoded = read_all(thorough=True)
    report: list[tuple[str, int, int]] = []
    with unit.transaction(session):
        if batch.status != BATCH_OPEN:
            raise BatchClosedError()
        for filename, pages in decoded:
            for page in pages:
                for payload in page.payloads:
                    add_payload(session, batch, payload, source=f"{filename} p.{page.page}")
                report.append((filename, page.page, len(page.payloads)))
        if expected is not None:
            batch.expected_count = (batch.expected_count or 0) + expected
    return UploadReport(pages=report, found=sum(n for _, _, n in report), expected=expected)
