"""Form validators shared by the staff views."""
from flask import request
from flask_babel import lazy_gettext as _l
from wtforms import ValidationError
from wtforms.validators import StopValidation

from app.extensions import session
from app.services import fields
from app.services.errors import InputError
from app.services.uniqueness import value_taken


class EndsAfter:
    """The field (an end) must be after another field (a start) when both are given."""

    def __init__(self, start_field: str):
        self.start_field = start_field

    def __call__(self, form, field):
        start = form[self.start_field].data
        if field.data is not None and start is not None and field.data <= start:
            raise ValidationError(_l("The end must be after the start."))


class Parsed:
    """Run a service parser on the typed value: the normalised value replaces it, an
    InputError becomes the field's message. With ``optional``, empty input means None."""

    def __init__(self, parser, optional: bool = False):
        self.parser = parser
        self.optional = optional

    def __call__(self, form, field):
        raw = field.data
        if self.optional and (raw is None or str(raw).strip() == ""):
            field.data = None
            raise StopValidation()
        try:
            field.data = self.parser(raw if isinstance(raw, str) or raw is None else str(raw))
        except InputError as error:  # stop: later checks (UniqueValue) never see raw input
            raise StopValidation(str(error.message)) from None


class UniqueValue:
    """No other row of ``column``'s table holds the same value (edit: the row itself may)."""

    def __init__(self, column, message):
        self.column = column
        self.message = message

    def __call__(self, form, field):
        if field.data in (None, ""):
            return
        pk = fields.parse_id((request.view_args or {}).get("pk"))
        if value_taken(session(), self.column, field.data, except_id=pk):
            raise ValidationError(self.message)


class CleanText:
    """Free text typed on a staff form: no control characters (a multi-line field may hold
    line breaks), at most ``max_len`` characters (the column's size); trimmed, empty is
    None. The check is app/services/fields.clean_text, the one the API uses too."""

    def __init__(self, max_len: int, multiline: bool = False, empty=None):
        self.max_len = max_len
        self.multiline = multiline
        self.empty = empty  # what an empty field stores ("" for a NOT NULL column)

    def __call__(self, form, field):
        if field.data is None or not isinstance(field.data, str):
            return
        try:
            value = fields.clean_text(field.data, self.max_len, self.multiline)
            field.data = self.empty if value is None else value
        except InputError as error:  # stop: later checks (UniqueValue) never see raw input
            raise StopValidation(str(error.message)) from None
