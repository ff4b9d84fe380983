"""The month calendar of a venue for staff (F1.5): per slot seats, booked and held; a day's
slots with their bookings; closing and reopening slots or days. Closing a slot that has
bookings first lists them and asks for confirmation; afterwards the residents are listed for
contact, and e-mailed when mail is set up."""
from __future__ import annotations

from datetime import date, timedelta

from flask import abort, flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import gettext as _

from app import clock
from app.extensions import session
from app.models.venue import VenuePurpose
from app.services import availability, fields, mail, schedule
from app.services.calendar import (add_months, closed_by_default, month_end, month_start,
                                   parse_month)
from app.views.feedback import refusals_flashed
from app.views.fields import form_ids


def _offers() -> list[VenuePurpose]:
    return schedule.offers(session())


def _month(text: str | None) -> date:
    return parse_month(text) or month_start(clock.now().date())


def _back_to_day(view, *args, **kwargs) -> str:
    """Where a refused close or reopen goes back to: the day it was asked for."""
    return url_for(".day", offer_id=view._offer(request.form.get("offer")).id,
                   day=fields.parse_day(request.form.get("day")).isoformat())


def _holidays(first: date, last: date) -> dict[date, str]:
    """National holidays and the year end, named in the calendar (closed unless opened)."""
    names = {}
    day = first
    while day <= last:
        name = closed_by_default(day)
        if name:
            names[day] = _("Year-end holidays") if name == "year end" else name
        day += timedelta(days=1)
    return names


class BookingCalendarView(BaseView):
    route_base = "/booking-calendar"
    default_view = "month"

    def _offer(self, offer_id) -> VenuePurpose:
        offers = _offers()
        if not offers:
            abort(404)
        try:
            wanted = int(offer_id)
        except (TypeError, ValueError):
            return offers[0]
        return next((o for o in offers if o.id == wanted), None) or abort(404)

    def _can(self, permission: str) -> bool:
        return self.appbuilder.sm.has_access(permission, self.class_permission_name)

    @expose("/")
    @has_access
    def month(self):
        offers = _offers()
        if not offers:
            return self.render_template("bookings/calendar.html", offers=[], offer=None)
        offer = self._offer(request.args.get("offer"))
        month = _month(request.args.get("month"))
        last = month_end(month)
        now = clock.now()
        days = schedule.load(session(), offer, month, last, now=now)
        return self.render_template(
            "bookings/calendar.html", offers=offers, offer=offer, month=month, days=days,
            weeks=availability.month_weeks(month), today=now.date(),
            prev_month=add_months(month, -1), next_month=add_months(month, 1),
            closed_days={e.day: e for e in offer.exceptions if e.closed},
            holidays=_holidays(month, last))

    @expose("/day/<id:offer_id>/<day>")
    @has_access
    def day(self, offer_id: int, day: str):
        offer = self._offer(offer_id)
        the_day = fields.parse_day(day)
        if the_day is None:
            abort(404)
        loads = schedule.load(session(), offer, the_day, the_day, with_bookings=True)[the_day]
        exception = next((e for e in offer.exceptions if e.day == the_day), None)
        return self.render_template("bookings/day.html", offer=offer, day=the_day,
                                    loads=loads, exception=exception,
                                    can_close=self._can("can_close"))

    @expose("/close", methods=["POST"])
    @has_access
    @refusals_flashed(back=_back_to_day)
    def close(self):
        """Close the chosen slots (or the whole day). With bookings in them, the first POST
        shows those bookings and asks; the second (``confirm``) closes."""
        offer = self._offer(request.form.get("offer"))
        the_day = fields.parse_day(request.form.get("day"))
        if the_day is None:
            abort(400)
        whole_day = request.form.get("whole_day") == "1"
        ids = form_ids(request.form.getlist("slot"))
        back = url_for(".day", offer_id=offer.id, day=the_day.isoformat())
        note = fields.clean_text(request.form.get("note"), 200)
        loads = schedule.load(session(), offer, the_day, the_day, with_bookings=True)[the_day]
        chosen = loads if whole_day else [entry for entry in loads if entry.slot.id in ids]
        if not chosen and not whole_day:
            flash(_("Choose at least one time slot."), "warning")
            return redirect(back)
        touched = [r for entry in chosen for r in entry.reservations]
        if touched and request.form.get("confirm") != "1":
            return self.render_template("bookings/close_confirm.html", offer=offer,
                                        day=the_day, chosen=chosen, whole_day=whole_day,
                                        touched=touched, note=note or "",
                                        mail_on=mail.configured())
        # The residents' mails are queued in the unit that closes the slots.
        closed = schedule.close(session(), offer, the_day,
                                None if whole_day else [e.slot.id for e in chosen], note,
                                mail_to=touched, now=clock.now())
        flash(_("Closed. No new bookings are taken for these times."), "success")
        if not closed.affected:
            return redirect(back)
        return self.render_template("bookings/closed_result.html", offer=offer, day=the_day,
                                    affected=closed.affected, mailed=closed.mailed,
                                    mail_on=mail.configured())

    @expose("/reopen", methods=["POST"])
    @has_access
    @refusals_flashed(back=_back_to_day)
    def reopen(self):
        offer = self._offer(request.form.get("offer"))
        the_day = fields.parse_day(request.form.get("day"))
        if the_day is None:
            abort(400)
        if request.form.get("whole_day") == "1":
            schedule.reopen_day(session(), offer, the_day)
        else:
            schedule.reopen_slots(session(), offer, form_ids(request.form.getlist("slot")))
        flash(_("Reopened for bookings."), "success")
        return redirect(url_for(".day", offer_id=offer.id, day=the_day.isoformat()))
