"""Form validators shared by the staff views."""
from flask_babel import lazy_gettext as _l
from wtforms import ValidationError


class EndsAfter:
    """The field (an end) must be after another field (a start) when both are given."""

    def __init__(self, start_field: str):
        self.start_field = start_field

    def __call__(self, form, field):
        start = form[self.start_field].data
        if field.data is not None and start is not None and field.data <= start:
            raise ValidationError(_l("The end must be after the start."))
