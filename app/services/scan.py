"""Registering delivered cards from the QR codes of the card issuance list (F3.2, F3.3).

A batch collects scans (from a keyboard-wedge reader or scanned pages) on the server;
each payload is classified at once. Registration writes every valid row as a card in
state 納品 on its shelf, in one transaction, or writes nothing.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from app import clock
from app.models.card import VISIT_AT_APPLICATION, VISIT_AT_HANDOVER, Card
from app.models.scan import (BATCH_DISCARDED, BATCH_OPEN, BATCH_REGISTERED, ITEM_DUPLICATE,
                             ITEM_EXISTS, ITEM_INCOMPLETE, ITEM_INVALID, ITEM_OK, ScanBatch,
                             ScanItem)
from app.services import audit, cards
from app.services.errors import (BatchClosedError, InputError,  # noqa: F401
                                 RegistrationConflictError)
from app.services.qr_formats import ParsedCard, decode_bytes, parse_payload

STATUS_LABELS = {
    ITEM_OK: _l("OK"), ITEM_DUPLICATE: _l("Duplicate in this batch"),
    ITEM_EXISTS: _l("Already in the ledger"), ITEM_INVALID: _l("Invalid"),
    ITEM_INCOMPLETE: _l("No personal data"),
}


def status_label(status: str) -> str:
    return str(STATUS_LABELS.get(status, status))


def open_batch(session, expected_count: int | None = None) -> ScanBatch:
    batch = ScanBatch(created_at=clock.now(), created_by=audit.current_actor().username,
                      status=BATCH_OPEN, expected_count=expected_count)
    session.add(batch)
    session.commit()
    return batch


def _personal_data_for(session, application_id: str) -> dict | None:
    """Personal data for a short-form code, from the application with the same 申請書ID.
    No such source exists until application intake (F2) is built, so a short code is
    flagged for staff; a ledger row with the ID means the card exists (checked before)."""
    return None


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


def add_payload(session, batch: ScanBatch, payload: str | bytes,
                source: str | None = None) -> ScanItem:
    """Classify one scan and keep it in the batch (commits)."""
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
    session.commit()
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


def remove_item(session, item: ScanItem) -> None:
    """Take a mistaken scan out of an open batch; later duplicates of it are re-checked."""
    batch = item.batch
    if batch.status != BATCH_OPEN:
        raise BatchClosedError()
    session.delete(item)
    session.flush()
    _recheck(session, batch)
    session.commit()


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


def register_batch(session, batch: ScanBatch) -> list[Card]:
    """Every valid row becomes a card in 納品 with its shelf, in one transaction; K cards
    first then S, each in scan order, so each tray fills consecutive places."""
    if batch.status != BATCH_OPEN:
        raise BatchClosedError()
    changed = _recheck(session, batch)
    if changed:
        session.commit()  # keep the corrected statuses; register nothing
        raise RegistrationConflictError(
            _l("Nothing was registered: %(n)d row(s) changed since they were scanned "
               "(for example registered meanwhile). Check the list and register again.",
               n=len(changed)))
    rows = sorted((i for i in batch.items if i.status == ITEM_OK),
                  key=lambda i: (i.visit_mode != VISIT_AT_HANDOVER, i.seq))
    if not rows:
        raise InputError(_l("There is no valid row to register."))
    places = cards.allocate_places(session, len(rows))
    created = []
    try:
        for item, place in zip(rows, places):
            fields = json.loads(item.fields)
            fields["birth_date"] = date.fromisoformat(fields["birth_date"])
            card = Card(**fields)
            card.storage_place = place
            cards.prepare_received(session, card)
            session.flush()
            item.card_id = card.id
            created.append(card)
        batch.status = BATCH_REGISTERED
        batch.registered_at = clock.now()
        session.commit()
    except Exception:
        session.rollback()
        raise
    return created


def discard_batch(session, batch: ScanBatch) -> None:
    if batch.status != BATCH_OPEN:
        raise BatchClosedError()
    batch.status = BATCH_DISCARDED
    session.commit()


def add_scanned_files(session, batch: ScanBatch, files: list[tuple[bytes, str]],
                      expected: int | None = None) -> list[tuple[str, int, int]]:
    """Decode every page of the uploaded files into the batch; (file, page, codes) per page.

    Pages are read quickly first; when staff typed the count printed on the list and fewer
    codes were found, every page is read again with every pass before anything is added."""
    from app.services.qr_decode import decode_file

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
    report = []
    for filename, pages in decoded:
        for page in pages:
            for payload in page.payloads:
                add_payload(session, batch, payload, source=f"{filename} p.{page.page}")
            report.append((filename, page.page, len(page.payloads)))
    return report
