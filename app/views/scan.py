"""The scan station (F3.2): a keyboard-wedge QR reader types each code and Enter into one
field; scanned list pages can be uploaded too. The batch lives on the server until it is
registered (one transaction) or discarded."""
from __future__ import annotations

import re

from flask import abort, flash, jsonify, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import gettext as _
from sqlalchemy import select

from app import clock
from app.extensions import session
from app.models.card import VISIT_AT_APPLICATION, VISIT_AT_HANDOVER, Card
from app.models.scan import BATCH_OPEN, BATCH_REGISTERED, ScanBatch, ScanItem
from app.services import audit, cards, japanese, scan
from app.services.errors import DomainError
from app.views.formatting import jst

MAX_UPLOAD_FILES = 50


def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json" or request.is_json


def _counts_dict(batch: ScanBatch) -> dict:
    c = scan.counts(batch)
    return {"total": c.total, "ok": c.ok, "ok_k": c.ok_by_mode[VISIT_AT_HANDOVER],
            "ok_s": c.ok_by_mode[VISIT_AT_APPLICATION], "duplicate": c.duplicate,
            "exists": c.exists, "invalid": c.invalid, "incomplete": c.incomplete,
            "expected": batch.expected_count}


def _item_dict(item: ScanItem) -> dict:
    return {"id": item.id, "seq": item.seq, "status": item.status,
            "status_label": scan.status_label(item.status), "reason": item.reason or "",
            "application_id": item.application_id or "", "visit_mode": item.visit_mode or "",
            "visit_mode_label": cards.visit_mode_label(item.visit_mode) if item.visit_mode else "",
            "source": item.source or ""}


