"""Look up, change and cancel a booking with its number and the birth date (F1.1).

After a successful look-up the booking's id is kept in the session for a short while
(the setting ``VIEW_MINUTES``); every page re-reads the booking, so a change made by staff
shows at once.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flask import Response, redirect, render_template, request, session, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from app import clock
from app.extensions import session as db_session
from app.models.reservation import BOOKED, Reservation, Slot
from app.public import bp, refusal_page
from app.public.flow import render_calendar, render_day
from app.public.forms import check_lookup
from app.services import audit, booking
from app.services.errors import DomainError
from app.services.fields import parse_id
from app.settings import settings

VIEWING = "viewing"


def _viewed() -> Reservation | None:
    viewing = session.get(VIEWING) or {}
    try:
        until = datetime.fromisoformat(viewing["until"])
    except (KeyError, ValueError):
        return None
    if until <= clock.now():
        session.pop(VIEWING, None)
        return None
    return db_session().get(Reservation, viewing.get("id") or 0)


def _view(reservation: Reservation) -> None:
    session[VIEWING] = {"id": reservation.id,
                        "until": (clock.now() + timedelta(minutes=settings().view_minutes))
                        .isoformat()}


@bp.route("/lookup", methods=["GET", "POST"])
def lookup():
    values = {"reservation_number": request.args.get("reservation_number", ""),
              "birth_date": ""}
    errors: dict = {}
    message = None
    if request.method == "POST":
        checked = check_lookup(request.form, clock.now().date())
        values, errors = checked.raw, checked.errors
        if not errors:
            try:  # the form shows the refusal above its fields (422)
                reservation = booking.lookup_reservation(
                    db_session(), checked.clean["reservation_number"],
                    checked.clean["birth_date"], request.remote_addr, clock.now())
            except DomainError as error:
                message = error.message
            else:
                _view(reservation)
                return redirect(url_for("public.booking_detail"))
    return render_template("public/lookup.html", values=values, errors=errors,
                           message=message), 422 if errors or message else 200


def _need_booking():
    reservation = _viewed()
    if reservation is None:
        return None, redirect(url_for("public.lookup"))
    audit.resident_is(reservation.number)  # what the resident changes is signed with it
    return reservation, None


@bp.route("/booking")
def booking_detail():
    reservation, back = _need_booking()
    if back:
        return back
    now = clock.now()
    return render_template("public/booking.html", r=reservation, slot=reservation.slot,
                           offer=reservation.slot.offer,
                           can_change=_allowed(booking.check_changeable, reservation, now),
                           can_cancel=_allowed(booking.check_cancellable, reservation, now))


def _allowed(check, reservation, now) -> str | None:
    """None when allowed, else the reason."""
    try:
        check(reservation, now)
    except DomainError as error:
        return error.message
    return None


def _changeable():
    """The viewed booking when it may still be changed; else where to go instead."""
    reservation, back = _need_booking()
    if back:
        return None, back
    refusal = _allowed(booking.check_changeable, reservation, clock.now())
    if refusal:
        return None, _refused(reservation, refusal)
    return reservation, None


@bp.route("/booking/change")
def change_calendar():
    reservation, back = _changeable()
    if back:
        return back
    return render_calendar(reservation.slot.offer, reservation.seats, "public.change_day",
                           "public.change_calendar", {}, purpose=reservation.slot.offer.purpose,
                           changing=reservation)


@bp.route("/booking/change/<day>")
def change_day(day: str):
    reservation, back = _changeable()
    if back:
        return back
    return render_day(reservation.slot.offer, day, reservation.seats,
                      url_for("public.change"),
                      url_for("public.change_calendar", month=day[:7]),
                      purpose=reservation.slot.offer.purpose, changing=reservation, error=None)


def refused_on_booking(message):
    """The error boundary's page for a refusal while a booking is viewed (None when none
    is): the booking with the message."""
    reservation = _viewed()
    return _refused(reservation, message) if reservation is not None else None


def _refused(reservation: Reservation, message):
    return render_template("public/booking.html", r=reservation, slot=reservation.slot,
                           offer=reservation.slot.offer, error=message, can_change=message,
                           can_cancel=_allowed(booking.check_cancellable, reservation,
                                               clock.now())), 409


@bp.route("/booking/change", methods=["POST"])
def change():
    """First POST shows the old and new times; the second (``confirm``) moves the booking."""
    reservation, back = _need_booking()
    if back:
        return back
    slot_id = parse_id(request.form.get("slot"))
    new_slot = db_session().get(Slot, slot_id) if slot_id else None
    if new_slot is None or new_slot.offer_id != reservation.slot.offer_id:
        return _refused(reservation, _l("Choose a time."))
    if "confirm" not in request.form:
        return render_template("public/change_confirm.html", r=reservation,
                               old=reservation.slot, new=new_slot,
                               offer=reservation.slot.offer)
    if reservation.slot_id == new_slot.id:  # already there (a second click): nothing to do
        return redirect(url_for("public.booking_detail", changed=1))
    old_slot = reservation.slot
    refusal_page(lambda message: (render_template(
        "public/change_confirm.html", r=reservation, old=old_slot, new=new_slot,
        offer=old_slot.offer, error=message), 409))
    booking.change_slot(db_session(), reservation, new_slot, notify=True, now=clock.now())
    return redirect(url_for("public.booking_detail", changed=1))


@bp.route("/booking/cancel", methods=["GET", "POST"])
def cancel():
    reservation, back = _need_booking()
    if back:
        return back
    if request.method == "POST" and reservation.state != BOOKED:
        return redirect(url_for("public.booking_detail"))  # a second click
    refusal = _allowed(booking.check_cancellable, reservation, clock.now())
    if refusal:
        return _refused(reservation, refusal)
    if request.method == "POST":
        booking.cancel(db_session(), reservation, reason="resident (web)", notify=True,
                       now=clock.now())  # refused: the booking with the message (boundary)
        return redirect(url_for("public.booking_detail", cancelled=1))
    return render_template("public/cancel_confirm.html", r=reservation, slot=reservation.slot,
                           offer=reservation.slot.offer)


@bp.route("/booking/close", methods=["POST"])
def leave():
    """Forget the booking in this browser (a shared or public computer)."""
    session.pop(VIEWING, None)
    session.pop("done", None)
    return redirect(url_for("public.index"))


@bp.route("/visit.ics")
def visit_ics():
    """The booked visit as a calendar file (iPhone, Android, Outlook), for the booking just
    made or the one looked up in this browser."""
    reservation = _viewed() or db_session().get(Reservation, session.get("done") or 0)
    if reservation is None or reservation.state != BOOKED:
        return redirect(url_for("public.lookup"))
    body = render_ics(reservation, request.host)
    return Response(body, mimetype="text/calendar",
                    headers={"Content-Disposition":
                             f'attachment; filename="visit-{reservation.number}.ics"'})


def _ics_text(value: str) -> str:
    return (value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\n", "\\n"))


def _fold(line: str) -> str:
    """RFC 5545: lines of at most 75 octets, continued with a space."""
    out, current = [], ""
    for char in line:
        if len((current + char).encode()) > 75:
            out.append(current)
            current = " " + char
        else:
            current += char
    out.append(current)
    return "\r\n".join(out)


def render_ics(reservation: Reservation, host: str) -> str:
    slot, offer = reservation.slot, reservation.slot.offer
    stamp = "%Y%m%dT%H%M%SZ"
    utc = timezone.utc
    bring = (offer.purpose.text_for(get_locale(), "what_to_bring") or "").strip()
    purpose_name = offer.purpose.text_for(get_locale(), "name")
    description = f"{_('Booking number')}: {reservation.number}"
    if bring:
        description += f"\n{_('What to bring')}:\n" + "\n".join(
            f"- {line.strip()}" for line in bring.splitlines() if line.strip())
    lines = [
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//mnc-booking//JA", "CALSCALE:GREGORIAN",
        "BEGIN:VEVENT",
        f"UID:{reservation.number}@{host}",
        f"DTSTAMP:{clock.now().astimezone(utc).strftime(stamp)}",
        f"DTSTART:{slot.starts_at.astimezone(utc).strftime(stamp)}",
        f"DTEND:{slot.ends_at.astimezone(utc).strftime(stamp)}",
        f"SUMMARY:{_ics_text(purpose_name + '（' + offer.venue.name + '）')}",
        f"LOCATION:{_ics_text(offer.venue.name + ' ' + (offer.venue.address or ''))}",
        f"DESCRIPTION:{_ics_text(description)}",
        "END:VEVENT", "END:VCALENDAR"]
    return "\r\n".join(_fold(line) for line in lines) + "\r\n"
