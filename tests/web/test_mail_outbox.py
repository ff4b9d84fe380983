"""The outbox (issue 11, section 4): no request talks to the mail relay; mails are rows
written with the change they announce, and `flask --app run outbox send` delivers each
once, retrying later, through a real SMTP server on loopback (aiosmtpd)."""
import smtplib
import threading
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from app import settings
from app.models.audit import AuditLog
from app.models.outbox import FAILED, QUEUED, SENDING, SENT, OutboxMail
from app.models.reservation import Reservation, Slot
from app.services import audit, booking, mail
from app.services.calendar import ensure_slots
from tests.factories import make_offer
from tests.public_flow import book_kofu
from tests.smtp import deliver_outbox, free_port, smtp  # noqa: F401 (fixture)
from tests.web.test_public_booking import shown, waiting_card


@pytest.fixture
def offer(db):
    return make_offer(db, seats=2)


@pytest.fixture
def smtp_calls(monkeypatch):
    """Every connection the app opens to a relay, in order."""
    calls = []
    real = smtplib.SMTP

    class Counting(real):
        def __init__(self, *args, **kwargs):
            calls.append(args)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(smtplib, "SMTP", Counting)
    return calls


def relay_down(app):
    """Point the app at a port nobody listens on; returns the working port to restore."""
    port = app.config["MAIL_PORT"]
    settings.configure(app, MAIL_PORT=free_port(), MAIL_TIMEOUT_SECONDS=2)
    return port


def rows(db):
    db.expire_all()
    return db.execute(select(OutboxMail).order_by(OutboxMail.id)).scalars().all()


def queue(db, count, now, to="taro@example.jp"):
    for index in range(count):
        db.add(OutboxMail(kind="booked", to_address=to, locale="ja", subject=f"件名 {index}",
                          body=f"本文 {index}", created_at=now, state=QUEUED, attempts=0,
                          next_attempt_at=now))
    db.commit()


def test_a_booking_never_waits_for_a_dead_relay_and_its_mail_goes_out_later(
        app, client, db, offer, smtp, smtp_calls):
    working = relay_down(app)
    card = waiting_card(db)
    number = book_kofu(client, offer.venue.id, [(shown(card), "1980-03-01")],
                       email="taro@example.jp")
    assert smtp_calls == []  # the request never tried the relay
    (row,) = rows(db)
    reservation = db.execute(select(Reservation).where(Reservation.number == number)).scalar()
    assert (row.state, row.kind, row.reservation_id, row.to_address, row.attempts) == \
        (QUEUED, "booked", reservation.id, "taro@example.jp", 0)
    assert number in row.subject and offer.venue.name in row.body
    assert row.locale == reservation.locale
    done = client.get("/reserve/done").get_data(as_text=True)
    assert number in done
    # the relay is still down: the sender tries, and queues it again for later
    assert deliver_outbox(app).retried == 1 and rows(db)[0].state == QUEUED
    settings.configure(app, MAIL_PORT=working)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["outbox", "send"]).output.startswith("mails sent: 0")  # not due
    app.config["CLOCK"].advance(minutes=1)
    result = runner.invoke(args=["outbox", "send"])
    assert result.exit_code == 0 and "mails sent: 1" in result.output
    (message,) = smtp.to("taro@example.jp")
    assert message["Subject"] == row.subject and number in smtp.body(message)
    (row,) = rows(db)
    assert row.state == SENT and row.sent_at is not None and row.attempts == 2
    assert runner.invoke(args=["outbox", "send"]).output.startswith("mails sent: 0")
    assert len(smtp.messages) == 1  # a rerun sends nothing twice
    sent = db.execute(select(AuditLog).where(AuditLog.target_table == "outbox",
                                             AuditLog.changes.contains('"sent"'))).scalar_one()
    assert sent.username == audit.SYSTEM  # the cron job, named as the other jobs are


