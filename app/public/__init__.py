"""The residents' site under /reserve/: mobile first, Japanese by default.

The top page (purposes, notices, the maintenance banner), the booking flow (flow.py), the
look-up, change and cancel pages (manage.py) and the JSON for scripts and tests (api.py).

One error boundary (issue 11 §3): a refused operation raises a DomainError from its
service, whose unit of work has already rolled back; :func:`refused` turns it into the
page the resident was on, with the message. A route says which page that is with
:func:`refusal_page` before it calls the service; without one, the booking being viewed
(or a plain page) shows the message. Forms whose fields carry their own messages (who
comes, the look-up) still show a refusal inline, next to the fields.
"""
from datetime import date
from typing import Callable

import segno
from flask import (Blueprint, current_app, g, redirect, render_template, request, session,
                   url_for)
from flask_babel import format_date, get_locale
from markupsafe import Markup

from app import clock
from app.clock import JST
from app.extensions import session as db_session
from app.models.notice import AUDIENCE_RESIDENTS
from app.services import japanese, notice_numbers
from app.services.availability import active_offers
from app.services.errors import DomainError, ThrottledError
from app.services.maintenance import maintenance_status
from app.services.notices import current_notices
from app.settings import settings

bp = Blueprint("public", __name__, url_prefix="/reserve", template_folder="templates",
               static_folder="static", static_url_path="/static")


@bp.before_request
def maintenance_gate():
    """During maintenance every resident page answers 503 with the message."""
    if request.endpoint in ("public.static", "public.set_language"):
        return None
    status = maintenance_status(db_session(), clock.now(),
                                settings().maintenance_banner_days)
    if status.active is not None:
        return render_template("public/maintenance.html", window=status.active), 503
    request.maintenance = status
    return None


@bp.after_request
def no_store(response):
    """Resident pages show names, birth dates, phone numbers and booking numbers (the form
    steps, confirmation, done page, look-up, change and cancel pages, the .ics file): no
    browser or proxy keeps a copy (a shared or public computer)."""
    if request.endpoint != "public.static":
        response.headers["Cache-Control"] = "no-store"
    return response


def refusal_page(render: Callable[[str], tuple]) -> None:
    """Where a refusal of the operation this route is about to run belongs: ``render``
    takes the message and returns the response (the page again, with its status)."""
    g.public_refusal = render


@bp.errorhandler(DomainError)
def refused(error: DomainError):
    """The residents' error boundary: the page the route named, else the booking being
    viewed, else a plain page; nothing to roll back (the service's unit did)."""
    render = g.pop("public_refusal", None)
    if render is not None:
        return render(error.message)
    page = manage.refused_on_booking(error.message)  # the routes, imported at the end
    if page is not None:
        return page
    status = 429 if isinstance(error, ThrottledError) else 409
    return render_template("public/refused.html", error=error.message), status


@bp.context_processor
def resident_context():
    upcoming = getattr(request, "maintenance", None)
    return {"upcoming": upcoming.upcoming if upcoming else []}


@bp.app_template_filter("visit_time")
def visit_time(value) -> str:
    """A slot (or a start time) as residents read it: 2026年12月4日（金）10:00〜10:30."""
    starts = getattr(value, "starts_at", value).astimezone(JST)
    ends = getattr(value, "ends_at", None)
    times = starts.strftime("%H:%M") + ("〜" + ends.astimezone(JST).strftime("%H:%M")
                                        if ends else "")
    return f"{long_date(starts.date())} {times}"


@bp.app_context_processor
def city_texts() -> dict:
    """The city's name and contact line in the resident's language (CITY_NAME_EN and
    CITY_CONTACT_EN when English was chosen and they are set, else the Japanese)."""
    english = str(get_locale() or "").startswith("en")
    config = current_app.config

    def pick(key: str) -> str:
        return (english and config.get(f"{key}_EN")) or config.get(key, "")
    return {"city_name": pick("CITY_NAME"), "city_contact": pick("CITY_CONTACT")}


@bp.app_template_filter("in_locale")
def in_locale(record, field: str) -> str:
    """A purpose's, notice's or maintenance window's text in the resident's language: the
    English version where staff wrote one, else the Japanese (app/models/texts.py)."""
    return (record.text_for(get_locale(), field) or "") if record is not None else ""


@bp.app_template_filter("long_date")
def long_date(value) -> str:
    if str(get_locale()).startswith("ja"):
        return f"{value.year}年{value.month}月{value.day}日（{'月火水木金土日'[value.weekday()]}）"
    return format_date(value, "EEE d MMM y")


@bp.app_template_filter("month_title")
def month_title(value) -> str:
    if str(get_locale()).startswith("ja"):
        return f"{value.year}年{value.month}月"
    return format_date(value, "MMMM y")


@bp.app_template_filter("postcard")
def postcard(value) -> str:
    return notice_numbers.display(value)


@bp.app_template_filter("birth")
def birth(value) -> str:
    day = date.fromisoformat(value) if isinstance(value, str) else value
    return japanese.date_with_era(day)


@bp.app_template_filter("phone")
def phone(value) -> str:
    return japanese.format_phone(value)


@bp.app_template_global("qr_svg")
def qr_svg(text: str) -> Markup:
    """The booking number as an inline QR code (no request for an image, works offline)."""
    code = segno.make_qr(text, error="m")
    return Markup(code.svg_inline(scale=6, border=4, svgclass="qr-code", title=text))


@bp.app_context_processor
def zone():
    return {"tz": JST}


@bp.route("/")
def index():
    notices = current_notices(db_session(), AUDIENCE_RESIDENTS, clock.now())
    offers = active_offers(db_session())
    purposes = list({o.purpose.id: o.purpose for o in offers}.values())
    postcard = request.args.get("n", "").strip()[:20]
    collect = next((p for p in purposes if p.needs_postcard), None)
    if postcard and collect is not None:  # the QR code printed on the postcard
        return redirect(url_for("public.who", code=collect.code, notice_number=postcard))
    return render_template("public/index.html", notices=notices, purposes=purposes)


@bp.route("/lang/<code>")
def set_language(code: str):
    """Switch the residents' language; back to the page the resident was on."""
    if code in current_app.config["LANGUAGES"]:
        session["locale"] = code
    target = request.args.get("next", "")
    if not target.startswith("/reserve/"):
        target = url_for("public.index")
    return redirect(target)


from app.public import api  # noqa: E402,F401  (routes on this blueprint)
from app.public import flow, manage  # noqa: E402,F401
