"""Outside review of issue 16 (two app servers, worker, /metrics, JSON logs, 503, audit
export). Each test here showed a defect the review found (written as a strict xfail that
failed); all are fixed, and each test now guards its fix. The docstrings keep what was
found."""
from __future__ import annotations

import json
import os
import re
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from app import observability, settings
from app.clock import JST
from app.models.outbox import OutboxMail
from app.models.reservation import Reservation
from app.services import audit, jobs
from tests.conftest import bearer_client
from tests.factories import make_staff_booking
from tests.smtp import smtp  # noqa: F401 (fixture)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NGINX = os.path.join(ROOT, "deploy", "nginx", "mnc.conf")

# The redundant layout of deploy/mnc.env.example and deploy/nginx/mnc.conf.
NGINX_ADDRESS = "10.0.0.10"  # FORWARDED_ALLOW_IPS: the only proxy whose headers count
MONITORING = "10.0.9.0/24"  # METRICS_ALLOW
STAFF_PC = "10.0.5.23"  # any host of the office network that can reach an app server :8000


# --- 1. /metrics: X-Forwarded-For is believed from any peer ----------------------------------

def test_a_forged_forwarded_for_from_a_host_that_is_not_the_proxy_does_not_open_metrics(
        make_app, monkeypatch):
    """Outside review found: PROXY_FIX_HOPS=1 wraps the app in werkzeug's ProxyFix,
    which believes X-Forwarded-For whoever sent it: a host that reaches an app
    server's :8000 directly (GUNICORN_BIND is a LAN address, docs tell the monitoring
    to scrape :8000 directly) forges 'X-Forwarded-For: <allowed address>' and reads
    /metrics; the same forgery changes the address of the login rate limit and of the
    audit trail. FORWARDED_ALLOW_IPS (docs: 'the nginx whose headers are trusted') is
    only read by gunicorn for the scheme."""
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", NGINX_ADDRESS)
    app = make_app(PROXY_FIX_HOPS=1, METRICS_ALLOW=MONITORING,
                   FORWARDED_ALLOW_IPS=NGINX_ADDRESS)
    client = app.test_client()
    # the real proxy passing on a monitoring host's request: allowed (works today)
    through_nginx = client.get("/metrics", environ_base={"REMOTE_ADDR": NGINX_ADDRESS},
                               headers={"X-Forwarded-For": "10.0.9.5"})
    assert through_nginx.status_code == 200
    # a staff PC talking to gunicorn directly, forging the header: must be refused
    forged = client.get("/metrics", environ_base={"REMOTE_ADDR": STAFF_PC},
                        headers={"X-Forwarded-For": "10.0.9.5"})
    assert forged.status_code == 404, "a forged X-Forwarded-For opened /metrics"


def test_the_audit_trail_keeps_the_real_peer_when_the_header_is_forged(make_app, monkeypatch):
    """Outside review found: same cause as above: the audit trail records the forged
    X-Forwarded-For address of a request sent straight to an app server, not the peer
    that sent it"""
    from tests.factories import UserFactory

    monkeypatch.setenv("FORWARDED_ALLOW_IPS", NGINX_ADDRESS)
    app = make_app(PROXY_FIX_HOPS=1, FORWARDED_ALLOW_IPS=NGINX_ADDRESS)
    user = UserFactory(app).create("clerk")
    client = app.test_client()
    client.post("/login/", data={"username": user.username, "password": "wrong"},
                environ_base={"REMOTE_ADDR": STAFF_PC},
                headers={"X-Forwarded-For": "192.0.2.250"})
    with app.app_context():
        from app.models.audit import AuditLog
        ips = [row.ip for row in app.appbuilder.session.execute(
            select(AuditLog).order_by(AuditLog.id)).scalars()]
    assert "192.0.2.250" not in ips, ips


# --- 2. reminders: the catch-up after midnight reminds the wrong day ---------------------------

DAY = date(2026, 12, 1)


def _at(day, hour, minute=0):
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=JST)


