"""The booking desk (F1.4, F1.6): staff list and detail, edit, move, cancel with a reason,
slip; phone and counter bookings through the engine; check-in, undo, late, no-show, walk-in;
hand-over completing a 交付 booking; the REST check-in; every change in the audit trail."""
from datetime import date

import pytest
from sqlalchemy import select

from app.models.audit import AuditLog
from app.models.reservation import (ARRIVED, BOOKED, CANCELLED, COMPLETED, NO_SHOW,
                                    Reservation, Slot)
from app.services import booking, cards as card_svc, desk, notice_numbers
from app.services.calendar import ensure_slots
from tests.conftest import text_of
from tests.factories import make_card, make_offer
from tests.smtp import deliver_outbox, smtp  # noqa: F401 (fixture)

TODAY = date(2026, 12, 1)  # the test clock: Tuesday 10:00


@pytest.fixture
def offer(db):
    return make_offer(db, seats=2)


def waiting_card(db, birth=date(1980, 3, 1)):
    card = make_card(db, state=card_svc.SETUP, birth_date=birth)
    card_svc.transition_card(db, card, card_svc.NOTICE_SENT, actor=card_svc.SYSTEM)
    return card


def book_card(app, db, offer, card, day=TODAY, index=3, email=None):
    with app.test_request_context():
        slot = ensure_slots(db, offer, day, day)[index]
        db.commit()
        return booking.book(db, slot, None, card.birth_date,
                            booking.Contact(phone="09012345678", email=email, name=card.name,
                                            name_kana=card.name_kana),
                            cards_to_collect=[card], staff=True)


def audited(db, reservation_id, field):
    rows = db.execute(select(AuditLog).where(AuditLog.target_table == "reservation",
                                             AuditLog.target_id == str(reservation_id))
                      ).scalars().all()
    return [r for r in rows if field in (r.changes or "")]


def test_list_filters_and_detail(login_as, app, db, offer):
    card = waiting_card(db)
    reservation = book_card(app, db, offer, card, day=date(2026, 12, 8))
    clerk = login_as("clerk")
    listing = text_of(clerk.get("/reservationmodelview/list/"))
    assert reservation.number in listing and "予約済" in listing
    found = clerk.get(f"/reservationmodelview/list/?_flt_3_number={reservation.number}")
    assert reservation.number in text_of(found)
    none = clerk.get("/reservationmodelview/list/?_flt_3_number=AAAAAAAA")
    assert reservation.number not in text_of(none)
    page = text_of(clerk.get(f"/reservationmodelview/show/{reservation.id}"))
    assert card.name.replace("　", " ") in page and "090-1234-5678" in page
    assert "予約済" in page


def test_edit_contact_is_audited_and_checked(login_as, app, db, offer):
    reservation = book_card(app, db, offer, waiting_card(db), day=date(2026, 12, 8))
    clerk = login_as("clerk")
    bad = clerk.post(f"/reservationmodelview/edit/{reservation.id}", data={
        "name": "山田　花子", "name_kana": "やまだ はなこ", "phone": "12", "email": "",
        "note": ""})
    assert "0から始まる" in text_of(bad)
    clerk.post(f"/reservationmodelview/edit/{reservation.id}", data={
        "name": "山田　花子", "name_kana": "やまだ はなこ", "phone": "03-1234-5678",
        "email": "", "note": "車いす"})
    db.expire_all()
    changed = db.get(Reservation, reservation.id)
    assert changed.phone == "0312345678" and changed.note == "車いす"
    assert changed.name_kana == "ヤマダ　ハナコ"
    assert audited(db, reservation.id, "phone")


