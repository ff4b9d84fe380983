"""A clerk charges and takes a reissue fee on the intake's fee panel, prints the receipt on
A5 (the PDF Chromium makes of it holds the amount and the receipt number; the second print
says 再発行), and the day's 日計表 shows a miscounted drawer in red until it is explained."""
import pypdfium2

from tests.e2e.conftest import shot
from tests.e2e.pages import LoginPage
from tests.factories import make_intake
from tests.unit.test_fees import seed_fees


def _pdf_text(path) -> str:
    document = pypdfium2.PdfDocument(str(path))
    return "".join(document[i].get_textpage().get_text_range() for i in range(len(document)))


def test_fee_panel_receipt_and_daily_sheet(app, db, users, live_server, page_factory,
                                           tmp_path):
    seed_fees(db)
    intake = make_intake(db, kind="reissue", reissue_reason="lost")
    users.create("clerk", username="madoguchi_fee")
    page = page_factory()
    LoginPage(page, live_server).open().sign_in("madoguchi_fee", users.password)
    page.goto(f"{live_server}/fees/intake/{intake.id}")
    page.wait_for_selector("[data-testid=fee-charge]")
    assert "1,000円" in page.inner_text("[data-testid=fee-quote]")
    page.click("[data-testid=fee-charge] button[type=submit]")
    page.wait_for_selector("[data-testid=fee-pay]")
    page.fill("#fee-tendered", "5000")
    page.click("[data-testid=fee-pay] button[type=submit]")
    page.wait_for_selector("[data-testid=fee-print]")
    assert page.inner_text("[data-testid=fee-state]") == "収納済"
    shot(page, "60-fee-panel")

    with page.context.expect_page() as opened:
        page.click("[data-testid=fee-print] button[type=submit]")
    receipt = opened.value
    receipt.wait_for_selector("[data-testid=receipt]")
    assert receipt.get_attribute("[data-testid=receipt]", "data-paper") == "A5"
    shot(receipt, "61-fee-receipt-a5")
    pdf = tmp_path / "receipt.pdf"
    receipt.pdf(path=str(pdf), prefer_css_page_size=True, print_background=True)
    text = _pdf_text(pdf).replace(" ", "")
    assert "2026-000001" in text and "1,000円" in text and "領収書" in text
    assert "再発行" not in text
    width, height = pypdfium2.PdfDocument(str(pdf))[0].get_size()
    assert abs(width - 419.5) < 3 and abs(height - 595.3) < 3  # A5 in points
    page.reload()
    with page.context.expect_page() as again:
        page.click("[data-testid=fee-print] button[type=submit]")
    reprint = again.value
    reprint.wait_for_selector("[data-testid=receipt-reissue]")
    shot(reprint, "62-fee-receipt-reissued")

    page.goto(f"{live_server}/fees/daily?venue={intake.venue_id}&day=2026-12-01")
    page.wait_for_selector("[data-testid=fee-close-form]")
    page.fill("[data-testid=fee-close-form] input[name=counted_cash]", "900")
    page.click("[data-testid=fee-close-form] button[type=submit]")
    page.wait_for_selector("[data-testid=fee-error-explanation]")
    difference = page.locator("[data-testid=fee-difference]")
    assert "-100円" in difference.inner_text()
    color = difference.evaluate("e => getComputedStyle(e).color")
    assert color == "rgb(204, 0, 0)", color
    shot(page, "63-fee-daily-difference")
    page.fill("[data-testid=fee-close-form] input[name=explanation]", "釣銭の渡し過ぎ")
    page.click("[data-testid=fee-close-form] button[type=submit]")
    page.wait_for_selector("[data-testid=fee-close]")
    shot(page, "64-fee-daily-closed")
    assert page.requests.outside() == []
