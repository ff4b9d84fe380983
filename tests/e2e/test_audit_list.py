"""A manager reads the audit trail at a staff PC's size (1366x768): sentences, names,
filters, the stored record behind each row (issue 12 §4)."""
from datetime import date

from app.services import audit
from tests.e2e.conftest import shot
from tests.e2e.pages import LoginPage
from tests.factories import make_card, make_offer, make_storage


def test_manager_reads_the_audit_trail(app, users, db, live_server, page_factory):
    from app.services import booking
    from app.services.calendar import ensure_slots

    make_storage(db, code="金庫A-棚1-箱01", capacity=40)
    card = make_card(db)
    users.create("clerk", username="madoguchi_a")
    users.create("manager", username="kanri_e2e")
    offer = make_offer(db, purpose_code="shinsei", seats=2)
    with app.test_request_context():
        audit.act_as("cli:root")
        slots = ensure_slots(db, offer, date(2026, 12, 1), date(2026, 12, 3))
        db.commit()
        reservation = booking.book(db, slots[2], None, date(1980, 3, 1),
                                   booking.Contact(phone="0312345678"), seats=1, staff=True)

    clerk = page_factory()
    LoginPage(clerk, live_server).open().sign_in("madoguchi_a", users.password)
    clerk.goto(f"{live_server}/cardmodelview/show/{card.id}")
    clerk.select_option("#to", "setup")
    with clerk.expect_navigation():
        clerk.click("[data-testid=transition-form] button[type=submit]")

    page = page_factory(width=1366, height=768)
    LoginPage(page, live_server).open().sign_in("kanri_e2e", users.password)
    page.goto(f"{live_server}/auditlogmodelview/list/")
    table = page.inner_text("[data-testid=audit-table]")
    assert f"カード 申請書ID {card.application_id} を 納品 → 交付前設定済" in table
    assert f"予約 {reservation.number} を登録" in table
    assert "コマンド操作（root）" in table and "試験 太郎" in table
    assert "ログイン" in table and "画面・API" not in table  # new records say where
    for raw in ("anonymous", "User Id", "received", "reservation"):
        assert raw not in table
    shot(page, "audit-list-1366")

    page.select_option("#f-kind", "card")
    with page.expect_navigation():
        page.click("[data-testid=audit-filters] button[type=submit]")
    rows = page.locator("[data-testid=audit-sentence]").all_inner_texts()
    assert rows and all(card.application_id in r for r in rows)
    page.locator("[data-testid=audit-raw] summary").first.click()
    assert "&quot;" not in page.inner_text("[data-testid=audit-raw] pre >> nth=0")
    shot(page, "audit-list-card-raw-1366")
    assert page.requests.outside() == []
