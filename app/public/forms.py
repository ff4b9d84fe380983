"""What residents type, checked field by field (F1.3). The checks the staff desk shares
(applicant, party, contact) live in app/services/party_checks.py and are imported here;
the look-up of a booking is the residents' own."""
from __future__ import annotations

from datetime import date

from flask_babel import lazy_gettext as _l

from app.services import japanese
from app.services.booking import parse_reservation_number
from app.services.party_checks import (Checked, check_applicant, check_contact,  # noqa: F401
                                       check_party, party_rows)


def check_lookup(form, today: date) -> Checked:
    checked = Checked()
    checked.check("reservation_number", form.get("reservation_number", ""),
                  parse_reservation_number, _l("Enter the booking number."))
    checked.check("birth_date", form.get("birth_date", ""),
                  lambda v: japanese.parse_birth_date(v, today), _l("Enter the birth date."))
    return checked
