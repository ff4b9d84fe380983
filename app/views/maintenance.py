"""Maintenance of the residents' site (O2): announce windows ahead, or switch on now."""
from flask import flash, g, redirect, request, url_for
from flask_appbuilder import ModelView, expose, has_access
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms.validators import DataRequired, Optional

from app import clock
from app.extensions import session
from app.models.maintenance import MaintenanceWindow
from app.services.fields import NOTE_MAX, clean_text
from app.services.maintenance import (end_maintenance_now, maintenance_status,
                                      start_maintenance_now)
from app.views.feedback import refusals_flashed
from app.views.fields import JstDateTimeField
from app.views.formatting import jst
from app.views.validators import CleanText, EndsAfter


class MaintenanceWindowModelView(ModelView):
    datamodel = SQLAInterface(MaintenanceWindow)
    list_title = _l("Maintenance of the residents' site")
    show_title = _l("Maintenance")
    add_title = _l("Announce maintenance")
    edit_title = _l("Edit maintenance")
    list_template = "maintenance_list.html"
    label_columns = {"starts_at": _l("Starts"), "ends_at": _l("Ends"), "message": _l("Message"),
                     "message_en": _l("Message in English (optional)"),
                     "created_by": _l("Created by")}
    description_columns = {
        "message": _l("Shown to residents in the banner and on the maintenance page."),
        "message_en": _l("Shown to residents who chose English; when empty they read the Japanese."),
        "ends_at": _l("Leave empty to end it by hand."),
    }
    list_columns = ["starts_at", "ends_at", "message", "created_by"]
    add_columns = edit_columns = ["starts_at", "ends_at", "message", "message_en"]
    show_columns = ["starts_at", "ends_at", "message", "message_en", "created_by"]
    base_order = ("starts_at", "desc")
    formatters_columns = {"starts_at": jst, "ends_at": jst}
    validators_columns = {"message": [CleanText(NOTE_MAX, multiline=True, empty="")],
                          "message_en": [CleanText(NOTE_MAX, multiline=True)]}
    add_form_extra_fields = edit_form_extra_fields = {
        "starts_at": JstDateTimeField(_l("Starts"), [DataRequired()]),
        "ends_at": JstDateTimeField(_l("Ends"), [Optional(), EndsAfter("starts_at")],
                                    description=_l("Leave empty to end it by hand.")),
    }

    def pre_add(self, item):
        item.created_by = g.user.username

    @expose("/start-now/", methods=["POST"])
    @has_access
    @refusals_flashed(back=".list")
    def start_now(self):
        message = clean_text(request.form.get("message"), NOTE_MAX, multiline=True) or ""
        message_en = clean_text(request.form.get("message_en"), NOTE_MAX, multiline=True)
        start_maintenance_now(session(), clock.now(), message, g.user.username,
                              message_en=message_en or None)
        flash(_("The residents' site is now in maintenance."), "warning")
        return redirect(url_for(".list"))

    @expose("/end-now/", methods=["POST"])
    @has_access
    @refusals_flashed(back=".list")
    def end_now(self):
        end_maintenance_now(session(), clock.now())
        flash(_("The residents' site is open again."), "success")
        return redirect(url_for(".list"))

    def render_template(self, template, **kwargs):
        kwargs.setdefault("maintenance", maintenance_status(session(), clock.now()))
        return super().render_template(template, **kwargs)
