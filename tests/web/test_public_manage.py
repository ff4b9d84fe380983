"""Look up, change and cancel a booking (number + birth date), with the deadlines; and the
e-mails: confirmations, the reminder the day before, through a real SMTP server."""
import re
from datetime import date

import pytest
from sqlalchemy import select

from app.models.reservation import BOOKED, CANCELLED, Reservation, Slot
from app.services import cards as card_svc
from app.services import mail
from tests.factories import make_offer
from tests.public_flow import book_kofu, first_change_day_link, slot_buttons
from tests.smtp import deliver_outbox, smtp  # noqa: F401 (fixture)
from tests.web.test_public_booking import error_texts, shown, waiting_card


@pytest.fixture
def offer(db):
    return make_offer(db, seats=2)


@pytest.fixture
def booked(client, db, offer):
    card = waiting_card(db)
    number = book_kofu(client, offer.venue.id, [(shown(card), "1980-03-01")],
                       email="taro@example.jp", day="2026-12-08")
    client.post("/reserve/booking/close")  # a fresh visit: the resident comes back later
    return number, card


def look_up(client, number, birth="1980-03-01"):
    return client.post("/reserve/lookup", data={"reservation_number": number,
                                                "birth_date": birth})


def test_look_up_shows_the_booking_without_personal_data(client, db, booked):
    number, card = booked
    assert client.get("/reserve/booking").location.endswith("/reserve/lookup")
    response = look_up(client, number.lower())
    assert response.status_code == 302
    html = client.get("/reserve/booking").get_data(as_text=True)
    assert number in html and "2026年12月8日（火）" in html
    assert card.name not in html and "09012345678" not in html and "090-1234" not in html
    assert "taro@example.jp" not in html


def test_wrong_birth_date_and_unknown_number_answer_alike(client, db, booked):
    number, _ = booked
    wrong = look_up(client, number, "1980-03-02")
    from app.services.booking import NUMBER_ALPHABET
    from app.services.notice_numbers import check_digit

    body = ("2" if number[0] != "2" else "3") + number[1:7]  # a well-formed number, unused
    unknown = look_up(client, body + check_digit(body, NUMBER_ALPHABET))
    assert wrong.status_code == unknown.status_code == 422
    assert error_texts(wrong) == error_texts(unknown)
    assert "一致しません" in error_texts(wrong)[0]
    typo = look_up(client, number[:-1] + ("A" if number[-1] != "A" else "C"))
    assert "正しくありません" in typo.get_data(as_text=True)  # a typing mistake says so
    field = client.post("/reserve/lookup", data={"reservation_number": "", "birth_date": ""})
    assert 'id="reservation_number-error"' in field.get_data(as_text=True)


def test_a_booking_number_is_locked_after_five_failures(client, db, booked, clock):
    number, _ = booked
    for _ in range(5):
        look_up(client, number, "1999-09-09")
    locked = look_up(client, number)
    assert locked.status_code == 422 and "試行回数" in error_texts(locked)[0]
    clock.advance(minutes=31)
    assert look_up(client, number).status_code == 302


