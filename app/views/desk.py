"""The check-in desk per venue (F1.6) and the day's printed list (F1.4): today's bookings in
time order, search by number (typed or scanned QR), postcard number, name or kana; check-in,
undo, completion, hand-over for 交付; walk-ins; bookings by phone or at the counter; closing
the day (不来庁); counts that refresh by themselves."""
from __future__ import annotations

import secrets
from datetime import date

from flask import abort, flash, jsonify, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import gettext as _
from flask_login import current_user

from app import clock
from app.clock import JST
from app.extensions import session
from app.models.venue import Venue
from app.services import audit, audit_text, booking, cards, desk, fields, intake
from app.views.feedback import refusals_flashed
from app.views.fields import form_id


def _day(text: str | None) -> date:
    return fields.parse_day(text) or clock.now().astimezone(JST).date()


def _to_day(view, venue_id: int, *args, **kwargs) -> str:
    """Back to the venue's day (the day and search of the posted form)."""
    return url_for(".day", venue_id=venue_id, day=request.form.get("day"),
                   q=request.form.get("q") or None)


class DeskView(BaseView):
    route_base = "/desk"
    default_view = "index"

    def _venue(self, venue_id: int) -> Venue:
        venue = desk.get_venue(session(), venue_id)
        if venue is None:
            abort(404)
        return venue

    def _can(self, name: str) -> bool:
        return self.appbuilder.sm.has_access(name, self.class_permission_name)

    @expose("/")
    @has_access
    def index(self):
        venues = [v for v in desk.venues(session()) if v.active]
        if len(venues) == 1:
            return redirect(url_for(".day", venue_id=venues[0].id))
        return self.render_template("desk/index.html", venues=venues)

    @expose("/<id:venue_id>")
    @has_access
    def day(self, venue_id: int):
        venue = self._venue(venue_id)
        day = _day(request.args.get("day"))
        now = clock.now()
        bookings = desk.day_bookings(session(), venue.id, day)
        query = (request.args.get("q") or "").strip()
        shown = desk.find(session(), bookings, query) if query else bookings
        if query and len(shown) == 1:
            flash(_("Found: %(number)s.", number=shown[0].number), "info")
        offers = desk.offers_at(session(), venue.id)
        last_end = desk.last_slot_end(session(), venue.id, day)
        return self.render_template(
            "desk/day.html", venue=venue, venues=desk.venues(session()), day=day, bookings=shown,
            all_count=len(bookings), query=query, now=now, desk=desk,
            counts=desk.counts(bookings, now), offers=offers,
            today=now.astimezone(JST).date(), last_end=last_end,
            can_write=self._can("can_check_in"), actor_name=audit_text.actor_name,
            can_take_application=self.appbuilder.sm.has_access("can_add", "IntakeModelView"),
            can_read_applications=self.appbuilder.sm.has_access("can_show", "IntakeModelView"),
            intakes=intake.intakes_of_reservations(session(), [r.id for r in shown]),
            leads_to_intake=intake.leads_to_intake)

    @expose("/<id:venue_id>/counts")
    @has_access
    def live_counts(self, venue_id: int):
        """JSON for the figures that refresh without reloading the page."""
        venue = self._venue(venue_id)
        day = _day(request.args.get("day"))
        now = clock.now()
        bookings = desk.day_bookings(session(), venue.id, day)
        return jsonify(counts=desk.counts(bookings, now).as_dict(),
                       states={r.number: desk.shown_state(r, now) for r in bookings},
                       at=now.astimezone(JST).strftime("%H:%M:%S"))

    @expose("/<id:venue_id>/close-day", methods=["POST"])
    @has_access
    @refusals_flashed(back=lambda view, venue_id: url_for(
        ".day", venue_id=venue_id, day=_day(request.form.get("day")).isoformat()))
    def close_day(self, venue_id: int):
        venue = self._venue(venue_id)
        day = _day(request.form.get("day"))
        missed = desk.close_day(session(), venue.id, day)
        flash(_("Day closed: %(n)d booking(s) marked no-show.", n=len(missed)), "success")
        return redirect(url_for(".day", venue_id=venue.id, day=day.isoformat()))

    @expose("/<id:venue_id>/check-in", methods=["POST"])
    @has_access
    @refusals_flashed(back=_to_day)
    def check_in(self, venue_id: int):
        """Check in (or undo, or complete) from the desk's list."""
        reservation = desk.get_reservation(session(), form_id(request.form, "id"))
        if reservation is None:
            abort(404)
        action = desk.pressed(request.form)
        flash(desk.act(session(), reservation, action, actor=cards.actor_of(current_user)),
              "success")
        card = desk.waiting_card(reservation)
        back = url_for(".day", venue_id=venue_id, day=request.form.get("day"))
        if action == desk.CHECK_IN and card is not None:
            # 交付: straight on to the hand-over, then back here
            return redirect(url_for("HandoverView.index", q=card.application_id, next=back))
        if action == desk.CHECK_IN and intake.leads_to_intake(reservation):
            # 申請, 電子証明書: straight on to a new application from the booking, then back
            return redirect(url_for("IntakeModelView.add", reservation=reservation.id,
                                    next=back))
        return redirect(_to_day(self, venue_id))

    @expose("/<id:venue_id>/new", methods=["GET", "POST"])
    @has_access
    def new(self, venue_id: int):
        """A booking by phone or at the counter, or a walk-in (today, checked in at once)."""
        venue = self._venue(venue_id)
        offers = desk.offers_at(session(), venue.id)
        if not offers:
            flash(_("This venue takes no bookings."), "warning")
            return redirect(url_for(".day", venue_id=venue.id))
        offer = next((o for o in offers if str(o.id) == request.values.get("offer")), offers[0])
        walk_in = request.values.get("walk_in") == "1"
        day = _day(request.values.get("day"))
        posted = request.method == "POST"
        rows = desk.party_form_rows(offer, request.form, posted)
        errors, message = {}, None
        if posted and "add_person" not in request.form and "refresh" not in request.form:
            result = desk.book_at_counter(session(), offer, request.form, same_day=walk_in,
                                          actor=cards.actor_of(current_user))
            if result.reservation is not None:
                flash(_("Booked: %(number)s.", number=result.reservation.number), "success")
                return redirect(url_for("ReservationModelView.show", pk=result.reservation.id))
            rows, errors, message = result.rows, result.errors, result.refusal
        slots = [] if walk_in else booking.staff_slots(session(), offer, day, clock.now())
        return self.render_template(
            "desk/new.html", venue=venue, offers=offers, offer=offer, walk_in=walk_in,
            day=day, slots=slots, rows=rows, values=dict(request.form), errors=errors,
            message=message, key=desk.form_key(request.form) or secrets.token_urlsafe(16))

    @expose("/<id:venue_id>/print")
    @has_access
    def print_day(self, venue_id: int):
        """The day's list per venue on A4 (print CSS, page breaks, numbered pages)."""
        venue = self._venue(venue_id)
        day = _day(request.args.get("day"))
        bookings = desk.day_bookings(session(), venue.id, day)
        audit.record_event(audit.ACTION_PRINT, "reservation", None,
                           {"what": "day list", "venue": venue.name, "day": day.isoformat(),
                            "rows": len(bookings)})
        return self.render_template("desk/print_day.html", venue=venue, day=day,
                                    bookings=bookings, desk=desk, now=clock.now())