def test_move_through_the_engine_and_mail(login_as, app, db, offer, smtp):
    reservation = book_card(app, db, offer, waiting_card(db), day=date(2026, 12, 8),
                            email="taro@example.jp")
    clerk = login_as("clerk")
    page = clerk.get(f"/reservationmodelview/move/{reservation.id}?day=2026-12-09")
    assert 'data-testid="move-slots"' in page.get_data(as_text=True)
    target = ensure_slots(db, offer, date(2026, 12, 9), date(2026, 12, 9))[2]
    with app.test_request_context():
        booking.hold_seats(db, target, 2, staff=True)  # full now
    full = clerk.post(f"/reservationmodelview/move/{reservation.id}",
                      data={"day": "2026-12-09", "slot": target.id}, follow_redirects=True)
    assert "満席" in text_of(full)
    other = ensure_slots(db, offer, date(2026, 12, 9), date(2026, 12, 9))[3]
    clerk.post(f"/reservationmodelview/move/{reservation.id}",
               data={"day": "2026-12-09", "slot": other.id})
    db.expire_all()
    moved = db.get(Reservation, reservation.id)
    assert moved.slot_id == other.id and moved.starts_at == other.starts_at
    assert db.get(Slot, other.id).taken == 1
    deliver_outbox(app)
    assert smtp.to("taro@example.jp") and audited(db, reservation.id, "slot_id")


def test_cancel_needs_a_reason(login_as, app, db, offer, smtp):
    card = waiting_card(db)
    reservation = book_card(app, db, offer, card, day=date(2026, 12, 8), email="t@example.jp")
    clerk = login_as("clerk")
    clerk.post(f"/reservationmodelview/cancel/{reservation.id}", data={"reason": " "})
    db.expire_all()
    assert db.get(Reservation, reservation.id).state == BOOKED
    clerk.post(f"/reservationmodelview/cancel/{reservation.id}", data={"reason": "本人から電話"})
    db.expire_all()
    cancelled = db.get(Reservation, reservation.id)
    assert cancelled.state == CANCELLED and cancelled.cancel_reason == "本人から電話"
    assert db.get(type(card), card.id).state == card_svc.NOTICE_SENT
    deliver_outbox(app)
    assert "取り消しました" in smtp.to("t@example.jp")[-1]["Subject"]
    assert audited(db, reservation.id, "cancel")


def test_slip_prints_and_is_audited(login_as, app, db, offer):
    reservation = book_card(app, db, offer, waiting_card(db), day=date(2026, 12, 8))
    clerk = login_as("clerk")
    page = clerk.get(f"/reservationmodelview/slip/{reservation.id}").get_data(as_text=True)
    assert reservation.number in page and "<svg" in page
    assert db.execute(select(AuditLog).where(AuditLog.action == "print")).first()


def test_phone_booking_checks_the_postcard_like_the_web(login_as, app, db, offer):
    card = waiting_card(db)
    clerk = login_as("clerk")
    slot = ensure_slots(db, offer, date(2026, 12, 2), date(2026, 12, 2))[0]
    db.commit()
    wrong = clerk.post(f"/desk/{offer.venue.id}/new", data={
        "offer": offer.id, "channel": "phone", "day": "2026-12-02", "slot": slot.id,
        "notice_number": notice_numbers.display(card.notice_number), "birth_date": "1990-01-01",
        "phone": "0312345678"})
    assert "一致しません" in text_of(wrong)
    assert db.execute(select(Reservation)).first() is None
    done = clerk.post(f"/desk/{offer.venue.id}/new", data={
        "offer": offer.id, "channel": "phone", "day": "2026-12-02", "slot": slot.id,
        "notice_number": notice_numbers.display(card.notice_number), "birth_date": "S55.3.1",
        "phone": "0312345678", "key": "k1"})
    assert done.status_code == 302
    reservation = db.execute(select(Reservation)).scalar_one()
    assert reservation.channel == "phone" and reservation.name == card.name
    # inside the residents' 3-day cut-off: staff may book it