def test_change_moves_the_seats_and_mails_the_resident(app, client, db, booked, smtp):
    number, _ = booked
    look_up(client, number)
    calendar = client.get("/reserve/booking/change?month=2026-12").get_data(as_text=True)
    day_url = re.search(r'href="(/reserve/booking/change/2026-12-10)"', calendar).group(1)
    new_slot = slot_buttons(client.get(day_url).get_data(as_text=True))[2]
    preview = client.post("/reserve/booking/change", data={"slot": new_slot})
    assert preview.status_code == 200 and 'data-testid="new-time"' in preview.get_data(as_text=True)
    reservation = db.execute(select(Reservation).where(Reservation.number == number)).scalar()
    old_slot = reservation.slot_id
    assert reservation.slot_id != int(new_slot)  # nothing moved yet
    done = client.post("/reserve/booking/change", data={"slot": new_slot, "confirm": "1"})
    assert done.status_code == 302 and "changed=1" in done.location
    db.expire_all()
    assert db.get(Reservation, reservation.id).slot_id == int(new_slot)
    assert db.get(Slot, old_slot).taken == 0 and db.get(Slot, int(new_slot)).taken == 1
    again = client.post("/reserve/booking/change", data={"slot": new_slot, "confirm": "1"})
    assert again.status_code == 302 and db.get(Slot, int(new_slot)).taken == 1
    assert smtp.messages == []  # queued with the change, sent by the sender
    deliver_outbox(app)
    mails = smtp.to("taro@example.jp")
    assert len(mails) == 1 and "変更" in mails[0]["Subject"] and number in mails[0]["Subject"]
    assert "2026年12月10日（木）" in smtp.body(mails[0])


def test_change_to_a_full_time_is_refused(client, db, booked, app):
    number, _ = booked
    look_up(client, number)
    day_url = first_change_day_link(client.get("/reserve/booking/change?month=2026-12")
                                    .get_data(as_text=True))
    slot_id = slot_buttons(client.get(day_url).get_data(as_text=True))[-1]
    from app.services import booking

    booking.hold_seats(db, db.get(Slot, int(slot_id)), 2)
    response = client.post("/reserve/booking/change", data={"slot": slot_id, "confirm": "1"})
    assert response.status_code == 409 and "満席" in error_texts(response)[0]


def test_cancel_frees_the_seat_and_the_card_waits_again(app, client, db, booked, smtp):
    number, card = booked
    look_up(client, number)
    page = client.get("/reserve/booking/cancel")
    assert page.status_code == 200 and "取り消しますか" in page.get_data(as_text=True)
    done = client.post("/reserve/booking/cancel")
    assert "cancelled=1" in done.location
    assert client.post("/reserve/booking/cancel").status_code == 302  # a second click
    reservation = db.execute(select(Reservation).where(Reservation.number == number)).scalar()
    assert reservation.state == CANCELLED and reservation.slot.taken == 0
    db.refresh(card)
    assert card.state == card_svc.NOTICE_SENT
    html = client.get("/reserve/booking").get_data(as_text=True)
    assert "取り消されています" in html and "日時を変更する" not in html
    deliver_outbox(app)
    assert [m["Subject"] for m in smtp.to("taro@example.jp")][-1].count("取り消しました") == 1


def test_deadlines_cancel_until_the_visit_change_until_the_end_of_its_day(client, db, booked,
                                                                         clock):
    number, _ = booked
    clock.set(clock().replace(day=8, hour=9, minute=5))  # the first slot started at 9:00
    look_up(client, number)
    html = client.get("/reserve/booking").get_data(as_text=True)
    assert "インターネットでは取り消せません" in html and "日時を変更する" in html
    refused = client.post("/reserve/booking/cancel")
    assert refused.status_code == 409
    clock.set(clock().replace(day=9, hour=8))
    look_up(client, number)
    assert client.get("/reserve/booking/change").status_code == 409
    assert "予約日が過ぎています" in client.get("/reserve/booking").get_data(as_text=True)
    reservation = db.execute(select(Reservation).where(Reservation.number == number)).scalar()
    assert reservation.state == BOOKED


def test_the_look_up_expires(client, db, booked, clock):
    number, _ = booked
    look_up(client, number)
    clock.advance(minutes=31)
    assert client.get("/reserve/booking").location.endswith("/reserve/lookup")


