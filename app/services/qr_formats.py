"""Formats of the QR codes on the card issuance list (カード発行一覧表).

The real layout J-LIS prints is not public, so formats are a registry: each knows whether
a payload is its own and how to read it. The default is ours (docs/qr-format.md); the real
one is one more class in FORMATS, nothing else changes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from flask_babel import lazy_gettext as _l

from app.models.card import VISIT_AT_APPLICATION, VISIT_AT_HANDOVER
from app.services import japanese
from app.services.errors import InputError


@dataclass
class ParsedCard:
    """What one QR code says about one card."""

    application_id: str
    shipment_number: str
    manufacture_number: str
    visit_mode: str
    format: str
    personal: dict = field(default_factory=dict)  # empty for a short form

    @property
    def is_short(self) -> bool:
        return not self.personal


class QrFormat(Protocol):
    name: str

    def matches(self, text: str) -> bool: ...

    def parse(self, text: str, today: date) -> ParsedCard: ...


class Mnc1Format:
    """``MNC1|申請書ID|発送番号|製造管理番号|来庁方式(K/S)`` and optionally
    ``|氏名|氏名カナ|生年月日(YYYYMMDD)|郵便番号|住所|署名用(0/1)|利用者証明用(0/1)``."""

    name = "MNC1"
    MODES = {"K": VISIT_AT_HANDOVER, "S": VISIT_AT_APPLICATION}

    def matches(self, text: str) -> bool:
        return text.startswith("MNC1|")

    def parse(self, text: str, today: date) -> ParsedCard:
        parts = text.split("|")
        if len(parts) not in (5, 12):
            raise InputError(_l("MNC1 codes have 5 or 12 fields; this one has %(n)d.",
                                n=len(parts)))
        mode = self.MODES.get(parts[4].strip().upper())
        if mode is None:
            raise InputError(_l("The visit mode must be K or S."))
        parsed = ParsedCard(
            application_id=japanese.parse_application_id(parts[1]),
            shipment_number=japanese.parse_shipment_number(parts[2]),
            manufacture_number=japanese.parse_manufacture_number(parts[3]),
            visit_mode=mode, format=self.name)
        if len(parts) == 12:
            flags = [parts[10].strip(), parts[11].strip()]
            if any(f not in ("0", "1") for f in flags):
                raise InputError(_l("The certificate flags must be 0 or 1."))
            parsed.personal = {
                "name": japanese.normalize_name(parts[5]),
                "name_kana": japanese.parse_kana(parts[6]),
                "birth_date": japanese.parse_birth_date(parts[7], today),
                "postal_code": japanese.parse_postal_code(parts[8]) if parts[8].strip() else None,
                "address": parts[9].strip() or None,
                "has_sign_cert": flags[0] == "1",
                "has_auth_cert": flags[1] == "1",
            }
        return parsed


FORMATS: list[QrFormat] = [Mnc1Format()]


def decode_bytes(data: bytes) -> str:
    """Payload bytes as text: UTF-8, else Shift_JIS (CP932)."""
    for encoding in ("utf-8", "cp932"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InputError(_l("The code is neither UTF-8 nor Shift_JIS text."))


def parse_payload(payload: str | bytes, today: date) -> ParsedCard:
    """Read one payload with the first format that claims it."""
    text = decode_bytes(payload) if isinstance(payload, bytes) else payload
    text = text.strip().lstrip("\ufeff")
    for fmt in FORMATS:
        if fmt.matches(text):
            return fmt.parse(text, today)
    raise InputError(_l("Unknown code format (it should start with MNC1|)."))
