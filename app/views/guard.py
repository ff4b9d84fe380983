"""Input checks in front of Flask-AppBuilder's own CRUD endpoints, for every ModelView
(ours and FAB's security views alike): FAB trusts what the URL and the form say and
answers 500 to an unknown action, a missing upload folder, a non-numeric page number or
a filter value the database cannot compare. Checked here, before FAB's code runs:

- ``…/action_post`` and ``…/action/<name>/<pk>``: the action must exist and every
  selected row must exist, else 400 (404 for the URL form) and nothing runs;
- ``…/download/<name>``: 404 unless an upload folder is configured and holds the file;
- ``…/delete/<pk>``: a record other rows still refer to is refused with the reason
  (app.services.deletion), shown as an error;
- list/show/add/edit: page numbers, page sizes and search filters that FAB cannot use are
  removed (a redirect to the same page without them, with a message), so the list still
  shows instead of an error.

For FAB's REST APIs (ModelRestApi): an id out of range is 404, and list arguments (rison
``q``) whose page or filter values the database cannot take are 400, never a 500.

And in front of the REST APIs that accept the browser's session (``allow_browser_login``):
FAB exempts them from CSRF, which is right for a JWT but lets another site post a signed-in
clerk's cookie. A write signed with the session cookie must carry the CSRF token (form field
or ``X-CSRFToken`` header, as the screens' forms do); a call with a JWT
(``Authorization: Bearer``) needs none, a cross-site page cannot send that header.
"""
from __future__ import annotations

import math
import os
import re
from urllib.parse import urlencode

import prison
from dateutil import parser as date_parser
from flask import current_app, flash, jsonify, redirect, render_template, request
from flask_appbuilder.api import BaseApi, ModelRestApi
from flask_appbuilder.baseviews import BaseCRUDView
from flask_appbuilder.models.filters import FilterRelation
from flask_babel import gettext as _
from flask_jwt_extended import verify_jwt_in_request
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from sqlalchemy import BigInteger
from werkzeug.security import safe_join

from app.extensions import csrf
from app.services.deletion import InUseError, ensure_deletable

INT_MAX = 2**31 - 1
BIGINT_MAX = 2**63 - 1
MAX_PAGE = 100_000
MAX_PAGE_SIZE = 1000
MAX_FILTER_LENGTH = 500
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
FILTER_ARG = re.compile(r"_flt_(\d)_(.*)")  # as FAB's urltools.get_filter_args reads it
PAGE_ARG = re.compile(r"page_(.*)")
PSIZE_ARG = re.compile(r"psize_(.*)")
ORDER_ARG = re.compile(r"_oc_(.*)")
LIST_ENDPOINTS = {"list", "show", "add", "edit"}
PK_ENDPOINTS = {"show", "edit", "delete"}


def _pk(value, model=None) -> int | None:
    """A row id from the URL or the form: ASCII digits within the id column's range
    (PostgreSQL's INTEGER ends at 2**31 - 1)."""
    value = str(value or "").strip()
    if not re.fullmatch(r"[0-9]{1,19}", value):
        return None
    limit = INT_MAX
    if model is not None:
        key = model.__mapper__.primary_key
        if len(key) == 1 and isinstance(key[0].type, BigInteger):
            limit = BIGINT_MAX
    number = int(value)
    return number if 0 < number <= limit else None


def _crud_view(endpoint: str | None):
    if not endpoint or "." not in endpoint:
        return None, None
    view_name, method = endpoint.split(".", 1)
    view = current_app.extensions.get("views_by_name", {}).get(view_name)
    return (view, method) if isinstance(view, BaseCRUDView) else (None, None)


def _refused(message: str, status: int):
    target = request.referrer or "/"
    if not target.startswith(request.host_url):
        target = "/"
    return render_template("refused.html", message=message, back=target), status


def _existing_rows(view, raw_pks) -> list | None:
    """The rows the form names, or None when one is not a valid id or does not exist."""
    rows = []
    for raw in raw_pks:
        pk = _pk(raw, view.datamodel.obj)
        if pk is None:
            return None
        row = view.datamodel.get(pk, view._base_filters)
        if row is None:
            return None
        rows.append(row)
    return rows


def _check_action_post(view):
    name = request.form.get("action", "")
    if name not in view.actions:
        return _refused(_("This operation does not exist on this screen. Nothing was changed."),
                        400)
    pks = request.form.getlist("rowid")
    if not pks or _existing_rows(view, pks) is None:
        return _refused(_("Some of the selected records no longer exist. Reload the list and "
                          "select them again. Nothing was changed."), 400)
    return None


