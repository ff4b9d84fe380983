"""The check-in desk per venue (F1.6) and the day's printed list (F1.4): today's bookings in
time order, search by number (typed or scanned QR), postcard number, name or kana; check-in,
undo, completion, hand-over for 交付; walk-ins; bookings by phone or at the counter; closing
the day (不来庁); counts that refresh by themselves."""
from __future__ import annotations

import re
import secrets
from datetime import date

from flask import abort, flash, jsonify, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import gettext as _
from sqlalchemy import select

from app import clock
from app.clock import JST
from app.extensions import session
from app.models.reservation import CHANNEL_COUNTER, CHANNEL_PHONE, Reservation, Slot
from app.models.venue import Venue, VenuePurpose
from app.public.forms import check_applicant, check_contact, check_party, party_rows
from app.services import audit, availability, booking, desk, fields
from app.services.errors import DomainError
from app.views.feedback import flash_refusal
from app.views.fields import form_id
from app.views.reservation import desk_action, staff_slots


def _venues() -> list[Venue]:
    return list(session().execute(select(Venue).order_by(Venue.active.desc(), Venue.name))
                .scalars())


def _day(text: str | None) -> date:
    return fields.parse_day(text) or clock.now().astimezone(JST).date()


def _form_key(form) -> str | None:
    """The form's one-time key (against double submits), as this screen made it; anything
    else (tampered, too long for the column) counts as none."""
    key = form.get("key") or ""
    return key if re.fullmatch(r"[A-Za-z0-9_-]{1,64}", key) else None


class DeskView(BaseView):
    route_base = "/desk"
    default_view = "index"

    def _venue(self, venue_id: int) -> Venue:
        venue = session().get(Venue, venue_id)
        if venue is None:
            abort(404)
        return venue

    def _can(self, name: str) -> bool:
        return self.appbuilder.sm.has_access(name, self.class_permission_name)

    @expose("/")
    @has_access
    def index(self):
        venues = [v for v in _venues() if v.active]
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
        offers = [o for o in availability.active_offers(session()) if o.venue_id == venue.id]
        last_end = desk.last_slot_end(session(), venue.id, day)
        return self.render_template(
            "desk/day.html", venue=venue, venues=_venues(), day=day, bookings=shown,
            all_count=len(bookings), query=query, now=now, desk=desk,
            counts=desk.counts(bookings, now), offers=offers,
            today=now.astimezone(JST).date(), last_end=last_end,
            can_write=self._can("can_check_in"))

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
    def close_day(self, venue_id: int):
        venue = self._venue(venue_id)
        day = _day(request.form.get("day"))
        try:
            missed = desk.close_day(session(), venue.id, day)
            flash(_("Day closed: %(n)d booking(s) marked no-show.", n=len(missed)), "success")
        except DomainError as error:
            flash_refusal(error)
        return redirect(url_for(".day", venue_id=venue.id, day=day.isoformat()))

    @expose("/<id:venue_id>/check-in", methods=["POST"])
    @has_access
    def check_in(self, venue_id: int):
        """Check in (or undo, or complete) from the desk's list."""
        reservation = session().get(Reservation, form_id(request.form, "id"))
        back = url_for(".day", venue_id=venue_id, day=request.form.get("day"),
                       q=request.form.get("q") or None)
        if reservation is None:
            abort(404)
        action = desk_action(request.form)
        try:
            flash(desk.act(session(), reservation, action), "success")
            card = next((p.card for p in reservation.people if p.card_id and p.active), None)
            if action == "check_in" and card is not None:
                # 交付: straight on to the hand-over, then back here
                return redirect(url_for("HandoverView.index", q=card.application_id,
                                        next=url_for(".day", venue_id=venue_id,
                                                     day=request.form.get("day"))))
        except DomainError as error:
            flash_refusal(error)
        return redirect(back)

    @expose("/<id:venue_id>/new", methods=["GET", "POST"])
    @has_access
    def new(self, venue_id: int):
        """A booking by phone or at the counter, or a walk-in (today, checked in at once)."""
        venue = self._venue(venue_id)
        offers = [o for o in availability.active_offers(session()) if o.venue_id == venue.id]
        if not offers:
            flash(_("This venue takes no bookings."), "warning")
            return redirect(url_for(".day", venue_id=venue.id))
        offer = next((o for o in offers if str(o.id) == request.values.get("offer")), offers[0])
        walk_in = request.values.get("walk_in") == "1"
        day = _day(request.values.get("day"))
        today = clock.now().astimezone(JST).date()
        errors, message, values = {}, None, dict(request.form)
        rows = party_rows(request.form, offer.max_party) if request.method == "POST" else \
            [{"notice_number": "", "birth_date": ""}]
        if request.method == "POST" and "add_person" not in request.form \
                and "refresh" not in request.form:
            contact = check_contact(request.form)
            errors.update(contact.errors)
            people, seats, birth, name, kana = None, 1, None, None, None
            if offer.purpose.needs_postcard:
                people, party = check_party(rows, today)
                errors.update(party.errors)
            else:
                applicant = check_applicant(request.form, today, offer.max_party)
                errors.update(applicant.errors)
                seats = applicant.clean.get("seats", 1)
                birth = applicant.clean.get("birth_date")
                name, kana = applicant.clean.get("name"), applicant.clean.get("name_kana")
            slot = None
            if not walk_in:
                slot = session().get(Slot, form_id(request.form, "slot"))
                if slot is None or slot.offer_id != offer.id:
                    errors["slot"] = _("Choose a time.")
            if not errors:
                details = booking.Contact(phone=contact.clean["phone"],
                                          email=contact.clean.get("email"), name=name,
                                          name_kana=kana)
                try:
                    if walk_in:
                        reservation = desk.walk_in(session(), offer, birth, details, people,
                                                   seats)
                    else:
                        channel = CHANNEL_PHONE if request.form.get("channel") == "phone" \
                            else CHANNEL_COUNTER
                        reservation = desk.staff_book(
                            session(), slot, channel, birth, details, people, seats,
                            idempotency_key=_form_key(request.form), notify=True)
                except DomainError as error:
                    session().rollback()
                    message = str(error.message)
                else:
                    flash(_("Booked: %(number)s.", number=reservation.number), "success")
                    return redirect(url_for("ReservationModelView.show", pk=reservation.id))
        slots = [] if walk_in else staff_slots(offer, day)
        return self.render_template(
            "desk/new.html", venue=venue, offers=offers, offer=offer, walk_in=walk_in,
            day=day, slots=slots, rows=rows, values=values, errors=errors, message=message,
            key=_form_key(request.form) or secrets.token_urlsafe(16))

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
