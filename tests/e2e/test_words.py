"""The words a clerk reads (issue 12, 2; docs/glossary.md), in a browser at a staff PC's
size: the login page says ログイン, the language menu names 日本語 and English with the
current one ticked, a phone booking's 受付経路 is 電話. Screenshots under
tests/e2e/screenshots/words-*.png."""
from datetime import date

from app.models.reservation import CHANNEL_PHONE
from app.services import booking
from app.services.calendar import ensure_slots
from tests.e2e.conftest import body_text, shot
from tests.e2e.pages import LoginPage
from tests.factories import make_offer


def test_login_language_menu_and_channel_words(app, db, users, live_server, page_factory):
    offer = make_offer(db)
    with app.test_request_context():
        slot = ensure_slots(db, offer, date(2026, 12, 1), date(2026, 12, 1))[4]
        db.commit()
        booking.book(db, slot, None, date(1980, 3, 1),
                     booking.Contact(phone="0312345678", name="山田　花子", name_kana="ヤマダ　ハナコ"),
                     seats=1, staff=True, channel=CHANNEL_PHONE)
    users.create("clerk", username="kotoba_e2e")
    page = page_factory()
    login = LoginPage(page, live_server).open()
    body = body_text(page)
    assert "ログイン" in body and "サインイン" not in body and "ユーザーID" in body
    shot(page, "words-01-login")
    login.sign_in("kotoba_e2e", users.password)

    page.click(".language-menu > a.dropdown-toggle")
    menu = page.inner_text(".language-menu .dropdown-menu")
    assert [line.strip() for line in menu.splitlines() if line.strip()] == ["日本語", "English"]
    assert page.get_attribute(".language-menu li.active a", "lang") == "ja"
    shot(page, "words-02-language-menu")

    page.goto(live_server + "/reservationmodelview/list/")
    row = page.inner_text("table tbody tr:has-text('山田')")
    assert "電話" in row and "電話番号" not in row
    shot(page, "words-03-booking-list")

    page.goto(live_server + "/purposemodelview/list/")
    assert "名称" in page.inner_text("table thead")
    shot(page, "words-04-purposes")
