"""Files that take personal data out of the ledger (F3.3): the postcard print data. Every
export is recorded in the audit trail in the same unit as it is made."""
from __future__ import annotations

import io
import zipfile
from datetime import datetime
from typing import Iterable

import segno
from flask_babel import gettext as _

from app import clock
from app.models.card import Card
from app.services import audit, cards, export_policy, notice_numbers, spreadsheet, unit
from app.services.errors import InputError
from app.settings import settings

ENCODINGS = ("utf-8-sig", "cp932")  # Excel's UTF-8 and Shift_JIS


def booking_url(number: str) -> str:
    """The residents' booking page with the postcard number filled in (the QR code)."""
    return f"{settings().public_base_url}/reserve/?n={notice_numbers.display(number)}"


def postcard_print_zip(items: Iterable[Card], encoding: str) -> tuple[bytes, int]:
    """CSV for the print shop or mail merge, and one QR code image per card; also how many
    characters Shift_JIS cannot hold were written as 〓 (the print shop's mark for 外字)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        text = io.StringIO()
        writer = spreadsheet.csv_writer(text)
        writer.writerow([_("Application ID"), _("Name"), _("Postal code"), _("Address"),
                         _("Postcard number"), _("Booking URL"), _("QR image")])
        for card in items:
            url = booking_url(card.notice_number)
            image = f"qr/{card.application_id}.png"
            writer.writerow([card.application_id, card.name, card.postal_code or "",
                             card.address or "", notice_numbers.display(card.notice_number),
                             url, image])
            png = io.BytesIO()
            segno.make_qr(url, error="m").save(png, kind="png", scale=6, border=4)
            archive.writestr(image, png.getvalue())
        data, replaced = spreadsheet.encode_text(text.getvalue(), encoding)
        archive.writestr("postcards.csv", data)
    return buffer.getvalue(), replaced


@unit.operation
def postcard_print_data(session, card_ids: Iterable[int], encoding: str = "utf-8-sig", *,
                        now: datetime | None = None,
                        encrypted: bool = False) -> tuple[str, bytes]:
    """The chosen cards' postcard print data as (file name, zip): refused, exporting
    nothing, while any of them has no postcard number yet, or when the file would leave
    unencrypted while the office requires encryption (``encrypted``: the caller wraps
    it in an AES-256 ZIP). The export is audited, with whether it was encrypted."""
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown encoding {encoding!r}; one of {ENCODINGS}")
    export_policy.require(session, "postcard_print", encrypted)
    chosen = cards.cards_by_ids(session, card_ids)
    missing = [c.application_id for c in chosen if not c.notice_number]
    if missing:
        raise InputError(_("These cards have no postcard number yet (send the notice "
                           "first): %(ids)s", ids="、".join(missing)))
    data, replaced = postcard_print_zip(chosen, encoding)
    audit.record_in_transaction(session, audit.ACTION_EXPORT, "card", None,
                                {"what": "postcard print data", "rows": len(chosen),
                                 "encoding": encoding, "ids": [c.id for c in chosen],
                                 "encrypted": encrypted,
                                 **({"replaced": replaced} if replaced else {})})
    stamp = (now or clock.now()).strftime("%Y%m%d-%H%M")
    return f"postcards_{stamp}.zip", data


def zip_members(data: bytes) -> list[tuple[str, bytes]]:
    """The files inside the print data's ZIP (postcards.csv and qr/*.png), to be put
    into an encrypted ZIP under the same names."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [(name, archive.read(name)) for name in archive.namelist()]
