"""JSON for the residents' booking pages (and for tests): venues and free seats."""
from flask import jsonify, request
from flask_babel import gettext as _

from app import clock
from app.extensions import session
from app.public import bp
from app.services import availability as svc
from app.services.errors import InputError
from app.services.fields import parse_id


@bp.route("/api/venues")
def api_venues():
    venues: dict[int, dict] = {}
    for offer in svc.active_offers(session()):
        entry = venues.setdefault(offer.venue.id, {
            "id": offer.venue.id, "name": offer.venue.name, "address": offer.venue.address,
            "access_note": offer.venue.access_note, "purposes": []})
        entry["purposes"].append({"id": offer.purpose.id, "code": offer.purpose.code,
                                  "name": offer.purpose.name,
                                  "needs_postcard": offer.purpose.needs_postcard,
                                  "max_party": offer.max_party})
    return jsonify(venues=list(venues.values()))


@bp.route("/api/availability")
def api_availability():
    venue_id = parse_id(request.args.get("venue"))
    if venue_id is None:
        return jsonify(error=_("Give the venue (venue) as a number.")), 400
    try:
        offer = svc.find_offer(session(), venue_id, request.args.get("purpose", ""))
        start, end = svc.default_range(clock.now().date())
        first = svc.parse_iso_day(request.args.get("from"), start)
        last = svc.parse_iso_day(request.args.get("to"), end)
        slots = svc.availability(session(), offer, first, last)
    except InputError as error:
        return jsonify(error=str(error.message)), 400
    return jsonify(venue=offer.venue.id, purpose=offer.purpose.code, slots=slots)
