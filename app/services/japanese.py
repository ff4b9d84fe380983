"""Japanese data conventions (DOMAIN.md): full-width input, kana, era dates, numbers.

Every parser returns the normalised value or raises InputError with a Japanese message
for the field it was entered in.
"""
from __future__ import annotations

import re
import unicodedata
from datetime import date, time

import jaconv
from flask_babel import lazy_gettext as _l

from app.services.errors import InputError

# Era start dates (the first day of each era) and their names/initials.
ERAS = [
    ("令和", "R", date(2019, 5, 1)),
    ("平成", "H", date(1989, 1, 8)),
    ("昭和", "S", date(1926, 12, 25)),
    ("大正", "T", date(1912, 7, 30)),
    ("明治", "M", date(1868, 1, 25)),
]
_ERA_BY_KEY = {key: (name, start) for name, initial, start in ERAS
               for key in (name, initial, name[0])}  # 昭和, S and 昭 (昭55.03.01)
_DASHES = "-‐‑‒–—―−ｰ－ー"


def half_width(text: str | None) -> str:
    """Full-width letters, digits and symbols to half-width; kana untouched."""
    return jaconv.z2h(text or "", kana=False, ascii=True, digit=True)


def digits_only(text: str | None) -> str:
    """Half-width, with spaces and hyphens of any kind removed."""
    value = half_width(text)
    return re.sub(rf"[\s{re.escape(_DASHES)}]", "", value)


def normalize_code(text: str | None) -> str:
    """Alphanumeric identifiers: half-width, upper case, no spaces or hyphens."""
    return digits_only(text).upper()


def parse_application_id(text: str | None) -> str:
    value = digits_only(text)
    if not re.fullmatch(r"[0-9]{23}", value):
        raise InputError(_l("The application ID (申請書ID) must be 23 digits."))
    return value


def parse_manufacture_number(text: str | None) -> str:
    value = normalize_code(text)
    if not re.fullmatch(r"[0-9A-Z]{16}", value):
        raise InputError(_l("The manufacturing control number must be 16 letters or digits."))
    return value


def parse_shipment_number(text: str | None) -> str:
    value = normalize_code(text)
    if not re.fullmatch(r"[0-9A-Z]{1,20}", value):
        raise InputError(_l("The shipment number must be 1 to 20 letters or digits."))
    return value


def parse_postal_code(text: str | None) -> str:
    """〒123-4567 in any width, returned as 123-4567."""
    value = digits_only(text).lstrip("〒")
    if not re.fullmatch(r"[0-9]{7}", value):
        raise InputError(_l("The postal code must be 7 digits, like 123-4567."))
    return f"{value[:3]}-{value[3:]}"


def to_katakana(text: str | None) -> str:
    """Hiragana and half-width katakana to full-width katakana; spaces folded to one
    full-width space."""
    value = jaconv.h2z(text or "", kana=True, ascii=False, digit=False)
    value = jaconv.hira2kata(value)
    return "　".join(value.replace("　", " ").split())


def parse_kana(text: str | None) -> str:
    value = to_katakana(text)
    if not value or not re.fullmatch(r"[ァ-ヴーヽヾ・　]+", value):
        raise InputError(_l("Write the name in kana (katakana or hiragana)."))
    return value


def normalize_name(text: str | None) -> str:
    value = unicodedata.normalize("NFKC", text or "")
    value = "　".join(value.split())
    if not value:
        raise InputError(_l("Enter the name."))
    return value


def _era_date(era: str, year: int, month: int, day: int) -> date:
    name, start = _ERA_BY_KEY[era]
    try:
        value = date(start.year + year - 1, month, day)
    except ValueError:
        raise InputError(_l("This date does not exist.")) from None
    if value < start:
        raise InputError(_l("%(era)s %(year)d-%(month)d-%(day)d is before the era began.",
                            era=name, year=year, month=month, day=day))
    following = [s for n, i, s in ERAS if s > start]
    if following and value >= min(following):
        raise InputError(_l("%(era)s had ended by that date.", era=name))
    return value


def parse_date(text: str | None) -> date:
    """A date as people write it: 1980-03-01, 1980/3/1, 19800301, S55.3.1, 昭55.03.01,
    昭和55年3月1日, R1.5.1, 令和元年5月1日."""
    raw = half_width(text).strip().upper().replace("元", "1")
    if not raw:
        raise InputError(_l("Enter the date."))
    raw = re.sub(r"\s+", "", raw)
    match = re.fullmatch(r"(明治|大正|昭和|平成|令和|[明大昭平令MTSHR])([0-9]{1,2})[.\-/年]([0-9]{1,2})[.\-/月]([0-9]{1,2})日?",
                         raw)
    if match:
        era, y, m, d = match.groups()
        return _era_date(era, int(y), int(m), int(d))
    match = (re.fullmatch(r"([0-9]{4})[.\-/年]([0-9]{1,2})[.\-/月]([0-9]{1,2})日?", raw)
             or re.fullmatch(r"([0-9]{4})([0-9]{2})([0-9]{2})", raw))
    if match:
        try:
            return date(*(int(g) for g in match.groups()))
        except ValueError:
            raise InputError(_l("This date does not exist.")) from None
    raise InputError(_l("Write the date like 1980-03-01 or S55.3.1."))


def parse_birth_date(text: str | None, today: date) -> date:
    value = parse_date(text)
    if value > today:
        raise InputError(_l("The birth date is in the future."))
    if value.year < 1868:
        raise InputError(_l("This date does not exist."))
    return value


def era_label(value: date | None) -> str:
    """令和元年5月1日 style."""
    if value is None:
        return ""
    for name, _initial, start in ERAS:
        if value >= start:
            year = value.year - start.year + 1
            return f"{name}{'元' if year == 1 else year}年{value.month}月{value.day}日"
    return value.isoformat()


def date_with_era(value: date | None) -> str:
    """Both forms: 1980-03-01（昭和55年3月1日）."""
    return "" if value is None else f"{value.isoformat()}（{era_label(value)}）"


def parse_time_of_day(text: str | None):
    """09:00, 9:00, 0900, ９時 → time."""
    raw = half_width(text).strip().replace("時", ":").replace("分", "")
    match = re.fullmatch(r"([0-9]{1,2}):?([0-9]{2})?", raw.rstrip(":"))
    if not match:
        raise InputError(_l("Write the time like 09:00."))
    hour, minute = int(match.group(1)), int(match.group(2) or 0)
    if hour > 23 or minute > 59:
        raise InputError(_l("Write the time like 09:00."))
    return time(hour, minute)


def parse_phone(text: str | None) -> str:
    """A Japanese phone number, with or without hyphens, in any width: digits only."""
    value = digits_only(text).replace("(", "").replace(")", "").replace("（", "").replace("）", "")
    if not re.fullmatch(r"0[0-9]{9,10}", value):
        raise InputError(_l("Enter the phone number as 10 or 11 digits starting with 0, "
                            "for example 090-1234-5678."))
    return value


def format_phone(value: str | None) -> str:
    """090-1234-5678, 03-1234-5678 (mobile, IP and free-dial numbers by their prefix;
    other fixed lines 2-4-4 as a reasonable default)."""
    if not value:
        return ""
    if len(value) == 11:
        return f"{value[:3]}-{value[3:7]}-{value[7:]}"
    if value.startswith(("0120", "0800")):
        return f"{value[:4]}-{value[4:7]}-{value[7:]}"
    return f"{value[:2]}-{value[2:6]}-{value[6:]}"

