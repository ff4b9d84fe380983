"""The fee panel and the 日計表 after an outside review: 閲覧者 never see receipts or money
received on an application's page, and no day is offered for closing ahead of it."""
from app.services import fees
from app.services.cards import SYSTEM
from tests.factories import make_intake
from tests.unit.test_fees import NOW, seed_fees


def _paid(db):
    seed_fees(db)
    application = make_intake(db, kind="reissue", reissue_reason="lost")
    fees.charge(db, application, actor=SYSTEM, venue_id=application.venue_id, now=NOW)
    fees.pay(db, application, actor=SYSTEM, venue_id=application.venue_id, now=NOW,
             tendered=5000)
    return application


def test_a_viewer_sees_the_application_without_its_fee_panel(login_as, db):
    application = _paid(db)
    page = login_as("viewer").get(f"/intakemodelview/show/{application.id}")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and application.name in text
    assert 'data-testid="fee-panel"' not in text and "2026-000001" not in text


def test_a_clerk_sees_the_fee_panel(login_as, db):
    application = _paid(db)
    text = login_as("clerk").get(f"/intakemodelview/show/{application.id}").get_data(
        as_text=True)
    assert 'data-testid="fee-panel"' in text and "2026-000001" in text


def test_no_close_form_for_a_day_ahead(login_as, db):
    application = _paid(db)
    client = login_as("clerk", username="madoguchi_f")
    today = client.get(f"/fees/daily?venue={application.venue_id}&day=2026-12-01")
    assert 'data-testid="fee-close-form"' in today.get_data(as_text=True)
    ahead = client.get(f"/fees/daily?venue={application.venue_id}&day=2026-12-02")
    assert 'data-testid="fee-close-form"' not in ahead.get_data(as_text=True)
    refused = client.post("/fees/daily/close", data={
        "venue": application.venue_id, "day": "2026-12-02", "clerk": "madoguchi_f",
        "counted_cash": "0"})
    assert refused.status_code in (200, 302)
    from app.models.fee import DailyClose
    assert db.query(DailyClose).count() == 0


def test_the_daily_download_names_the_clerk(login_as, db):
    """The 日計表's XLSX, like its screen, names the clerk (試験 太郎), not a login ID."""
    import io

    from openpyxl import load_workbook

    seed_fees(db)
    application = make_intake(db, kind="reissue", reissue_reason="lost")
    client = login_as("clerk", username="madoguchi_x")
    base = f"/fees/intake/{application.id}"
    venue = str(application.venue_id)
    assert client.post(f"{base}/charge", data={"venue_id": venue}).status_code == 302
    assert client.post(f"{base}/pay", data={"venue_id": venue, "method": "cash",
                                            "tendered": "1000"}).status_code == 302
    response = client.get(f"/fees/daily.xlsx?venue={venue}&day=2026-12-01")
    sheet = load_workbook(io.BytesIO(response.data)).active
    cells = [c.value for row in sheet.iter_rows() for c in row]
    assert "試験 太郎" in " ".join(str(c) for c in cells)
    assert "madoguchi_x" not in cells