def test_booking_mail_and_no_mail_without_an_address(app, client, db, offer, smtp):
    card = waiting_card(db)
    number = book_kofu(client, offer.venue.id, [(shown(card), "1980-03-01")],
                       email="ｈａｎａｋｏ＠ｅｘａｍｐｌｅ．ｊｐ")
    deliver_outbox(app)
    (message,) = smtp.to("hanako@example.jp")
    assert message["From"] == "yoyaku@city.midori.lg.jp" and number in message["Subject"]
    body = smtp.body(message)
    assert number in body and offer.venue.name in body and "/reserve/lookup" in body
    other = waiting_card(db)
    book_kofu(client, offer.venue.id, [(shown(other), "1980-03-01")])
    deliver_outbox(app)
    assert len(smtp.messages) == 1


def test_mail_in_english_for_an_english_booking(app, client, db, offer, smtp):
    card = waiting_card(db)
    client.get("/reserve/lang/en")
    book_kofu(client, offer.venue.id, [(shown(card), "1980-03-01")], email="ann@example.jp")
    deliver_outbox(app)
    (message,) = smtp.to("ann@example.jp")
    assert message["Subject"].endswith(")") and "Your visit is booked" in message["Subject"]


def test_an_unreachable_mail_server_does_not_undo_the_booking(app, client, db, offer):
    from app import settings
    from tests.smtp import free_port

    settings.configure(app, MAIL_SERVER="127.0.0.1", MAIL_PORT=free_port(),
                       MAIL_TIMEOUT_SECONDS=2)
    card = waiting_card(db)
    number = book_kofu(client, offer.venue.id, [(shown(card), "1980-03-01")],
                       email="taro@example.jp")
    assert db.execute(select(Reservation).where(Reservation.number == number)).scalar()


def test_reminders_go_once_to_tomorrows_bookings(app, client, db, offer, smtp, clock):
    offer.purpose.what_to_bring = "交付通知書（はがき）\n本人確認書類"
    db.commit()
    tomorrow_card, later_card = waiting_card(db), waiting_card(db)
    book_kofu(client, offer.venue.id, [(shown(tomorrow_card), "1980-03-01")],
              email="tomorrow@example.jp", day="2026-12-08")
    book_kofu(client, offer.venue.id, [(shown(later_card), "1980-03-01")],
              email="later@example.jp", day="2026-12-09")
    clock.set(clock().replace(day=7, hour=18))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["reservations", "remind"])
    assert result.exit_code == 0 and "1" in result.output
    assert runner.invoke(args=["reservations", "remind"]).exit_code == 0
    deliver_outbox(app)
    assert runner.invoke(args=["reservations", "remind"]).exit_code == 0
    deliver_outbox(app)
    reminders = [m for m in smtp.messages if "明日" in m["Subject"]]
    assert [m["To"] for m in reminders] == ["tomorrow@example.jp"]
    body = smtp.body(reminders[0])
    assert "持ち物" in body and "- 本人確認書類" in body and "09:00〜09:30" in body


def test_remind_without_mail_configured_sends_nothing(app, db):
    with app.app_context():
        assert mail.send_reminders(db) == (0, 0)


def test_the_visit_as_a_calendar_file(client, db, offer):
    offer.purpose.what_to_bring = "交付通知書（はがき）\n本人確認書類"
    db.commit()
    card = waiting_card(db)
    assert client.get("/reserve/visit.ics").location.endswith("/reserve/lookup")
    number = book_kofu(client, offer.venue.id, [(shown(card), "1980-03-01")], day="2026-12-08")
    assert 'data-testid="add-to-calendar"' in client.get("/reserve/done").get_data(as_text=True)
    response = client.get("/reserve/visit.ics")
    assert response.mimetype == "text/calendar"
    assert f"visit-{number}.ics" in response.headers["Content-Disposition"]
    raw = response.get_data()
    assert all(len(line) <= 75 for line in raw.split(b"\r\n"))
    text = raw.decode().replace("\r\n ", "")  # unfold
    assert "DTSTART:20261208T000000Z" in text and "DTEND:20261208T003000Z" in text
    assert f"UID:{number}@" in text and "本人確認書類" in text
    assert "LOCATION:市役所本庁舎 1階 市民課 みどり市中央1-1-1" in text
