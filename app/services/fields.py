"""One check per kind of field, used by every entry point: the residents' forms
(app/public/forms.py), the staff screens (WTForms through app/views/validators.Parsed) and
the REST API (app/views/api.py).

Each ``clean_*`` returns the value to store or raises InputError with a Japanese message
for the field. Lengths follow the database columns, so nothing typed can fail at the
database (PostgreSQL refuses over-long values and NUL bytes; SQLite would store them).
"""
from __future__ import annotations

import re
import unicodedata
from datetime import date

from email_validator import EmailNotValidError, validate_email
from flask_babel import lazy_gettext as _l
from werkzeug.routing import BaseConverter, ValidationError

from app.services import japanese
from app.services.errors import InputError

# Column sizes (app/models): reservation.name / card.name String(100), name_kana String(200),
# reservation.email String(200), card.address String(300).
NAME_MAX = 100
KANA_MAX = 200
EMAIL_MAX = 200
ADDRESS_MAX = 300
NOTE_MAX = 2000  # Text columns: a generous bound for a note typed by a person

ID_MAX = 2 ** 31 - 1  # INTEGER on PostgreSQL

# Invisible characters that change how text reads (bidirectional overrides, isolates).
_BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")
_NEWLINES = "\n\r\t"


# Dates typed into or passed to staff screens (a day, a month): a city office has no
# business outside this century, and Python's timezone arithmetic overflows at year 1.
DAY_MIN = date(2000, 1, 1)
DAY_MAX = date(2099, 12, 31)


def parse_day(text) -> date | None:
    """``YYYY-MM-DD`` between DAY_MIN and DAY_MAX, else None (the caller falls back to
    today, or answers "not found")."""
    try:
        value = date.fromisoformat(str(text or ""))
    except ValueError:
        return None
    return value if DAY_MIN <= value <= DAY_MAX else None


def parse_month(text) -> date | None:
    """``YYYY-MM`` as the first day of that month, between DAY_MIN and DAY_MAX, else None."""
    match = re.fullmatch(r"([0-9]{4})-([0-9]{2})", str(text or ""))
    if not match or not 1 <= int(match.group(2)) <= 12:
        return None
    value = date(int(match.group(1)), int(match.group(2)), 1)
    return value if DAY_MIN <= value <= DAY_MAX else None


def parse_id(text) -> int | None:
    """A record id from a URL, a query string or a form: ASCII digits only, 1..2**31-1.
    None for anything else (then the caller answers "not found" or the form's message)."""
    if isinstance(text, bool):
        return None
    if isinstance(text, int):
        value = text
    else:
        raw = str(text if text is not None else "").strip()
        if not re.fullmatch(r"[0-9]{1,10}", raw):
            return None
        value = int(raw)
    return value if 1 <= value <= ID_MAX else None


def id_converter():
    """A Flask URL converter ``<id:name>``: a record id as parse_id reads it; anything else
    (too large, not ASCII digits) matches no route, so the answer is 404."""
    class IdConverter(BaseConverter):
        regex = r"[0-9]{1,10}"
        part_isolating = True

        def to_python(self, value: str) -> int:
            number = parse_id(value)
            if number is None:
                raise ValidationError()
            return number

        def to_url(self, value) -> str:
            return str(int(value))

    return IdConverter


def _as_text(value) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError(_l("Enter text in this field."))
    return value


def refuse_controls(value: str, multiline: bool = False) -> str:
    """Control characters (NUL, C0 and C1 controls, DEL, bidirectional overrides) are never
    part of what a person types; a multi-line note may hold line breaks and tabs."""
    for char in value:
        if multiline and char in _NEWLINES:
            continue
        category = unicodedata.category(char)
        if category in ("Cc", "Cs") or char in _BIDI_CONTROLS:
            raise InputError(_l("This field contains a character that cannot be used "
                                "(a control character). Please type it again."))
    return value


def check_length(value: str, max_len: int) -> str:
    if len(value) > max_len:
        raise InputError(_l("Enter at most %(n)d characters (you entered %(given)d).",
                            n=max_len, given=len(value)))
    return value


def clean_text(text, max_len: int, multiline: bool = False) -> str | None:
    """Optional free text (address, note): trimmed, None when empty."""
    value = refuse_controls(_as_text(text), multiline).strip()
    if not value:
        return None
    return check_length(value, max_len)


def clean_required_text(text, max_len: int) -> str:
    """A one-line text that must be given (a venue's or purpose's name)."""
    value = clean_text(text, max_len)
    if value is None:
        raise InputError(_l("This field is required."))
    return value


def clean_name(text, max_len: int = NAME_MAX) -> str:
    """A person's name: NFKC, spaces folded to one full-width space; letters only, no
    control characters, pictographs or private-use characters; at most the column's size."""
    value = refuse_controls(_as_text(text))
    value = japanese.normalize_name(value)
    for char in value:
        if unicodedata.category(char) in ("So", "Co", "Cn", "Cf"):
            raise InputError(_l("The name contains a character that cannot be used in a "
                                "name (such as a pictograph). Please write the name as on "
                                "the resident record."))
    return check_length(value, max_len)


def clean_kana(text, max_len: int = KANA_MAX) -> str:
    value = refuse_controls(_as_text(text))
    return check_length(japanese.parse_kana(value), max_len)


def clean_optional_kana(text, max_len: int = KANA_MAX) -> str | None:
    return clean_kana(text, max_len) if _as_text(text).strip() else None


def clean_optional_name(text, max_len: int = NAME_MAX) -> str | None:
    return clean_name(text, max_len) if _as_text(text).strip() else None


def clean_phone(text) -> str:
    """A Japanese phone number: 10 or 11 digits starting with 0 (hyphens, any width)."""
    value = refuse_controls(_as_text(text))
    return japanese.parse_phone(value)


_EMAIL_MESSAGE = _l("The e-mail address does not look right, for example taro@example.jp.")


def clean_email(text) -> str | None:
    """Optional e-mail address: exactly one mailbox with a domain (taro@example.jp), parsed
    by email-validator; no lists, no display names or angle brackets, no local mailboxes
    (a domain without a dot), no quoted or IP-literal forms. Half-width, trimmed; None when
    empty. The domain is returned in ASCII (IDNA), so the address can go to any server."""
    value = japanese.half_width(refuse_controls(_as_text(text))).strip()
    if not value:
        return None
    if len(value) > EMAIL_MAX:
        raise InputError(_EMAIL_MESSAGE)
    try:
        result = validate_email(value, check_deliverability=False, allow_smtputf8=False,
                                allow_quoted_local=False, allow_domain_literal=False,
                                allow_display_name=False, globally_deliverable=True)
    except (EmailNotValidError, UnicodeError, ValueError):
        raise InputError(_EMAIL_MESSAGE) from None
    address = result.ascii_email or result.normalized
    if len(address) > EMAIL_MAX:
        raise InputError(_EMAIL_MESSAGE)
    return address


def is_single_mailbox(address) -> bool:
    """For the mail layer: True only for an address ``clean_email`` accepts unchanged."""
    try:
        return bool(address) and (clean_email(address) or "").lower() == address.lower()
    except InputError:
        return False
