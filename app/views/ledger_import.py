"""既存データ取込 (F5.4, D1; issue 15 §1): a 管理者 uploads the city's existing card ledger
(CSV or XLSX, optionally a mapping file), sees the preview of the first rows as mapped and
the validation report, chooses the options (skip bad rows, update existing cards) and
imports it. Checking and importing run in the background (app/services/ledger_import.py,
"the screen's background jobs"); the page shows the progress (static/extraction_job.js
polls the status, same origin; without a script the page reloads itself)."""
from __future__ import annotations

from flask import abort, current_app, jsonify, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_login import current_user

from app.extensions import session
from app.services import file_store, ledger_import, protected_zip
from app.services.actors import actor_of
from app.services.errors import DomainError, InputError
from app.views import protected_exports
from app.views.feedback import flash_refusal, refusals_flashed


def _actor():
    return actor_of(current_user)


class LedgerImportView(BaseView):
    route_base = "/ledger-import"
    default_view = "index"
    method_permission_name = {
        "index": "index", "upload": "import", "job": "index", "job_status": "index",
        "start": "import", "download": "import", "discard": "import",
    }

    @expose("/")
    @has_access
    def index(self):
        """The upload form and the person's recent imports. Reads only."""
        if not ledger_import.may_import(_actor()):
            abort(403)
        jobs = ledger_import.jobs_of(_actor())
        return self.render_template(
            "ledger_import/index.html", jobs=jobs, progress=ledger_import.job_progress,
            synonyms=ledger_import.header_synonyms(), max_mb=ledger_import.UPLOAD_MAX_BYTES // 2**20)

    @expose("/upload", methods=["POST"])
    @has_access
    @refusals_flashed(back=".index")
    def upload(self):
        file = request.files.get("file")
        if file is None or not file.filename:
            raise InputError(ledger_import.choose_file_message())
        mapping_text = None
        mapping = request.files.get("mapping")
        if mapping is not None and mapping.filename:
            raw = mapping.read(ledger_import.MAPPING_MAX_BYTES + 1)
            mapping_text = ledger_import.mapping_text(raw)
        status = ledger_import.start_check(file.stream, file.filename, actor=_actor(),
                                           mapping_text=mapping_text)
        ledger_import.launch(current_app._get_current_object(), status, actor=_actor())
        return redirect(url_for(".job", token=status["token"]))

    def _own(self, token: str) -> dict:
        status = ledger_import.get_job(token, _actor())
        if status is None:
            abort(403 if not ledger_import.may_import(_actor()) else 404)
        return status

    @expose("/jobs/<token>")
    @has_access
    def job(self, token: str):
        """Progress, then the preview and the report with the options, then the result.
        Reads only."""
        status = self._own(token)
        progress = ledger_import.job_progress(status)
        columns = [(header, str(ledger_import.FIELD_LABELS[name]), name)
                   for header, name in (status.get("columns") or {}).items()]
        return self.render_template(
            "ledger_import/job.html", job=status, progress=progress, columns=columns,
            states=ledger_import,
            encryption_required=protected_exports.encryption_required("ledger_import_report"))

    @expose("/jobs/<token>/status")
    @has_access
    def job_status(self, token: str):
        response = jsonify(ledger_import.job_progress(self._own(token)))
        response.headers["Cache-Control"] = "no-store"
        return response

    @expose("/jobs/<token>/import", methods=["POST"])
    @has_access
    def start(self, token: str):
        self._own(token)
        try:
            status = ledger_import.start_import(
                token, actor=_actor(), skip_invalid=bool(request.form.get("skip_invalid")),
                update=bool(request.form.get("update")))
        except DomainError as error:
            flash_refusal(error)
            return redirect(url_for(".job", token=token))
        ledger_import.launch(current_app._get_current_object(), status, actor=_actor())
        return redirect(url_for(".job", token=token))

    @expose("/jobs/<token>/download/<which>", methods=["POST"])
    @has_access
    def download(self, token: str, which: str):
        """The full validation report or the rejected rows (CSV, UTF-8 with BOM); audited
        as a download."""
        self._own(token)
        back = url_for(".job", token=token)
        try:
            chosen = protected_exports.choice()
            stored, name = ledger_import.job_file(token, which, actor=_actor(),
                                                  session=session(), encrypted=chosen.encrypt)
        except DomainError as error:
            flash_refusal(error)
            return redirect(back)
        if chosen.encrypt:
            return protected_exports.offer(
                self, [protected_zip.Part(name, file_store.stream(stored))], chosen, name,
                back=back)
        return protected_exports.send_stored(stored, "text/csv", name)

    @expose("/jobs/<token>/discard", methods=["POST"])
    @has_access
    def discard(self, token: str):
        self._own(token)
        try:
            ledger_import.discard_job(token, actor=_actor())
        except DomainError as error:
            flash_refusal(error)
            return redirect(url_for(".job", token=token))
        return redirect(url_for(".index"))
