"""The worker's jobs (issue 16 §3): each job once per period even with two workers, each
mail once, a killed worker leaves nothing half-done and its period is taken again, a
missed period catches up once, a failed run is retried a bounded number of times."""
from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import threading
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from app import settings
from app.clock import JST
from app.extensions import session as app_session
from app.models.audit import AuditLog
from app.models.job import CONTINUOUS, FAILED, RUNNING, SKIPPED, SUCCEEDED, JobRun
from app.models.outbox import QUEUED, SENT, OutboxMail
from app.models.reservation import BOOKED, NO_SHOW, Reservation, Slot
from app.services import audit, calendar, jobs
from tests.factories import make_offer, make_staff_booking
from tests.smtp import smtp  # noqa: F401 (fixture)

DAY = date(2026, 12, 1)  # a Tuesday (tests/conftest.py DEFAULT_NOW is 10:00 on it)


def at(hour, minute=0, day=DAY):
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=JST)


def runs(db, job=None):
    db.expire_all()
    query = select(JobRun).order_by(JobRun.job, JobRun.period)
    if job:
        query = query.where(JobRun.job == job)
    return db.execute(query).scalars().all()


def run(db, only=(), worker="test:1"):
    audit.act_as(audit.SYSTEM)
    return jobs.run_due(db, worker, only)


@pytest.fixture
def counted(monkeypatch):
    """Count each job's executions (the real work still runs)."""
    calls = {name: 0 for name in jobs.JOBS}
    lock = threading.Lock()
    for name, job in list(jobs.JOBS.items()):
        def counting(session, now, _real=job.run, _name=name):
            with lock:
                calls[_name] += 1
            return _real(session, now)
        monkeypatch.setitem(jobs.JOBS, name, dataclasses.replace(job, run=counting))
    return calls


# --- schedules ------------------------------------------------------------------------------

def test_a_period_is_the_most_recent_due_time(app, db):
    settings.configure(app, REMINDER_HOUR=17)
    reminders, close, slots = jobs.JOBS["reminders"], jobs.JOBS["close_day"], jobs.JOBS["slots"]
    assert reminders.period(at(16, 59)) == "2026-11-30"
    assert reminders.period(at(17, 0)) == "2026-12-01"
    assert reminders.next_due(at(16, 59)) == at(17)
    assert slots.period(at(0, 5)) == "2026-11-30" and slots.period(at(0, 10)) == "2026-12-01"
    assert close.period(at(18, 59)) == "2026-12-01T18"
    assert close.next_due(at(18, 59)) == at(19)
    assert jobs.JOBS["outbox"].period(at(9)) == CONTINUOUS


@pytest.mark.parametrize("key,value", [("REMINDER_HOUR", 24), ("BACKUP_HOUR", -1),
                                       ("WORKER_INTERVAL_SECONDS", 0)])
def test_hours_and_the_interval_are_checked(app, key, value):
    with pytest.raises(ValueError, match=key):
        settings.build({**app.config, key: value})


# --- catch-up -------------------------------------------------------------------------------

def test_a_missed_job_catches_up_once_and_the_next_period_runs_again(app, db, clock, counted):
    settings.configure(app, WORKER_BACKUPS=False)
    clock.set(at(10))
    run(db, only=["slots"])
    run(db, only=["slots"])
    assert counted["slots"] == 1
    clock.set(at(10, day=DAY + timedelta(days=4)))  # no worker ran for three days
    run(db, only=["slots"])
    run(db, only=["slots"])
    assert counted["slots"] == 2  # once, not once per missed day
    assert [(r.period, r.state) for r in runs(db, "slots")] == [
        ("2026-12-01", SUCCEEDED), ("2026-12-05", SUCCEEDED)]
    clock.set(at(0, 9, day=DAY + timedelta(days=5)))
    run(db, only=["slots"])
    assert counted["slots"] == 2  # 00:09: still the period of the day before
    clock.set(at(0, 10, day=DAY + timedelta(days=5)))
    run(db, only=["slots"])
    assert counted["slots"] == 3
    assert runs(db, "slots")[-1].period == "2026-12-06"


def test_close_day_closes_a_past_day_nobody_closed(app, db, clock):
    booked = make_staff_booking(app, db, day=DAY)  # 10:30, nobody came and no one closed
    clock.set(at(9, day=DAY + timedelta(days=1)))  # the next morning: the worker starts
    (outcome,) = run(db, only=["close_day"])
    assert outcome.state == SUCCEEDED and outcome.period == "2026-12-02T09"
    db.expire_all()
    assert db.get(Reservation, booked.id).state == NO_SHOW
    no_show = [r for r in db.execute(select(AuditLog).where(
        AuditLog.target_table == "reservation", AuditLog.target_id == str(booked.id)))
        .scalars() if "no_show" in (r.changes or "")]
    assert [r.username for r in no_show] == ["system"]


