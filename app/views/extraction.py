"""The extraction screen (抽出, F4.2): choose a subject, combine conditions in AND/OR
groups, preview the count and the first 50 rows, choose and order the columns, export CSV
(UTF-8 with BOM, or Shift_JIS/CP932 with the rule for characters it cannot hold) or XLSX,
and keep the conditions under a name.

One HTML form carries everything and works without JavaScript: each button posts it to its
own endpoint (``formaction``), "add a condition" and "add a group" come back with an empty
row. The small same-origin script (static/extraction.js) adds rows without a round trip
and shows 作成中 while an export is being made (the response sets a cookie with the token
the form sent; the script watches for it). Rules and permissions are in
app/services/extraction.py; the view reads the form into a definition dict and back.
"""
from __future__ import annotations

import re

from flask import (Response, abort, current_app, flash, jsonify, redirect, request,
                   url_for)
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import gettext as _
from flask_login import current_user

from app.extensions import session
from app.services import extraction, file_store, protected_zip
from app.services.actors import actor_of
from app.services.errors import DomainError, NotPermittedError
from app.views import protected_exports
from app.views.feedback import flash_refusal

EXTRA_CONDITION_ROWS = 1  # empty rows offered after the filled ones in each group
_TOKEN = re.compile(r"[A-Za-z0-9]{1,40}")
DOWNLOAD_COOKIE = "extraction_download"


def _actor():
    return actor_of(current_user)


def _int(text, default: int, low: int, high: int) -> int:
    try:
        value = int(str(text or "").strip())
    except ValueError:
        return default
    return min(max(value, low), high)


def definition_from_form(form) -> dict:
    """The form's fields as a definition dict (the service checks it). Rows without a
    field are ignored (the empty rows the form offers)."""
    groups = []
    for g in range(_int(form.get("groups"), 1, 1, extraction.MAX_GROUPS)):
        conditions = []
        rows = _int(form.get(f"g{g}_rows"), 1, 0, extraction.MAX_CONDITIONS + 1)
        for c in range(rows):
            prefix = f"g{g}_c{c}_"
            name = (form.get(prefix + "field") or "").strip()
            if not name or form.get(prefix + "remove"):
                continue
            op, unit = extraction.split_form_op(form.get(prefix + "op") or "")
            value = form.get(prefix + "value") or ""
            condition = {"field": name, "op": op}
            if op in extraction.RELATIVE:
                condition["n"], condition["unit"] = value, unit or ""
            elif op == extraction.RANGE:
                condition["from"], condition["to"] = value, form.get(prefix + "to") or ""
            elif op == extraction.IN:
                condition["values"] = value
            elif op not in (extraction.EMPTY, extraction.NOT_EMPTY):
                condition["value"] = value
            conditions.append(condition)
        if conditions:
            groups.append({"op": form.get(f"g{g}_op") or "and", "conditions": conditions})
    chosen = form.getlist("col")
    positions = {name: _int(form.get(f"pos_{name}"), 999, 0, 999) for name in chosen}
    original = {name: i for i, name in enumerate(chosen)}
    columns = sorted(chosen, key=lambda n: (positions[n], original[n]))
    order = []
    if form.get("sort"):
        order.append({"field": form.get("sort"), "desc": bool(form.get("sort_desc"))})
    return {"subject": form.get("subject") or "cards", "join": form.get("join") or "and",
            "groups": groups, "columns": columns, "order": order}


def _state_from_definition(data: dict) -> dict:
    """What the form shows for a definition (also a rejected one: rows as typed)."""
    subject = extraction.SUBJECTS.get(data.get("subject")) or extraction.CARDS
    groups = []
    for group in data.get("groups") or []:
        rows = []
        for cond in group.get("conditions") or []:
            op = cond.get("op", "")
            if op in extraction.RELATIVE:
                n = cond.get("n", cond.get("value"))
                rows.append({"field": cond.get("field", ""),
                             "op": extraction.form_op(op, cond.get("unit")),
                             "value": "" if n is None else str(n), "to": "",
                             "note": _relative_note(op, n, cond.get("unit"))})
                continue
            values = cond.get("values")
            if isinstance(values, list):
                values = "、".join(str(v) for v in values)
            value = values if values is not None else cond.get("value", cond.get("from", ""))
            rows.append({"field": cond.get("field", ""), "op": op,
                         "value": "" if value is None else _shown(subject, cond, value),
                         "to": "" if cond.get("to") is None else str(cond.get("to")),
                         "note": ""})
        groups.append({"op": group.get("op", "and"), "rows": rows})
    if not groups:
        groups.append({"op": "and", "rows": []})
    columns = data.get("columns") or subject.default_columns
    order = (data.get("order") or [{}])[0] or {}
    return {"subject": subject, "join": data.get("join", "and"), "groups": groups,
            "columns": [c for c in columns if subject.field(c)],
            "sort": order.get("field", ""), "sort_desc": bool(order.get("desc"))}


