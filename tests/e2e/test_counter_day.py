"""A counter day end to end at 1366×768 (issue 13 §5): a clerk checks in a booked 申請
visitor at the desk and lands on the application form prefilled from the booking, takes it
as a 再交付 (紛失) with the 申請書ID typed in full-width digits, scans the 3-page application
form, charges and takes the 1,000円 fee in cash, prints the receipt (the PDF Chromium makes
of it holds the amount and the receipt number), closes the day's 日計表 with no difference,
and finds the visitor on the desk again."""
import os
from datetime import date

import pypdfium2
from sqlalchemy import select

from app.models.intake import Intake
from app.models.reservation import Reservation
from app.models.venue import Purpose
from app.services import booking
from app.services.calendar import ensure_slots
from tests import document_files as files
from tests.e2e.conftest import body_text, shot
from tests.e2e.pages import LoginPage
from tests.factories import make_offer
from tests.unit.test_fees import seed_fees

TODAY = date(2026, 12, 1)  # the tests' clock: 2026-12-01 10:00 JST
APPLICATION_ID = "12345678901234567890123"
FULL_WIDTH_ID = "１２３４ ５６７８ ９０１２ ３４５６ ７８９０ １２３"


def _pdf_text(path) -> str:
    document = pypdfium2.PdfDocument(str(path))
    return "".join(document[i].get_textpage().get_text_range() for i in range(len(document)))


def _book_shinsei_today(app, db):
    db.add(Purpose(code="shinsei", name="マイナンバーカードの申請", needs_postcard=False))
    db.commit()
    offer = make_offer(db, purpose_code="shinsei", seats=2)
    with app.test_request_context():
        slot = ensure_slots(db, offer, TODAY, TODAY)[3]  # 10:30
        db.commit()
        reservation = booking.book(db, slot, None, date(1980, 3, 1), booking.Contact(
            phone="09012345678", name="山田　太郎", name_kana="ヤマダ　タロウ"), staff=True)
    return offer, reservation.id, reservation.number