def test_a_refused_change_queues_no_mail(app, db, offer, smtp):
    card = waiting_card(db)
    with app.test_request_context():
        slots = ensure_slots(db, offer, date(2026, 12, 8), date(2026, 12, 8))
        db.commit()
        reservation = booking.book(db, slots[0], None, card.birth_date,
                                   booking.Contact(phone="09012345678", email="t@example.jp"),
                                   cards_to_collect=[card], staff=True, notify=True)
        booking.hold_seats(db, slots[1], 2, staff=True)  # full
        with pytest.raises(booking.SlotFullError):
            booking.change_slot(db, reservation, db.get(Slot, slots[1].id), staff=True,
                                notify=True)
    assert [(r.kind, r.state) for r in rows(db)] == [("booked", QUEUED)]


def test_no_address_or_no_mail_server_queues_nothing(app, client, db, offer):
    card = waiting_card(db)
    book_kofu(client, offer.venue.id, [(shown(card), "1980-03-01")], email="taro@example.jp")
    assert rows(db) == []  # MAIL_SERVER is empty
    result = app.test_cli_runner().invoke(args=["outbox", "send"])
    assert result.exit_code == 0 and "MAIL_SERVER is not set" in result.output


def test_failures_are_retried_later_and_failed_after_the_last_attempt(app, db, smtp, clock):
    queue(db, 1, clock())
    working = relay_down(app)
    runner = app.test_cli_runner()
    waits = []
    for attempt in range(1, mail.MAX_ATTEMPTS):
        result = runner.invoke(args=["outbox", "send"])
        assert result.exit_code == 0 and "to retry later: 1" in result.output
        (row,) = rows(db)
        assert (row.state, row.attempts) == (QUEUED, attempt) and row.last_error
        waits.append(row.next_attempt_at - clock())
        assert "to retry later: 0" in runner.invoke(args=["outbox", "send"]).output  # not due
        clock.set(row.next_attempt_at)
    assert waits[:4] == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert waits[-1] == mail.MAX_RETRY_DELAY
    last = runner.invoke(args=["outbox", "send"])
    assert last.exit_code == 1 and "failed for good: 1" in last.output
    (row,) = rows(db)
    assert (row.state, row.attempts) == (FAILED, mail.MAX_ATTEMPTS)
    settings.configure(app, MAIL_PORT=working)
    clock.advance(days=1)
    assert deliver_outbox(app).sent == 0 and smtp.messages == []  # failed stays failed


def test_a_row_left_sending_by_a_crashed_sender_is_sent_after_its_lease(app, db, smtp, clock):
    queue(db, 2, clock())
    first, second = rows(db)
    for row, claimed_at in ((first, clock() - mail.LEASE), (second, clock())):
        row.state, row.attempts, row.next_attempt_at = SENDING, 1, claimed_at + mail.LEASE
    db.commit()
    report = deliver_outbox(app)
    assert report.sent == 1 and [m["Subject"] for m in smtp.messages] == ["件名 0"]
    assert [(r.state, r.attempts) for r in rows(db)] == [(SENT, 2), (SENDING, 1)]
    clock.advance(minutes=10)
    assert deliver_outbox(app).sent == 1 and len(smtp.messages) == 2


def test_a_crashed_sender_at_the_last_attempt_leaves_the_row_failed(app, db, smtp, clock):
    queue(db, 1, clock())
    (row,) = rows(db)
    row.state, row.attempts, row.next_attempt_at = SENDING, mail.MAX_ATTEMPTS, clock()
    db.commit()
    assert deliver_outbox(app).failed == 1 and smtp.messages == []
    assert rows(db)[0].state == FAILED


def test_two_senders_at_once_deliver_each_mail_exactly_once(app, db, smtp, clock,
                                                            monkeypatch):
    queue(db, 12, clock())
    barrier = threading.Barrier(2)
    started = threading.local()
    real = mail._send_one

    def after_both_listed(session, mail_id):
        if not getattr(started, "done", False):  # both senders hold the whole list
            started.done = True
            barrier.wait(timeout=30)
        return real(session, mail_id)

    monkeypatch.setattr(mail, "_send_one", after_both_listed)
    reports, errors = [], []

    def sender():
        try:
            reports.append(deliver_outbox(app))
        except Exception as error:  # noqa: BLE001 - reported by the assertion
            errors.append(error)

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert sum(r.sent for r in reports) == 12
    assert sorted(m["Subject"] for m in smtp.messages) == sorted(f"件名 {i}" for i in range(12))
    assert {r.state for r in rows(db)} == {SENT}


