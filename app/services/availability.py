"""What residents may book: active venues and purposes, and free seats per slot."""
from __future__ import annotations

from datetime import date, datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from app import clock
from app.models.venue import Purpose, Venue, VenuePurpose
from app.services.booking import free_count
from app.services.calendar import bookable_between, ensure_slots
from app.services.errors import InputError

MAX_RANGE_DAYS = 62


def active_offers(session) -> list[VenuePurpose]:
    return list(session.execute(
        select(VenuePurpose).join(Venue).join(Purpose)
        .where(VenuePurpose.active.is_(True), Venue.active.is_(True), Purpose.active.is_(True))
        .order_by(Venue.name, Purpose.id)).scalars())


def find_offer(session, venue_id: int, purpose_code: str) -> VenuePurpose:
    offer = session.execute(
        select(VenuePurpose).join(Venue).join(Purpose)
        .where(Venue.id == venue_id, Purpose.code == purpose_code,
               VenuePurpose.active.is_(True), Venue.active.is_(True),
               Purpose.active.is_(True))).scalar()
    if offer is None:
        raise InputError(_l("This venue does not take bookings for this purpose."))
    return offer


def availability(session, offer: VenuePurpose, first: date, last: date) -> list[dict]:
    """Bookable slots of [first, last] with their free seats (slots made on demand)."""
    if last < first:
        raise InputError(_l("The end date is before the start date."))
    if (last - first).days > MAX_RANGE_DAYS:
        raise InputError(_l("Ask for at most %(n)d days at a time.", n=MAX_RANGE_DAYS))
    now = clock.now()
    earliest, latest = bookable_between(offer, now)
    first = max(first, earliest.date())
    last = min(last, latest.date())
    if last < first:
        return []
    slots = ensure_slots(session, offer, first, last)
    session.commit()
    return [{"id": s.id, "start": s.starts_at.isoformat(), "end": s.ends_at.isoformat(),
             "seats": s.seats, "free": free_count(session, s, now)}
            for s in slots if earliest <= s.starts_at <= latest]


def parse_iso_day(text: str | None, default: date) -> date:
    if not text:
        return default
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise InputError(_l("Dates are written YYYY-MM-DD.")) from None


def default_range(today: date) -> tuple[date, date]:
    return today, today + timedelta(days=MAX_RANGE_DAYS - 1)
