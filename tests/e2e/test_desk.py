"""A clerk checks in a booked resident by typing the scanned booking number, hands the card
over (the ledger then shows 交付済 and the booking 完了), and prints the day's list: the PDF
Chromium makes of it holds the rows."""
import re
from datetime import date

import pypdfium2
from playwright.sync_api import expect
from sqlalchemy import select

from app.models.reservation import COMPLETED, Reservation
from app.services import booking, cards as card_svc
from app.services.calendar import ensure_slots
from tests.e2e.conftest import body_text, shot
from tests.e2e.pages import HandoverDesk, LoginPage
from tests.factories import make_card, make_offer

TODAY = date(2026, 12, 1)


def _book_today(app, db, offer, slot_index, **card_fields):
    card = make_card(db, state=card_svc.SETUP, **card_fields)
    card_svc.transition_card(db, card, card_svc.NOTICE_SENT, actor=card_svc.SYSTEM)
    with app.test_request_context():
        slot = ensure_slots(db, offer, TODAY, TODAY)[slot_index]
        db.commit()
        reservation = booking.book(db, slot, None, card.birth_date, booking.Contact(
            phone="09012345678", name=card.name, name_kana=card.name_kana),
            cards_to_collect=[card], staff=True)
    return reservation.number, reservation.id, card.id, card.application_id


def test_check_in_by_scanned_number_hand_over_and_print(app, db, users, live_server,
                                                       page_factory, tmp_path):
    offer = make_offer(db, seats=2)
    number, reservation_id, card_id, application_id = _book_today(app, db, offer, 3)
    others = [_book_today(app, db, offer, 4 + i, name=f"試験　{name}", name_kana=f"シケン　{kana}")
              for i, (name, kana) in enumerate([("一郎", "イチロウ"), ("花子", "ハナコ")])]
    users.create("clerk", username="madoguchi_e2e")
    page = page_factory()
    LoginPage(page, live_server).open().sign_in("madoguchi_e2e", users.password)
    page.goto(f"{live_server}/desk/{offer.venue.id}")
    page.wait_for_selector("[data-testid=desk-bookings]")
    shot(page, "30-desk")
    # a hand scanner types the QR's text and Enter into the focused search field
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.type(number.lower())
    page.keyboard.press("Enter")
    page.wait_for_selector(f"[data-testid=check-in-{number}]")
    assert page.locator("[data-testid=desk-bookings] tbody tr").count() == 1
    shot(page, "31-desk-found")
    page.click(f"[data-testid=check-in-{number}]")
    page.wait_for_selector("[data-testid=handover-form]")
    assert application_id in page.inner_text("[data-testid=handover-card]")
    shot(page, "32-handover-after-check-in")
    HandoverDesk(page, live_server).check_identity_and_hand_over()
    assert f"/desk/{offer.venue.id}" in page.url  # back at the desk after the hand-over
    page.goto(f"{live_server}/cardmodelview/show/{card_id}")
    assert "交付済" in body_text(page)
    db.expire_all()
    assert db.get(Reservation, reservation_id).state == COMPLETED

    page.goto(f"{live_server}/desk/{offer.venue.id}")
    page.wait_for_selector("[data-testid=desk-counts]")
    assert page.inner_text("[data-count=arrived]") == "1"
    # another clerk checks the next visitor in (REST); this page's figures follow by
    # themselves (every 15 s; the test asks for the refresh at once)
    other_id = db.execute(select(Reservation.id).where(
        Reservation.number == others[0][0])).scalar_one()
    api = app.test_client()
    api.post("/login/", data={"username": "madoguchi_e2e", "password": users.password})
    assert api.post(f"/api/v1/reservation/{other_id}/check-in").status_code == 200
    page.evaluate("document.querySelector('[data-counts-url]').refreshCounts()")
    expect(page.locator("[data-count=arrived]")).to_have_text("2")
    assert page.inner_text(f"[data-state-of='{others[0][0]}']").startswith("来庁済")
    shot(page, "33-desk-after")

    page.goto(f"{live_server}/desk/{offer.venue.id}/print?day=2026-12-01")
    page.wait_for_selector("[data-testid=print-rows]")
    shot(page, "34-day-list")
    pdf = tmp_path / "day.pdf"
    page.pdf(path=str(pdf), format="A4", print_background=True)
    document = pypdfium2.PdfDocument(str(pdf))
    text = "".join(document[i].get_textpage().get_text_range() for i in range(len(document)))
    for expected in [number, others[0][0], others[1][0], "試験", offer.venue.name, "予約一覧"]:
        assert expected in text, expected
    assert re.search(r"1\s*/\s*1", text)  # the page number in the footer
    page.goto(f"{live_server}/reservationmodelview/list/")
    assert number in body_text(page)
    shot(page, "35-booking-list")
    page.goto(f"{live_server}/reservationmodelview/show/{other_id}")
    page.wait_for_selector("[data-testid=booking-actions]")
    shot(page, "36-booking-detail")
    assert page.requests.outside() == []
