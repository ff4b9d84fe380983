"""Logs (issue 16 §4): a request id for every request, one access line per request, and
the app's log lines as text or JSON lines (LOG_FORMAT), each carrying the request id, the
user and the client address. docs/monitoring.md lists the fields.

The request id comes from a sane incoming ``X-Request-ID`` (nginx's ``$request_id``),
else a new one; it is in ``g.request_id``, on the response's ``X-Request-ID`` header, in
every log record written while the request is served, and on every error page, so a
clerk can quote it."""
from __future__ import annotations

import json
import logging
import re
import secrets
import sys
import time
import traceback
from datetime import datetime

from flask import Flask, g, has_request_context, request
from sqlalchemy import inspect

from app.clock import JST
from app.settings import settings

HEADER = "X-Request-ID"
SANE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
ACCESS_LOGGER = "app.access"
NONE = "-"
# Attributes every LogRecord has: what is left of a record's __dict__ came from extra=.
_RECORD_KEYS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message",
                                                                          "asctime"}
_CONTEXT_KEYS = ("request_id", "user", "client", "method", "path")


def new_request_id() -> str:
    """16 hexadecimal digits: short enough to read out on the phone."""
    return secrets.token_hex(8)


def request_id() -> str:
    """The current request's id ("-" outside a request); made on first use."""
    if not has_request_context():
        return NONE
    if "request_id" not in g:
        incoming = request.headers.get(HEADER, "")
        g.request_id = incoming if SANE_ID.fullmatch(incoming) else new_request_id()
    return g.request_id


def _loaded_username(user) -> str | None:
    """A signed-in user's name without touching the database (a log line may be written
    while the database is failing): only when the row's name is already loaded."""
    try:
        if user is None or not user.is_authenticated:
            return None
        return inspect(user).dict.get("username")
    except Exception:  # anonymous user, detached or not a mapped object
        return None


def note_user(username: str | None) -> None:
    """The request's signed-in user, noted when the account is loaded (app/security.py:
    a session or a JWT), before a commit may expire the row the log would read it from."""
    if username and has_request_context():
        g.log_user = username


def current_username() -> str:
    if not has_request_context():
        return NONE
    known = g.get("log_user")
    if known:
        return known
    jwt_user = (g.get("_jwt_extended_jwt_user") or {}).get("loaded_user")
    for user in (g.get("_login_user"), jwt_user):
        name = _loaded_username(user)
        if name:
            g.log_user = name
            return name
    return NONE


