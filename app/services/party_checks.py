"""Input checks shared by the residents' site (app/public) and the staff desk
(app/views/desk.py, app/services/desk.py): who comes, the postcards of a party, how to
reach them (F1.3). Each check returns the clean value or a message for that field; nothing
here touches the database.

The party form repeats its fields (one ``notice_number`` and one ``birth_date`` a person),
so these are read with ``getlist`` rather than through a WTForms FieldList, whose names
(``people-0-notice_number``) would not be the stable names tests and screen readers use.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from flask_babel import lazy_gettext as _l

from app.services import fields, japanese, notice_numbers
from app.services.booking import PersonInput
from app.services.errors import InputError


@dataclass
class Checked:
    """Values as typed (to show again), clean values, and a message per field id."""

    raw: dict = field(default_factory=dict)
    clean: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)

    def check(self, name: str, raw, parse, required_message=None):
        self.raw[name] = raw
        if required_message and not (raw or "").strip():
            self.errors[name] = required_message
            return None
        try:
            value = parse(raw)
        except InputError as error:
            self.errors[name] = error.message
            return None
        self.clean[name] = value
        return value


def party_rows(form, max_party: int) -> list[dict]:
    """The rows of the party form as typed; one more when the resident asked for it."""
    numbers = form.getlist("notice_number")
    births = form.getlist("birth_date")
    rows = [{"notice_number": n, "birth_date": b} for n, b in zip(numbers, births)]
    if not rows:
        rows = [{"notice_number": "", "birth_date": ""}]
    if "add_person" in form and len(rows) < max_party:
        rows.append({"notice_number": "", "birth_date": ""})
    return rows


def check_party(rows: list[dict], today: date) -> tuple[list[PersonInput], Checked]:
    """Rows left empty are ignored; at least one person is needed."""
    checked = Checked()
    people = []
    filled = [(i, r) for i, r in enumerate(rows)
              if (r["notice_number"] or "").strip() or (r["birth_date"] or "").strip()]
    if not filled:  # every empty required field is flagged at once
        checked.errors["notice_number-0"] = _l("Enter the postcard number.")
        checked.errors["birth_date-0"] = _l("Enter the birth date.")
        return [], checked
    for i, row in filled:
        number = checked.check(f"notice_number-{i}", row["notice_number"], notice_numbers.parse,
                               _l("Enter the postcard number."))
        birth = checked.check(f"birth_date-{i}", row["birth_date"],
                              lambda v: japanese.parse_birth_date(v, today),
                              _l("Enter the birth date."))
        if number and birth:
            people.append(PersonInput(number, birth))
    numbers = [p.notice_number for p in people]
    for i, row in filled:
        if checked.clean.get(f"notice_number-{i}") and \
                numbers.count(checked.clean[f"notice_number-{i}"]) > 1:
            checked.errors[f"notice_number-{i}"] = _l("The same postcard number was entered twice.")
    return people, checked


def check_applicant(form, today: date, max_party: int) -> Checked:
    """申請 and 電子証明書: who comes (the representative of the party) and how many."""
    checked = Checked()
    checked.check("name", form.get("name", ""), fields.clean_name, _l("Enter the name."))
    checked.check("name_kana", form.get("name_kana", ""), fields.clean_kana,
                  _l("Enter the name in kana."))
    checked.check("birth_date", form.get("birth_date", ""),
                  lambda v: japanese.parse_birth_date(v, today), _l("Enter the birth date."))

    def seats(value):
        try:
            number = int(japanese.half_width(value or "1"))
        except ValueError:
            number = 0
        if not 1 <= number <= max_party:
            raise InputError(_l("A booking is for 1 to %(n)d people.", n=max_party))
        return number

    checked.check("seats", form.get("seats", "1"), seats)
    return checked


def check_contact(form) -> Checked:
    checked = Checked()
    checked.check("phone", form.get("phone", ""), fields.clean_phone,
                  _l("Enter a phone number we can call during the day."))
    checked.check("email", form.get("email", ""), fields.clean_email)
    if "email" in checked.clean and checked.clean["email"]:
        try:
            confirm = fields.clean_email(form.get("email_confirm", ""))
        except InputError:
            confirm = None
        checked.raw["email_confirm"] = form.get("email_confirm", "")
        if confirm != checked.clean["email"]:
            checked.errors["email_confirm"] = _l("The two e-mail addresses differ.")
    return checked
