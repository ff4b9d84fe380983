"""The scan station in chromium: a reader types each payload and Enter; the clerk
registers the batch and the ledger has the cards."""
from sqlalchemy import select

from app.models.card import Card
from tests.e2e.conftest import body_text, shot
from tests.e2e.pages import LoginPage
from tests.factories import make_storage
from tests.qrpages import payload


def test_reader_scans_then_clerk_registers(users, db, live_server, page_factory):
    make_storage(db, code="金庫A-棚1-箱01", capacity=40)
    users.create("clerk", username="madoguchi_qr")
    page = page_factory()
    page.on("dialog", lambda dialog: dialog.accept())
    LoginPage(page, live_server).open().sign_in("madoguchi_qr", users.password)
    page.goto(f"{live_server}/scan/")
    page.click("button:has-text('新しいバッチを開始')")
    field = page.locator("[data-testid=scan-input]")
    assert field.evaluate("el => el === document.activeElement")
    codes = [payload(1, "K"), payload(2, "S"), payload(3, "K"), payload(1, "K"), "MNC1|壊れた"]
    for number, code in enumerate(codes, start=1):
        page.keyboard.type(code)  # a keyboard-wedge reader types, then Enter
        page.keyboard.press("Enter")
        page.wait_for_function("n => document.querySelectorAll('#scan-rows tr').length >= n",
                               arg=number)
    assert page.inner_text("[data-count=ok_k]") == "2"
    assert page.inner_text("[data-count=ok_s]") == "1"
    assert page.inner_text("[data-count=duplicate]") == "1"
    assert page.inner_text("[data-count=invalid]") == "1"
    assert "読取エラー" in page.inner_text("[data-testid=last-scan]")
    assert field.evaluate("el => el === document.activeElement")  # focus never leaves
    shot(page, "18-scan-station")
    page.reload()  # kept on the server
    assert page.locator("#scan-rows tr").count() == 5
    page.click("[data-testid=register]")
    page.wait_for_load_state("networkidle")
    assert "3 枚をカード管理簿に登録しました" in body_text(page)
    shot(page, "19-ledger-sheet")
    ids = set(db.execute(select(Card.application_id)).scalars())
    assert len(ids) == 3
    assert page.requests.outside() == []
