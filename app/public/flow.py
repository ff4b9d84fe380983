"""The residents' booking flow, one page a step, working without JavaScript:

who (postcard numbers and birth dates, or name, kana and birth date) → venue → month
calendar → time (seats held) → contact → confirmation → done.

The flow's state lives in the session cookie under ``draft``, sealed (app/public/draft.py)
so the personal data in it cannot be read from the cookie; each step checks that
the steps before it are done and otherwise sends the resident back to the first missing one.
The booking itself is made by app/services/booking.py.
"""
from __future__ import annotations

import secrets
from datetime import date

from flask import abort, g, redirect, render_template, request, session, url_for
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l

from app import clock
from app.extensions import session as db_session
from app.models.card import Card
from app.models.reservation import Hold, Reservation, Slot
from app.models.venue import Purpose, VenuePurpose
from app.public import bp, refusal_page
from app.public import draft as sealed_draft
from app.public.forms import check_applicant, check_contact, check_party, party_rows
from app.services import availability, booking, mail, notice_numbers
from app.services.calendar import add_months, bookable_between, month_start, month_within
from app.services.errors import DomainError, ThrottledError
from app.services.fields import parse_id
from app.settings import settings

# --- state ----------------------------------------------------------------------------------

def _purpose(code: str) -> Purpose:
    purpose = booking.bookable_purpose(db_session(), code)
    if purpose is None or not _offers(purpose):
        abort(404)
    return purpose


def _active_offers() -> list[VenuePurpose]:
    """The offers residents can book, read once per request (several steps ask)."""
    if "active_offers" not in g:
        g.active_offers = availability.active_offers(db_session())
    return g.active_offers


def _offers(purpose: Purpose) -> list[VenuePurpose]:
    return [o for o in _active_offers() if o.purpose_id == purpose.id]


def _draft(code: str) -> dict:
    draft = sealed_draft.load()
    return draft if draft.get("purpose") == code else {}


def _save(draft: dict) -> None:
    sealed_draft.store(draft)


def _seats(draft: dict) -> int:
    return len(draft["people"]) if draft.get("people") else int(draft.get("seats", 1))


def _offer(draft: dict) -> VenuePurpose | None:
    if not draft.get("venue_id"):
        return None
    offer = next((o for o in _active_offers()
                  if o.venue_id == draft["venue_id"] and o.purpose.code == draft["purpose"]),
                 None)
    return offer


def _held_slot(draft: dict) -> tuple[Slot, Hold] | None:
    hold = booking.held(db_session(), draft.get("hold_token"), clock.now())
    return (hold.slot, hold) if hold is not None else None


def _release(draft: dict) -> None:
    if draft.get("hold_token"):
        booking.release_hold(db_session(), draft.pop("hold_token"))
        draft.pop("slot_id", None)


def _first_missing(code: str, draft: dict):
    """Where a resident who skipped ahead belongs."""
    if not draft.get("people") and not draft.get("person"):
        return redirect(url_for("public.who", code=code))
    if _offer(draft) is None:
        return redirect(url_for("public.venue", code=code))
    return None


def _ip() -> str | None:
    return request.remote_addr


# --- steps ----------------------------------------------------------------------------------

@bp.route("/book/<code>/", methods=["GET", "POST"])
def who(code: str):
    purpose = _purpose(code)
    offers = _offers(purpose)
    max_party = max(o.max_party for o in offers)
    today = clock.now().date()
    draft = _draft(code)
    errors: dict = {}
    message = None
    if purpose.needs_postcard:
        if request.method == "POST":
            rows = party_rows(request.form, max_party)
        else:
            rows = [{"notice_number": notice_numbers.display(p["notice_number"]),
                     "birth_date": p["birth_date"]} for p in draft.get("people", [])] \
                or [{"notice_number": request.args.get("notice_number", ""), "birth_date": ""}]
        if request.method == "POST" and "add_person" not in request.form:
            people, checked = check_party(rows, today)
            errors = checked.errors
            if not errors:
                try:  # the form shows the refusal above its fields (422)
                    found = booking.identify_party(db_session(), people, _ip(), clock.now())
                except DomainError as error:  # mismatch, locked, already booked
                    message = error.message
                else:
                    _release(draft)
                    _save({"purpose": code, "key": secrets.token_urlsafe(16), "people": [
                        {"card_id": card.id, "notice_number": person.notice_number,
                         "birth_date": person.birth_date.isoformat()}
                        for card, person in zip(found, people)]})
                    return redirect(url_for("public.venue", code=code))
        status = 422 if errors or message else 200
        return render_template("public/who_postcard.html", purpose=purpose, rows=rows,
                               errors=errors, message=message, max_party=max_party,
                               added="add_person" in request.form), status
    values = dict(draft.get("person") or {}, seats=draft.get("seats", 1))
    if request.method == "POST":
        checked = check_applicant(request.form, today, max_party)
        values, errors = checked.raw, checked.errors
        if not errors:
            try:  # the form shows the refusal above its fields (422)
                booking.admit_address(db_session(), _ip(), clock.now())
            except ThrottledError as error:
                message = error.message
            else:
                _release(draft)
                clean = checked.clean
                _save({"purpose": code, "key": secrets.token_urlsafe(16), "seats": clean["seats"],
                       "person": {"name": clean["name"], "name_kana": clean["name_kana"],
                                  "birth_date": clean["birth_date"].isoformat()}})
                return redirect(url_for("public.venue", code=code))
    return render_template("public/who_applicant.html", purpose=purpose, values=values,
                           errors=errors, message=message, max_party=max_party), \
        422 if errors or message else 200


