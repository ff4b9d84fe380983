"""Encrypted exports on every screen (issue 15 §4, S2): the one helper each export calls
when the person chose 「暗号化ZIPで出力する」, the page that shows a generated password once
and offers the file for one download, and the 管理者's setting (エクスポートの暗号化).

Pattern: the export's POST makes and audits the file (``"encrypted": true``), encrypts it
into the shared file store (any app server serves it) and answers with the page below (never a redirect: the
password travels in that one response only, with ``Cache-Control: no-store``, and is kept
nowhere). ``GET /protected-exports/<token>`` shows the same offer without the password; the
download is a POST and removes the file.
"""
from __future__ import annotations

from typing import Iterable

from flask import Response, abort, current_app, flash, redirect, request, send_file, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import gettext as _
from flask_login import current_user

from app.clock import JST
from app.extensions import session
from app.services import actors, audit_text, export_policy, file_store, protected_zip
from app.services.errors import ConcurrentChangeError, DomainError, NotPermittedError
from app.settings import settings as app_settings


def choice() -> export_policy.Choice:
    """The person's choice on the posted form (a short typed password: InputError)."""
    return export_policy.choice_from(request.form)


def encryption_required(export_key: str) -> bool:
    """For the form: is the plain file refused for this export now?"""
    return export_policy.encryption_required_for(session(), export_key)


def offer(view: BaseView, parts: Iterable[protected_zip.Part], chosen: export_policy.Choice,
          filename: str, back: str | None = None) -> Response:
    """Encrypt the parts and answer with the page that shows the password once."""
    prepared = export_policy.prepare(parts, chosen, owner=current_user.username,
                                     filename=filename)
    return _ready_page(view, prepared, chosen.password if chosen.generated else "",
                       typed=not chosen.generated, back=back)


def send_stored(stored: file_store.Handle, mimetype: str, name: str,
                on_close=None) -> Response:
    """A file of the shared store as a download, read piece by piece while it is sent
    (any app server can serve it). ``on_close``: called when the server closes the file
    (the download ended; a file response's own call_on_close is never called for a
    file sent as it is)."""
    response = send_file(file_store.reader(stored, on_close), mimetype=mimetype,
                         as_attachment=True, download_name=name, max_age=0, etag=False)
    response.content_length = stored.size
    response.headers["Cache-Control"] = "no-store"
    return response


def _ready_page(view, prepared, password: str, *, typed: bool = False, back=None):
    body = view.render_template(
        "exports/ready.html", prepared=prepared, password=password, typed=typed,
        back=back, keep_minutes=app_settings().export_keep_minutes,
        title=_("The encrypted ZIP is ready"))
    response = current_app.make_response(body)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


class ProtectedExportView(BaseView):
    """The prepared encrypted file of the signed-in person: the offer, and its download."""

    route_base = "/protected-exports"
    default_view = "show"

    @expose("/<token>")
    @has_access
    def show(self, token: str):
        """The offer again, without the password (it was shown once). Reads only."""
        try:
            prepared = export_policy.prepared(token, current_user.username)
        except DomainError:
            abort(404)
        return _ready_page(self, prepared, "")

    @expose("/<token>/download", methods=["POST"])
    @has_access
    def download(self, token: str):
        """The file, once, for its owner; removed after it was sent."""
        try:
            found = export_policy.take(token, current_user.username)
        except DomainError as gone:
            flash(str(gone.message), "danger")
            return redirect(self.appbuilder.get_url_for_index)
        return send_stored(found.stored, "application/zip", found.filename,
                           on_close=lambda: export_policy.discard(found))


class ExportPolicyView(BaseView):
    """エクスポートの暗号化: 管理者 (and システム管理者) require encryption for exports with
    personal data; the list says which exports hold personal data."""

    route_base = "/export-policy"
    default_view = "index"

    def _page(self, error: str | None = None, status: int = 200):
        actor = actors.actor_of(current_user)
        return self.render_template(
            "exports/policy.html", policy=export_policy.policy(session()),
            exports=export_policy.EXPORTS.values(), can_edit=export_policy.may_edit(actor),
            error=error, tz=JST, actor_name=audit_text.actor_name,
            title=_("Export encryption")), status

    @expose("/")
    @has_access
    def index(self):
        return self._page()

    @expose("/", methods=["POST"])
    @has_access
    def save(self):
        try:
            version = int(request.form.get("version") or 0)
        except ValueError:
            version = -1
        try:
            export_policy.set_policy(
                session(), encryption_required=request.form.get("encryption_required") == "1",
                expected_version=version, actor=actors.actor_of(current_user))
        except NotPermittedError:
            abort(403)
        except ConcurrentChangeError:
            return self._page(_("Someone changed this setting at the same moment. Check the "
                                "setting shown and save again."), 409)
        flash(_("The export encryption setting was saved."), "success")
        return redirect(url_for(".index"))