def test_close_day_waits_for_the_venue_s_last_slot(app, db, clock):
    booked = make_staff_booking(app, db, day=DAY)
    clock.set(at(17, 2))  # the last slot ended at 17:00, the grace is 5 minutes
    run(db, only=["close_day"])
    db.expire_all()
    assert db.get(Reservation, booked.id).state == BOOKED
    clock.set(at(18, 0))
    run(db, only=["close_day"])
    db.expire_all()
    assert db.get(Reservation, booked.id).state == NO_SHOW


# --- failure, retry, killed worker ----------------------------------------------------------

def test_a_failing_job_rolls_back_is_recorded_and_retried_a_bounded_number_of_times(
        app, db, clock, monkeypatch):
    offer = make_offer(db)
    db.execute(Slot.__table__.delete().where(Slot.offer_id == offer.id))
    db.commit()
    real = calendar.make_missing_slots

    def half_done(*args, **kwargs):
        real(*args, **kwargs)  # the slots are written inside the job's unit ...
        raise RuntimeError("disk full")  # ... and then the job fails

    monkeypatch.setattr(calendar, "make_missing_slots", half_done)
    clock.set(at(10))
    (outcome,) = run(db, only=["slots"])
    assert outcome.state == FAILED
    (row,) = runs(db, "slots")
    assert (row.state, row.attempts, row.error) == (FAILED, 1, "RuntimeError: disk full")
    assert db.execute(select(func.count()).select_from(Slot)).scalar() == 0  # rolled back
    assert run(db, only=["slots"]) == []  # not again at once
    for attempt in (2, 3):
        clock.advance(minutes=11)
        (outcome,) = run(db, only=["slots"])
        assert (outcome.state, outcome.attempt) == (FAILED, attempt)
    clock.advance(minutes=11)
    assert run(db, only=["slots"]) == []  # MAX_ATTEMPTS reached: the next period
    monkeypatch.setattr(calendar, "make_missing_slots", real)
    clock.set(at(0, 10, day=DAY + timedelta(days=1)))
    (outcome,) = run(db, only=["slots"])
    assert outcome.state == SUCCEEDED
    assert db.execute(select(func.count()).select_from(Slot)).scalar() > 0


WORKER_SCRIPT = textwrap.dedent("""
    import os, time
    from datetime import datetime
    from app import create_app
    from app.cli import worker_command
    from app.services import booking

    app = create_app()
    now = datetime.fromisoformat(os.environ["WORKER_TEST_NOW"])
    app.config["CLOCK"] = lambda: now
    real = booking.release_cards

    def blocking(*args, **kwargs):  # inside close_day's unit, after the no-show update
        real(*args, **kwargs)
        print("INSIDE THE UNIT", flush=True)
        time.sleep(float(os.environ.get("WORKER_TEST_SLEEP", "300")))

    booking.release_cards = blocking
    with app.app_context():
        worker_command.main(os.environ.get("WORKER_TEST_ARGS", "--once").split()
                            + ["--only", "close_day"], standalone_mode=True)
""")


def start_worker(tmp_path, database_url, instance_dir, **env):
    script = tmp_path / "blocking_worker.py"
    script.write_text(WORKER_SCRIPT, encoding="utf-8")
    env = {**os.environ, "DATABASE_URL": database_url, "INSTANCE_DIR": instance_dir,
           "WORKER_TEST_NOW": at(18).isoformat(), "SLOTS_AHEAD_DAYS": "120",
           "PYTHONPATH": os.getcwd(), **env}
    return subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_inside(worker) -> list[str]:
    lines = []
    for line in worker.stdout:
        lines.append(line)
        if "INSIDE THE UNIT" in line:
            return lines
    raise AssertionError((lines, worker.stderr.read()))