@bp.route("/book/<code>/venue", methods=["GET", "POST"])
def venue(code: str):
    purpose = _purpose(code)
    draft = _draft(code)
    if not draft.get("people") and not draft.get("person"):
        return redirect(url_for("public.who", code=code))
    seats = _seats(draft)
    offers = [o for o in _offers(purpose) if o.max_party >= seats]
    error = None
    if request.method == "POST":
        chosen = parse_id(request.form.get("venue"))
        if chosen in {o.venue_id for o in offers}:
            if draft.get("venue_id") != chosen:
                _release(draft)
            draft["venue_id"] = chosen
            _save(draft)
            return redirect(url_for("public.calendar", code=code))
        error = _l("Choose a venue.")
    return render_template("public/venue.html", purpose=purpose, offers=offers, draft=draft,
                           error=error, seats=seats), 422 if error else 200


def render_calendar(offer: VenuePurpose, seats: int, day_endpoint: str, month_endpoint: str,
                    endpoint_args: dict, **context):
    now = clock.now()
    first, last = availability.month_range(offer, now)
    month = month_within(request.args.get("month"), first, last)
    days = availability.month_days(db_session(), offer, month, seats,
                                   settings().few_seats_share)
    earliest, latest = bookable_between(offer, now)
    return render_template("public/calendar.html", offer=offer, month=month, days=days,
                           weeks=availability.month_weeks(month), first=first, last=last,
                           prev_month=add_months(month, -1), next_month=add_months(month, 1),
                           bookable_from=earliest.date(), bookable_to=latest.date(),
                           seats=seats, day_endpoint=day_endpoint,
                           month_endpoint=month_endpoint, endpoint_args=endpoint_args,
                           **context)


@bp.route("/book/<code>/calendar")
def calendar(code: str):
    purpose = _purpose(code)
    draft = _draft(code)
    missing = _first_missing(code, draft)
    if missing:
        return missing
    return render_calendar(_offer(draft), _seats(draft), "public.day", "public.calendar",
                           {"code": code}, purpose=purpose, step=3)


def render_day(offer: VenuePurpose, day_text: str, seats: int, action: str, back: str,
               **context):
    try:
        day = date.fromisoformat(day_text)
    except ValueError:
        abort(404)
    slots = availability.availability(db_session(), offer, day, day) \
        if _in_window(offer, day) else []
    return render_template("public/day.html", offer=offer, day=day, slots=slots, seats=seats,
                           action=action, back=back, **context)


def _in_window(offer: VenuePurpose, day: date) -> bool:
    first, last = availability.month_range(offer, clock.now())
    return first <= month_start(day) <= last


@bp.route("/book/<code>/day/<day>", methods=["GET", "POST"])
def day(code: str, day: str):
    purpose = _purpose(code)
    draft = _draft(code)
    missing = _first_missing(code, draft)
    if missing:
        return missing
    offer = _offer(draft)

    def page(error=None):
        return render_day(offer, day, _seats(draft), url_for("public.day", code=code, day=day),
                          url_for("public.calendar", code=code, month=day[:7]),
                          purpose=purpose, error=error, step=4), 409 if error else 200

    if request.method == "POST":
        slot_id = parse_id(request.form.get("slot"))
        slot = db_session().get(Slot, slot_id) if slot_id else None
        if slot is None or slot.offer_id != offer.id:
            return page(_l("Choose a time."))
        refusal_page(page)
        replacing = draft.pop("hold_token", None)
        draft.pop("slot_id", None)
        hold = booking.hold_for_resident(db_session(), slot, _seats(draft), _ip(),
                                         clock.now(), replacing=replacing)
        draft.update(slot_id=slot.id, hold_token=hold.token)
        _save(draft)
        return redirect(url_for("public.contact", code=code))
    return page()


