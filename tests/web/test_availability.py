"""The residents' JSON: venues with purposes, and free seats per bookable slot."""
from datetime import date

from app.models.venue import DateException
from app.services import booking
from app.services.calendar import ensure_slots, settings_changed
from tests.factories import make_offer


def test_venues_list_active_venues_with_their_purposes(client, db):
    make_offer(db, venue="本庁舎", purpose_code="kofu")
    make_offer(db, venue="本庁舎", purpose_code="denshi")
    closed = make_offer(db, venue="閉鎖中の支所", purpose_code="kofu")
    closed.venue.active = False
    db.commit()
    venues = client.get("/reserve/api/venues").json["venues"]
    assert [v["name"] for v in venues] == ["本庁舎"]
    assert {p["code"] for p in venues[0]["purposes"]} == {"kofu", "denshi"}
    assert all({"id", "code", "name"} <= set(p) for p in venues[0]["purposes"])


def test_availability_lists_bookable_slots_with_free_seats(app, client, db):
    offer = make_offer(db, seats=2, opens_days_ahead=14, closes_minutes_before=3 * 24 * 60)
    offer.exceptions.append(DateException(day=date(2026, 12, 9), closed=True))
    db.commit()
    settings_changed(db, offer.id)  # as saving the date exception on its screen does
    response = client.get("/reserve/api/availability", query_string={
        "venue": offer.venue.id, "purpose": "kofu", "from": "2026-12-01", "to": "2026-12-31"})
    assert response.status_code == 200
    slots = response.json["slots"]
    days = sorted({s["start"][:10] for s in slots})
    # the window: from 3 days ahead (12/4 10:00, a Friday) to 14 days ahead (12/15)
    assert days[0] == "2026-12-04" and days[-1] == "2026-12-15"
    assert "2026-12-09" not in days and "2026-12-05" not in days  # closed day, Saturday
    assert {s["free"] for s in slots} == {2}
    first = slots[0]
    assert first["start"] == "2026-12-04T10:00:00+09:00" and first["end"].endswith("10:30:00+09:00")
    with app.test_request_context():
        slot = next(s for s in ensure_slots(db, offer, date(2026, 12, 4), date(2026, 12, 4))
                    if s.starts_at.hour == 10)
        booking.hold_seats(db, slot, 1)
    again = client.get("/reserve/api/availability", query_string={
        "venue": offer.venue.id, "purpose": "kofu", "from": "2026-12-04", "to": "2026-12-04"})
    assert again.json["slots"][0]["free"] == 1


def test_bad_parameters_get_a_japanese_400(client, db):
    offer = make_offer(db)
    assert client.get("/reserve/api/availability?venue=x&purpose=kofu").status_code == 400
    wrong = client.get("/reserve/api/availability", query_string={
        "venue": offer.venue.id, "purpose": "nothing"})
    assert wrong.status_code == 400 and "予約を受け付けていません" in wrong.json["error"]
    bad_day = client.get("/reserve/api/availability", query_string={
        "venue": offer.venue.id, "purpose": "kofu", "from": "2026/12/01"})
    assert bad_day.status_code == 400 and "YYYY-MM-DD" in bad_day.json["error"]


def test_demo_has_a_venue_open_for_kofu_on_weekdays(app, client):
    from app.services.demo import seed_venues

    with app.app_context():
        seed_venues(app.appbuilder.session)
    venues = client.get("/reserve/api/venues").json["venues"]
    main = next(v for v in venues if v["name"].startswith("市役所本庁舎"))
    slots = client.get("/reserve/api/availability", query_string={
        "venue": main["id"], "purpose": "kofu", "from": "2026-12-07",
        "to": "2027-01-29"}).json["slots"]
    weekdays = {date.fromisoformat(s["start"][:10]).weekday() for s in slots}
    assert weekdays == {0, 1, 2, 3, 4} and len({s["start"][:10] for s in slots}) > 30


def test_a_range_answers_only_its_own_days(client, db):
    offer = make_offer(db)
    wide = client.get("/reserve/api/availability", query_string={
        "venue": offer.venue.id, "purpose": "kofu", "from": "2026-12-01", "to": "2026-12-31"})
    assert wide.json["slots"]
    one = client.get("/reserve/api/availability", query_string={
        "venue": offer.venue.id, "purpose": "kofu", "from": "2026-12-08", "to": "2026-12-08"})
    assert {s["start"][:10] for s in one.json["slots"]} == {"2026-12-08"}
