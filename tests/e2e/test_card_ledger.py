"""A clerk receives cards, sets them up, sends notices, hands one over, reads its history."""
from sqlalchemy import select

from app.models.card import Card
from app.services import notice_numbers
from tests.e2e.conftest import body_text, shot
from tests.e2e.pages import CardForm, CardLedger, HandoverDesk, LoginPage
from tests.factories import make_card, make_storage


def test_receive_setup_notify_hand_over_and_history(users, db, live_server, page_factory):
    make_storage(db, code="金庫A-棚1-箱01", capacity=40)
    for _ in range(2):
        make_card(db)
    users.create("clerk", username="madoguchi_e2e")
    page = page_factory()
    LoginPage(page, live_server).open().sign_in("madoguchi_e2e", users.password)

    form = CardForm(page, live_server).open()
    form.fill(application_id="１２３４５６７８９０１２３４５６７８９０１２３", name="鈴木 一郎",
              name_kana="すずき いちろう", birth_date="昭和60年4月5日", postal_code="1234567",
              address="みどり市桜台2-3-4", manufacture_number="AB12CD34EF56GH78")
    shot(page, "11-card-form")
    form.save()
    assert db.execute(select(Card).where(Card.application_id == "12345678901234567890123")) \
        .scalar_one().name_kana == "スズキ　イチロウ"

    ledger = CardLedger(page, live_server).open()
    assert "納品" in page.inner_text("[data-testid=state-summary]")
    ledger.select_all()
    ledger.run_action("to_setup")
    assert "3 枚のカードを「交付前設定済」にしました" in body_text(page)
    ledger.open()
    ledger.select_all()
    ledger.run_action("to_notice_sent")
    assert "交付通知書発送" in body_text(page)
    shot(page, "12-card-ledger")

    db.expire_all()
    card = db.execute(select(Card).where(Card.application_id == "12345678901234567890123")).scalar_one()
    desk = HandoverDesk(page, live_server).open()
    desk.find(notice_numbers.display(card.notice_number))
    assert "鈴木　一郎" in page.inner_text("[data-testid=handover-card]")
    shot(page, "13-handover")
    desk.check_identity_and_hand_over()
    assert "交付しました" in body_text(page)

    page.goto(f"{live_server}/cardmodelview/show/{card.id}")
    history = page.inner_text("[data-testid=card-history]")
    for state in ("納品", "交付前設定済", "交付通知書発送", "交付済"):
        assert state in history
    assert "1985-04-05（昭和60年4月5日）" in body_text(page)
    shot(page, "14-card-detail")
    assert page.requests.outside() == []


def test_manager_discard_and_stock_taking(users, db, clock, live_server, page_factory):
    from datetime import timedelta

    from app.services import cards as svc

    make_storage(db, code="金庫A-棚1-箱01", capacity=40)
    old = make_card(db, state=svc.NOTICE_SENT)
    old.notice_sent_at = clock() - timedelta(days=400)
    db.commit()
    make_card(db, visit_mode="S", state=svc.SETUP)
    users.create("manager", username="kanri_e2e")
    page = page_factory()
    LoginPage(page, live_server).open().sign_in("kanri_e2e", users.password)
    page.goto(f"{live_server}/discard/")
    page.click("[data-testid=refresh-candidates]")  # the candidates as found now
    page.wait_for_load_state("networkidle")
    assert old.application_id in page.inner_text("[data-testid=discard-candidates]")
    page.check(f"input[name=ids][value='{old.id}']")
    page.fill("#reason", "保管期限経過")
    shot(page, "15-discard-candidates")
    page.click("button:has-text('選択したカードを廃棄')")
    page.wait_for_load_state("networkidle")
    assert "1 枚を廃棄しました" in body_text(page)
    page.goto(f"{live_server}/discard/register")
    assert old.application_id in page.inner_text("[data-testid=discard-register]")
    shot(page, "16-discard-register")
    page.goto(f"{live_server}/storage/inventory")
    assert "金庫A-棚1-箱01" in body_text(page)
    shot(page, "17-inventory")
    pdf = page.pdf(format="A4") if hasattr(page, "pdf") else b""
    assert pdf.startswith(b"%PDF")
    assert page.requests.outside() == []
