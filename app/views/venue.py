"""Booking settings for supervisors (F1.5): venues, purposes, what each venue offers,
its weekly pattern and its date exceptions."""
from flask_appbuilder import ModelView
from flask_appbuilder.fieldwidgets import BS3TextFieldWidget, Select2Widget
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_babel import lazy_gettext as _l
from wtforms import SelectField, StringField
from wtforms.validators import DataRequired, NumberRange, Regexp

from app.models.venue import DateException, Purpose, Venue, VenuePurpose, WeeklyRule
from app.services import calendar, fields, japanese
from app.views.formatting import blank_none, yes_no
from app.views.validators import CleanText, EndsAfter, Parsed, UniqueValue

WEEKDAYS = [(0, _l("Monday")), (1, _l("Tuesday")), (2, _l("Wednesday")), (3, _l("Thursday")),
            (4, _l("Friday")), (5, _l("Saturday")), (6, _l("Sunday"))]
SLOT_MINUTES = [(10, "10"), (15, "15"), (20, "20"), (30, "30"), (45, "45"), (60, "60")]


def _hhmm(value) -> str:
    return "" if value is None else value.strftime("%H:%M")


def _time_field(label, optional=False):
    return StringField(label, [Parsed(japanese.parse_time_of_day, optional=optional)],
                       widget=BS3TextFieldWidget(), description=_l("For example 09:00"))


class RemakesSlots:
    """Saving booking settings remakes the affected offer's slots ahead of time
    (calendar.materialise_slots), so the pages that show slots only read."""

    def _offer_id(self, item):
        return item.offer_id

    def _remake(self, item):
        calendar.settings_changed(self.datamodel.session, self._offer_id(item))

    def post_add(self, item):
        self._remake(item)

    def post_update(self, item):
        self._remake(item)

    def post_delete(self, item):
        self._remake(item)


class RemakesSlotsOfAll:
    """A venue or purpose taken back into use: its offers' slots are made at once."""

    owner = "venue_id"

    def post_update(self, item):
        calendar.offers_in_use_again(self.datamodel.session, **{self.owner: item.id})


class VenueModelView(RemakesSlotsOfAll, ModelView):
    datamodel = SQLAInterface(Venue)
    list_title = _l("Venues")
    show_title = add_title = edit_title = _l("Venue")
    label_columns = {"name": _l("Venue"), "address": _l("Address"),
                     "access_note": _l("Access"), "active": _l("In use")}
    list_columns = ["name", "address", "active"]
    add_columns = edit_columns = show_columns = ["name", "address", "access_note", "active"]
    formatters_columns = {"active": yes_no, "address": blank_none}
    validators_columns = {"name": [DataRequired(), CleanText(100),
                                   UniqueValue(Venue.name, _l("This venue already exists."))],
                          "address": [CleanText(300)],
                          "access_note": [CleanText(fields.NOTE_MAX, multiline=True)]}


class PurposeModelView(RemakesSlotsOfAll, ModelView):
    datamodel = SQLAInterface(Purpose)
    owner = "purpose_id"
    list_title = _l("Purposes of a visit")
    show_title = add_title = edit_title = _l("Purpose")
    label_columns = {"code": _l("Code"), "name": _l("Name of the item"),
                     "needs_postcard": _l("Postcard number required"), "active": _l("In use"),
                     "description": _l("Explanation for residents"),
                     "what_to_bring": _l("What to bring")}
    description_columns = {"code": _l("Lower-case letters, used in links (kofu, shinsei ...)."),
                           "needs_postcard": _l("Collecting a card: residents give the postcard number and birth date."),
                           "what_to_bring": _l("One item a line; shown on the booking pages and in e-mails.")}
    list_columns = ["code", "name", "needs_postcard", "active"]
    add_columns = edit_columns = show_columns = ["code", "name", "needs_postcard", "description",
                                                 "what_to_bring", "active"]
    formatters_columns = {"needs_postcard": yes_no, "active": yes_no}
    validators_columns = {
        "code": [DataRequired(), Regexp(r"^[a-z][a-z_]{1,19}$",
                                        message=_l("Use 2 to 20 lower-case letters.")),
                 UniqueValue(Purpose.code, _l("This code is already used."))],
        "name": [DataRequired(), CleanText(100)],
        "description": [CleanText(fields.NOTE_MAX, multiline=True)],
        "what_to_bring": [CleanText(fields.NOTE_MAX, multiline=True)],
    }


