"""Reads made cheaper (issue 11 §7) show the same as before: the staff home's figures, counted
by the database, equal the booking-by-booking count of the desk; the residents' JSON and
calendar are unchanged. Correctness only: the timings are in `make bench` (bench/reads.py)."""
from __future__ import annotations

from datetime import datetime, time, timedelta
from unittest.mock import patch

from flask import g
from sqlalchemy import select

from app.clock import JST
from app.models.reservation import CANCELLED, NO_SHOW, Reservation, Slot
from app.models.venue import Purpose, Venue, VenuePurpose
from app.services import availability, booking, desk
from app.services.calendar import existing_slots
from tests.conftest import text_of


def figures_one_by_one(session, now):
    """The staff home's figures as the desk counts them: every booking of each venue's day
    loaded, and the free seats of each offer's open slots (the implementation before §7)."""
    today = now.astimezone(JST).date()
    offers_by_venue = {}
    for offer in availability.active_offers(session):
        offers_by_venue.setdefault(offer.venue_id, []).append(offer)
    figures = []
    for venue in session.execute(select(Venue).where(Venue.active.is_(True))
                                 .order_by(Venue.name)).scalars():
        slots = [s for offer in offers_by_venue.get(venue.id, [])
                 for s in existing_slots(session, offer, today, today)]
        open_slots = [s for s in slots if s.ends_at > now and not s.closed]
        free = sum(booking.free_counts(session, open_slots, now).values()) if open_slots else 0
        figures.append(desk.VenueToday(venue.id, venue.name,
                                       desk.counts(desk.day_bookings(session, venue.id, today),
                                                   now), free))
    return figures


def seeded(app, db, clock):
    """The demo data (bookings today in mixed states at every venue), and what the desk
    sees on a busy day: a no-show, a cancellation, a closed slot, a hold that lapsed, an
    offer taken out of use (its bookings still count, its seats no longer)."""
    from app.services import demo

    # Every card state of the demo, two cards each instead of ~330 cards: the figures read
    # bookings and slots; the cards only need to be there in each state.
    small_mix = [(min(entry[0], 2), *entry[1:]) for entry in demo.CARD_MIX]
    with app.app_context(), patch.object(demo, "CARD_MIX", small_mix):
        g.audit_actor = "cli:test"
        demo.seed_demo()
    now = clock()
    today = sorted(db.execute(select(Reservation).join(Slot).where(
        Slot.starts_at >= now.replace(hour=0), Slot.starts_at < now.replace(hour=23))
        .order_by(Reservation.id)).scalars(), key=lambda r: r.id)
    assert len(today) >= 6
    today[-1].state = NO_SHOW
    today[-2].state = CANCELLED
    slot = db.execute(select(Slot).where(Slot.starts_at > now + timedelta(hours=2))
                      .order_by(Slot.starts_at)).scalars().first()
    slot.closed = True
    db.commit()
    open_slot = db.execute(select(Slot).where(
        Slot.starts_at > now + timedelta(hours=1), Slot.starts_at < now + timedelta(hours=6),
        Slot.closed.is_(False), Slot.taken < Slot.seats).order_by(Slot.starts_at)).scalars().first()
    with app.test_request_context():
        booking.hold_seats(db, open_slot, 1, staff=True)  # lapses when the clock moves on
    denshi = db.execute(select(VenuePurpose).join(Purpose).where(Purpose.code == "denshi")
                        ).scalars().first()
    denshi.active = False
    db.commit()


def test_home_figures_equal_the_booking_by_booking_count(app, db, clock):
    seeded(app, db, clock)
    start = clock()
    free_seen = False
    for minutes in (-90, 0, 20, 60 * 3, 60 * 7):  # before opening, late arrivals, a lapsed hold
        now = start + timedelta(minutes=minutes)
        with app.app_context():
            figures, waiting = desk.today_figures(db, now)
            expected = figures_one_by_one(db, now)
        assert figures == expected, now
        assert waiting > 0
        free_seen = free_seen or any(f.free_seats for f in figures)
    assert any(f.counts.no_show for f in figures) and any(f.counts.arrived for f in figures)
    assert free_seen


def test_home_page_shows_the_figures(app, db, clock, login_as):
    seeded(app, db, clock)
    with app.app_context():
        expected = figures_one_by_one(db, clock())
    page = login_as("clerk").get("/")
    rows = text_of(page)
    for f in expected:
        c = f.counts
        late = f" 遅刻 {c.late}" if c.late else ""
        assert (f"{f.name} {c.booked} {c.arrived} {c.waiting}{late} {c.no_show} "
                f"{f.free_seats}") in rows


def test_availability_json_is_every_open_slot_with_its_free_seats(app, db, clock, client):
    seeded(app, db, clock)
    clock.advance(minutes=30)  # the hold has lapsed: its seat is free again
    offer = db.execute(select(VenuePurpose).join(Purpose).where(Purpose.code == "kofu")
                       .order_by(VenuePurpose.id)).scalars().first()
    answer = client.get("/reserve/api/availability", query_string={
        "venue": offer.venue_id, "purpose": "kofu"}).json
    now = clock()
    earliest = now + timedelta(minutes=offer.closes_minutes_before)
    latest = datetime.combine(now.date() + timedelta(days=offer.opens_days_ahead),
                              time(23, 59), JST)
    slots = [s for s in db.execute(select(Slot).where(Slot.offer_id == offer.id)
                                   .order_by(Slot.starts_at)).scalars()
             if not s.closed and earliest <= s.starts_at <= latest
             and s.starts_at.date() <= now.date() + timedelta(days=61)]
    free = booking.free_counts(db, slots, now)
    assert answer == {"venue": offer.venue_id, "purpose": "kofu", "slots": [
        {"id": s.id, "start": s.starts_at.isoformat(), "end": s.ends_at.isoformat(),
         "seats": s.seats, "free": free[s.id]} for s in slots]}
    assert len(answer["slots"]) > 300


def test_month_calendar_status_is_the_status_of_each_days_json(app, db, clock):
    seeded(app, db, clock)
    clock.advance(minutes=30)
    offer = db.execute(select(VenuePurpose).join(Purpose).where(Purpose.code == "kofu")
                       .order_by(VenuePurpose.id)).scalars().first()
    now = clock()
    with app.app_context():
        first_month, last_month = availability.month_range(offer, now)
        month = first_month
        statuses = set()
        while month <= last_month:
            end = (month + timedelta(days=32)).replace(day=1) - timedelta(days=1)
            json_days = {}
            for slot in availability.availability(db, offer, month, end):
                json_days.setdefault(slot["start"][:10], []).append(slot)
            for seats in (1, 2, 3):
                days = availability.month_days(db, offer, month, seats, 0.3)
                assert sorted(days) == [month + timedelta(days=n)
                                        for n in range((end - month).days + 1)]
                for day, info in days.items():
                    expected = json_days.get(day.isoformat(), [])
                    assert info.status == availability.day_status(expected, seats, 0.3), day
                    assert [s.id for s in info.slots] == [s["id"] for s in expected]
                    statuses.add(info.status)
            month = (month + timedelta(days=32)).replace(day=1)
    assert {availability.FREE, availability.CLOSED} <= statuses