class ScanView(BaseView):
    route_base = "/scan"
    default_view = "index"

    def _batch(self, batch_id: int, open_only: bool = False) -> ScanBatch:
        batch = session().get(ScanBatch, batch_id)
        if batch is None:
            abort(404)
        return batch

    @expose("/")
    @has_access
    def index(self):
        batches = list(session().execute(select(ScanBatch).order_by(ScanBatch.id.desc())
                                         .limit(30)).scalars())
        return self.render_template("scan/index.html", batches=batches, jst=jst,
                                    counts=scan.counts, BATCH_OPEN=BATCH_OPEN)

    @expose("/new", methods=["POST"])
    @has_access
    def new(self):
        batch = scan.open_batch(session())
        return redirect(url_for(".batch", batch_id=batch.id))

    @expose("/<id:batch_id>")
    @has_access
    def batch(self, batch_id):
        batch = self._batch(batch_id)
        items = sorted(batch.items, key=lambda i: i.seq, reverse=True)
        return self.render_template("scan/batch.html", batch=batch, items=items,
                                    counts=_counts_dict(batch), item_dict=_item_dict,
                                    is_open=batch.status == BATCH_OPEN, jst=jst)

    @expose("/<id:batch_id>/add", methods=["POST"])
    @has_access
    def add(self, batch_id):
        batch = self._batch(batch_id)
        payload = (request.form.get("payload") or "").strip("\r\n")
        if not payload.strip():
            if _wants_json():
                return jsonify(error=_("Nothing was scanned.")), 400
            return redirect(url_for(".batch", batch_id=batch_id))
        try:
            item = scan.add_payload(session(), batch, payload)
        except DomainError as error:
            session().rollback()
            if _wants_json():
                return jsonify(error=str(error.message)), 409
            flash(str(error.message), "danger")
            return redirect(url_for(".batch", batch_id=batch_id))
        if _wants_json():
            return jsonify(item=_item_dict(item), counts=_counts_dict(batch))
        return redirect(url_for(".batch", batch_id=batch_id))

    @expose("/<id:batch_id>/upload", methods=["POST"])
    @has_access
    def upload(self, batch_id):
        batch = self._batch(batch_id)
        files = [f for f in request.files.getlist("files") if f and f.filename]
        if not files:
            flash(_("Choose one or more scanned files."), "danger")
            return redirect(url_for(".batch", batch_id=batch_id))
        if len(files) > MAX_UPLOAD_FILES:
            flash(_("At most %(n)d files at a time.", n=MAX_UPLOAD_FILES), "danger")
            return redirect(url_for(".batch", batch_id=batch_id))
        expected_text = japanese.half_width(request.form.get("expected", "")).strip()
        if expected_text and not re.fullmatch(r"[0-9]{1,4}", expected_text):
            flash(_("Enter the number of codes as digits."), "danger")
            return redirect(url_for(".batch", batch_id=batch_id))
        expected = int(expected_text) if expected_text else None
        try:
            report = scan.add_scanned_files(session(), batch,
                                            [(f.read(), f.filename) for f in files], expected)
        except DomainError as error:
            session().rollback()
            flash(str(error.message), "danger")
            return redirect(url_for(".batch", batch_id=batch_id))
        if expected is not None:
            batch.expected_count = (batch.expected_count or 0) + expected
            session().commit()
        for filename, page, found in report:
            flash(_("%(file)s page %(page)d: %(n)d codes.", file=filename, page=page, n=found),
                  "info" if found else "warning")
        if batch.expected_count is not None and batch.expected_count != len(batch.items):
            flash(_("The list says %(expected)d codes but %(found)d were read. Check the pages.",
                    expected=batch.expected_count, found=len(batch.items)), "warning")
        return redirect(url_for(".batch", batch_id=batch_id))

    @expose("/<id:batch_id>/item/<id:item_id>/remove", methods=["POST"])
    @has_access
    def remove(self, batch_id, item_id):
        item = session().get(ScanItem, item_id)
        if item is None or item.batch_id != batch_id:
            abort(404)
        try:
            scan.remove_item(session(), item)
        except DomainError as error:
            session().rollback()
            flash(str(error.message), "danger")
        return redirect(url_for(".batch", batch_id=batch_id))

    @expose("/<id:batch_id>/register", methods=["POST"])
    @has_access
    def register(self, batch_id):
        batch = self._batch(batch_id)
        try:
            created = scan.register_batch(session(), batch)
        except DomainError as error:
            flash(str(error.message), "danger")
            return redirect(url_for(".batch", batch_id=batch_id))
        flash(_("%(n)d cards registered in the ledger.", n=len(created)), "success")
        return redirect(url_for(".sheet", batch_id=batch_id))

    @expose("/<id:batch_id>/discard", methods=["POST"])
    @has_access
    def discard(self, batch_id):
        try:
            scan.discard_batch(session(), self._batch(batch_id))
            flash(_("The batch was discarded; nothing was registered."), "info")
        except DomainError as error:
            flash(str(error.message), "danger")
        return redirect(url_for(".index"))

    @expose("/<id:batch_id>/sheet")
    @has_access
    def sheet(self, batch_id):
        """The batch's ledger sheet (カード管理簿), A4, by visit mode, in shelf order."""
        batch = self._batch(batch_id)
        if batch.status != BATCH_REGISTERED:
            flash(_("Register the batch first."), "warning")
            return redirect(url_for(".batch", batch_id=batch_id))
        ids = [i.card_id for i in batch.items if i.card_id]
        rows = list(session().execute(select(Card).where(Card.id.in_(ids))).scalars())
        groups = []
        for mode in (VISIT_AT_HANDOVER, VISIT_AT_APPLICATION):
            chosen = [c for c in rows if c.visit_mode == mode]
            chosen.sort(key=lambda c: ((c.storage_place.sort_key, c.storage_place.code)
                                       if c.storage_place else (10**9, ""), c.application_id))
            groups.append((cards.visit_mode_label(mode), chosen))
        audit.record_event(audit.ACTION_PRINT, "scan_batch", batch.id,
                           {"what": "ledger sheet", "cards": len(rows)})
        return self.render_template("scan/sheet.html", batch=batch, groups=groups,
                                    date_with_era=japanese.date_with_era, now=clock.now(),
                                    jst=jst)