def _relative_note(op: str, n, unit) -> str:
    """The day a relative date stands for today: 「2026-06-01 より前」, 「2026-11-24 以降」
    (empty when N or the unit cannot be read; the check says why)."""
    day = extraction.cutoff_today(n, unit)
    if day is None:
        return ""
    day = day.isoformat()
    if op == extraction.OLDER_THAN:
        return _("today: before %(day)s", day=day)
    return _("today: on or after %(day)s", day=day)


def _typed_notes(state: dict, query) -> None:
    """Where the value was read differently from what was typed (ヤマダ for やまだ,
    1965-12-31 for S40.12.31), a note under the box says what was searched; the box keeps
    the text as typed."""
    for group, parsed in zip(state["groups"], query.groups):
        for row, condition in zip(group["rows"], parsed.conditions):
            raw = condition.raw
            if condition.op in extraction.RELATIVE or condition.op in (
                    extraction.EMPTY, extraction.NOT_EMPTY):
                continue
            if condition.op == extraction.RANGE:
                clean = "〜".join(_shown(query.subject, raw, v) if v is not None else ""
                                 for v in (raw.get("from"), raw.get("to")))
                typed = "〜".join((row["value"].strip(), row["to"].strip()))
            elif condition.op == extraction.IN:
                clean = _shown(query.subject, raw, "、".join(str(v) for v in raw["values"]))
                typed = "、".join(p.strip() for p in re.split(r"[,、，\n]+", row["value"])
                                 if p.strip())
            else:
                clean = _shown(query.subject, raw, raw.get("value"))
                typed = row["value"].strip()
            if clean != typed:
                row["note"] = _("searched as %(value)s", value=clean)


def _shown(subject, cond, value) -> str:
    """A stored value as the form shows it (a choice by its label, yes/no in words)."""
    f = subject.field(cond.get("field", ""))
    if f is None:
        return str(value)
    if f.type == extraction.CHOICE:
        parts = [p for p in re.split(r"[、,]", str(value)) if p]
        return "、".join(str((f.labels or {}).get(p, p)) for p in parts)
    if f.type == extraction.BOOLEAN and isinstance(value, bool):
        return _("Yes") if value else _("No")
    return str(value)


