"""Bookings for staff (F1.4): the list with filters, detail, edit of contact details and
notes, moving through the engine, cancelling with a reason, the booking slip; check-in
from the detail page. Residents are mailed about moves and cancels when mail is set up."""
from __future__ import annotations

from datetime import date

from flask import abort, flash, redirect, request, url_for
from flask_appbuilder import ModelView, expose, has_access
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import StringField

from app import clock
from app.clock import JST
from app.extensions import session
from app.models.reservation import Reservation, Slot, channel_label, state_label
from app.services import audit, audit_text, booking, desk, fields, japanese, mail
from app.views.feedback import refusals_flashed
from app.views.fields import form_id
from app.views.formatting import blank_none, jst
from app.views.validators import CleanText, Parsed


class ReservationModelView(ModelView):
    datamodel = SQLAInterface(Reservation)
    list_title = _l("Booking list")
    show_title = edit_title = _l("Booking")
    audit_show = True  # opening a person's booking is in the audit trail
    show_template = "desk/reservation_show.html"
    label_columns = {
        "number": _l("Booking number"), "starts_at": _l("Date and time"),
        "offer": _l("Venue and purpose"), "state": _l("State"), "channel": _l("Taken by"),
        "name": _l("Name"), "name_kana": _l("Name in kana"), "phone": _l("Phone"),
        "email": _l("E-mail"), "seats": _l("People"), "birth_date": _l("Birth date"),
        "note": _l("Note"), "created_at": _l("Booked at"), "checked_in_at": _l("Checked in at"),
        "checked_in_by": _l("Checked in by"), "cancel_reason": _l("Reason for cancelling"),
        "cancelled_at": _l("Cancelled at"), "completed_at": _l("Completed at")}
    list_columns = ["number", "starts_at", "offer", "state", "channel", "name", "name_kana",
                    "phone", "seats"]
    show_columns = ["number", "state", "starts_at", "offer", "seats", "name", "name_kana",
                    "birth_date", "phone", "email", "channel", "note", "created_at",
                    "checked_in_at", "checked_in_by", "completed_at", "cancelled_at",
                    "cancel_reason"]
    edit_columns = ["name", "name_kana", "phone", "email", "note"]
    search_columns = ["number", "starts_at", "offer", "state", "channel", "name", "name_kana",
                      "phone"]
    order_columns = ["number", "starts_at", "state", "name_kana", "channel"]
    base_order = ("starts_at", "asc")
    base_permissions = ["can_list", "can_show", "can_edit", "can_move", "can_cancel",
                        "can_slip", "can_check_in"]
    formatters_columns = {
        "starts_at": jst, "created_at": jst, "checked_in_at": jst, "cancelled_at": jst,
        "completed_at": jst, "state": state_label, "channel": channel_label,
        "phone": japanese.format_phone, "birth_date": japanese.date_with_era,
        "email": blank_none, "note": blank_none, "name_kana": blank_none, "name": blank_none,
        "cancel_reason": blank_none, "checked_in_by": audit_text.actor_name}  # the person's name
    edit_form_extra_fields = {
        "phone": StringField(_l("Phone"), [Parsed(fields.clean_phone)]),
        "email": StringField(_l("E-mail"), [Parsed(fields.clean_email, optional=True)]),
        "name_kana": StringField(_l("Name in kana"), [Parsed(fields.clean_kana,
                                                             optional=True)]),
        "name": StringField(_l("Name"), [Parsed(fields.clean_name, optional=True)]),
    }
    validators_columns = {"note": [CleanText(fields.NOTE_MAX, multiline=True)]}

    def render_template(self, template, **kwargs):
        if template == self.show_template and kwargs.get("pk") is not None:
            reservation = session().get(Reservation, int(kwargs["pk"]))
            now = clock.now()
            kwargs.update(r=reservation, now=now, desk_state=state_label,
                          is_late=desk.is_late(reservation, now),
                          can=lambda name: self.appbuilder.sm.has_access(
                              name, self.class_permission_name))
        return super().render_template(template, **kwargs)

    def _get(self, pk) -> Reservation:
        reservation = session().get(Reservation, pk)
        if reservation is None:
            abort(404)
        return reservation

    def _back(self, reservation):
        return redirect(url_for(".show", pk=reservation.id))

    @expose("/move/<id:pk>", methods=["GET", "POST"])
    @has_access
    @refusals_flashed(back=lambda view, pk: url_for(".move", pk=pk,
                                                    day=request.values.get("day")))
    def move(self, pk):
        """Another time at the same venue and purpose, through the engine (seats checked)."""
        reservation = self._get(pk)
        offer = reservation.slot.offer
        now = clock.now()
        day = fields.parse_day(request.values.get("day")) or now.astimezone(JST).date()
        if request.method == "POST":
            new_slot = session().get(Slot, form_id(request.form, "slot"))
            if new_slot is None or new_slot.offer_id != offer.id:
                flash(_("Choose a time."), "warning")
            else:
                booking.change_slot(session(), reservation, new_slot, staff=True,
                                    notify=True, now=now)
                mailed = mail.can_mail(reservation)
                flash(_("Moved to %(when)s.", when=jst(reservation.starts_at))
                      + (" " + _("The resident was e-mailed.") if mailed else ""),
                      "success")
                return self._back(reservation)
        return self.render_template("desk/move.html", r=reservation, day=day,
                                    slots=booking.staff_slots(session(), offer, day, now))

    @expose("/cancel/<id:pk>", methods=["GET", "POST"])
    @has_access
    @refusals_flashed(back=lambda view, pk: url_for(".cancel", pk=pk))
    def cancel(self, pk):
        reservation = self._get(pk)
        if request.method == "POST":
            reason = fields.clean_text(request.form.get("reason"), 200)
            if not reason:
                flash(_("Enter the reason for cancelling."), "warning")
            else:
                booking.cancel(session(), reservation, reason=reason, staff=True,
                               notify=True, now=clock.now())
                mailed = mail.can_mail(reservation)
                flash(_("The booking was cancelled.")
                      + (" " + _("The resident was e-mailed.") if mailed else ""),
                      "success")
                return self._back(reservation)
        return self.render_template("desk/cancel.html", r=reservation)

    @expose("/slip/<id:pk>")
    @has_access
    def slip(self, pk):
        """The booking slip (予約票), printable; printing is audited."""
        reservation = self._get(pk)
        audit.record_event(audit.ACTION_PRINT, "reservation", reservation.id,
                           {"what": "booking slip", "number": reservation.number})
        return self.render_template("desk/slip.html", r=reservation,
                                    offer=reservation.slot.offer, slot=reservation.slot)

    @expose("/check-in/<id:pk>", methods=["POST"])
    @has_access
    @refusals_flashed(back=lambda view, pk: url_for(".show", pk=pk))
    def check_in(self, pk):
        reservation = self._get(pk)
        flash(desk.act(session(), reservation, desk.pressed(request.form)), "success")
        return self._back(reservation)