def test_a_reminders_period_caught_up_after_midnight_reminds_that_period_s_visitors(
        app, db, clock, smtp):
    """Outside review found: the reminders job's catch-up computes 'tomorrow' from the
    time it runs, not from its period: the period of 12-01 (due 17:00) run after
    midnight (worker down in the evening, restarted at 00:30 or the next morning)
    reminds the visits of 12-03, and the visitors of 12-02 are never reminded
    (send_reminders(session, now) in app/services/jobs.py)"""
    settings.configure(app, WORKER_BACKUPS=False, REMINDER_HOUR=17)
    # the worker ran until 16:00 on 12-01 (period 11-30 done), then stopped
    clock.set(_at(DAY, 16))
    audit.act_as(audit.SYSTEM)
    (earlier,) = jobs.run_due(db, "test:1", ["reminders"])
    assert earlier.period == "2026-11-30"
    # a visit of 12-02 booked later that afternoon (a phone booking entered by staff)
    clock.set(_at(DAY, 16, 30))
    booking = make_staff_booking(app, db, day=DAY + timedelta(days=1))  # 12-02 10:30
    booking.email = "ashita@example.jp"
    db.commit()
    # it comes back at 00:30 on 12-02: the missed period 12-01 catches up once
    clock.set(_at(DAY + timedelta(days=1), 0, 30))
    (outcome,) = jobs.run_due(db, "test:1", ["reminders"])
    assert outcome.period == "2026-12-01"
    db.expire_all()
    assert db.get(Reservation, booking.id).reminded_at is not None, (
        "the visitor of 12-02 got no reminder from the period 12-01's catch-up")
    assert db.execute(select(OutboxMail).where(
        OutboxMail.to_address == "ashita@example.jp")).scalars().all()


# --- 3. the access line of a REST request names no user ---------------------------------------

@pytest.fixture
def json_app(make_app):
    made = make_app(LOG_FORMAT="json")
    yield made
    observability.configure_logging("text")


def _access_lines(capsys) -> list[dict]:
    return [line for line in (json.loads(text) for text in capsys.readouterr().err.splitlines()
                              if text.startswith("{")) if line.get("logger") == "app.access"]


def test_the_access_line_of_a_rest_request_names_the_jwt_user(json_app, capsys):
    """Outside review found: observability.current_username reads the JWT user's name
    only when the row is still loaded; a REST read is audited (a commit expires the
    row), so the access line of almost every REST request says user '-'
    (docs/monitoring.md promises the user)"""
    from tests.factories import UserFactory

    users = UserFactory(json_app)
    client, headers = bearer_client(json_app, users, "manager")
    capsys.readouterr()
    response = client.get("/api/v1/card/", headers=headers)
    assert response.status_code == 200
    (access,) = _access_lines(capsys)
    assert access["path"] == "/api/v1/card/"
    assert access["user"] != "-", access


# --- 4. the shipped nginx access log keeps the query strings ----------------------------------

def test_the_nginx_access_log_leaves_out_query_strings():
    """Outside review found: deploy/nginx/mnc.conf logs "$request" (the request line
    with its query string) for every request: the desk's search (?q=<name, kana,
    booking number>), the hand-over search (?q=<申請書ID or 交付通知書番号>) and the postcard
    QR link (/reserve/?n=<交付通知書番号>) land in /var/log/nginx/mnc.access.log, while the
    app's own access line deliberately logs the path only"""
    with open(NGINX, encoding="utf-8") as handle:
        config = handle.read()
    formats = re.findall(r"log_format\s+\w+\s+((?:'[^']*'\s*)+);", config)
    assert formats, "no log_format found"
    for fmt in formats:
        for variable in ("$request ", "$request\"", "$request_uri", "$args", "$query_string",
                         "$arg_", "$http_referer"):
            assert variable not in fmt + " ", f"nginx log_format logs {variable.strip()}"


# --- 5. discard: a stale candidates page destroys a card that is no longer a candidate ---------

