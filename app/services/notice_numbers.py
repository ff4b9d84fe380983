"""Postcard numbers (交付通知書番号 / 予約用番号, F1.2).

Default format: 3 letters from an alphabet without look-alikes, then 6 digits, the last of
which is a Damm check digit over the whole code, so any single mistyped digit and any swap
of two neighbouring digits is caught (a mistyped letter almost always). Random, never
sequential, never derived from personal data. Shown as ``ABC-123456``, stored without the
hyphen; residents may type it in any width, with or without the hyphen.
"""
from __future__ import annotations

import re
import secrets

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from app.services.errors import InputError
from app.services.japanese import normalize_code
from app.settings import settings

_DAMM = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2), (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9), (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8), (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4), (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5), (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)


def _settings() -> tuple[int, int, str]:
    """Letters, digits and the letters' alphabet (NOTICE_NUMBER_*; the one definition of
    the alphabet and its default is config.py)."""
    current = settings()
    return (current.notice_number_letters, current.notice_number_digits,
            current.notice_number_alphabet)


def _digit_string(body: str, alphabet: str) -> str:
    """Letters as their two-digit index in the alphabet, digits as themselves."""
    return "".join(f"{alphabet.index(c):02d}" if c in alphabet else c for c in body)


def check_digit(body: str, alphabet: str | None = None) -> str:
    alphabet = alphabet or _settings()[2]
    interim = 0
    for ch in _digit_string(body, alphabet):
        interim = _DAMM[interim][int(ch)]
    return str(interim)


def generate(session, model_column) -> str:
    """A new number not yet used in ``model_column``."""
    letters, digits, alphabet = _settings()
    for _ in range(100):
        body = "".join(secrets.choice(alphabet) for _ in range(letters))
        body += "".join(secrets.choice("0123456789") for _ in range(digits - 1))
        number = body + check_digit(body, alphabet)
        if session.execute(select(model_column).where(model_column == number)).first() is None:
            return number
    raise RuntimeError("could not find a free postcard number")


def parse(text: str | None) -> str:
    """Normalise typed input and check its form and check digit."""
    letters, digits, alphabet = _settings()
    value = normalize_code(text)
    pattern = rf"[{re.escape(alphabet)}]{{{letters}}}[0-9]{{{digits}}}"
    if not re.fullmatch(pattern, value) or check_digit(value[:-1], alphabet) != value[-1]:
        raise InputError(_l("The postcard number is not valid. Check it against the postcard."))
    return value


def display(number: str | None) -> str:
    if not number:
        return ""
    letters = _settings()[0]
    return f"{number[:letters]}-{number[letters:]}"
