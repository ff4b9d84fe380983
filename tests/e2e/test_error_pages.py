"""Error pages as a clerk and a resident see them (issue 12 §1): Japanese, in each site's
layout, with a way back; a 500 shows the reference the clerk can quote."""
import re

import pytest

from tests.e2e.conftest import body_text, shot
from tests.e2e.pages import LoginPage


def _boom():
    raise RuntimeError("e2e: a failure on purpose")


@pytest.fixture
def failing(app):
    app.config["PROPAGATE_EXCEPTIONS"] = False  # the 500 page, as in production
    app.add_url_rule("/test-only/boom", "test_boom", _boom)
    return app


@pytest.mark.own_app
def test_error_pages_in_japanese_on_both_sites(failing, users, live_server, page_factory):
    users.create("clerk", username="madoguchi_e2e")
    page = page_factory()
    LoginPage(page, live_server).open().sign_in("madoguchi_e2e", users.password)

    response = page.goto(live_server + "/cardmodelview/show/999999")
    assert response.status == 404
    body = body_text(page)
    assert "ページが見つかりません" in body and "ホーム" in body and "Not Found" not in body
    assert page.is_visible("nav, .navbar")  # the staff menu is there
    shot(page, "error-404-staff-ja")
    page.click("text=ホーム")
    assert page.url.rstrip("/") == live_server

    response = page.goto(live_server + "/test-only/boom")
    assert response.status == 500
    body = body_text(page)
    assert "システムエラーが発生しました" in body
    assert re.search(r"問い合わせ番号：E-\d{8}-[0-9A-F]{6}", body), body
    shot(page, "error-500-staff-ja")

    resident = page_factory(width=390, height=844)
    response = resident.goto(live_server + "/reserve/no-such-page")
    assert response.status == 404
    body = body_text(resident)
    assert "ページが見つかりません" in body and "予約サイトのトップへ戻る" in body
    width = resident.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width  # nothing sideways on a phone
    shot(resident, "error-404-resident-ja-phone")
    resident.click("text=予約サイトのトップへ戻る")
    assert resident.url.endswith("/reserve/")

    assert page.requests.outside() == [] and resident.requests.outside() == []