def test_check_in_undo_and_rest_conflict(login_as, app, db, offer):
    reservation = book_card(app, db, offer, waiting_card(db), index=3)  # today 10:30
    clerk = login_as("clerk")
    clerk.post(f"/desk/{offer.venue.id}/check-in", data={"id": reservation.id, "day": "2026-12-01",
                                                        "undo": "1"})
    db.expire_all()
    assert db.get(Reservation, reservation.id).state == BOOKED  # undo refused: nothing to undo
    response = clerk.post(f"/desk/{offer.venue.id}/check-in", data={
        "id": reservation.id, "day": "2026-12-01"})
    assert "/handover/" in response.location  # 交付: straight on to the hand-over
    db.expire_all()
    arrived = db.get(Reservation, reservation.id)
    assert arrived.state == ARRIVED and arrived.checked_in_by and arrived.checked_in_at
    api = clerk.post(f"/api/v1/reservation/{reservation.id}/check-in")
    assert api.status_code == 409 and "来庁済" in api.json["message"]
    clerk.post(f"/desk/{offer.venue.id}/check-in", data={"id": reservation.id, "day": "2026-12-01",
                                                        "undo": "1"})
    db.expire_all()
    assert db.get(Reservation, reservation.id).state == BOOKED
    ok = clerk.post(f"/api/v1/reservation/{reservation.id}/check-in")
    assert ok.status_code == 200 and ok.json["state"] == ARRIVED
    assert audited(db, reservation.id, "checked_in_at")


def test_another_days_booking_is_not_checked_in(login_as, app, db, offer):
    reservation = book_card(app, db, offer, waiting_card(db), day=date(2026, 12, 8))
    clerk = login_as("clerk")
    response = clerk.post(f"/api/v1/reservation/{reservation.id}/check-in")
    assert response.status_code == 409 and "別の日" in response.json["message"]


def test_late_after_the_grace_and_no_show_at_day_close(login_as, app, db, offer, clock):
    first = book_card(app, db, offer, waiting_card(db), index=2)  # 10:00
    second = book_card(app, db, offer, waiting_card(db), index=4)  # 11:00
    clock.set(clock().replace(minute=6))
    clerk = login_as("clerk")
    page = clerk.get(f"/desk/{offer.venue.id}")
    html = page.get_data(as_text=True)
    assert "遅刻" in text_of(page) and f'data-number="{first.number}"' in html
    counts = clerk.get(f"/desk/{offer.venue.id}/counts").json["counts"]
    assert counts == {"booked": 2, "arrived": 0, "waiting": 2, "late": 1, "no_show": 0}
    clerk.post(f"/desk/{offer.venue.id}/check-in", data={"id": second.id, "day": "2026-12-01"})
    clerk.post(f"/desk/{offer.venue.id}/close-day", data={"day": "2026-12-01"})
    db.expire_all()
    assert db.get(Reservation, first.id).state == NO_SHOW
    assert db.get(Reservation, second.id).state == ARRIVED
    card = db.get(Reservation, first.id).people[0].card
    assert card.state == card_svc.NOTICE_SENT  # may book again


def test_find_by_number_qr_postcard_name_and_kana(app, db, offer):
    card = waiting_card(db)
    reservation = book_card(app, db, offer, card)
    with app.test_request_context():
        day = desk.day_bookings(db, offer.venue.id, TODAY)
        assert desk.find(db, day, reservation.number.lower()) == [reservation]
        full_width = reservation.number.translate(str.maketrans(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
            "ＡＢＣＤＥＦＧＨＩＪＫＬＭＮＯＰＱＲＳＴＵＶＷＸＹＺ０１２３４５６７８９"))
        assert desk.find(db, day, full_width[:4] + " " + full_width[4:]) == [reservation]
        assert desk.find(db, day, "予約番号:" + reservation.number) == [reservation]  # a label
        assert desk.find(db, day, reservation.number[:-1] + "Z") == []
        assert desk.find(db, day, notice_numbers.display(card.notice_number)) == [reservation]
        assert desk.find(db, day, card.name.split("　")[0]) == [reservation]
        assert desk.find(db, day, card.name_kana.split("　")[0]) == [reservation]
        assert desk.find(db, day, "存在しない") == []


