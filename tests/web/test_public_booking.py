"""The residents' booking pages (F1.1-F1.3): the whole 交付 flow, parties, 申請 without a
postcard, every error path, the guessing limits, double submits and lapsed holds."""
import re
from datetime import date

import pytest
from sqlalchemy import select

from app.models.card import Card
from app.models.reservation import BOOKED, Hold, Reservation, Slot
from app.services import booking, cards as card_svc, notice_numbers
from app.services.calendar import ensure_slots
from tests.factories import make_card, make_offer
from tests.public_flow import (book_kofu, choose_time, first_day_link, form_key,
                               reservation_number, slot_buttons)

BIRTH = date(1980, 3, 1)


@pytest.fixture
def offer(db):
    return make_offer(db, seats=2)


def waiting_card(db, **overrides):
    card = make_card(db, state=card_svc.SETUP, birth_date=overrides.pop("birth_date", BIRTH),
                     **overrides)
    card_svc.transition_card(db, card, card_svc.NOTICE_SENT, actor=card_svc.SYSTEM)
    return card


def shown(card) -> str:
    return notice_numbers.display(card.notice_number)


def error_texts(response) -> list[str]:
    html = response.get_data(as_text=True)
    block = re.search(r'data-testid="error-summary">(.*?)</div>', html, re.S)
    assert block, "no error summary"
    return [re.sub(r"<[^>]+>", "", t).strip()
            for t in re.findall(r"<li>(.*?)</li>|<p>(.*?)</p>", block.group(1), re.S)
            for t in t if t]


def test_top_page_lists_the_purposes_and_the_look_up(client, db, offer):
    make_offer(db, purpose_code="shinsei")
    html = client.get("/reserve/").get_data(as_text=True)
    assert 'href="/reserve/book/kofu/"' in html and 'href="/reserve/book/shinsei/"' in html
    assert 'href="/reserve/lookup"' in html
    assert client.get("/reserve/book/nothing/").status_code == 404


def test_whole_kofu_flow_books_and_shows_the_done_page(client, db, offer):
    card = waiting_card(db)
    who = client.get("/reserve/book/kofu/").get_data(as_text=True)
    assert 'name="notice_number"' in who and 'name="birth_date"' in who
    number = book_kofu(client, offer.venue.id, [(shown(card), "1980-03-01")],
                       phone="０９０ー１２３４ー５６７８")
    done = client.get("/reserve/done").get_data(as_text=True)
    assert "<svg" in done and "qr-code" in done  # the QR code of the booking number
    assert offer.venue.name in done and "みどり市中央1-1-1" in done
    assert "data-print" in done
    reservation = db.execute(select(Reservation).where(Reservation.number == number)).scalar()
    assert reservation.state == BOOKED and reservation.phone == "09012345678"
    assert reservation.seats == 1 and reservation.birth_date == BIRTH
    assert reservation.slot.taken == 1 and reservation.locale.startswith("ja")
    db.refresh(card)
    assert card.state == card_svc.RESERVED
    assert booking.parse_reservation_number(number) == number