class ExtractionView(BaseView):
    route_base = "/extraction"
    default_view = "index"
    method_permission_name = {
        "index": "index", "preview": "preview", "save": "save", "overwrite": "save",
        "save_shared": "share", "delete": "delete_own", "export_csv": "export",
        "export_xlsx": "export", "job": "export", "job_status": "export",
        "job_download": "export",
    }

    def _can(self, name: str) -> bool:
        return self.appbuilder.sm.has_access(name, self.class_permission_name)

    def _page(self, data: dict, *, result=None, failures=None, problems=None,
              status: int = 200, add_group: bool = False, add_row_in: int | None = None,
              saved=None, export: dict | None = None):
        state = _state_from_definition(data)
        if result is not None:
            _typed_notes(state, result.query)
        if add_group and len(state["groups"]) < extraction.MAX_GROUPS:
            state["groups"].append({"op": "and", "rows": []})
        for i, group in enumerate(state["groups"]):
            extra = EXTRA_CONDITION_ROWS + (1 if add_row_in == i else 0)
            group["rows"] = group["rows"] + [{"field": "", "op": "", "value": "", "to": "",
                                              "note": ""} for _n in range(extra)]
        subject = state["subject"]
        order = {name: i for i, name in enumerate(state["columns"])}
        fields = sorted(subject.fields, key=lambda f: (order.get(f.name, 999),
                                                       subject.fields.index(f)))
        actor = _actor()
        export = export or {}
        return self.render_template(
            "extraction/index.html", state=state, subjects=extraction.SUBJECTS.values(),
            fields=fields, ext=extraction, result=result, failures=failures or [],
            problems=problems, saved=saved,
            saved_list=extraction.saved_queries(session(), actor),
            me=actor.username, version_of=extraction.version_of,
            can_export=self._can("can_export") and extraction.may_export(actor),
            jobs=extraction.jobs_of(session(), actor) if self._can("can_export") else [],
            job_progress=extraction.job_progress,
            can_share=self._can("can_share") and extraction.may_share(actor),
            can_save=self._can("can_save"), can_delete=self._can("can_delete_own"),
            on_unmappable=export.get("on_unmappable", extraction.ON_UNMAPPABLE_STOP),
            replacement=export.get("replacement", extraction.DEFAULT_REPLACEMENT),
            encryption_required=protected_exports.encryption_required("extraction"),
        ), status

    @expose("/")
    @has_access
    def index(self):
        """The screen: empty, or a saved query's conditions (``?saved=<id>``), or a
        subject switched (``?subject=bookings``). Reads only."""
        saved = None
        data = {"subject": request.args.get("subject") or "cards"}
        if request.args.get("saved"):
            from app.services.fields import parse_id

            saved = extraction.get_saved(session(), parse_id(request.args.get("saved")),
                                         _actor())
            if saved is None:
                abort(404)
            data = extraction.definition_of(saved)
        return self._page(data, saved=saved)

    def _saved_of_form(self):
        from app.services.fields import parse_id

        return extraction.get_saved(session(), parse_id(request.form.get("saved_id")),
                                    _actor())

    @expose("/preview", methods=["POST"])
    @has_access
    def preview(self):
        """The count and the first rows; also "add a condition/group" and a subject
        switched (the form comes back with what was typed). Writes nothing."""
        data = definition_from_form(request.form)
        saved = self._saved_of_form()
        if request.form.get("switch"):
            return self._page({"subject": data["subject"]})
        if request.form.get("add_group"):
            return self._page(data, add_group=True, saved=saved)
        if request.form.get("add_row") is not None and request.form.get("add_row") != "":
            return self._page(data, add_row_in=_int(request.form.get("add_row"), 0, 0,
                                                    extraction.MAX_GROUPS), saved=saved)
        try:
            result = extraction.preview(session(), data)
        except DomainError as error:
            return self._page(data, failures=_failures(error), saved=saved)
        # the form comes back as typed; a note says where a value was read differently
        return self._page(data, result=result, saved=saved)

    # --- exports --------------------------------------------------------------------------

    def _export_options(self) -> dict:
        return {"on_unmappable": request.form.get("on_unmappable")
                or extraction.ON_UNMAPPABLE_STOP,
                "replacement": request.form.get("replacement") or ""}

    def _refused(self, data, error, **extra):
        if isinstance(error, NotPermittedError):
            abort(403)
        problems = getattr(error, "check", None)
        return self._page(data, failures=_failures(error), problems=problems,
                          saved=self._saved_of_form(), export=self._export_options(),
                          **extra)

    @expose("/export/csv", methods=["POST"])
    @has_access
    def export_csv(self):
        """CSV, streamed: checked and audited first (the role, the conditions, for CP932
        the characters it cannot hold), then written chunk by chunk as the rows come from
        the database, so memory stays flat and no page waits for the whole file."""
        data = definition_from_form(request.form)
        encoding = (extraction.CP932 if request.values.get("encoding") == extraction.CP932
                    else extraction.UTF8_BOM)
        options = self._export_options()
        try:
            chosen = protected_exports.choice()
            if extraction.wants_job(session(), data, fmt=extraction.FORMAT_CSV,
                                    actor=_actor()):
                return self._start_job(data, extraction.FORMAT_CSV, encoding=encoding,
                                       encrypt=chosen.encrypt, **options)
            plan = extraction.plan_csv(session(), data, actor=_actor(), encoding=encoding,
                                       on_unmappable=options["on_unmappable"],
                                       replacement=options["replacement"],
                                       encrypted=chosen.encrypt)
        except DomainError as error:
            return self._refused(data, error)
        if chosen.encrypt:
            # written through into the encrypted ZIP chunk by chunk, then offered once
            chunks = extraction.csv_chunks(current_app._get_current_object(), plan)
            return protected_exports.offer(
                self, [protected_zip.Part(plan.filename, chunks)], chosen, plan.filename,
                back=url_for(".index"))
        if plan.replaced:
            flash(_("%(n)d characters that Shift_JIS (CP932) cannot hold were replaced by "
                    "%(char)s in %(file)s.", n=plan.replaced, char=plan.replacement,
                    file=plan.filename), "warning")
        charset = "shift_jis" if encoding == extraction.CP932 else "utf-8"
        response = Response(
            extraction.csv_chunks(current_app._get_current_object(), plan),
            mimetype="text/csv", content_type=f"text/csv; charset={charset}",
            headers={"Content-Disposition": f"attachment; filename={plan.filename}",
                     "X-Extraction-Rows": str(plan.rows),
                     "X-Replaced-Characters": str(plan.replaced),
                     "Cache-Control": "no-store"})
        return _with_done_cookie(response, plan.rows, plan.replaced)

    @expose("/export/xlsx", methods=["POST"])
    @has_access
    def export_xlsx(self):
        """XLSX: a background job writes the file (XlsxWriter constant_memory); the person
        is sent to the job's page, which shows the progress and offers the file."""
        data = definition_from_form(request.form)
        try:
            chosen = protected_exports.choice()
            return self._start_job(data, extraction.FORMAT_XLSX, encrypt=chosen.encrypt)
        except DomainError as error:
            return self._refused(data, error)

    def _start_job(self, data, fmt: str, *, encrypt: bool = False, **options):
        """The job's file stays on the server; encryption is chosen again when it is
        downloaded (a typed password is never kept with the job): ``encrypt=1`` only ticks
        the box on the job's page."""
        job = extraction.start_job(session(), data, actor=_actor(), fmt=fmt, **options)
        extraction.launch(current_app._get_current_object(), job)
        return redirect(url_for(".job", token=job.token, **({"encrypt": 1} if encrypt else {})))

    def _own_job(self, token: str):
        job = extraction.get_job(session(), token, _actor())
        if job is None:
            if not extraction.may_export(_actor()):
                abort(403)
            abort(404)
        return job

    @expose("/jobs/<token>")
    @has_access
    def job(self, token: str):
        """A background export: its progress (the script polls the status every second;
        without a script the page reloads itself) and, when done, the download. Reads
        only."""
        job = self._own_job(token)
        return self.render_template(
            "extraction/job.html", job=job, progress=extraction.job_progress(job),
            ext=extraction, encrypt_checked=request.args.get("encrypt") == "1",
            encryption_required=protected_exports.encryption_required("extraction"))

    @expose("/jobs/<token>/status")
    @has_access
    def job_status(self, token: str):
        """The progress as JSON (same origin; polled by static/extraction_job.js)."""
        job = self._own_job(token)
        response = jsonify(extraction.job_progress(job))
        response.headers["Cache-Control"] = "no-store"
        return response

    @expose("/jobs/<token>/download", methods=["POST"])
    @has_access
    def job_download(self, token: str):
        """The finished file, for its owner only (audited as a download)."""
        try:
            chosen = protected_exports.choice()
            stored, name, mimetype = extraction.download_job(
                session(), token, actor=_actor(), encrypted=chosen.encrypt)
        except NotPermittedError:
            abort(403)
        except extraction.JobNotFoundError:
            abort(404)
        except DomainError as error:
            flash_refusal(error)
            return redirect(url_for(".job", token=token))
        if chosen.encrypt:
            return protected_exports.offer(
                self, [protected_zip.Part(name, file_store.stream(stored))], chosen, name,
                back=url_for(".job", token=token))
        return protected_exports.send_stored(stored, mimetype, name)

    # --- saved queries ----------------------------------------------------------------------

    def _save(self, shared: bool):
        data = definition_from_form(request.form)
        try:
            saved = extraction.save_query(session(), data, request.form.get("name"),
                                          actor=_actor(), shared=shared)
        except NotPermittedError:
            abort(403)
        except DomainError as error:
            return self._page(data, failures=_failures(error), saved=self._saved_of_form())
        flash(_("The conditions were saved as %(name)s.", name=saved.name), "success")
        return redirect(url_for(".index", saved=saved.id))

    @expose("/save", methods=["POST"])
    @has_access
    def save(self):
        """Keep the conditions under a name, for the person alone."""
        return self._save(shared=False)

    @expose("/save-shared", methods=["POST"])
    @has_access
    def save_shared(self):
        """Keep the conditions under a name for the whole office (管理者)."""
        return self._save(shared=True)

    @expose("/saved/<id:query_id>/overwrite", methods=["POST"])
    @has_access
    def overwrite(self, query_id: int):
        data = definition_from_form(request.form)
        try:
            saved = extraction.overwrite_query(session(), query_id,
                                               request.form.get("version"), data,
                                               actor=_actor())
        except NotPermittedError:
            abort(403)
        except DomainError as error:
            return self._page(data, failures=_failures(error), saved=self._saved_of_form())
        flash(_("The saved conditions %(name)s were updated.", name=saved.name), "success")
        return redirect(url_for(".index", saved=saved.id))

    @expose("/saved/<id:query_id>/delete", methods=["POST"])
    @has_access
    def delete(self, query_id: int):
        try:
            name = extraction.delete_query(session(), query_id, request.form.get("version"),
                                           actor=_actor())
        except NotPermittedError:
            abort(403)
        except DomainError as error:
            flash_refusal(error)
            return redirect(url_for(".index"))
        flash(_("The saved conditions %(name)s were deleted.", name=name), "success")
        return redirect(url_for(".index"))


def _failures(error: DomainError) -> list[str]:
    lines = [str(error.message)]
    lines += [f"{where}: {why}" for where, why in getattr(error, "failures", [])]
    return lines


def _with_done_cookie(response, rows: int, replaced: int):
    """Tell the screen's script the file has started (the token it sent), with the row
    count and the replaced characters, so it can stop showing 作成中."""
    token = request.form.get("download_token") or ""
    if _TOKEN.fullmatch(token):
        response.set_cookie(DOWNLOAD_COOKIE, f"{token}.{rows}.{replaced}", max_age=120,
                            path="/extraction", samesite="Strict",
                            secure=current_app.config.get("SESSION_COOKIE_SECURE", False))
    return response