def _held_or_back(code: str, draft: dict):
    held = _held_slot(draft)
    if held is None:
        return None, redirect(url_for("public.calendar", code=code, expired=1)
                              if draft.get("hold_token") else url_for("public.calendar",
                                                                      code=code))
    return held, None


@bp.route("/book/<code>/contact", methods=["GET", "POST"])
def contact(code: str):
    purpose = _purpose(code)
    draft = _draft(code)
    missing = _first_missing(code, draft)
    if missing:
        return missing
    held, back = _held_or_back(code, draft)
    if back:
        return back
    values = {"phone": draft.get("phone", ""), "email": draft.get("email") or "",
              "email_confirm": draft.get("email") or ""}
    errors: dict = {}
    if request.method == "POST":
        checked = check_contact(request.form)
        values, errors = checked.raw, checked.errors
        if not errors:
            draft.update(phone=checked.clean["phone"], email=checked.clean.get("email"))
            _save(draft)
            return redirect(url_for("public.confirm", code=code))
    return render_template("public/contact.html", purpose=purpose, slot=held[0], hold=held[1],
                           values=values, errors=errors, step=5), 422 if errors else 200


@bp.route("/book/<code>/confirm", methods=["GET", "POST"])
def confirm(code: str):
    purpose = _purpose(code)
    draft = _draft(code)
    if not draft and request.method == "POST" and session.get("done"):
        return redirect(url_for("public.done"))  # the second click of a double submit
    missing = _first_missing(code, draft)
    if missing:
        return missing
    if not draft.get("phone"):
        return redirect(url_for("public.contact", code=code))
    held = _held_slot(draft)
    slot = held[0] if held else db_session().get(Slot, draft.get("slot_id") or 0)
    if slot is None:
        return redirect(url_for("public.calendar", code=code))

    def page(error=None):
        cards = [db_session().get(Card, p["card_id"]) for p in draft.get("people", [])]
        return render_template("public/confirm.html", purpose=purpose, draft=draft, slot=slot,
                               people=draft.get("people", []), cards=cards,
                               held=held is not None, error=error, step=6), \
            409 if error else 200

    if request.method == "POST":
        if request.form.get("key") != draft["key"]:
            return page(_l("This page is out of date. Please check the details and book again."))
        refusal_page(page)
        reservation = _book(draft, slot)
        sealed_draft.clear()
        session["done"] = reservation.id
        return redirect(url_for("public.done"))
    return page()


def _book(draft: dict, slot: Slot) -> Reservation:
    people = draft.get("people") or []
    found = [db_session().get(Card, p["card_id"]) for p in people]
    if people:
        birth = date.fromisoformat(people[0]["birth_date"])
        contact_details = booking.Contact(phone=draft["phone"], email=draft.get("email"),
                                          name=found[0].name, name_kana=found[0].name_kana)
    else:
        person = draft["person"]
        birth = date.fromisoformat(person["birth_date"])
        contact_details = booking.Contact(phone=draft["phone"], email=draft.get("email"),
                                          name=person["name"], name_kana=person["name_kana"])
    reservation = booking.book(db_session(), slot, draft.get("hold_token"), birth,
                               contact_details, cards_to_collect=found or None,
                               seats=_seats(draft), idempotency_key=draft["key"],
                               locale=str(get_locale() or "ja"), notify=True,
                               now=clock.now())
    return reservation


@bp.route("/done")
def done():
    reservation = db_session().get(Reservation, session.get("done") or 0)
    if reservation is None:
        return redirect(url_for("public.lookup"))
    return render_template("public/done.html", r=reservation, slot=reservation.slot,
                           offer=reservation.slot.offer,
                           mailed=mail.can_mail(reservation))


@bp.route("/book/<code>/restart", methods=["POST"])
def restart(code: str):
    """Leave the flow: give the held seats back at once."""
    draft = _draft(code)
    _release(draft)
    sealed_draft.clear()
    return redirect(url_for("public.index"))