def test_full_width_numbers_and_era_dates_are_accepted(client, db, offer):
    card = waiting_card(db)
    typed = shown(card).translate(str.maketrans(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", "ＡＢＣＤＥＦＧＨＩＪＫＬＭＮＯＰＱＲＳＴＵＶＷＸＹＺ０１２３４５６７８９－"))
    response = client.post("/reserve/book/kofu/", data={
        "notice_number": " " + typed.lower() + " ", "birth_date": "昭和５５年３月１日"})
    assert response.status_code == 302 and response.location.endswith("/reserve/book/kofu/venue")


def test_each_error_is_shown_at_its_field_in_japanese(client, db, offer):
    response = client.post("/reserve/book/kofu/", data={"notice_number": "", "birth_date": ""})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "交付通知書番号を入力してください" in html and "生年月日を入力してください" in html
    assert 'aria-invalid="true"' in html and 'id="notice_number-0-error"' in html
    assert 'id="birth_date-0-error"' in html  # every empty required field at once
    bad = client.post("/reserve/book/kofu/", data={"notice_number": "ACD-123450",
                                                   "birth_date": "2030-01-01"})
    html = bad.get_data(as_text=True)
    assert "はがきの番号をもう一度ご確認ください" in html and "未来の日付" in html
    assert 'id="birth_date-0-error"' in html
    nonsense = client.post("/reserve/book/kofu/", data={"notice_number": "ACD-123450",
                                                        "birth_date": "三月"})
    assert "1980-03-01" in nonsense.get_data(as_text=True)  # says how to write it
    assert db.execute(select(Reservation)).first() is None


def test_unknown_number_and_wrong_birth_date_get_the_same_answer(client, db, offer):
    card = waiting_card(db)
    wrong_birth = client.post("/reserve/book/kofu/", data={
        "notice_number": shown(card), "birth_date": "1980-03-02"})
    unknown_number = client.post("/reserve/book/kofu/", data={
        "notice_number": _unused_number(db), "birth_date": "1980-03-01"})
    assert wrong_birth.status_code == unknown_number.status_code == 422
    assert error_texts(wrong_birth) == error_texts(unknown_number)
    assert "一致しません" in error_texts(wrong_birth)[0]


def _unused_number(db):
    import secrets

    while True:
        body = "".join(secrets.choice("ACDEFGHJK") for _ in range(3)) + \
            "".join(secrets.choice("0123456789") for _ in range(5))
        number = body + notice_numbers.check_digit(body, "ACDEFGHJKLMNPQRTUVWXY")
        if db.execute(select(Card.id).where(Card.notice_number == number)).first() is None:
            return notice_numbers.display(number)


def test_a_number_is_locked_after_five_failures_whether_it_exists_or_not(client, db, offer,
                                                                         clock):
    card = waiting_card(db)
    unknown = _unused_number(db)
    for _ in range(5):
        client.post("/reserve/book/kofu/", data={"notice_number": shown(card),
                                                 "birth_date": "1999-01-01"})
        client.post("/reserve/book/kofu/", data={"notice_number": unknown,
                                                 "birth_date": "1999-01-01"})
    right = client.post("/reserve/book/kofu/", data={"notice_number": shown(card),
                                                     "birth_date": "1980-03-01"})
    other = client.post("/reserve/book/kofu/", data={"notice_number": unknown,
                                                     "birth_date": "1980-03-01"})
    assert right.status_code == other.status_code == 422
    assert error_texts(right) == error_texts(other)
    assert error_texts(right)[0] == ("試行回数が多すぎます。しばらくたってから"
                                     "（10:30以降に）もう一度お試しください。")
    clock.advance(minutes=31)
    again = client.post("/reserve/book/kofu/", data={"notice_number": shown(card),
                                                     "birth_date": "1980-03-01"})
    assert again.status_code == 302


@pytest.fixture
def tight_ip_limit(app_config):
    app_config["IDENTITY_IP_ATTEMPTS"] = 3


def test_attempts_per_address_are_limited(tight_ip_limit, client, db, offer):
    card = waiting_card(db)
    for _ in range(3):
        client.post("/reserve/book/kofu/", data={"notice_number": _unused_number(db),
                                                 "birth_date": "1980-03-01"})
    blocked = client.post("/reserve/book/kofu/", data={"notice_number": shown(card),
                                                       "birth_date": "1980-03-01"})
    assert blocked.status_code == 422 and "試行" in error_texts(blocked)[0]


def test_a_family_books_together_one_seat_each(client, db, offer):
    first = waiting_card(db)
    second = waiting_card(db, birth_date=date(2012, 5, 5))
    one_row = client.post("/reserve/book/kofu/", data={
        "notice_number": shown(first), "birth_date": "1980-03-01", "add_person": "1"})
    html = one_row.get_data(as_text=True)
    assert html.count('name="notice_number"') == 2 and shown(first) in html
    number = book_kofu(client, offer.venue.id, [(shown(first), "1980-03-01"),
                                                (shown(second), "H24.5.5")])
    reservation = db.execute(select(Reservation).where(Reservation.number == number)).scalar()
    assert reservation.seats == 2 and {p.card_id for p in reservation.people} == \
        {first.id, second.id}
    db.refresh(second)
    assert second.state == card_svc.RESERVED


def test_the_same_postcard_twice_is_refused_at_the_field(client, db, offer):
    card = waiting_card(db)
    response = client.post("/reserve/book/kofu/", data={
        "notice_number": [shown(card), shown(card)], "birth_date": ["1980-03-01"] * 2})
    assert response.status_code == 422 and "同じ交付通知書番号" in response.get_data(as_text=True)


def test_a_card_already_booked_is_told_to_change_that_booking(client, db, offer):
    card = waiting_card(db)
    book_kofu(client, offer.venue.id, [(shown(card), "1980-03-01")])
    again = client.post("/reserve/book/kofu/", data={"notice_number": shown(card),
                                                     "birth_date": "1980-03-01"})
    assert again.status_code == 422 and "既に予約" in error_texts(again)[0]


def test_a_double_submit_books_once(client, db, offer):
    card = waiting_card(db)
    client.post("/reserve/book/kofu/", data={"notice_number": shown(card),
                                             "birth_date": "1980-03-01"})
    choose_time(client, "kofu", offer.venue.id)
    client.post("/reserve/book/kofu/contact", data={"phone": "0312345678"})
    key = form_key(client.get("/reserve/book/kofu/confirm").get_data(as_text=True))
    first = client.post("/reserve/book/kofu/confirm", data={"key": key})
    second = client.post("/reserve/book/kofu/confirm", data={"key": key})
    assert first.status_code == second.status_code == 302
    assert second.location.endswith("/reserve/done")
    assert len(db.execute(select(Reservation)).all()) == 1
    assert db.execute(select(Slot.taken).where(Slot.taken > 0)).scalars().all() == [1]


def test_a_lapsed_hold_sends_the_resident_back_to_the_calendar(client, db, offer, clock):
    card = waiting_card(db)
    client.post("/reserve/book/kofu/", data={"notice_number": shown(card),
                                             "birth_date": "1980-03-01"})
    choose_time(client, "kofu", offer.venue.id)
    clock.advance(minutes=11)
    response = client.get("/reserve/book/kofu/contact")
    assert response.status_code == 302 and "expired=1" in response.location
    page = client.get(response.location).get_data(as_text=True)
    assert "確保" in page and "解除" in page


def test_a_lapsed_hold_is_taken_again_at_confirmation_when_still_free(client, db, offer,
                                                                      clock):
    card = waiting_card(db)
    client.post("/reserve/book/kofu/", data={"notice_number": shown(card),
                                             "birth_date": "1980-03-01"})
    choose_time(client, "kofu", offer.venue.id)
    client.post("/reserve/book/kofu/contact", data={"phone": "0312345678"})
    clock.advance(minutes=15)
    page = client.get("/reserve/book/kofu/confirm").get_data(as_text=True)
    assert "確保期限が過ぎました" in page
    done = client.post("/reserve/book/kofu/confirm", data={"key": form_key(page)})
    assert done.status_code == 302
    assert db.execute(select(Slot.taken).where(Slot.taken > 0)).scalars().all() == [1]


def test_a_full_time_is_refused_with_a_message(client, db, offer, app):
    card = waiting_card(db)
    client.post("/reserve/book/kofu/", data={"notice_number": shown(card),
                                             "birth_date": "1980-03-01"})
    client.post("/reserve/book/kofu/venue", data={"venue": offer.venue.id})
    calendar = client.get("/reserve/book/kofu/calendar").get_data(as_text=True)
    day_url = first_day_link(calendar)
    slot_id = slot_buttons(client.get(day_url).get_data(as_text=True))[0]
    booking.hold_seats(db, db.get(Slot, int(slot_id)), 2)  # someone else, meanwhile
    response = client.post(day_url, data={"slot": slot_id})
    assert response.status_code == 409 and "満席" in error_texts(response)[0]
    assert db.execute(select(Hold).where(Hold.slot_id == int(slot_id))).scalars().all()[0].seats == 2


def test_skipping_ahead_goes_back_to_the_first_missing_step(client, db, offer):
    assert client.get("/reserve/book/kofu/contact").location.endswith("/reserve/book/kofu/")
    card = waiting_card(db)
    client.post("/reserve/book/kofu/", data={"notice_number": shown(card),
                                             "birth_date": "1980-03-01"})
    assert client.get("/reserve/book/kofu/calendar").location.endswith("/reserve/book/kofu/venue")
    client.post("/reserve/book/kofu/venue", data={"venue": offer.venue.id})
    assert "/reserve/book/kofu/calendar" in client.get("/reserve/book/kofu/contact").location
    assert client.post("/reserve/book/kofu/venue", data={"venue": "x"}).status_code == 422


def test_calendar_marks_free_few_full_and_closed_days(client, db, offer, app):
    card = waiting_card(db)
    client.post("/reserve/book/kofu/", data={"notice_number": shown(card),
                                             "birth_date": "1980-03-01"})
    client.post("/reserve/book/kofu/venue", data={"venue": offer.venue.id})
    slots = ensure_slots(db, offer, date(2026, 12, 7), date(2026, 12, 8))
    db.commit()
    for slot in slots:
        if slot.starts_at.day == 7:  # Monday the 7th: every slot full
            booking.hold_seats(db, slot, 2)
        elif slot.starts_at.hour >= 10:  # Tuesday the 8th: one slot left
            booking.hold_seats(db, slot, 2)
    html = client.get("/reserve/book/kofu/calendar?month=2026-12").get_data(as_text=True)
    cell = {d: re.search(rf'<td class="(\w+)[^"]*">\s*(?:<a[^>]*data-day="2026-12-{d:02d}"|'
                         rf'<span class="d">{d}</span>)', html)
            for d in (4, 5, 7, 8, 9)}
    assert cell[4].group(1) == "free" and cell[9].group(1) == "free"
    assert cell[5].group(1) == "closed"  # a Saturday
    assert cell[7].group(1) == "full" and cell[8].group(1) == "few"
    assert 'data-day="2026-12-07"' not in html


def test_applicant_flow_asks_name_kana_birth_date_and_seats(client, db):
    offer = make_offer(db, purpose_code="shinsei")
    page = client.get("/reserve/book/shinsei/").get_data(as_text=True)
    assert 'name="name_kana"' in page and 'name="notice_number"' not in page
    bad = client.post("/reserve/book/shinsei/", data={"name": "", "name_kana": "Yamada",
                                                      "birth_date": "S55.3.1", "seats": "9"})
    html = bad.get_data(as_text=True)
    assert bad.status_code == 422 and "氏名を入力" in html and "カナ" in html
    assert "1人から4人まで" in html
    assert client.post("/reserve/book/shinsei/", data={
        "name": "山田　太郎", "name_kana": "やまだ たろう", "birth_date": "S55.3.1",
        "seats": "2"}).status_code == 302
    assert choose_time(client, "shinsei", offer.venue.id).status_code == 302
    client.post("/reserve/book/shinsei/contact", data={"phone": "03-1234-5678"})
    key = form_key(client.get("/reserve/book/shinsei/confirm").get_data(as_text=True))
    client.post("/reserve/book/shinsei/confirm", data={"key": key})
    reservation = db.execute(select(Reservation)).scalar_one()
    assert reservation.name_kana == "ヤマダ　タロウ" and reservation.seats == 2
    assert reservation.birth_date == BIRTH and len(reservation.people) == 2


def test_contact_errors_stay_at_their_fields(client, db, offer):
    card = waiting_card(db)
    client.post("/reserve/book/kofu/", data={"notice_number": shown(card),
                                             "birth_date": "1980-03-01"})
    choose_time(client, "kofu", offer.venue.id)
    response = client.post("/reserve/book/kofu/contact", data={
        "phone": "1234", "email": "taro@", "email_confirm": ""})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="phone-error"' in html and 'id="email-error"' in html
    mismatch = client.post("/reserve/book/kofu/contact", data={
        "phone": "09012345678", "email": "taro@example.jp", "email_confirm": "tar0@example.jp"})
    assert 'id="email_confirm-error"' in mismatch.get_data(as_text=True)


def test_the_site_switches_to_english(client, db, offer):
    client.get("/reserve/lang/en?next=/reserve/book/kofu/")
    html = client.get("/reserve/book/kofu/").get_data(as_text=True)
    assert "Postcard number" in html and 'lang="en"' in html


def test_an_expired_form_says_so_in_japanese_and_changes_nothing(app_config, _schema):
    from app import create_app

    app = create_app(dict(app_config, WTF_CSRF_ENABLED=True))
    response = app.test_client().post("/reserve/lookup", data={
        "reservation_number": "X", "birth_date": "1980-03-01"})
    assert response.status_code == 400
    assert "有効期限" in response.get_data(as_text=True)


def test_the_postcard_qr_opens_the_form_with_the_number(client, db, offer):
    response = client.get("/reserve/?n=ACD-123456")
    assert response.status_code == 302
    page = client.get(response.location).get_data(as_text=True)
    assert 'value="ACD-123456"' in page