def test_a_counter_day_from_check_in_to_the_balanced_daily_sheet(app, db, users, live_server,
                                                                  page_factory, tmp_path):
    offer, reservation_id, number = _book_shinsei_today(app, db)
    venue_id = offer.venue.id
    seed_fees(db)
    users.create("clerk", username="madoguchi_day")
    page = page_factory(width=1366, height=768)
    LoginPage(page, live_server).open().sign_in("madoguchi_day", users.password)

    # 1. the desk: check the booked visitor in
    page.goto(f"{live_server}/desk/{venue_id}?day={TODAY.isoformat()}")
    page.wait_for_selector(f"[data-testid=check-in-{number}]")
    assert page.inner_text(f"[data-state-of='{number}']").startswith("予約済")
    shot(page, "counter-01-desk")
    page.click(f"[data-testid=check-in-{number}]")
    page.wait_for_selector("form#model_form")

    # 2. the application form, prefilled from the booking
    assert "/intakemodelview/add" in page.url
    assert page.input_value("#name") == "山田　太郎"
    assert page.input_value("#name_kana") == "ヤマダ　タロウ"
    assert page.input_value("#birth_date") == "1980-03-01"
    assert page.input_value("#phone") == "090-1234-5678"
    assert page.input_value("#venue_id") == str(venue_id)
    shot(page, "counter-02-intake-prefilled")

    # 3. a reissue (紛失), the ID in full-width digits, the identity checklist; saved
    page.fill("#application_id", FULL_WIDTH_ID)
    page.select_option("#kind", "reissue", force=True)
    page.select_option("#reissue_reason", "lost", force=True)
    page.fill("#postal_code", "１２３－４５６７")
    page.fill("#address", "みどり市桜台2-3-4")
    page.check("#identity-0")  # one A-type document
    assert page.is_checked("#collector-0")  # the resident came
    page.click("form#model_form button[type=submit]")
    page.wait_for_load_state("networkidle")
    item = db.execute(select(Intake)).scalar_one()
    assert (item.application_id, item.kind, item.reissue_reason) == (
        APPLICATION_ID, "reissue", "lost")
    assert item.reservation_id == reservation_id and item.clerk == "madoguchi_day"
    # saving from the desk goes back to the desk (the booking stays 来庁済 until completed),
    # which names the application and offers the way on to its fee and scans
    assert f"/desk/{venue_id}" in page.url
    assert page.inner_text(f"[data-state-of='{number}']").startswith("来庁済")
    assert f"申請書ID {APPLICATION_ID} の申請を受け付けました" in page.inner_text(".alert-success")
    shot(page, "counter-03-desk-after-intake")
    page.click("[data-testid=intake-saved-link]")
    page.wait_for_selector("[data-testid=fee-panel]")
    assert page.url.endswith(f"/intakemodelview/show/{item.id}")
    body = body_text(page)
    assert APPLICATION_ID in body and "受付済" in body and "再交付" in body and "紛失" in body
    assert "1980-03-01（昭和55年3月1日）" in body
    assert "試験 太郎" in body and "madoguchi_day" not in body  # the clerk by name
    assert page.inner_text("[data-testid=fee-state]") == "未調定"
    assert "1,000円" in page.inner_text("[data-testid=fee-quote]")
    shot(page, "counter-04-intake-detail")

    # 4. the scanned application form (3 pages) through the documents panel
    pdf_path = os.path.join(tmp_path, "申請書.pdf")
    with open(pdf_path, "wb") as handle:
        handle.write(files.make_pdf(3, dpi=150))
    page.select_option("#document-category", "application_form")
    page.set_input_files("#document-files", [pdf_path])
    page.click("[data-testid=document-upload-button]")
    page.wait_for_load_state("networkidle")
    assert f"/intakemodelview/show/{item.id}" in page.url
    thumbs = page.locator("[data-testid=document-thumb] img")
    assert thumbs.count() == 1
    page.wait_for_function("() => [...document.querySelectorAll('[data-testid=document-thumb] img')]"
                           ".every(i => i.complete && i.naturalWidth > 0)")
    assert "申請書" in page.inner_text("[data-testid=document-thumb]")
    assert "試験 太郎" in page.inner_text("[data-testid=document-thumb]")
    shot(page, "counter-05-document-uploaded")
    page.click("[data-testid=document-thumb] >> a.document-name")
    page.wait_for_load_state("networkidle")
    assert "1 / 3 ページ" in page.inner_text("[data-testid=page-of]")
    page.click("[data-testid=next-page]")
    page.wait_for_load_state("networkidle")
    assert "2 / 3 ページ" in page.inner_text("[data-testid=page-of]")
    page.wait_for_function("() => { const i = document.querySelector('[data-testid=page-image]');"
                           " return i.complete && i.naturalWidth > 800; }")
    shot(page, "counter-06-viewer-page-2")

    # 5. 調定 1,000円 (card 800 + certificates 200), cash 5,000円, change 4,000円; the receipt
    page.goto(f"{live_server}/intakemodelview/show/{item.id}")
    page.wait_for_selector("[data-testid=fee-charge]")
    page.click("[data-testid=fee-charge] button[type=submit]")
    page.wait_for_selector("[data-testid=fee-pay]")
    assert page.inner_text("[data-testid=fee-state]") == "調定済"
    assert "1,000円" in page.inner_text("[data-testid=fee-pay]")
    shot(page, "counter-07-fee-charged")
    page.check("[data-testid=fee-pay] input[name=method][value=cash]")
    page.fill("#fee-tendered", "5000")
    page.click("[data-testid=fee-pay] button[type=submit]")
    page.wait_for_selector("[data-testid=fee-print]")
    assert page.inner_text("[data-testid=fee-state]") == "収納済"
    assert "預り金 5,000円、釣銭 4,000円" in page.inner_text(".alert-success")
    entries = page.inner_text("[data-testid=fee-entries]")
    assert "5,000円" in entries and "4,000円" in entries  # received, change
    receipt_number = page.inner_text("[data-testid=fee-entries] td.mono >> nth=-1").strip()
    assert receipt_number == "2026-000001"
    shot(page, "counter-08-fee-paid")
    with page.context.expect_page() as opened:
        page.click("[data-testid=fee-print] button[type=submit]")
    receipt = opened.value
    receipt.wait_for_selector("[data-testid=receipt]")
    assert receipt.inner_text("[data-testid=receipt-number]") == receipt_number
    shot(receipt, "counter-09-receipt")
    pdf = tmp_path / "receipt.pdf"
    receipt.pdf(path=str(pdf), prefer_css_page_size=True, print_background=True)
    text = _pdf_text(pdf).replace(" ", "")
    assert receipt_number in text and "1,000円" in text and "領収書" in text
    assert "山田" in text

    # 6. the 日計表: 1,000円 expected in the drawer, 1,000 counted, closed with no difference
    page.goto(f"{live_server}/fees/daily?venue={venue_id}&day={TODAY.isoformat()}")
    page.wait_for_selector("[data-testid=fee-close-form]")
    assert page.inner_text("[data-testid=fee-expected-cash]").strip() == "1,000円"
    assert "担当職員: 試験 太郎" in page.inner_text("[data-testid=fee-clerk] h3")
    shot(page, "counter-10-daily-open")
    page.fill("[data-testid=fee-close-form] input[name=counted_cash]", "1000")
    page.click("[data-testid=fee-close-form] button[type=submit]")
    page.wait_for_selector("[data-testid=fee-close]")
    closed = page.inner_text("[data-testid=fee-close]")
    assert "1,000円" in closed and "試験 太郎" in closed
    assert page.inner_text("[data-testid=fee-difference]").strip() == "0円"
    assert page.locator(".fee-difference").count() == 0  # nothing in red
    assert page.locator("[data-testid=fee-close-form]").count() == 0
    shot(page, "counter-11-daily-closed")

    # 7. back at the desk: 来庁済 after the intake; the clerk completes the visit → 完了
    page.goto(f"{live_server}/desk/{venue_id}?day={TODAY.isoformat()}")
    page.wait_for_selector("[data-testid=desk-bookings]")
    assert page.inner_text(f"[data-state-of='{number}']").startswith("来庁済")
    row = page.locator(f"tr[data-number='{number}']")
    row.locator("button[name=complete]").click()
    page.wait_for_load_state("networkidle")
    assert page.inner_text(f"[data-state-of='{number}']").startswith("完了")
    db.expire_all()
    assert db.get(Reservation, reservation_id).state == "completed"
    shot(page, "counter-12-desk-completed")
    assert page.requests.outside() == []
