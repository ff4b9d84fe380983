"""The product's own settings, typed and read once (issue 11 §5).

``config.py`` holds the values (from the environment, with their defaults, in one place).
:func:`load` turns them into one frozen :class:`Settings` when the app is built: every
value is checked for its type and range there, so a wrong setting stops the start with a
plain message instead of failing in the middle of a resident's booking. Code reads
``settings()`` (the current app's) and never ``config.get(KEY, default)``: a default lives
only in config.py.

Flask's and Flask-AppBuilder's own keys (SECRET_KEY, LANGUAGES, AUTH_ROLE_ADMIN, WTF_*,
RATELIMIT_*) stay in ``app.config`` where those libraries read them.

Tests that change a setting call :func:`configure`, which updates the config and builds
the settings again.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import time

from flask import Flask, current_app

_KEY = "app_settings"
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off", "")


def parse_bool(value, name: str = "value") -> bool:
    """The one boolean parser for settings: a bool, or 1/true/yes/on, 0/false/no/off."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    text = str(value if value is not None else "").strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise ValueError(f"{name} must be 1/true/yes/on or 0/false/no/off, not {value!r}")


def parse_hhmm(value, name: str = "value") -> time:
    """'06:30' -> time(6, 30)."""
    if isinstance(value, time):
        return value
    try:
        hours, minutes = str(value).strip().split(":")
        return time(int(hours), int(minutes))
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a time HH:MM, not {value!r}") from None


@dataclass(frozen=True)
class Settings:
    # the site
    city_name: str
    city_contact: str
    public_base_url: str
    # sign-in and sessions
    login_rate_limit: int
    login_rate_window_seconds: int
    login_lock_threshold: int
    login_lock_minutes: int
    login_lock_max_minutes: int
    idle_timeout_minutes: int
    # operating hours
    staff_hours_open: time
    staff_hours_close: time
    staff_closed_day_after_third_saturday: bool
    staff_closed_year_end: tuple[str, str] | None
    staff_closed_dates: frozenset[str]
    staff_hours_enforced: bool
    staff_hours_admin_bypass: bool
    maintenance_banner_days: int
    # mail
    mail_server: str
    mail_port: int
    mail_starttls: bool
    mail_username: str
    mail_password: str
    mail_from: str
    mail_timeout_seconds: int
    # card ledger
    notice_number_letters: int
    notice_number_digits: int
    notice_number_alphabet: str
    discard_after_notice_months: int
    discard_after_renotice_months: int
    discard_after_return_months: int
    # bookings
    slots_ahead_days: int
    hold_minutes: int
    view_minutes: int
    identity_ip_attempts: int
    identity_ip_window_minutes: int
    identity_number_failures: int
    identity_lock_minutes: int
    few_seats_share: float
    late_grace_minutes: int
    # audit
    audit_strict_actor: bool
    # scanned papers of an intake
    document_max_bytes: int
    document_max_files: int
    document_max_pages: int
    document_retention_years: int
    document_keys: str
    document_key_current: str
    # background exports of the extraction screen
    export_job_min_rows: int
    export_keep_minutes: int
    export_stale_minutes: int
    export_jobs_inline: bool
    # backups (app/services/backups.py)
    backup_dir: str
    backup_key: str
    backup_keep_daily: int
    backup_keep_monthly: int
    backup_warn_hours: int
    # the worker (app/services/jobs.py)
    reminder_hour: int
    backup_hour: int
    worker_backups: bool
    worker_interval_seconds: int
    # monitoring and logs (app/metrics.py, app/observability.py)
    metrics_allow: tuple  # of networks as text ("127.0.0.1/32"), checked by parse_networks
    metrics_token: str
    log_format: str


_POSITIVE = {"login_rate_limit", "login_rate_window_seconds", "login_lock_threshold",
             "login_lock_minutes", "login_lock_max_minutes", "idle_timeout_minutes",
             "mail_port", "mail_timeout_seconds", "notice_number_letters",
             "notice_number_digits", "slots_ahead_days", "hold_minutes", "view_minutes", "identity_ip_attempts",
             "identity_ip_window_minutes", "identity_number_failures",
             "identity_lock_minutes", "document_max_bytes", "document_max_files",
             "document_max_pages", "document_retention_years", "export_job_min_rows",
             "export_keep_minutes", "export_stale_minutes", "backup_keep_daily",
             "backup_warn_hours", "worker_interval_seconds"}
_NOT_NEGATIVE = {"maintenance_banner_days", "discard_after_notice_months",
                 "discard_after_renotice_months", "discard_after_return_months",
                 "late_grace_minutes", "backup_keep_monthly", "reminder_hour", "backup_hour"}


def _value(config, name: str, kind):
    key = name.upper()
    if key not in config:
        raise ValueError(f"setting {key} is missing (config.py defines every setting)")
    raw = config[key]
    if kind is bool:
        return parse_bool(raw, key)
    if kind is int:
        if isinstance(raw, bool):
            raise ValueError(f"{key} must be a whole number, not {raw!r}")
        try:
            value = int(raw)
        except (TypeError, ValueError):
            raise ValueError(f"{key} must be a whole number, not {raw!r}") from None
        if name in _POSITIVE and value < 1 or name in _NOT_NEGATIVE and value < 0:
            raise ValueError(f"{key} must be {'at least 1' if name in _POSITIVE else '0 or more'}"
                             f", not {value}")
        return value
    if kind is float:
        try:
            return float(raw)
        except (TypeError, ValueError):
            raise ValueError(f"{key} must be a number, not {raw!r}") from None
    if kind is time:
        return parse_hhmm(raw, key)
    return raw


