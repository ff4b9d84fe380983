"""Supervisors set venues and opening rules; the residents' availability follows."""
from sqlalchemy import select

from app.models.venue import DateException, WeeklyRule
from tests.conftest import text_of
from tests.factories import make_offer


def test_weekly_rule_with_japanese_times_and_a_refused_end(login_as, client, db):
    offer = make_offer(db, weekdays=[])  # no opening hours yet
    manager = login_as("manager")
    response = manager.post("/weeklyrulemodelview/add", follow_redirects=True, data={
        "offer": offer.id, "weekday": "4", "starts": "１０：００", "ends": "09:00",
        "slot_minutes": "30", "seats": "2"})
    assert "終了は開始より後の日時にしてください" in text_of(response)
    assert db.execute(select(WeeklyRule)).first() is None
    manager.post("/weeklyrulemodelview/add", data={
        "offer": offer.id, "weekday": "4", "starts": "１０：００", "ends": "12:00",
        "slot_minutes": "60", "seats": "3"})
    rule = db.execute(select(WeeklyRule)).scalar_one()
    assert (rule.weekday, rule.starts.hour, rule.ends.hour, rule.seats) == (4, 10, 12, 3)
    slots = client.get("/reserve/api/availability", query_string={
        "venue": offer.venue.id, "purpose": "kofu", "from": "2026-12-04",
        "to": "2026-12-11"}).json["slots"]
    # bookable from 3 days ahead: 12/4 10:00 (now is 12/1 10:00), Fridays only
    assert [s["start"][:16] for s in slots] == ["2026-12-04T10:00", "2026-12-04T11:00",
                                                "2026-12-11T10:00", "2026-12-11T11:00"]


def test_date_exception_closes_a_day_with_era_input(login_as, db):
    offer = make_offer(db)
    manager = login_as("manager")
    manager.post("/dateexceptionmodelview/add", data={
        "offer": offer.id, "day": "R8.12.10", "closed": "y", "note": "庁舎点検"})
    exception = db.execute(select(DateException)).scalar_one()
    assert exception.day.isoformat() == "2026-12-10" and exception.closed
    bad = manager.post("/dateexceptionmodelview/add", data={
        "offer": offer.id, "day": "2026-02-30", "closed": "y"})
    assert "存在しない日付です" in text_of(bad)


def test_settings_list_is_japanese(login_as, db):
    make_offer(db)
    page = text_of(login_as("clerk").get("/venuepurposemodelview/list/"))
    assert "予約受付の設定" in page and "市役所本庁舎" in page
    assert "マイナンバーカードの受け取り" in page  # the offer's purpose, as the screen lists it


def test_every_settings_screen_renders(login_as, db):
    from datetime import date

    offer = make_offer(db)
    offer.exceptions.append(DateException(day=date(2026, 12, 24), closed=True))
    db.commit()
    manager = login_as("manager")
    for view, pk in (("venuepurposemodelview", offer.id), ("venuemodelview", offer.venue.id),
                     ("purposemodelview", offer.purpose.id),
                     ("weeklyrulemodelview", offer.rules[0].id),
                     ("dateexceptionmodelview", offer.exceptions[0].id)):
        for page in ("list/", "add", f"show/{pk}", f"edit/{pk}"):
            response = manager.get(f"/{view}/{page}")
            assert response.status_code == 200, (view, page, response.status_code)