def test_a_card_renotified_after_the_page_was_read_is_not_discarded_from_that_page(
        app, login_as, db, clock):
    """Outside review found: POST /discard/execute (cards.discard_cards) discards
    whatever ids it is sent: it neither re-judges them (discard.judge) nor compares
    with the state the page showed, so a supervisor's page opened before a clerk sent
    a 再通知 discards the card the resident was just re-notified about (pre-existing,
    not made by the snapshot; the snapshot re-judges only on GET)"""
    from app.models.card import Card
    from app.services import cards as svc
    from app.services import unit
    from tests.conftest import text_of
    from tests.factories import make_card, make_storage

    make_storage(db)
    card = make_card(db, state=svc.NOTICE_SENT)
    card.notice_sent_at = clock() - timedelta(days=400)
    db.commit()
    card_id, application_id = card.id, card.application_id
    client = login_as("manager")
    client.post("/discard/refresh")
    assert application_id in text_of(client.get("/discard/"))  # the page the supervisor has
    # meanwhile the resident phoned: a clerk sends a 再通知 (renotified today)
    with app.test_request_context(), unit.transaction(db):
        svc.transition_card(db, db.get(Card, card_id), svc.RENOTIFIED, actor=svc.SYSTEM)
    db.expire_all()
    assert db.get(Card, card_id).state == svc.RENOTIFIED
    assert application_id not in text_of(client.get("/discard/"))  # no longer a candidate
    # the supervisor submits the page read before
    client.post("/discard/execute", data={"ids": [card_id], "reason": "期限経過"})
    db.expire_all()
    assert db.get(Card, card_id).state == svc.RENOTIFIED, \
        "a card that is no longer a discard candidate was discarded from a stale page"


# --- 6. a failed job's error keeps the SQL parameters (personal data) on the 定期処理 screen ---

def test_a_failed_job_shows_no_personal_data_from_the_database_error(
        app, db, clock, login_as, monkeypatch):
    """Outside review found: jobs._error_text stores f'{type}: {error}' of any
    exception: a database error's text carries its [SQL: ...] and [parameters: ...]
    (names, addresses of cards and bookings), kept in job_run.error and shown on
    /jobs/ to the システム管理者, a role that may not read the card ledger
    (SQLALCHEMY_ENGINE_OPTIONS has no hide_parameters)"""
    import dataclasses

    from sqlalchemy.exc import IntegrityError

    from app.models.job import JobRun
    from tests.conftest import text_of

    def failing(session, now):
        raise IntegrityError("UPDATE card SET name=:name, address=:address WHERE card.id = :id",
                             {"name": "山田太郎", "address": "緑市中央1-2-3", "id": 7},
                             Exception("UNIQUE constraint failed: card.application_id"))

    monkeypatch.setitem(jobs.JOBS, "discard", dataclasses.replace(jobs.JOBS["discard"],
                                                                  run=failing))
    audit.act_as(audit.SYSTEM)
    (outcome,) = jobs.run_due(db, "test:1", ["discard"])
    assert outcome.state == "failed"
    db.expire_all()
    stored = db.execute(select(JobRun.error).where(JobRun.job == "discard")).scalar_one()
    page = text_of(login_as("sysadmin").get("/jobs/"))
    assert "山田太郎" not in stored and "緑市中央" not in stored, stored
    assert "山田太郎" not in page


# --- 7. the restore procedure leaves the worker running ---------------------------------------

def test_the_restore_procedure_stops_and_restarts_the_worker():
    """Outside review found: docs/operations.md「復元」 stops gunicorn and mnc-backup.timer
    but not the worker (deploy/mnc-worker.service, which since issue 16 also makes
    the nightly backup): during `backup restore --force` it keeps sending the outbox,
    closing days, refreshing the discard candidates and may start a backup against
    the database being replaced"""
    with open(os.path.join(ROOT, "docs", "operations.md"), encoding="utf-8") as handle:
        text = handle.read()
    section = text.split("### 復元", 1)[1].split("\n### ", 1)[0]
    steps = section.split("手順:", 1)[1]
    assert "mnc-worker" in steps, "the restore steps never stop the worker"


# --- 8. audit export --to an existing file keeps that file's mode -----------------------------

