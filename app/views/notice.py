"""Notices (F5.3): staff write them; the home page and /reserve/ show the current ones."""
from flask_appbuilder import ModelView
from flask_appbuilder.fieldwidgets import Select2Widget
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_babel import lazy_gettext as _l
from wtforms import SelectField
from wtforms.validators import DataRequired, Optional

from app.models.notice import Notice
from app.views.fields import JstDateTimeField
from app.views.formatting import AUDIENCE_CHOICES, IMPORTANCE_CHOICES, jst, label_of
from app.services.fields import NOTE_MAX
from app.views.validators import CleanText, EndsAfter


def _choice_fields():
    return {
        "audience": SelectField(_l("Audience"), choices=AUDIENCE_CHOICES,
                                widget=Select2Widget()),
        "importance": SelectField(_l("Importance"), choices=IMPORTANCE_CHOICES, coerce=int,
                                  widget=Select2Widget()),
        "starts_at": JstDateTimeField(_l("Shown from"), [DataRequired()]),
        "ends_at": JstDateTimeField(_l("Shown until"), [Optional(), EndsAfter("starts_at")],
                                    description=_l("Leave empty to show until removed.")),
    }


class NoticeModelView(ModelView):
    datamodel = SQLAInterface(Notice)
    list_title = _l("Notices")
    show_title = _l("Notice")
    add_title = _l("New notice")
    edit_title = _l("Edit notice")
    label_columns = {
        "title": _l("Title"), "body": _l("Body"), "audience": _l("Audience"),
        "importance": _l("Importance"), "starts_at": _l("Shown from"),
        "ends_at": _l("Shown until"), "title_en": _l("Title in English (optional)"),
        "body_en": _l("Body in English (optional)"),
    }
    description_columns = {
        "ends_at": _l("Leave empty to show until removed."),
        "title_en": _l("Shown to residents who chose English; when empty they read the Japanese."),
    }
    list_columns = ["title", "audience", "importance", "starts_at", "ends_at"]
    show_columns = ["title", "body", "title_en", "body_en", "audience", "importance",
                    "starts_at", "ends_at"]
    add_columns = edit_columns = ["title", "body", "title_en", "body_en", "audience",
                                  "importance", "starts_at", "ends_at"]
    search_columns = ["title", "body", "audience", "importance", "starts_at", "ends_at"]
    base_order = ("starts_at", "desc")
    formatters_columns = {
        "audience": lambda v: label_of(AUDIENCE_CHOICES, v),
        "importance": lambda v: label_of(IMPORTANCE_CHOICES, v),
        "starts_at": jst,
        "ends_at": jst,
    }
    validators_columns = {"title": [DataRequired(), CleanText(200)],
                          "body": [CleanText(NOTE_MAX, multiline=True)],
                          "title_en": [CleanText(200)],
                          "body_en": [CleanText(NOTE_MAX, multiline=True)]}
    add_form_extra_fields = _choice_fields()
    edit_form_extra_fields = _choice_fields()
