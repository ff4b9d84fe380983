"""Scanned papers of an intake (F2.4, S2): the panel on the intake's page (thumbnails and
the upload form), the page viewer (every page rendered to PNG on the server, so Edge shows
PDF and TIFF alike), the original file, and a supervisor's delete.

Reached from an intake, so no menu entry. Every image and download is audited by the
service; every answer carries ``Cache-Control: no-store`` (personal data).
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from urllib.parse import quote

from flask import (Response, abort, flash, make_response, redirect, render_template,
                   request,
                   send_file, url_for)
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import gettext as _
from flask_login import current_user

from app.extensions import session
from app.models.document import CATEGORY_LABELS
from app.models.intake import label
from app.services import audit_text, documents, export_policy, protected_zip
from app.services.errors import DomainError
from app.views import protected_exports
from app.settings import settings
from app.views.access import can_open
from app.views.feedback import refusals_flashed
from app.views.formatting import jst

ZOOMS = (0, 50, 75, 100, 150, 200)  # 0: the whole page in the window
NO_STORE = {"Cache-Control": "no-store, max-age=0", "Pragma": "no-cache"}


def _size_text(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / 1024 / 1024:.1f} MB"
    return f"{max(1, round(size / 1024))} KB"


@dataclass
class PanelRow:
    id: int
    category: str
    filename: str
    pages: int
    size: str
    uploaded_by: str
    uploaded_at: str
    media_type: str


@dataclass
class Panel:
    """What ``documents/_intake_panel.html`` shows for one intake and the signed-in user."""

    intake_id: int
    rows: list[PanelRow]
    categories: list[tuple[str, str]]
    can_view: bool
    can_upload: bool
    max_files: int
    max_mb: str


def document_panel(intake) -> Panel | None:
    """The panel's data (a Jinja global, for the intake's page); None for a role that
    may not see scanned papers (閲覧者), so the panel shows nothing at all."""
    if intake is None or not can_open("DocumentView.view"):
        return None
    rows = [PanelRow(d.id, label(CATEGORY_LABELS, d.category), d.filename, d.pages,
                     _size_text(d.size), audit_text.actor_name(d.uploaded_by),
                     jst(d.uploaded_at), d.media_type)
            for d in documents.documents_of(session(), intake.id)]
    return Panel(intake.id, rows, documents.category_choices(), True,
                 can_open("DocumentView.upload"), settings().document_max_files,
                 f"{settings().document_max_bytes / 1024 / 1024:g}")


def _no_store(response) -> Response:
    response = make_response(response)
    response.headers.update(NO_STORE)
    return response


def _back_to_intake(self, intake_id, *args, **kwargs) -> str:
    target = request.form.get("next") or ""
    # a path of this site only: "//host", "/\\host" and "/<tab>/host" all lead elsewhere
    # in a browser (backslashes read as slashes, tabs and newlines dropped)
    if (target.startswith("/") and not target.startswith("//") and "\\" not in target
            and all(ch.isprintable() and not ch.isspace() for ch in target)):
        return target
    return url_for("DocumentView.intake", intake_id=intake_id)


def _back_to_document(self, document_id, *args, **kwargs) -> str:
    return url_for("DocumentView.view", document_id=document_id)


def intake_page_url(intake_id: int) -> str:
    """The intake's own page when it exists (the intake screens), else this panel's page."""
    if can_open("IntakeModelView.show"):
        return url_for("IntakeModelView.show", pk=intake_id)
    return url_for("DocumentView.intake", intake_id=intake_id)


class DocumentView(BaseView):
    route_base = "/documents"
    default_view = "intake"

    def _document(self, document_id):
        document = documents.get_document(session(), document_id)
        if document is None:
            abort(404)
        return document

    def _refused(self, error: DomainError, document_id: int | None = None):
        back = url_for(".view", document_id=document_id) if document_id else None
        # a page that cannot be drawn is this file's fault (422); a key or integrity
        # failure is the server's (500)
        status = 422 if isinstance(error, documents.DocumentRenderError) else 500
        if isinstance(error, (export_policy.EncryptionRequiredError,
                              protected_zip.ExportPasswordError)):
            status = 400  # the person's choice: plain while encryption is required, a
            # password too short

        return _no_store(Response(render_template("refused.html", message=str(error.message),
                                                  back=back), status))

    @expose("/intake/<id:intake_id>")
    @has_access
    def intake(self, intake_id):
        """The papers of one intake (the same panel the intake's page includes)."""
        intake = documents.get_intake(session(), intake_id)
        if intake is None:
            abort(404)
        return _no_store(self.render_template("documents/intake.html", intake=intake,
                                              intake_url=intake_page_url(intake.id)))

    @expose("/intake/<id:intake_id>/upload", methods=["POST"])
    @has_access
    @refusals_flashed(back=_back_to_intake)
    def upload(self, intake_id):
        files = [f for f in request.files.getlist("files") if f and f.filename]
        stored = documents.upload(session(), intake_id, request.form.get("category", ""),
                                  [(f.filename, f.read()) for f in files],
                                  actor=documents.actor_of(current_user))
        flash(_("%(n)d file(s) stored (encrypted).", n=len(stored)), "success")
        return redirect(_back_to_intake(self, intake_id))

    @expose("/<id:document_id>")
    @has_access
    def view(self, document_id):
        """The viewer: one page at a time as PNG, page links, zoom by CSS. The stored file
        is decrypted and its SHA-256 checked before anything is shown."""
        document = self._document(document_id)
        page = min(max(request.args.get("page", 1, type=int) or 1, 1), document.pages)
        zoom = request.args.get("zoom", 0, type=int)
        zoom = zoom if zoom in ZOOMS else 0  # per cent of the screen's width; 0: whole page
        error = None
        try:
            documents.plaintext_of(session(), document)
        except DomainError as refused:
            error = str(refused.message)
        actor = documents.actor_of(current_user)
        body = self.render_template(
            "documents/viewer.html", document=document, page=page, zoom=zoom, zooms=ZOOMS,
            error=error, category=label(CATEGORY_LABELS, document.category),
            uploaded_at=jst(document.uploaded_at), size=_size_text(document.size),
            uploaded_by=audit_text.actor_name(document.uploaded_by),
            intake_url=intake_page_url(document.intake_id),
            can_delete=documents.may_delete(actor) and can_open("DocumentView.delete"),
            can_download=can_open("DocumentView.download"),
            encryption_required=protected_exports.encryption_required("document_original"))
        return _no_store(Response(body, 500 if error else 200))

    @expose("/<id:document_id>/page/<int:number>")
    @has_access
    def page(self, document_id, number):
        document = self._document(document_id)
        if not 1 <= number <= document.pages:
            abort(404)
        try:
            png = documents.page_png(session(), document, number,
                                     actor=documents.actor_of(current_user))
        except DomainError as error:
            return self._refused(error, document.id)
        return _no_store(Response(png, mimetype="image/png"))

    @expose("/<id:document_id>/thumbnail")
    @has_access
    def thumbnail(self, document_id):
        document = self._document(document_id)
        try:
            png = documents.thumbnail_png(session(), document,
                                          actor=documents.actor_of(current_user))
        except DomainError as error:
            return self._refused(error, document.id)
        return _no_store(Response(png, mimetype="image/png"))

    @expose("/<id:document_id>/download", methods=["GET", "POST"])
    @has_access
    def download(self, document_id):
        """The original file; posted with 「暗号化ZIPで出力する」, as an AES-256 ZIP offered
        with its password once (app/views/protected_exports.py)."""
        document = self._document(document_id)
        try:
            chosen = (protected_exports.choice() if request.method == "POST"
                      else export_policy.PLAIN)
            data = documents.original(session(), document, actor=documents.actor_of(current_user),
                                      encrypted=chosen.encrypt)
        except DomainError as error:
            return self._refused(error, document.id)
        name = documents.download_name(document)
        if chosen.encrypt:
            return protected_exports.offer(self, [protected_zip.Part(name, data)], chosen, name,
                                           back=url_for(".view", document_id=document.id))
        response = send_file(io.BytesIO(data), mimetype=document.media_type,
                             as_attachment=True, download_name=name, etag=False,
                             last_modified=None, max_age=0)
        if not name.isascii():  # RFC 5987 for the Japanese name, a readable ASCII fallback
            fallback = f"document-{document.id}{name[name.rindex('.'):]}"
            response.headers["Content-Disposition"] = (
                f'attachment; filename="{fallback}"; filename*=UTF-8\'\'{quote(name, safe="")}')
        return _no_store(response)

    @expose("/<id:document_id>/delete", methods=["POST"])
    @has_access
    @refusals_flashed(back=_back_to_document)
    def delete(self, document_id):
        document = self._document(document_id)
        intake_id, filename = document.intake_id, document.filename
        documents.delete(session(), document.id, request.form.get("reason"),
                         actor=documents.actor_of(current_user))
        flash(_("Deleted: %(file)s.", file=filename), "success")
        return redirect(intake_page_url(intake_id))