def test_desk_search_page(login_as, app, db, offer):
    reservation = book_card(app, db, offer, waiting_card(db))
    clerk = login_as("clerk")
    hit = clerk.get(f"/desk/{offer.venue.id}?q={reservation.number}")
    assert f'data-testid="check-in-{reservation.number}"' in hit.get_data(as_text=True)
    miss = clerk.get(f"/desk/{offer.venue.id}?q=ZZZZZZZZ")
    assert 'data-testid="desk-not-found"' in miss.get_data(as_text=True)


def test_walk_in_takes_a_free_seat_today_and_is_checked_in(login_as, app, db):
    offer = make_offer(db, purpose_code="shinsei", seats=1)
    clerk = login_as("clerk")
    response = clerk.post(f"/desk/{offer.venue.id}/new", data={
        "offer": offer.id, "walk_in": "1", "name": "佐藤 一郎", "name_kana": "さとう いちろう",
        "birth_date": "1970-01-01", "seats": "1", "phone": "0312345678"})
    assert response.status_code == 302
    reservation = db.execute(select(Reservation)).scalar_one()
    assert reservation.state == ARRIVED and reservation.channel == "counter"
    assert reservation.slot.starts_at.hour == 10  # the slot running now (10:00-10:30)


def test_hand_over_completes_the_booking(login_as, app, db, offer):
    card = waiting_card(db)
    reservation = book_card(app, db, offer, card)
    clerk = login_as("clerk")
    clerk.post(f"/desk/{offer.venue.id}/check-in", data={"id": reservation.id, "day": "2026-12-01"})
    clerk.post(f"/handover/{card.id}", data={"identity": "one_a", "collector": "self",
                                             "pin_set": "y"})
    db.expire_all()
    done = db.get(Reservation, reservation.id)
    assert done.people[0].card.state == card_svc.HANDED_OVER
    assert done.state == COMPLETED and done.completed_at
    assert not done.people[0].active


def test_viewers_read_but_do_not_check_in(login_as, app, db, offer):
    reservation = book_card(app, db, offer, waiting_card(db))
    viewer = login_as("viewer")
    assert viewer.get(f"/desk/{offer.venue.id}").status_code == 200
    assert 'data-testid="check-in-' not in viewer.get(f"/desk/{offer.venue.id}").get_data(
        as_text=True)
    viewer.post(f"/desk/{offer.venue.id}/check-in", data={"id": reservation.id,
                                                         "day": "2026-12-01"})
    assert viewer.post(f"/api/v1/reservation/{reservation.id}/check-in").status_code in (401, 403)
    db.expire_all()
    assert db.get(Reservation, reservation.id).state == BOOKED


def test_print_day_lists_the_rows_and_is_audited(login_as, app, db, offer):
    reservation = book_card(app, db, offer, waiting_card(db))
    clerk = login_as("clerk")
    page = clerk.get(f"/desk/{offer.venue.id}/print?day=2026-12-01").get_data(as_text=True)
    assert reservation.number in page and "print.css" in page
    assert db.execute(select(AuditLog).where(AuditLog.action == "print")).first()


def test_demo_seed_fills_the_desk_for_today(app, db, login_as):
    from app.services.demo import seed_demo

    with app.app_context():
        from flask import g

        g.audit_actor = "cli:test"
        lines = seed_demo()
    assert any("today" in line and not line.endswith(" 0 today") for line in lines)
    states = {r.state for r in db.execute(select(Reservation)).scalars()}
    assert {BOOKED, ARRIVED, COMPLETED} <= states
    clerk = login_as("clerk")
    home = text_of(clerk.get("/"))
    assert "本日" in home and "交付待ちのカード" in home