class WeeklyRuleModelView(RemakesSlots, ModelView):
    datamodel = SQLAInterface(WeeklyRule)
    list_title = _l("Weekly opening pattern")
    show_title = add_title = edit_title = _l("Opening hours")
    label_columns = {"offer": _l("Venue and purpose"), "weekday": _l("Weekday"),
                     "starts": _l("Opens at"), "ends": _l("Closes at"), "slot_minutes": _l("Slot (minutes)"),
                     "seats": _l("Seats per slot")}
    list_columns = ["offer", "weekday", "starts", "ends", "slot_minutes", "seats"]
    add_columns = edit_columns = show_columns = list_columns
    search_columns = ["offer", "weekday", "seats"]
    base_order = ("weekday", "asc")
    formatters_columns = {"weekday": lambda v: str(dict(WEEKDAYS).get(v, v)), "starts": _hhmm,
                          "ends": _hhmm}
    validators_columns = {"seats": [DataRequired(), NumberRange(min=1, max=50)]}
    add_form_extra_fields = edit_form_extra_fields = {
        "weekday": SelectField(_l("Weekday"), choices=WEEKDAYS, coerce=int, widget=Select2Widget()),
        "starts": _time_field(_l("Opens at")),
        "ends": StringField(_l("Closes at"), [Parsed(japanese.parse_time_of_day), EndsAfter("starts")],
                            widget=BS3TextFieldWidget()),
        "slot_minutes": SelectField(_l("Slot (minutes)"), choices=SLOT_MINUTES, coerce=int,
                                    default=30, widget=Select2Widget()),
    }


class DateExceptionModelView(RemakesSlots, ModelView):
    datamodel = SQLAInterface(DateException)
    list_title = _l("Date exceptions")
    show_title = add_title = edit_title = _l("Date exception")
    label_columns = {"offer": _l("Venue and purpose"), "day": _l("Date"), "closed": _l("Closed"),
                     "starts": _l("Opens at"), "ends": _l("Closes at"), "slot_minutes": _l("Slot (minutes)"),
                     "seats": _l("Seats per slot"), "note": _l("Note")}
    description_columns = {"starts": _l("To open a day that is normally closed (holidays too), give the hours."),
                           "seats": _l("Leave empty to keep the weekly pattern's seats.")}
    list_columns = ["offer", "day", "closed", "starts", "ends", "seats", "note"]
    add_columns = edit_columns = show_columns = ["offer", "day", "closed", "starts", "ends",
                                                 "slot_minutes", "seats", "note"]
    search_columns = ["offer", "day", "closed", "note"]
    base_order = ("day", "asc")
    formatters_columns = {"closed": yes_no, "starts": _hhmm, "ends": _hhmm,
                          "seats": blank_none, "note": blank_none,
                          "day": japanese.date_with_era}
    validators_columns = {"seats": [NumberRange(min=0, max=50)], "note": [CleanText(200)]}
    add_form_extra_fields = edit_form_extra_fields = {
        "day": StringField(_l("Date"), [Parsed(japanese.parse_date)], widget=BS3TextFieldWidget()),
        "starts": _time_field(_l("Opens at"), optional=True),
        "ends": StringField(_l("Closes at"), [Parsed(japanese.parse_time_of_day, optional=True),
                                          EndsAfter("starts")], widget=BS3TextFieldWidget()),
    }


class VenuePurposeModelView(RemakesSlots, ModelView):
    datamodel = SQLAInterface(VenuePurpose)

    def _offer_id(self, item):
        return item.id
    list_title = _l("Booking settings per venue")
    show_title = add_title = edit_title = _l("Booking settings")
    label_columns = {"venue": _l("Venue"), "purpose": _l("Purpose"),
                     "opens_days_ahead": _l("Bookable from (days ahead)"),
                     "closes_minutes_before": _l("Booking closes (minutes before)"),
                     "last_start": _l("Last start of the day"), "max_party": _l("Party size limit"),
                     "active": _l("In use")}
    description_columns = {"closes_minutes_before": _l("3 days = 4320, 1 day = 1440."),
                           "last_start": _l("No slot starts later, e.g. 19:30.")}
    list_columns = ["venue", "purpose", "opens_days_ahead", "closes_minutes_before",
                    "last_start", "max_party", "active"]
    add_columns = edit_columns = show_columns = list_columns
    search_columns = ["venue", "purpose", "active"]  # FAB cannot search time columns
    related_views = [WeeklyRuleModelView, DateExceptionModelView]
    formatters_columns = {"active": yes_no, "last_start": _hhmm}
    validators_columns = {
        "venue": [DataRequired()], "purpose": [DataRequired()],
        "opens_days_ahead": [DataRequired(), NumberRange(min=1, max=365)],
        "closes_minutes_before": [NumberRange(min=0, max=60 * 24 * 60)],
        "max_party": [DataRequired(), NumberRange(min=1, max=10)],
    }
    add_form_extra_fields = edit_form_extra_fields = {
        "last_start": _time_field(_l("Last start of the day"), optional=True),
    }
