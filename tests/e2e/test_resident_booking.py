"""A resident books a visit to collect a card from a phone (with and without JavaScript),
then looks it up, changes it and cancels it at desktop size. Screenshots of every step go to
tests/e2e/screenshots/; nothing is loaded from outside the server."""
from datetime import date

import pytest
from sqlalchemy import select

from app.models.reservation import BOOKED, CANCELLED, Reservation
from app.services import cards as card_svc, notice_numbers
from tests.e2e.conftest import body_text, shot
from tests.e2e.pages import ResidentBooking
from tests.factories import make_card, make_offer


def waiting_card(db, birth=date(1980, 3, 1)):
    card = make_card(db, state=card_svc.SETUP, birth_date=birth)
    card_svc.transition_card(db, card, card_svc.NOTICE_SENT, actor=card_svc.SYSTEM)
    return notice_numbers.display(card.notice_number)


@pytest.fixture
def offer(db):
    offer = make_offer(db, seats=2)
    offer.purpose.what_to_bring = "交付通知書（はがき）\n本人確認書類（運転免許証など）"
    db.commit()
    return offer


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
def test_family_books_on_a_phone(db, offer, live_server, page_factory, javascript):
    mother, child = waiting_card(db), waiting_card(db, birth=date(2015, 6, 1))
    page = page_factory(width=375, height=812, javascript=javascript)
    tag = "js" if javascript else "nojs"
    flow = ResidentBooking(page, live_server).open()
    shot(page, f"10-{tag}-top-phone")
    flow.start("kofu")
    flow.enter_person(0, mother.replace("-", "").lower(), "S55.3.1")
    flow.add_person()
    assert page.input_value("#notice_number-0") == mother.replace("-", "").lower()
    flow.enter_person(1, child, "20150601")
    shot(page, f"11-{tag}-postcards-phone")
    flow.next()
    flow.choose_venue(offer.venue.name)
    page.wait_for_selector("[data-testid=calendar]")
    shot(page, f"12-{tag}-calendar-phone")
    flow.choose_first_free_day()
    shot(page, f"13-{tag}-times-phone")
    flow.choose_time(0)
    page.wait_for_selector("[data-testid=held-until]")
    flow.contact("090-1234-5678", "hanako@example.jp")
    page.wait_for_selector("button[data-once]")
    assert "内容の確認" in page.inner_text("h1")
    shot(page, f"14-{tag}-confirm-phone")
    number = flow.book()
    assert len(number) == 8
    assert page.is_visible("[data-testid=reservation-qr] svg")
    assert "本人確認書類" in page.inner_text(".bring")
    assert page.is_visible("[data-print]") == javascript
    shot(page, f"15-{tag}-done-phone")
    reservation = db.execute(select(Reservation).where(Reservation.number == number)).scalar()
    assert reservation.seats == 2 and reservation.state == BOOKED
    assert page.requests.outside() == []


def test_errors_are_shown_at_the_fields_on_a_phone(db, offer, live_server, page_factory):
    page = page_factory(width=375, height=812)
    flow = ResidentBooking(page, live_server).open()
    flow.start("kofu")
    flow.enter_person(0, "ACD-12345", "昭和99年1月1日")
    flow.next()
    page.wait_for_selector("[data-testid=error-summary]")
    assert page.get_attribute("#notice_number-0", "aria-invalid") == "true"
    assert page.evaluate("document.activeElement.dataset.testid") == "error-summary"
    shot(page, "16-errors-phone")


def test_look_up_change_and_cancel_on_a_desktop(db, offer, live_server, page_factory):
    card = waiting_card(db)
    phone = page_factory(width=375, height=812)
    flow = ResidentBooking(phone, live_server).open()
    flow.start("kofu")
    flow.enter_person(0, card, "1980-03-01")
    flow.next()
    flow.choose_venue(offer.venue.name)
    flow.choose_first_free_day()
    flow.choose_time(0)
    flow.contact("0312345678")
    number = flow.book()

    page = page_factory()
    desk = ResidentBooking(page, live_server)
    desk.look_up(number, "1980-03-01")
    assert number in page.inner_text("[data-testid=reservation-number]")
    shot(page, "17-booking-desktop")
    page.click("text=日時を変更する")
    shot(page, "18-change-calendar-desktop")
    page.click("[data-testid=calendar] td.free a")
    page.locator("[data-testid=times] button.time").nth(2).click()
    new_time = page.inner_text("[data-testid=new-time]")  # waits for the element
    shot(page, "19-change-confirm-desktop")
    page.click("button[data-once]")
    page.wait_for_selector("[data-testid=changed]")
    assert page.inner_text("[data-testid=visit-time]") == new_time
    page.click("text=予約を取り消す")
    shot(page, "20-cancel-confirm-desktop")
    page.click("button[data-once]")
    page.wait_for_selector("[data-testid=cancelled]")
    shot(page, "21-cancelled-desktop")
    reservation = db.execute(select(Reservation).where(Reservation.number == number)).scalar()
    db.refresh(reservation)
    assert reservation.state == CANCELLED and reservation.slot.taken == 0
    page.goto(live_server + "/reserve/lang/en?next=/reserve/booking")
    assert "This booking was cancelled" in body_text(page)
    assert page.requests.outside() == [] and phone.requests.outside() == []


def test_staff_calendar_at_desk_size(users, db, offer, live_server, page_factory):
    from tests.e2e.pages import LoginPage

    users.create("manager", username="kanri_cal")
    page = page_factory()
    LoginPage(page, live_server).open().sign_in("kanri_cal", users.password)
    page.goto(live_server + f"/booking-calendar/?offer={offer.id}&month=2026-12")
    page.wait_for_selector("[data-testid=staff-calendar]")
    shot(page, "22-staff-booking-calendar")
    page.click("[data-day='2026-12-08'] a.day-link")
    page.wait_for_selector("[data-testid=day-slots]")
    shot(page, "23-staff-booking-day")
    assert page.requests.outside() == []
