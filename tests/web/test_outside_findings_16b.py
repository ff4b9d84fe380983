"""Outside review of the issue-16 fixes (second pass). Each test showed a defect the review
found (a strict xfail that failed); all are fixed and the tests now guard the fixes."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from app import settings
from app.clock import JST
from app.models.outbox import OutboxMail
from app.services import audit, jobs
from tests.factories import make_staff_booking
from tests.smtp import smtp  # noqa: F401 (fixture)

DAY = date(2026, 12, 1)


def _at(day, hour, minute=0):
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=JST)


# --- reminders: a period caught up after midnight tells the visitor "tomorrow" ---------------

def test_a_reminder_caught_up_after_midnight_does_not_say_the_visit_is_tomorrow(
        app, db, clock, smtp):
    """The fix of outside review 16 #2 makes the 12-01 period, caught up at 00:30 on
    12-02, remind the visitors of 12-02 (right), but the mail is the usual reminder:
    subject 「明日は来庁予約の日です」 and body 「明日のご来庁についてお知らせします。」. The
    visit is *today* (10:30 the same morning); a resident who trusts the word 明日 comes a
    day late and loses the booking."""
    settings.configure(app, WORKER_BACKUPS=False, REMINDER_HOUR=17)
    clock.set(_at(DAY, 16))
    audit.act_as(audit.SYSTEM)
    jobs.run_due(db, "test:1", ["reminders"])
    clock.set(_at(DAY, 16, 30))
    booking = make_staff_booking(app, db, day=DAY + timedelta(days=1))  # 12-02 10:30
    booking.email = "kyou@example.jp"
    db.commit()
    clock.set(_at(DAY + timedelta(days=1), 0, 30))  # worker back at 00:30 on 12-02
    (outcome,) = jobs.run_due(db, "test:1", ["reminders"])
    assert outcome.period == "2026-12-01"
    (queued,) = db.execute(select(OutboxMail).where(
        OutboxMail.to_address == "kyou@example.jp")).scalars().all()
    text = queued.subject + "\n" + queued.body
    assert "明日" not in text and "tomorrow" not in text.lower(), text


# --- 廃棄候補: a booked card is discarded and its booking stays -----------------------------------

def test_discarding_a_booked_candidate_does_not_leave_the_booking_active(
        app, login_as, db, clock):
    """judge() lists a 予約済 card whose notice went out over a year ago (tests/unit/
    test_discard.py 'notice long ago, booked'), and the chart lets 予約済 go to 廃棄; the
    bulk discard of the candidates screen (discard.discard_candidates -> cards.discard_cards)
    only moves the card: the resident's booking to collect it stays 予約中, no mail says it
    is off, and the desk expects the visitor. Either the discard must refuse a card with an
    active booking (naming it) or cancel that booking in the same unit."""
    from app.models.card import Card
    from app.models.reservation import Reservation
    from app.services import booking
    from app.services import cards as svc
    from app.services.calendar import ensure_slots
    from tests.factories import make_card, make_offer, make_storage

    make_storage(db)
    offer = make_offer(db, seats=2)
    card = make_card(db, state=svc.SETUP)
    svc.transition_card(db, card, svc.NOTICE_SENT, actor=svc.SYSTEM)
    db.commit()
    card.notice_sent_at = clock() - timedelta(days=400)
    db.commit()
    day = DAY + timedelta(days=7)
    with app.test_request_context():
        slot = ensure_slots(db, offer, day, day)[3]
        db.commit()
        reservation = booking.book(db, slot, None, card.birth_date,
                                   booking.Contact(phone="09012345678", name=card.name,
                                                   name_kana=card.name_kana),
                                   cards_to_collect=[card], staff=True)
    card_id, reservation_id = card.id, reservation.id
    db.expire_all()
    assert db.get(Card, card_id).state == svc.RESERVED
    client = login_as("manager")
    client.post("/discard/refresh")
    client.post("/discard/execute", data={"ids": [card_id], "reason": "期限経過"})
    db.expire_all()
    discarded = db.get(Card, card_id).state == svc.DISCARDED
    still_booked = db.get(Reservation, reservation_id).state == booking.BOOKED
    assert not (discarded and still_booked), \
        "the card was discarded and the resident's booking to collect it is still active"


# --- logs: PostgreSQL's DETAIL line carries the row's values past hide_parameters --------------

# What psycopg 3 says on PostgreSQL 16 (checked against a real server with hide_parameters=True):
# the server's DETAIL line repeats the failing row or the duplicate key.
_PG_CHECK = ('new row for relation "card" violates check constraint "ck_card_name"\n'
             "DETAIL:  Failing row contains (7, 00000000000000000000001, 山田太郎, "
             "ヤマダタロウ, 緑市中央1-2-3, 1980-03-01).")


def test_a_failed_job_logs_no_personal_data_from_the_database_error(
        app, db, clock, monkeypatch, caplog):
    """hide_parameters (config.py) hides the values SQLAlchemy bound, but on PostgreSQL
    the server's own message has a DETAIL line with the failing row ("Failing row
    contains (..., 山田太郎, ..., 緑市中央1-2-3, ...)") or the duplicate key ("Key
    (email)=(taro@example.jp) already exists"). jobs.run_one keeps only the first line
    for job_run.error (the screen is clean) but log.exception writes the whole exception
    text, DETAIL included, into the application log; so do web.http_error's "Error
    reference" line, FAB's @safe (log.exception) and the ledger-import and export
    threads. The commit's promise "a traceback in the log ... names the statement, not
    the resident" holds on SQLite only."""
    import dataclasses
    import logging

    from sqlalchemy.exc import IntegrityError

    def failing(session, now):
        raise IntegrityError("UPDATE card SET name=%(name)s WHERE card.id = %(id)s",
                             {"name": "山田太郎", "id": 7}, Exception(_PG_CHECK),
                             hide_parameters=True)

    monkeypatch.setitem(jobs.JOBS, "discard", dataclasses.replace(jobs.JOBS["discard"],
                                                                  run=failing))
    audit.act_as(audit.SYSTEM)
    with caplog.at_level(logging.ERROR):
        (outcome,) = jobs.run_due(db, "test:1", ["discard"])
    assert outcome.state == "failed"
    assert "山田太郎" not in outcome.text  # the screen's text: first line only
    logged = "\n".join(caplog.handler.format(record) for record in caplog.records)
    assert "job discard" in logged
    assert "山田太郎" not in logged and "緑市中央" not in logged, logged