def _check_action(view):
    name = (request.view_args or {}).get("name", "")
    pk = (request.view_args or {}).get("pk", "")
    if name not in view.actions or _existing_rows(view, [pk]) is None:
        return _refused(_("This operation does not exist on this screen. Nothing was changed."),
                        404)
    return None


def _check_download():
    folder = current_app.config.get("UPLOAD_FOLDER")
    filename = (request.view_args or {}).get("filename", "")
    path = safe_join(folder, filename) if folder else None
    if path is None or not os.path.isfile(path):
        return _refused(_("There is no such file."), 404)
    return None


def _int_in_range(value: str, low: int, high: int) -> bool:
    value = value.strip()
    if not re.fullmatch(r"-?[0-9]{1,20}", value):
        return False
    return low <= int(value) <= high


def _filter_value_ok(view, column: str, index: int, values: list[str]) -> bool:
    filters = view._filters._all_filters.get(column)
    if not filters:
        return True  # FAB ignores a column it has no filter for
    if index >= len(filters):
        return False
    datamodel = view.datamodel
    flt = filters[index]
    for value in values:
        if len(value) > MAX_FILTER_LENGTH or CONTROL.search(value):
            return False
        if isinstance(flt, FilterRelation):
            if _pk(value, datamodel.get_related_model(column)) is None:
                return False
        elif datamodel.is_boolean(column):
            if value != "y":  # FAB's search form sends a ticked box as "y"
                return False
        elif datamodel.is_integer(column):
            column_type = datamodel.list_columns[column].type
            limit = BIGINT_MAX if isinstance(column_type, BigInteger) else INT_MAX
            if not _int_in_range(value, -limit, limit):
                return False
        elif datamodel.is_float(column) or datamodel.is_numeric(column):
            try:
                if not math.isfinite(float(value)) or abs(float(value)) > 1e15:
                    return False
            except ValueError:
                return False
        elif datamodel.is_date(column) or datamodel.is_datetime(column):
            if value.strip():
                try:
                    date_parser.parse(value)
                except (ValueError, OverflowError):
                    return False
    return True


def _bad_list_args(view) -> set[str]:
    bad = set()
    for arg in request.args:
        values = request.args.getlist(arg)
        if PSIZE_ARG.search(arg):
            if not all(_int_in_range(v, 1, MAX_PAGE_SIZE) for v in values):
                bad.add(arg)
        elif PAGE_ARG.search(arg) and not FILTER_ARG.search(arg):
            if not all(_int_in_range(v, 0, MAX_PAGE) for v in values):
                bad.add(arg)
        order = ORDER_ARG.search(arg)
        if order:
            ordered = current_app.extensions.get("views_by_name", {}).get(order.group(1))
            columns = getattr(ordered, "order_columns", None)
            if columns is not None and not all(v in columns for v in values):
                bad.add(arg)
        match = FILTER_ARG.search(arg)
        if match and not _filter_value_ok(view, match.group(2), int(match.group(1)), values):
            bad.add(arg)
    return bad


def _clean_list_args(view):
    bad = _bad_list_args(view)
    if not bad:
        return None
    if request.method != "GET":
        return _refused(_("The search conditions in the address are not valid. "
                          "Nothing was changed."), 400)
    kept = [(k, v) for k in request.args if k not in bad for v in request.args.getlist(k)]
    flash(_("Some search conditions or page numbers were not valid and were removed."),
          "warning")
    query = urlencode(kept)
    return redirect(request.path + ("?" + query if query else ""))


def guard_fab_requests():
    view, method = _crud_view(request.endpoint)
    if view is None:
        return None
    if method == "action_post":
        return _check_action_post(view)
    if method == "action":
        return _check_action(view)
    if method == "download":
        return _check_download()
    if method in PK_ENDPOINTS and "pk" in (request.view_args or {}):
        if _pk(request.view_args["pk"], view.datamodel.obj) is None:
            return _refused(_("This record does not exist."), 404)
    if method == "delete" and request.method == "POST":
        return _check_delete(view)
    if method in LIST_ENDPOINTS and request.args:
        return _clean_list_args(view)
    return None


