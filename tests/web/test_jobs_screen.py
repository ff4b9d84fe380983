"""定期処理 (issue 16 §3): システム管理者 see each job's schedule, last run, result and error,
the next due time, the outbox's counts, and a warning when the worker seems stopped;
others get 403; the page never writes."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from app import settings
from app.clock import JST
from app.models.outbox import FAILED as MAIL_FAILED
from app.models.outbox import QUEUED, OutboxMail
from app.services import audit, calendar, jobs
from tests.conftest import text_of

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=JST)


def queue_mail(db, state, count=1):
    for index in range(count):
        db.add(OutboxMail(kind="booked", to_address=f"r{index}@example.jp", locale="ja",
                          subject="件名", body="本文", created_at=NOW, state=state,
                          attempts=0 if state == QUEUED else 8, next_attempt_at=NOW))
    db.commit()


def test_the_sysadmin_sees_each_job_its_last_run_and_a_failed_job_s_error(
        app, db, login_as, clock, monkeypatch, no_writes):
    settings.configure(app, WORKER_BACKUPS=False)

    def broken(*args, **kwargs):
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(calendar, "materialise_slots", broken)
    audit.act_as(audit.SYSTEM)
    jobs.run_due(db, "app1:4242")
    queue_mail(db, QUEUED, 3)
    queue_mail(db, MAIL_FAILED, 2)
    client = login_as("sysadmin")
    with no_writes("the jobs page"):
        page = client.get("/jobs/")
    assert page.status_code == 200
    text = text_of(page)
    assert "定期処理" in text
    html = page.get_data(as_text=True)
    slots_row = html.split('data-testid="job-slots"')[1].split("</tr>")[0]
    assert "RuntimeError: the disk is full" in slots_row and "app1:4242" in slots_row
    assert "2026-12-01 10:00" in slots_row
    assert "2026-12-02 00:10" in slots_row  # its period has a run: next due tomorrow
    backup_row = html.split('data-testid="job-backup"')[1].split("</tr>")[0]
    assert "WORKER_BACKUPS" in backup_row
    assert "3" in text_of_part(html, "outbox-counts") and "2" in text_of_part(html,
                                                                             "outbox-counts")


def text_of_part(html: str, testid: str) -> str:
    return html.split(f'data-testid="{testid}"')[1].split("</p>")[0]


def test_a_worker_that_stopped_is_warned_about(app, db, login_as, clock):
    settings.configure(app, WORKER_BACKUPS=False)
    audit.act_as(audit.SYSTEM)
    jobs.run_due(db, "app1:1")
    client = login_as("sysadmin")
    assert "ワーカーが動いていない可能性があります" not in text_of(client.get("/jobs/"))
    clock.advance(minutes=6)  # the outbox has not run for six minutes
    assert "ワーカーが動いていない可能性があります" in text_of(client.get("/jobs/"))


def test_a_job_that_never_ran_shows_its_next_due_time_now(app, db, login_as, clock):
    client = login_as("sysadmin")
    html = client.get("/jobs/").get_data(as_text=True)
    slots_row = html.split('data-testid="job-slots"')[1].split("</tr>")[0]
    assert "2026-12-01 00:10" in slots_row  # overdue: the current period has no run
    assert "未実行（ワーカーの次の巡回で実行）" in text_of(client.get("/jobs/"))
    assert 'data-testid="job-overdue"' in slots_row
    assert "ワーカーが動いていない可能性があります" in text_of(client.get("/jobs/"))
    assert (NOW + timedelta(days=1)).strftime("%Y-%m-%d 00:10") not in slots_row


@pytest.mark.parametrize("role", ["manager", "clerk", "viewer"])
def test_other_roles_may_not_see_the_jobs(login_as, role):
    assert login_as(role).get("/jobs/").status_code == 403


def test_a_job_run_in_this_period_shows_its_next_time_not_overdue(app, db, login_as, clock):
    settings.configure(app, WORKER_BACKUPS=False)
    audit.act_as(audit.SYSTEM)
    jobs.run_due(db, "app1:1", only=["slots"])
    html = login_as("sysadmin").get("/jobs/").get_data(as_text=True)
    slots_row = html.split('data-testid="job-slots"')[1].split("</tr>")[0]
    assert 'data-testid="job-overdue"' not in slots_row
    assert (NOW + timedelta(days=1)).strftime("%Y-%m-%d 00:10") in slots_row