def parse_document_keys(text: str) -> dict[str, bytes]:
    """DOCUMENT_KEYS "id1:base64,id2:base64" -> {id: 32-byte key}."""
    import base64
    import binascii

    keys = {}
    for part in (p.strip() for p in str(text or "").split(",")):
        if not part:
            continue
        key_id, _, encoded = part.partition(":")
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if not key_id.strip() or len(key_id.strip()) > 40 or len(key) != 32:
            raise ValueError("DOCUMENT_KEYS must be id:base64 pairs of 32-byte keys, "
                             "separated by commas")
        keys[key_id.strip()] = key
    return keys


def parse_backup_key(text: str) -> bytes:
    """BACKUP_KEY: 32 bytes as 64 hex digits or as base64."""
    import base64
    import binascii

    text = str(text or "").strip()
    key = b""
    if len(text) == 64:
        try:
            key = bytes.fromhex(text)
        except ValueError:
            key = b""
    if not key:
        try:
            key = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            key = b""
    if len(key) != 32:
        raise ValueError("BACKUP_KEY must be 32 bytes, written as 64 hex digits or base64")
    return key


def _check_document_keys(values: dict, config) -> None:
    for name in ("document_keys", "document_key_current"):
        values[name] = str(values[name] or "").strip()
    keys = parse_document_keys(values["document_keys"])
    if keys and values["document_key_current"] not in keys:
        raise ValueError("DOCUMENT_KEY_CURRENT must name one of the keys in DOCUMENT_KEYS")
    if not keys and values["document_key_current"]:
        raise ValueError("DOCUMENT_KEY_CURRENT is set but DOCUMENT_KEYS is empty")
    limit = config.get("MAX_CONTENT_LENGTH")
    if limit is not None and int(limit) < values["document_max_bytes"]:
        raise ValueError("MAX_CONTENT_LENGTH must allow at least one file of "
                         "DOCUMENT_MAX_BYTES")


LOG_FORMATS = ("text", "json")
METRICS_TOKEN_MIN_LENGTH = 16


def parse_networks(text, name: str = "value") -> tuple:
    """"127.0.0.1/32, ::1, 10.0.0.0/8" -> the networks (a bare address is a /32 or /128)."""
    import ipaddress

    parts = text if isinstance(text, (list, tuple)) else str(text or "").split(",")
    networks = []
    for part in (str(p).strip() for p in parts):
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"{name} must be IP addresses or networks (CIDR) separated "
                             f"by commas; {part!r} is neither") from None
    return tuple(networks)


def _check_monitoring(values: dict) -> None:
    values["metrics_allow"] = tuple(
        str(network) for network in parse_networks(values["metrics_allow"], "METRICS_ALLOW"))
    values["metrics_token"] = str(values["metrics_token"] or "").strip()
    if values["metrics_token"] and len(values["metrics_token"]) < METRICS_TOKEN_MIN_LENGTH:
        raise ValueError(f"METRICS_TOKEN must be at least {METRICS_TOKEN_MIN_LENGTH} "
                         "characters (or empty: no token access)")
    values["log_format"] = str(values["log_format"] or "").strip().lower()
    if values["log_format"] not in LOG_FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}")


def build(config) -> Settings:
    """Check and type every setting of ``config`` (a mapping such as ``app.config``)."""
    values = {}
    for field in fields(Settings):
        kind = {"int": int, "bool": bool, "float": float, "time": time}.get(str(field.type))
        values[field.name] = _value(config, field.name, kind)
    span = values["staff_closed_year_end"]
    values["staff_closed_year_end"] = tuple(span) if span else None
    values["staff_closed_dates"] = frozenset(values["staff_closed_dates"] or ())
    for name in ("city_name", "city_contact", "public_base_url", "mail_server",
                 "mail_username", "mail_password", "mail_from", "notice_number_alphabet"):
        values[name] = str(values[name] or "")
    values["public_base_url"] = values["public_base_url"].rstrip("/")
    if not 0 <= values["few_seats_share"] <= 1:
        raise ValueError("FEW_SEATS_SHARE must be between 0 and 1")
    _check_document_keys(values, config)
    for name in ("backup_dir", "backup_key"):
        values[name] = str(values[name] or "").strip()
    if values["backup_key"]:
        parse_backup_key(values["backup_key"])
    for name in ("reminder_hour", "backup_hour"):
        if values[name] > 23:
            raise ValueError(f"{name.upper()} must be an hour from 0 to 23, not {values[name]}")
    _check_monitoring(values)
    if len(set(values["notice_number_alphabet"])) < 2:
        raise ValueError("NOTICE_NUMBER_ALPHABET needs at least two letters")
    return Settings(**values)


def load(app: Flask) -> Settings:
    """Build the app's settings from its config (create_app calls this once)."""
    app.extensions[_KEY] = build(app.config)
    return app.extensions[_KEY]


def settings() -> Settings:
    """The current app's settings."""
    return current_app.extensions[_KEY]


def configure(app: Flask, **values) -> Settings:
    """Change settings of a running app (tests): update its config and build again."""
    app.config.update(values)
    return load(app)