# --- 操作ログ CSV in CP932: characters turned into '?' silently --------------------------------

def test_the_audit_csv_in_cp932_never_turns_characters_into_question_marks_silently(app, db):
    """The audit trail's CSV is evidence. audit_text.export_csv (moved from the view,
    same code) ends with .encode(encoding, errors="replace"): a changed name 「𠮷田」
    (and any other character outside CP932: some 異体字, emoji) comes out as
    「?田」, with no word on the screen and nothing in the export's audit record. The
    project's own rule (app/services/extraction.py: 'such characters are never turned
    into ? silently'; the person stops or chooses 〓, and the count is audited) is not
    applied here (nor in app/services/exports.py postcards.csv)."""
    import json

    from app.models.audit import AuditLog
    from app.services import audit_text
    from app.services.errors import DomainError

    audit.act_as("kanri_cp932")
    audit.record_event(audit.ACTION_UPDATE, "card", 7, {"name": ["吉田　花子", "𠮷田　花子"]})
    try:
        made = audit_text.export_csv(db, audit_text.Criteria(), encoding="cp932",
                                     encrypted=True, filters={}, note={"encrypted": True})
    except DomainError:
        return  # refused, naming the characters: acceptable
    text = made.data.decode("cp932")
    record = db.execute(select(AuditLog).order_by(AuditLog.id.desc())).scalars().first()
    assert "?田" not in text or "replaced" in json.loads(record.changes), \
        "𠮷 became '?' in the audit CSV and the export's record does not say so"


# --- FORWARDED_ALLOW_IPS: a network the app takes stops gunicorn --------------------------------

