"""Form fields shared by the staff views."""
from datetime import datetime

import jaconv
from flask_appbuilder.fieldwidgets import DateTimePickerWidget
from flask_babel import lazy_gettext as _l
from wtforms import DateTimeField

from app.services.fields import parse_id

DATETIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%Y/%m/%d %H:%M",
                    "%Y/%m/%d")


class JstDateTimeField(DateTimeField):
    """Date and time in Japan time; accepts full-width digits, slashes, no seconds, or a date
    alone (the picker fills only the date, which then means 00:00)."""

    widget = DateTimePickerWidget()

    def __init__(self, label=None, validators=None, **kwargs):
        kwargs.setdefault("format", "%Y-%m-%d %H:%M")
        super().__init__(label, validators, **kwargs)

    def process_formdata(self, valuelist):
        if not valuelist:
            return
        raw = jaconv.z2h(" ".join(valuelist), kana=False, ascii=True, digit=True)
        raw = " ".join(raw.replace("：", ":").split())
        if not raw:
            self.data = None
            return
        for fmt in DATETIME_FORMATS:
            try:
                self.data = datetime.strptime(raw, fmt)
                return
            except ValueError:
                continue
        self.data = None
        raise ValueError(_l("Enter a date and time like 2026-12-01 09:00."))


def form_id(form, name: str) -> int:
    """A record id posted by one of our forms; 0 (no such record) for anything else, so a
    tampered or empty value is refused with the screen's message instead of an error."""
    return parse_id(form.get(name)) or 0


def form_ids(values) -> list[int]:
    """Several record ids (checkboxes, a comma list): the valid ones, others left out."""
    return [i for i in (parse_id(v) for v in values) if i is not None]
