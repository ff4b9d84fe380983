"""A clerk takes an application at the counter: the form at a staff PC's size, a wrong
field told in Japanese, then the saved application with its checklist and card."""
from sqlalchemy import select

from app.models.intake import Intake
from app.models.venue import Venue
from tests.e2e.conftest import body_text, shot
from tests.e2e.pages import LoginPage


def test_take_an_application_at_the_counter(users, db, live_server, page_factory):
    venue = Venue(name="市役所本庁舎 1階 市民課", address="みどり市中央1-1-1")
    db.add(venue)
    db.commit()
    users.create("clerk", username="madoguchi_e2e")
    page = page_factory()
    LoginPage(page, live_server).open().sign_in("madoguchi_e2e", users.password)

    page.goto(f"{live_server}/intakemodelview/add?venue={venue.id}")
    page.fill("#application_id", "１２３４５６７８９０１２３４５６７８９０１２３")
    page.fill("#name", "鈴木 一郎")
    page.fill("#name_kana", "すずき いちろう")
    page.fill("#birth_date", "S60.4.5")
    page.fill("#postal_code", "1234567")
    page.fill("#address", "みどり市桜台2-3-4")
    page.fill("#phone", "090-1234-5678")
    page.click("form#model_form button[type=submit]")  # no identity documents ticked
    assert "本人確認書類" in body_text(page)
    assert db.execute(select(Intake)).first() is None
    shot(page, "41-intake-form")
    page.check("#identity-0")
    page.click("form#model_form button[type=submit]")
    page.wait_for_load_state("networkidle")
    item = db.execute(select(Intake)).scalar_one()
    assert item.name_kana == "スズキ　イチロウ" and item.clerk == "madoguchi_e2e"
    body = body_text(page)
    assert "未納品" in body and "受付済" in body and "1985-04-05（昭和60年4月5日）" in body
    shot(page, "42-intake-detail")
    assert page.requests.outside() == []