def test_a_forwarded_allow_ips_network_the_app_accepts_also_starts_gunicorn():
    """README, deploy/mnc.env.example and app/proxies.py say FORWARDED_ALLOW_IPS holds
    'addresses or networks' and that the same variable is read by gunicorn
    (deploy/gunicorn.conf.py forwarded_allow_ips). gunicorn 23.0.0 (requirements.txt)
    validates each entry with ipaddress.ip_address and compares peers as strings: with
    FORWARDED_ALLOW_IPS=10.0.8.0/23 (two nginx in one subnet) the app starts, but gunicorn
    refuses its configuration and no app server starts. (An IPv4-mapped entry such as
    ::ffff:10.0.0.10, as gunicorn on a dual-stack socket reports the peer, is accepted by
    both but never matches in app/proxies.py, which maps the peer to IPv4 and compares it
    with the IPv6 network.)"""
    import os
    import subprocess
    import sys

    from app.proxies import TrustedProxyFix, parse_trusted

    with pytest.raises(ValueError, match="not an IP address"):  # refused by both, alike
        parse_trusted("10.0.0.10, 10.0.8.0/23")
    value = "10.0.0.10,10.0.0.11,::ffff:10.0.0.20"
    fix = TrustedProxyFix(None, 1, parse_trusted(value))  # the app starts with it
    assert fix.trusts("10.0.0.11") and fix.trusts("10.0.0.20") and fix.trusts("::ffff:10.0.0.20")
    assert not fix.trusts("10.0.0.12")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    checked = subprocess.run(  # and gunicorn, through deploy/gunicorn.conf.py, too
        [os.path.join(os.path.dirname(sys.executable), "gunicorn"), "--check-config",
         "-c", os.path.join(root, "deploy", "gunicorn.conf.py"), "run:app"], cwd=root,
        env=dict(os.environ, FORWARDED_ALLOW_IPS=value, WEB_CONCURRENCY="2",
                 DATABASE_URL="sqlite:///:memory:"), capture_output=True, text=True,
        timeout=120)
    assert checked.returncode == 0, checked.stderr


# --- 廃棄候補: a card booked after the page was read is discarded from that page --------------------

def test_a_card_booked_after_the_page_was_read_is_not_discarded_from_that_page(
        app, login_as, db, clock):
    """discard.discard_candidates promises: 'A page read before a clerk sent a 再通知 (or
    a card booked, handed over or changed since) refuses the whole action and names the
    card'. It only asks judge() again, and judge() keeps a 予約済 card whose notice is
    old as a candidate (NOTICED_LONG_AGO covers NOTICE_SENT and RESERVED). So: the
    supervisor opens 廃棄候補 (card 交付通知書発送, notice 400 days ago); the resident books a
    visit to collect it; the supervisor submits the page read before: the card the
    resident just booked is destroyed. The form carries no state (or version) of what the
    page showed, so nothing can notice the change."""
    from app.models.card import Card
    from app.services import booking
    from app.services import cards as svc
    from app.services.calendar import ensure_slots
    from tests.conftest import text_of
    from tests.factories import make_card, make_offer, make_storage

    make_storage(db)
    offer = make_offer(db, seats=2)
    card = make_card(db, state=svc.SETUP)
    svc.transition_card(db, card, svc.NOTICE_SENT, actor=svc.SYSTEM)
    db.commit()
    card.notice_sent_at = clock() - timedelta(days=400)
    db.commit()
    card_id, application_id = card.id, card.application_id
    client = login_as("manager")
    client.post("/discard/refresh")
    assert application_id in text_of(client.get("/discard/"))  # the page the supervisor has
    day = DAY + timedelta(days=7)
    with app.test_request_context():  # meanwhile the resident books a visit to collect it
        slot = ensure_slots(db, offer, day, day)[3]
        db.commit()
        booking.book(db, slot, None, card.birth_date,
                     booking.Contact(phone="09012345678", name=card.name,
                                     name_kana=card.name_kana),
                     cards_to_collect=[db.get(Card, card_id)], staff=True)
    db.expire_all()
    assert db.get(Card, card_id).state == svc.RESERVED
    client.post("/discard/execute", data={"ids": [card_id], "reason": "期限経過"})
    db.expire_all()
    assert db.get(Card, card_id).state == svc.RESERVED, \
        "a card booked after the page was read was discarded from that page"


# --- 廃棄候補 paging: a page number int() cannot read ---------------------------------------------