def _check_delete(view):
    """A record other rows still refer to: the Japanese refusal of app.services.deletion as
    an error message, before FAB's delete (which would show it as a plain note)."""
    permission = "can_" + view.method_permission_name.get("delete", "delete")
    if permission not in view.base_permissions or \
            not current_app.appbuilder.sm.has_access(permission, view.class_permission_name):
        return None  # FAB refuses it (a view without delete: 403 for every role)
    item = view.datamodel.get(_pk(request.view_args["pk"], view.datamodel.obj),
                              view._base_filters)
    if item is None:
        return None  # FAB answers 404
    try:
        ensure_deletable(view.datamodel.session, item)
    except InUseError as error:
        flash(str(error.message), "danger")
        return view.post_delete_redirect()
    return None


LIST_OPERATORS = {"in", "not_in", "rel_m_m"}


def _api_value_ok(datamodel, column: str, value, allow_list: bool) -> bool:
    if isinstance(value, list) and allow_list:
        return all(_api_value_ok(datamodel, column, v, False) for v in value)
    if isinstance(value, bool) or value is None:
        return True
    if isinstance(value, int):
        return -INT_MAX <= value <= INT_MAX
    if isinstance(value, float):
        return math.isfinite(value) and abs(value) <= 1e15
    if not isinstance(value, str):
        return False  # a list or an object where FAB compares one value
    if len(value) > MAX_FILTER_LENGTH or CONTROL.search(value):
        return False
    if datamodel.is_integer(column) and value.strip():
        return _int_in_range(value, -INT_MAX, INT_MAX)
    if (datamodel.is_date(column) or datamodel.is_datetime(column)) and value.strip():
        try:
            date_parser.parse(value)
        except (ValueError, OverflowError):
            return False
    return True


def _api_arguments_ok(view) -> bool:
    """The rison ``q`` of a REST list: FAB checks its shape, not the values' range."""
    raw = request.args.get("q")
    if not raw:
        return True
    try:
        args = prison.loads(raw)
    except RecursionError:  # "((": prison recurses without end; FAB does not catch it
        return False
    except Exception:  # noqa: BLE001 - FAB answers 400 for other unreadable rison itself
        return True
    if not isinstance(args, dict):
        return True
    for key, low in (("page", 0), ("page_size", -1)):
        value = args.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or not low <= value <= MAX_PAGE):
            return False
    for flt in args.get("filters") or []:
        if not isinstance(flt, dict):
            continue  # FAB refuses it
        column = str(flt.get("col", ""))
        if not _api_value_ok(view.datamodel, column, flt.get("value"),
                             str(flt.get("opr", "")) in LIST_OPERATORS):
            return False
    return True


def guard_fab_api():
    """FAB's REST endpoints: ids out of range are not found; list arguments that the
    database cannot compare are refused with 400, instead of a 500."""
    view_name = (request.endpoint or "").split(".", 1)[0]
    view = current_app.extensions.get("views_by_name", {}).get(view_name)
    if not isinstance(view, ModelRestApi):
        return None
    if "pk" in (request.view_args or {}):
        if _pk(request.view_args["pk"], view.datamodel.obj) is None:
            return jsonify(message=_("This record does not exist.")), 404
    if not _api_arguments_ok(view):
        return jsonify(message=_("The search conditions are not valid.")), 400
    return None


def _valid_jwt() -> bool:
    try:
        verify_jwt_in_request()
    except Exception:  # noqa: BLE001 - expired, forged, revoked: not a JWT call
        return False
    return True


def guard_api_csrf():
    """A write to a REST API authenticated by the session cookie needs the CSRF token."""
    config = current_app.config
    if not config.get("WTF_CSRF_ENABLED", True):
        return None
    if request.method not in config.get("WTF_CSRF_METHODS", ("POST", "PUT", "PATCH", "DELETE")):
        return None
    view_name = (request.endpoint or "").split(".", 1)[0]
    view = current_app.extensions.get("views_by_name", {}).get(view_name)
    if not isinstance(view, BaseApi) or not getattr(view, "allow_browser_login", False):
        return None
    if request.headers.get("Authorization", "").lower().startswith("bearer ") \
            and _valid_jwt():
        return None  # JWT: no browser sends this header on its own
    # A junk Bearer header must not skip the check: FAB would then fall back to the cookie.
    if not current_user.is_authenticated:
        return None  # no session: FAB asks for a JWT
    try:
        csrf.protect()
    except CSRFError:
        return jsonify(message=_("This request from the browser had no valid form token, "
                                 "so nothing was changed. Reload the page and try again.")), 400
    return None


def install(app) -> None:
    app.before_request(guard_fab_requests)
    app.before_request(guard_api_csrf)
    app.before_request(guard_fab_api)