def test_reminders_are_queued_once_and_sent_once(app, client, db, offer, smtp, clock):
    card = waiting_card(db)
    book_kofu(client, offer.venue.id, [(shown(card), "1980-03-01")],
              email="tomorrow@example.jp", day="2026-12-08")
    deliver_outbox(app)  # the confirmation
    clock.set(clock().replace(day=7, hour=18))
    runner = app.test_cli_runner()
    first = runner.invoke(args=["reservations", "remind"])
    assert first.exit_code == 0 and "reminders queued: 1" in first.output
    assert "reminders queued: 0" in runner.invoke(args=["reservations", "remind"]).output
    assert db.execute(select(func.count()).select_from(OutboxMail)
                      .where(OutboxMail.kind == "reminder")).scalar() == 1
    assert len([m for m in smtp.messages if "明日" in m["Subject"]]) == 0  # queued only
    deliver_outbox(app)
    deliver_outbox(app)
    assert len([m for m in smtp.messages if "明日" in m["Subject"]]) == 1


def test_two_sender_processes_on_postgresql_deliver_each_mail_once(app, db, smtp,
                                                                   database_url, instance_dir):
    """Two `flask --app run outbox send` processes (two cron hosts) at the same moment."""
    if not database_url.startswith("postgresql"):
        pytest.skip("runs on PostgreSQL (make test runs the suite there too)")
    import os
    import subprocess
    import sys
    from datetime import datetime

    from app.clock import JST

    queue(db, 40, datetime.now(JST) - timedelta(minutes=1))  # due by the real clock
    env = {**os.environ, "DATABASE_URL": database_url, "INSTANCE_DIR": instance_dir,
           "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": str(app.config["MAIL_PORT"]),
           "MAIL_FROM": app.config["MAIL_FROM"]}
    flask = os.path.join(os.path.dirname(sys.executable), "flask")
    senders = [subprocess.Popen([flask, "--app", "run", "outbox", "send"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    outputs = [sender.communicate(timeout=120) for sender in senders]
    assert [s.returncode for s in senders] == [0, 0], outputs
    sent = [int(out.split("mails sent: ")[1].split(",")[0]) for out, _ in outputs]
    assert sum(sent) == 40
    assert sorted(m["Subject"] for m in smtp.messages) == sorted(f"件名 {i}" for i in range(40))
    assert {r.state for r in rows(db)} == {SENT}


def test_a_phone_booking_queues_its_mail_and_a_walk_in_none(login_as, app, db, offer, smtp,
                                                            smtp_calls):
    from app.services import notice_numbers

    card = waiting_card(db)
    clerk = login_as("clerk")
    slot = ensure_slots(db, offer, date(2026, 12, 2), date(2026, 12, 2))[0]
    db.commit()
    done = clerk.post(f"/desk/{offer.venue.id}/new", data={
        "offer": offer.id, "channel": "phone", "day": "2026-12-02", "slot": slot.id,
        "notice_number": notice_numbers.display(card.notice_number), "birth_date": "S55.3.1",
        "phone": "0312345678", "email": "taro@example.jp", "email_confirm": "taro@example.jp",
        "key": "k1"})
    assert done.status_code == 302 and smtp_calls == []
    reservation = db.execute(select(Reservation)).scalar_one()
    assert [(r.kind, r.reservation_id) for r in rows(db)] == [("booked", reservation.id)]
    walk_in_offer = make_offer(db, purpose_code="shinsei", seats=1)
    clerk.post(f"/desk/{walk_in_offer.venue.id}/new", data={
        "offer": walk_in_offer.id, "walk_in": "1", "name": "佐藤 一郎",
        "name_kana": "さとう いちろう", "birth_date": "1970-01-01", "seats": "1",
        "phone": "0312345678", "email": "ichiro@example.jp",
        "email_confirm": "ichiro@example.jp"})
    assert db.execute(select(func.count()).select_from(Reservation)).scalar() == 2
    assert len(rows(db)) == 1  # a walk-in is at the counter: no mail
    deliver_outbox(app)
    assert [m["To"] for m in smtp.messages] == ["taro@example.jp"]