def test_close_day_command_waits_for_the_last_slot(app, db, offer, clock):
    reservation = book_card(app, db, offer, waiting_card(db))
    runner = app.test_cli_runner()
    early = runner.invoke(args=["reservations", "close-day"])
    assert "still open" in early.output
    clock.set(clock().replace(hour=17, minute=10))
    done = runner.invoke(args=["reservations", "close-day"])
    assert "1 no-show" in done.output
    db.expire_all()
    assert db.get(Reservation, reservation.id).state == NO_SHOW


def test_list_filters_by_date_range_state_and_kana(login_as, app, db, offer):
    early = book_card(app, db, offer, waiting_card(db), day=date(2026, 12, 8))
    late = book_card(app, db, offer, waiting_card(db), day=date(2026, 12, 15))
    clerk = login_as("clerk")
    # FAB's datetime filters: 1 = greater than, 2 = smaller than
    page = text_of(clerk.get("/reservationmodelview/list/?_flt_1_starts_at=2026-12-10+00:00:00"
                             "&_flt_2_starts_at=2026-12-31+00:00:00"))
    assert late.number in page and early.number not in page
    booked = text_of(clerk.get("/reservationmodelview/list/?_flt_3_state=booked"))
    assert late.number in booked and early.number in booked


def test_every_state_change_is_in_the_audit_trail(login_as, app, db):
    import json

    offer = make_offer(db, purpose_code="shinsei")
    with app.test_request_context():
        slots = ensure_slots(db, offer, TODAY, TODAY)
        db.commit()
        visit, missed = (booking.book(db, slots[i], None, date(1980, 3, 1),
                                      booking.Contact(phone="0312345678"), seats=1, staff=True)
                         for i in (3, 4))
    clerk = login_as("clerk")
    for form in ({}, {"undo": "1"}, {}, {"complete": "1"}):
        clerk.post(f"/desk/{offer.venue.id}/check-in", data={"id": visit.id, "day": "2026-12-01",
                                                            **form})
    clerk.post(f"/desk/{offer.venue.id}/close-day", data={"day": "2026-12-01"})

    def moves(reservation_id):
        rows = db.execute(select(AuditLog).where(
            AuditLog.target_table == "reservation", AuditLog.target_id == str(reservation_id))
            .order_by(AuditLog.id)).scalars()
        return [(c["state"]["old"], c["state"]["new"], r.username) for r in rows
                for c in [json.loads(r.changes or "{}")] if isinstance(c.get("state"), dict)]

    clerk_name = moves(visit.id)[0][2]
    assert clerk_name != "system"
    assert [m[:2] for m in moves(visit.id)] == [
        (BOOKED, ARRIVED), (ARRIVED, BOOKED), (BOOKED, ARRIVED), (ARRIVED, COMPLETED)]
    assert [m[:2] for m in moves(missed.id)] == [(BOOKED, NO_SHOW)]


def test_the_desk_polling_by_itself_does_not_keep_a_session_alive(login_as, db, offer, clock):
    clerk = login_as("clerk")
    assert clerk.get(f"/desk/{offer.venue.id}").status_code == 200
    for _ in range(8):  # 40 minutes of refreshes every 5 minutes, nobody at the PC
        clock.advance(minutes=5)
        clerk.get(f"/desk/{offer.venue.id}/counts")
    response = clerk.get(f"/desk/{offer.venue.id}")
    assert response.status_code == 302 and "/login" in response.location


def test_a_tampered_form_is_refused_without_an_error(login_as, app, db, offer):
    reservation = book_card(app, db, offer, waiting_card(db), day=date(2026, 12, 8))
    clerk = login_as("clerk")
    move = clerk.post(f"/reservationmodelview/move/{reservation.id}",
                      data={"day": "2026-12-09", "slot": "1; DROP"}, follow_redirects=True)
    assert move.status_code == 200 and "時間を選んでください" in text_of(move)
    assert clerk.post(f"/desk/{offer.venue.id}/check-in", data={"id": "x"}).status_code == 404
    db.expire_all()
    assert db.get(Reservation, reservation.id).slot.starts_at.day == 8
