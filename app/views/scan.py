"""The scan station (F3.2): a keyboard-wedge QR reader types each code and Enter into one
field; scanned list pages can be uploaded too. The batch lives on the server until it is
registered (one transaction) or discarded."""
from __future__ import annotations

import re

from flask import abort, flash, jsonify, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import gettext as _
from flask_login import current_user

from app import clock
from app.extensions import session
from app.models.card import VISIT_AT_APPLICATION, VISIT_AT_HANDOVER
from app.models.card_states import visit_mode_label
from app.models.scan import BATCH_OPEN, BATCH_REGISTERED, ScanBatch, ScanItem
from app.services import cards, japanese, scan
from app.services.errors import DomainError
from app.services.fields import parse_id
from app.views.feedback import refusals_flashed
from app.views.formatting import jst

MAX_UPLOAD_FILES = 50


def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json" or request.is_json


def _counts_dict(batch: ScanBatch) -> dict:
    c = scan.counts(batch)
    return {"total": c.total, "ok": c.ok, "ok_k": c.ok_by_mode[VISIT_AT_HANDOVER],
            "ok_s": c.ok_by_mode[VISIT_AT_APPLICATION], "duplicate": c.duplicate,
            "exists": c.exists, "invalid": c.invalid, "incomplete": c.incomplete,
            "expected": batch.expected_count, "from_pages": scan.pages_read(batch)}


def _item_dict(item: ScanItem) -> dict:
    return {"id": item.id, "seq": item.seq, "status": item.status,
            "status_label": scan.status_label(item.status), "reason": item.reason or "",
            "application_id": item.application_id or "", "visit_mode": item.visit_mode or "",
            "visit_mode_label": visit_mode_label(item.visit_mode) if item.visit_mode else "",
            "source": item.source or ""}


def _to_batch(view, batch_id, *args, **kwargs) -> str:
    return url_for(".batch", batch_id=batch_id)


class ScanView(BaseView):
    route_base = "/scan"
    default_view = "index"

    def _batch(self, batch_id: int) -> ScanBatch:
        batch = scan.get_batch(session(), batch_id)
        if batch is None:
            abort(404)
        return batch

    @expose("/")
    @has_access
    def index(self):
        batches = scan.recent_batches(session())
        return self.render_template("scan/index.html", batches=batches, jst=jst,
                                    counts=scan.counts, BATCH_OPEN=BATCH_OPEN)

    @expose("/new", methods=["POST"])
    @has_access
    def new(self):
        batch = scan.open_batch(session(), actor=cards.actor_of(current_user))
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
        except DomainError as error:  # the scan station reads JSON; a form, the flash
            if _wants_json():
                return jsonify(error=str(error.message)), 409
            flash(str(error.message), "danger")
            return redirect(url_for(".batch", batch_id=batch_id))
        if _wants_json():
            return jsonify(item=_item_dict(item), counts=_counts_dict(batch))
        return redirect(url_for(".batch", batch_id=batch_id))

    @expose("/<id:batch_id>/upload", methods=["POST"])
    @has_access
    @refusals_flashed(back=_to_batch)
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
        report = scan.add_scanned_files(session(), batch,
                                        [(f.read(), f.filename) for f in files], expected)
        for filename, page, found in report.pages:
            flash(_("%(file)s page %(page)d: %(n)d codes.", file=filename, page=page, n=found),
                  "info" if found else "warning")
        if report.count_differs:
            flash(_("The list says %(expected)d codes but %(found)d were read. Check the pages.",
                    expected=report.expected, found=report.found), "warning")
        return redirect(url_for(".batch", batch_id=batch_id))

    @expose("/<id:batch_id>/item/<id:item_id>/remove", methods=["POST"])
    @has_access
    @refusals_flashed(back=_to_batch)
    def remove(self, batch_id, item_id):
        item = scan.get_item(session(), batch_id, parse_id(item_id))
        if item is None:
            abort(404)
        scan.remove_item(session(), item)
        return redirect(url_for(".batch", batch_id=batch_id))

    @expose("/<id:batch_id>/register", methods=["POST"])
    @has_access
    @refusals_flashed(back=_to_batch)
    def register(self, batch_id):
        created = scan.register_batch(session(), self._batch(batch_id),
                                      actor=cards.actor_of(current_user))
        flash(_("%(n)d cards registered in the ledger.", n=len(created)), "success")
        return redirect(url_for(".sheet", batch_id=batch_id))

    @expose("/<id:batch_id>/discard", methods=["POST"])
    @has_access
    @refusals_flashed(back=".index")
    def discard(self, batch_id):
        scan.discard_batch(session(), self._batch(batch_id))
        flash(_("The batch was discarded; nothing was registered."), "info")
        return redirect(url_for(".index"))

    @expose("/<id:batch_id>/sheet")
    @has_access
    def sheet(self, batch_id):
        """The batch's ledger sheet (カード管理簿), A4, by visit mode, in shelf order."""
        batch = self._batch(batch_id)
        if batch.status != BATCH_REGISTERED:
            flash(_("Register the batch first."), "warning")
            return redirect(url_for(".batch", batch_id=batch_id))
        groups = scan.ledger_sheet(session(), batch)
        return self.render_template("scan/sheet.html", batch=batch, groups=groups,
                                    date_with_era=japanese.date_with_era, now=clock.now(),
                                    jst=jst)