class RequestContextFilter(logging.Filter):
    """Adds the request's id, user, client address, method and path to each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context():
            values = {"request_id": request_id(), "user": current_username(),
                      "client": request.remote_addr or NONE, "method": request.method,
                      "path": request.path}
        else:
            values = dict.fromkeys(_CONTEXT_KEYS, NONE)
        for key, value in values.items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


def _time(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, JST).isoformat(timespec="milliseconds")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the request's fields, and
    whatever the record carries in ``extra`` (status, duration_ms of the access line)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": _time(record), "level": record.levelname, "logger": record.name,
                 "message": record.getMessage()}
        for key, value in vars(record).items():
            if key not in _RECORD_KEYS and not key.startswith("_"):
                entry[key] = value if isinstance(value, (str, int, float, bool)) or \
                    value is None else str(value)
        if record.exc_text:  # made once (and cut of a database row: install_redaction)
            entry["exception"] = record.exc_text
        elif record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def formatTime(self, record, datefmt=None) -> str:
        return _time(record)


class _StderrHandler(logging.StreamHandler):
    """Standard error as it is when a line is written (not when the app was built)."""

    def __init__(self):
        super().__init__()

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


# --- database errors in the log: the values left out ------------------------------------------
#
# hide_parameters (config.py) keeps the bound values out of SQLAlchemy's text, but the
# server's own DETAIL line repeats them: "Failing row contains (7, ..., 山田太郎, ...)",
# "Key (email)=(taro@example.jp) already exists". Every record (whatever handler or
# formatter writes it, gunicorn's and the test's too) gets its exception text and
# message with those parts cut, once, when the record is made.

_DETAIL = re.compile(r"^(\s*DETAIL:).*$|Failing row contains \(.*?\)(?=\.?\s*$)"
                     r"|Key \((.*?)\)=\(.*?\)", re.M)


def redact_database_detail(text: str) -> str:
    """The text without the values a database error repeats (its DETAIL line)."""
    def cut(match: re.Match) -> str:
        if match.group(1):
            return f"{match.group(1)}  (values left out of the log)"
        if match.group(2) is not None:
            return f"Key ({match.group(2)})=(...)"
        return "Failing row contains (...)"
    return _DETAIL.sub(cut, text)


def _needs_redaction(text: str) -> bool:
    return "DETAIL:" in text or "Failing row contains" in text or "Key (" in text


class RedactedError(Exception):
    """Stands in a record's ``exc_info`` for an exception whose text repeated a database
    row: a handler that formats ``exc_info`` itself gets the frames and the cut text."""


def _redacting_factory(base):
    def make(*args, **kwargs) -> logging.LogRecord:
        record = base(*args, **kwargs)
        try:
            try:  # the message as it will be written: its arguments put in first
                message = record.getMessage()
            except Exception:  # noqa: BLE001 - left for the handler to report as before
                message = None
            if message is not None and _needs_redaction(message):
                record.msg, record.args = redact_database_detail(message), ()
            if record.exc_info and record.exc_info[1] is not None:
                kind, error, trace = record.exc_info
                text = "".join(traceback.format_exception(kind, error, trace)).rstrip("\n")
                if _needs_redaction(text):
                    record.exc_text = redact_database_detail(text)
                    stand_in = RedactedError(f"{kind.__name__}: "
                                             f"{redact_database_detail(str(error))}")
                    record.exc_info = (RedactedError, stand_in, trace)
        except Exception:  # noqa: BLE001 - a log line is never lost over its redaction
            pass
        return record
    make._mnc_redacting = True
    return make


def install_redaction() -> None:
    """Once per process: every log record made from now on is redacted."""
    base = logging.getLogRecordFactory()
    if not getattr(base, "_mnc_redacting", False):
        logging.setLogRecordFactory(_redacting_factory(base))


def configure_logging(log_format: str) -> logging.Handler:
    """One handler on the root logger, writing to standard error in ``log_format``;
    building the app again replaces it. The app's loggers log from INFO."""
    install_redaction()
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_mnc_handler", False)]:
        root.removeHandler(handler)
    handler = _StderrHandler()
    handler._mnc_handler = True
    handler.addFilter(RequestContextFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root.addHandler(handler)
    app_logger = logging.getLogger("app")
    if app_logger.level == logging.NOTSET or app_logger.level > logging.INFO:
        app_logger.setLevel(logging.INFO)
    from flask.logging import default_handler
    app_logger.removeHandler(default_handler)  # the root handler writes the app's lines
    return handler


# --- the hooks --------------------------------------------------------------------------

def _begin() -> None:
    g.log_started = time.perf_counter()
    request_id()


def _remember_user() -> None:
    """The signed-in user's name, read once while the row is fresh: the access line is
    written after commits that expire it."""
    from flask_login import current_user

    name = _loaded_username(current_user._get_current_object())
    if name:
        g.log_user = name


def _finish(response):
    response.headers[HEADER] = request_id()
    started = g.get("log_started")
    duration = round((time.perf_counter() - started) * 1000, 1) if started else None
    logging.getLogger(ACCESS_LOGGER).info(
        "%s %s %s %sms", request.method, request.path, response.status_code, duration,
        extra={"status": response.status_code, "duration_ms": duration})
    return response


def install(app: Flask) -> None:
    """Logging as LOG_FORMAT says, the request id and the access line (app/web.py)."""
    with app.app_context():
        configure_logging(settings().log_format)
    # first before_request, last after_request: the id exists before any other hook logs,
    # and the line is written with the final status
    app.before_request_funcs.setdefault(None, []).insert(0, _begin)
    app.before_request(_remember_user)
    app.after_request_funcs.setdefault(None, []).insert(0, _finish)
    app.jinja_env.globals["request_id"] = request_id