def test_the_candidates_page_number_never_answers_500(login_as):
    """app/views/discard.py: int(page) if page.isdigit() and len(page) < 7. str.isdigit()
    is true for superscript digits ('²', '³') that int() refuses with ValueError:
    /discard/?page=² answers 500 with an error reference
    instead of the first page (isdecimal(), or the project's own id parser, would do)."""
    client = login_as("manager")
    assert client.get("/discard/?page=1").status_code == 200
    try:
        response = client.get("/discard/?page=%C2%B2")  # '²'
    except ValueError as error:  # the test app propagates what production answers 500 to
        pytest.fail(f"/discard/?page=² raised {error!r} (500 in production)")
    assert response.status_code == 200, response.status_code


# --- logs: a refused recipient puts the resident's e-mail address in the log --------------------

def test_a_mail_the_relay_refuses_logs_no_e_mail_address(app, db, clock, caplog):
    """mail.deliver turns any SMTP error into MailError(str(error)); _send_one logs
    'mail %s to a resident was not sent (attempt %s): %s' with it (the message itself
    avoids the address on purpose). A relay refusing the recipient (Postfix: '550 5.1.1
    <addr>: Recipient address rejected: User unknown') makes smtplib raise
    SMTPRecipientsRefused({addr: (550, ...)}), whose text is the address twice: every
    mistyped address of a resident lands in the application log (and in
    outbox_mail.last_error, up to 4 attempts). The same text would reach the 定期処理
    screen if it ever left the job as an exception."""
    import logging

    from aiosmtpd.controller import Controller

    from app.services import mail
    from tests.smtp import free_port

    class Refusing:
        async def handle_RCPT(self, server, session, envelope, address, options):  # noqa: N802
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"

    controller = Controller(Refusing(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        settings.configure(app, MAIL_SERVER="127.0.0.1", MAIL_PORT=controller.port,
                           MAIL_FROM="yoyaku@city.midori.lg.jp")
        booking = make_staff_booking(app, db, day=DAY + timedelta(days=7))
        booking.email = "yamada.taro@example.jp"
        db.commit()
        with app.test_request_context():
            assert mail.enqueue(db, booking, "reminder", clock())
            db.commit()
        audit.act_as(audit.SYSTEM)
        with caplog.at_level(logging.WARNING):
            mail.send_outbox(db)
    finally:
        controller.stop()
    logged = "\n".join(caplog.handler.format(record) for record in caplog.records)
    assert "not sent" in logged, logged
    assert "yamada.taro" not in logged, logged


def test_a_booked_card_put_on_hold_is_not_discarded_either(app, db):
    """保留 from 予約済 keeps the booking: the discard is refused the same way."""
    from app.services import cards as svc
    from app.services.errors import InvalidTransitionError
    from tests.factories import make_card, make_storage

    with app.test_request_context():
        make_storage(db)
        card = make_card(db, state=svc.ON_HOLD, held_from=svc.RESERVED)
        with pytest.raises(InvalidTransitionError, match="予約を取り消してください"):
            svc.transition_card(db, card, svc.DISCARDED, note="期限経過", actor=svc.SYSTEM)
        db.rollback()
        assert svc.refusal(card, svc.DISCARDED)


def test_postcard_print_data_in_cp932_writes_geta_and_counts_it(app, db):
    """The print shop's CSV: a name Shift_JIS cannot hold gets 〓 (外字 mark), counted in
    the export's audit record, never '?'."""
    import io
    import json
    import zipfile

    from app.models.audit import AuditLog
    from app.services import exports
    from tests.factories import make_card, make_storage

    make_storage(db)
    card = make_card(db, name="𠮷田　花子")
    card.notice_number = "123456789012"
    db.commit()
    with app.test_request_context():
        audit.act_as("kanri_print")
        _name, data = exports.postcard_print_data(db, [card.id], "cp932")
        db.commit()
    csv_text = zipfile.ZipFile(io.BytesIO(data)).read("postcards.csv").decode("cp932")
    assert "〓田　花子" in csv_text and "?田" not in csv_text
    record = db.execute(select(AuditLog).order_by(AuditLog.id.desc())).scalars().first()
    assert json.loads(record.changes)["replaced"] == 1