def test_a_worker_killed_inside_a_job_leaves_nothing_half_done_and_the_period_is_retaken(
        app, db, clock, database_url, instance_dir, tmp_path):
    booked = make_staff_booking(app, db, day=DAY)
    clock.set(at(18))
    worker = start_worker(tmp_path, database_url, instance_dir)
    try:
        wait_inside(worker)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    (row,) = runs(db, "close_day")
    assert (row.state, row.attempts, row.period) == (RUNNING, 1, "2026-12-01T18")
    assert row.worker.endswith(f":{worker.pid}")
    db.expire_all()
    assert db.get(Reservation, booked.id).state == BOOKED  # the unit was rolled back
    assert not [r for r in db.execute(select(AuditLog).where(
        AuditLog.target_table == "reservation")).scalars() if "no_show" in (r.changes or "")]
    assert run(db, only=["close_day"], worker="test:2") == []  # its lease still holds
    clock.advance(minutes=31)  # the lease (30 minutes) ran out: another worker takes over
    (outcome,) = run(db, only=["close_day"], worker="test:2")
    assert (outcome.state, outcome.attempt, outcome.period) == (SUCCEEDED, 2, "2026-12-01T18")
    db.expire_all()
    assert db.get(Reservation, booked.id).state == NO_SHOW
    assert runs(db, "close_day")[0].worker == "test:2"


# --- two workers at once ----------------------------------------------------------------------

def test_two_workers_at_once_run_each_job_once_and_send_each_mail_once(
        app, db, clock, smtp, counted, monkeypatch):
    settings.configure(app, WORKER_BACKUPS=False, REMINDER_HOUR=17)
    tomorrow = make_staff_booking(app, db, day=DAY + timedelta(days=1))
    tomorrow.email = "ashita@example.jp"
    db.commit()
    now = at(18)
    clock.set(now)
    for index in range(10):
        db.add(OutboxMail(kind="booked", to_address=f"r{index}@example.jp", locale="ja",
                          subject=f"件名 {index}", body="本文", created_at=now, state=QUEUED,
                          attempts=0, next_attempt_at=now))
    db.commit()
    barrier = threading.Barrier(2)
    real_insert = jobs._insert_run

    def together(session, values):  # both workers claim each job at the same moment
        barrier.wait(timeout=60)
        return real_insert(session, values)

    monkeypatch.setattr(jobs, "_insert_run", together)
    outcomes, errors = [], []

    def worker(name):
        try:
            with app.app_context():
                audit.act_as(audit.SYSTEM)
                for _loop in range(2):  # the second loop sends the reminder queued in the first
                    outcomes.extend(jobs.run_due(app_session(), name))
        except Exception as error:  # noqa: BLE001 - reported by the assertion
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(f"host:{n}",)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert errors == []
    scheduled = [name for name, job in jobs.JOBS.items() if job.kind != "continuous"]
    assert {name: counted[name] for name in scheduled} == {name: 1 for name in scheduled}
    rows = runs(db)
    assert sorted(r.job for r in rows) == sorted(jobs.JOBS)  # one row per job and period
    assert {r.job: r.state for r in rows}["backup"] == SKIPPED
    assert all(r.attempts == 1 for r in rows)
    subjects = sorted(m["Subject"] for m in smtp.messages)
    assert [s for s in subjects if s.startswith("件名")] == sorted(f"件名 {i}" for i in range(10))
    assert len(smtp.to("ashita@example.jp")) == 1  # the reminder, once
    db.expire_all()
    assert {m.state for m in db.execute(select(OutboxMail)).scalars()} == {SENT}


def test_the_worker_command_runs_what_is_due_once_and_logs_a_line_per_job(app, db, clock):
    settings.configure(app, WORKER_BACKUPS=False)
    clock.set(at(10))
    runner = app.test_cli_runner()
    first = runner.invoke(args=["worker", "--once"])
    assert first.exit_code == 0, first.output
    assert "slots 2026-12-01 succeeded: " in first.output
    assert "backup 2026-12-01 skipped" in first.output and "WORKER_BACKUPS" in first.output
    again = runner.invoke(args=["worker", "--once"])
    assert again.exit_code == 0 and "slots" not in again.output
    assert runner.invoke(args=["worker", "--once", "--only", "nope"]).exit_code == 2


def test_the_backup_job_creates_verifies_and_prunes(app, db, clock, tmp_path):
    settings.configure(app, WORKER_BACKUPS=True, BACKUP_DIR=str(tmp_path), BACKUP_HOUR=2)
    clock.set(at(2, 30))
    (outcome,) = run(db, only=["backup"])
    assert outcome.state == SUCCEEDED, outcome.text
    from app.services import backups

    (made,) = backups.list_backups(str(tmp_path))
    assert made.verified and made.name in outcome.text
    assert run(db, only=["backup"]) == []  # once a day


def test_the_close_day_command_also_closes_a_day_left_open(app, db, clock):
    booked = make_staff_booking(app, db, day=DAY)
    clock.set(at(9, day=DAY + timedelta(days=1)))
    result = app.test_cli_runner().invoke(args=["reservations", "close-day"])
    assert result.exit_code == 0 and "2026-12-01: 1 no-show(s)" in result.output, result.output
    db.expire_all()
    assert db.get(Reservation, booked.id).state == NO_SHOW