def test_audit_export_to_an_existing_file_makes_it_private(app, db, clock, tmp_path):
    """Outside review found: `audit export --to FILE` opens with O_CREAT|O_TRUNC and
    mode 0600: the mode applies only when the file is new, so an existing world-
    readable file (a second export to the same path) receives the whole audit trail
    (user IDs, IPs, booking numbers) and stays 0644; docs/audit.md promises 'a file
    of mode 0600' (app/cli.py audit_export)"""
    from tests.factories import make_notice

    make_notice(db, clock(), title="n")
    target = tmp_path / "audit.jsonl"
    target.write_text("")
    os.chmod(target, 0o644)
    result = app.test_cli_runner().invoke(args=["audit", "export", "--to", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_text(encoding="utf-8").strip()  # the records were written
    assert os.stat(target).st_mode & 0o777 == 0o600, oct(os.stat(target).st_mode & 0o777)


def test_the_stale_page_s_refusal_names_the_card_and_a_fresh_page_still_discards(
        app, login_as, db, clock):
    """The refusal is said on the screen by application ID; the candidates still valid
    are discarded from a page opened again (the screen's reason and hold rules stand)."""
    from app.models.card import Card
    from app.services import cards as svc
    from app.services import unit
    from tests.conftest import text_of
    from tests.factories import make_card, make_storage

    make_storage(db)
    made = []
    for _ in range(2):
        card = make_card(db, state=svc.NOTICE_SENT)
        card.notice_sent_at = clock() - timedelta(days=400)
        made.append(card)
    db.commit()
    ids = [c.id for c in made]
    client = login_as("manager")
    client.post("/discard/refresh")
    with app.test_request_context(), unit.transaction(db):
        svc.transition_card(db, db.get(Card, ids[0]), svc.RENOTIFIED, actor=svc.SYSTEM)
    page = text_of(client.post("/discard/execute", data={"ids": ids, "reason": "期限経過"},
                               follow_redirects=True))
    assert "廃棄候補ではなくなりました" in page and made[0].application_id in page
    db.expire_all()
    assert db.get(Card, ids[1]).state == svc.NOTICE_SENT  # all or nothing
    client.post("/discard/execute", data={"ids": [ids[1]], "reason": "期限経過"})
    db.expire_all()
    assert db.get(Card, ids[1]).state == svc.DISCARDED


def test_a_reminders_period_caught_up_on_the_visit_day_skips_visits_already_begun(
        app, db, clock, smtp):
    """Caught up at 11:00 on the visit day: a 10:30 visit is not reminded after the fact."""
    settings.configure(app, WORKER_BACKUPS=False, REMINDER_HOUR=17)
    clock.set(_at(DAY, 16))
    audit.act_as(audit.SYSTEM)
    jobs.run_due(db, "test:1", ["reminders"])
    clock.set(_at(DAY, 16, 30))
    booking = make_staff_booking(app, db, day=DAY + timedelta(days=1))  # 12-02 10:30
    booking.email = "okure@example.jp"
    db.commit()
    clock.set(_at(DAY + timedelta(days=1), 11))
    (outcome,) = jobs.run_due(db, "test:1", ["reminders"])
    assert outcome.period == "2026-12-01"
    db.expire_all()
    assert db.get(Reservation, booking.id).reminded_at is None
    assert not db.execute(select(OutboxMail).where(
        OutboxMail.to_address == "okure@example.jp")).scalars().all()


def test_a_database_error_never_carries_the_values_bound_to_its_statement(app, db):
    """Every engine hides bound values from its errors (config.py hide_parameters): a
    traceback in the log or a job's error names the statement, not the resident."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    with pytest.raises(DBAPIError) as raised:
        db.execute(text("SELECT no_such_column FROM card WHERE name = :name"),
                   {"name": "山田太郎"})
    db.rollback()
    assert "山田太郎" not in str(raised.value)
    assert "hidden" in str(raised.value)


def test_forwarded_allow_ips_takes_networks_and_refuses_junk_at_start(make_app):
    from app.proxies import TrustedProxyFix, parse_trusted

    fix = TrustedProxyFix(lambda e, s: None, 1, parse_trusted("10.0.0.10, 10.0.0.12"))
    assert fix.trusts("10.0.0.10") and fix.trusts("10.0.0.12") and fix.trusts("::ffff:10.0.0.10")
    assert not fix.trusts("10.0.0.11") and not fix.trusts("garbage")
    assert fix.trusts("")  # a Unix socket: the local nginx
    assert TrustedProxyFix(None, 1, parse_trusted("*")).trusts("192.0.2.1")
    with pytest.raises(ValueError, match="FORWARDED_ALLOW_IPS"):
        make_app(PROXY_FIX_HOPS=1, FORWARDED_ALLOW_IPS="10.0.0.10,nginx.local")