def test_sigterm_stops_the_worker_after_the_current_job(app, db, clock, database_url,
                                                        instance_dir, tmp_path):
    booked = make_staff_booking(app, db, day=DAY)
    worker = start_worker(tmp_path, database_url, instance_dir, WORKER_TEST_ARGS="",
                          WORKER_TEST_SLEEP="2")  # a long-running worker, not --once
    try:
        wait_inside(worker)
        os.kill(worker.pid, signal.SIGTERM)  # systemctl stop, in the middle of the job
        out, err = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert worker.returncode == 0, err
    assert "close_day 2026-12-01T18 succeeded" in out and "stopped" in out
    (row,) = runs(db, "close_day")
    assert row.state == SUCCEEDED  # the job ended, then the worker
    db.expire_all()
    assert db.get(Reservation, booked.id).state == NO_SHOW


def test_housekeeping_removes_the_files_nobody_came_back_for(app, db, clock):
    """An abandoned ledger-import upload and an encrypted export never downloaded are
    removed by the hourly job; a fresh one is kept."""
    from datetime import timedelta

    from app.models.ledger_import import LedgerImportJob
    from app.models.stored_file import StoredFile
    from app.services import export_policy, file_store, ledger_import, unit

    old_day = clock() - timedelta(days=2)
    with unit.transaction(db):
        # a checked import nobody came back for, and an upload whose job is gone
        db.add(LedgerImportJob(token="c" * 32, owner="kanri", state="checked", status="{}",
                               created_at=old_day, heartbeat_at=old_day))
        for which in ("upload", "problems"):
            file_store.put_bytes(db, b"a,b", kind=ledger_import.STORE_KIND,
                                 token=f"{'c' * 32}.{which}", owner="kanri",
                                 filename="x.csv", now=old_day)
        file_store.put_bytes(db, b"a,b", kind=ledger_import.STORE_KIND,
                             token=f"{'d' * 32}.upload", owner="kanri", filename="y.csv",
                             now=old_day)
        file_store.put_bytes(db, b"PK", kind=export_policy.STORE_KIND, token="a" * 32,
                             owner="kanri", filename="a.zip", now=old_day)
        file_store.put_bytes(db, b"PK", kind=export_policy.STORE_KIND, token="b" * 32,
                             owner="kanri", filename="b.zip", now=at(11, 0))
    clock.set(at(11, 5))
    (outcome,) = run(db, only=["housekeeping"])
    assert outcome.state == SUCCEEDED, outcome.text
    db.expire_all()
    assert list(db.execute(select(StoredFile.token)).scalars()) == ["b" * 32]
    assert db.query(LedgerImportJob).count() == 0
    assert run(db, only=["housekeeping"]) == []  # once an hour


def test_a_job_running_past_its_lease_keeps_it_and_is_not_taken_over(app, db, clock,
                                                                     monkeypatch):
    """The lease is renewed while the job works (a third of the lease at a time): a second
    worker that comes after the first lease would have run out finds the period taken."""
    import time as real_time

    settings.configure(app, WORKER_BACKUPS=False)
    start = at(7)
    clock.set(start)
    running = threading.Event()

    def slow(session, now):
        running.set()
        real_time.sleep(2.0)  # longer than the lease below
        return jobs.Done("ok")

    job = dataclasses.replace(jobs.JOBS["discard"], run=slow, lease=timedelta(seconds=0.9))
    monkeypatch.setitem(jobs.JOBS, "discard", job)
    outcomes, errors = [], []

    def first():
        try:
            with app.app_context():
                audit.act_as(audit.SYSTEM)
                outcomes.append(jobs.run_job(app_session(), job, start, "host:1"))
                app_session().remove()
        except Exception as error:  # noqa: BLE001
            errors.append(error)

    thread = threading.Thread(target=first)
    thread.start()
    assert running.wait(timeout=30)
    real_time.sleep(1.4)  # the first lease (0.9 s) has run out; renewed every 0.3 s
    late = start + timedelta(seconds=1.5)
    assert jobs.claim(db, job, late, "host:2") is None  # still kept by host:1
    thread.join(timeout=60)
    assert errors == [] and outcomes[0].state == SUCCEEDED
    (row,) = [r for r in runs(db) if r.job == "discard"]
    assert (row.worker, row.attempts, row.state) == ("host:1", 1, SUCCEEDED)
