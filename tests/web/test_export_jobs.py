"""Background exports of the extraction screen (issue 14 §2: a large export never holds a
web worker): XLSX and large CSV run as jobs, the page shows the progress, the owner alone
downloads the file, old files are purged, a job whose process died is shown as failed and
never offered as a file, every step is audited with the person's name."""
import csv
import io
import json
import os
import time
from datetime import timedelta

import openpyxl
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from app import settings
from app.models.audit import AuditLog
from app.models.extraction import ExportJob
from app.models.stored_file import StoredFile
from app.services import extraction
from app.services.actors import CardActor
from app.services.errors import NotPermittedError
from tests.conftest import login, text_of
from tests.factories import make_card, make_storage

FORM = {"subject": "cards", "col": ["application_id", "name", "postal_code"],
        "pos_application_id": "1", "pos_name": "2", "pos_postal_code": "3"}
CLERK = CardActor("clerk_kato", frozenset({"窓口職員"}))


@pytest.fixture
def ledger(db):
    make_storage(db)
    return [make_card(db, application_id=f"{n:023d}", name=f"山田　{n}郎",
                      postal_code="012-3456") for n in (1, 2, 3)]


def audits(db, action):
    return [r for r in db.query(AuditLog).filter(AuditLog.action == action)
            .order_by(AuditLog.id)]


def stored(db):
    """Tokens of the extraction files in the shared store."""
    db.expire_all()
    return sorted(db.execute(select(StoredFile.token).where(
        StoredFile.kind == "extraction")).scalars())


def scratch(app):
    """This server's scratch files (a file being written)."""
    return os.listdir(os.path.join(app.instance_path, "exports"))


def job_of(db, location):
    db.expire_all()
    return db.query(ExportJob).filter_by(token=location.rsplit("/", 1)[1]).one()


def test_an_xlsx_job_runs_to_done_and_reads_back(login_as, db, ledger, app):
    client = login_as("clerk", username="clerk_kato")
    started = client.post("/extraction/export/xlsx", data=FORM)
    assert started.status_code == 302
    page_url = started.headers["Location"]
    job = job_of(db, page_url)
    assert (job.state, job.owner, job.rows_total, job.rows_written) == ("done", "clerk_kato",
                                                                        3, 3)
    assert stored(db) == [job.token] and job.file_name == job.token
    assert scratch(app) == []  # no temporary file left
    status = client.get(page_url + "/status").json
    assert (status["state"], status["percent"], status["rows_written"]) == ("done", 100, 3)
    page = client.get(page_url)
    assert "ダウンロード" in text_of(page) and 'http-equiv="refresh"' not in page.get_data(
        as_text=True)
    response = client.post(page_url + "/download")
    assert response.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(response.get_data())).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows == [("申請書ID", "氏名", "郵便番号"),
                    ("00000000000000000000001", "山田　1郎", "012-3456"),
                    ("00000000000000000000002", "山田　2郎", "012-3456"),
                    ("00000000000000000000003", "山田　3郎", "012-3456")]
    assert all(isinstance(r[0], str) for r in rows)
    (export,) = audits(db, "export")
    detail = json.loads(export.changes)
    assert export.username == "clerk_kato" and export.target_table == "card"
    assert (detail["format"], detail["rows"], detail["replaced"], detail["job"]) == (
        "xlsx", 3, 0, job.id)
    assert detail["columns"] == ["application_id", "name", "postal_code"]
    (download,) = audits(db, "download")
    assert download.username == "clerk_kato"
    assert json.loads(download.changes)["job"] == job.id
    assert job_of(db, page_url).downloaded_at is not None
    # the screen lists the person's exports
    assert job.download_name in text_of(client.get("/extraction/"))


def test_the_progress_moves_and_is_written_with_compare_and_set(login_as, db, ledger,
                                                                 monkeypatch):
    monkeypatch.setattr(extraction, "CHUNK_ROWS", 1)
    monkeypatch.setattr(extraction, "PROGRESS_ROWS", 1)
    seen = []
    real = extraction._set

    def spy(session, job_id, from_states, **values):
        if "rows_written" in values:
            seen.append(values["rows_written"])
        return real(session, job_id, from_states, **values)
    monkeypatch.setattr(extraction, "_set", spy)
    client = login_as("clerk")
    started = client.post("/extraction/export/xlsx", data=FORM)
    assert job_of(db, started.headers["Location"]).state == "done"
    assert seen == [1, 2, 3]
    # a job half way: the JSON the page polls
    job = job_of(db, started.headers["Location"])
    job.state, job.rows_total, job.rows_written, job.file_name = "running", 200, 50, None
    job.finished_at = None
    db.commit()
    status = client.get(started.headers["Location"] + "/status").json
    assert (status["state"], status["percent"], status["rows_written"], status["rows_total"],
            status["finished"]) == ("running", 25, 50, 200, False)
    page = client.get(started.headers["Location"]).get_data(as_text=True)
    assert 'http-equiv="refresh"' in page and 'value="25"' in page  # works without a script
    assert client.post(started.headers["Location"] + "/download").status_code == 302


def test_a_job_marked_failed_meanwhile_stops_and_leaves_no_file(db, ledger, app, monkeypatch):
    monkeypatch.setattr(extraction, "CHUNK_ROWS", 1)
    monkeypatch.setattr(extraction, "PROGRESS_ROWS", 1)
    with app.test_request_context():
        job = extraction.start_job(db, FORM | {"columns": FORM["col"]}, actor=CLERK)
        real = extraction._set

        def expire_first(session, job_id, from_states, **values):
            if "rows_written" in values:  # the purge marked it failed meanwhile
                real(session, job_id, ("running",), state="failed")
            return real(session, job_id, from_states, **values)
        monkeypatch.setattr(extraction, "_set", expire_first)
        extraction.launch(app, job)
    db.expire_all()
    assert db.get(ExportJob, job.id).state == "failed"
    assert scratch(app) == [] and stored(db) == []
    assert audits(db, "export") == []


def test_only_the_owner_sees_and_downloads_a_job(login_as, db, ledger, app, users):
    owner = login_as("manager", username="boss")
    url = owner.post("/extraction/export/xlsx", data=FORM).headers["Location"]
    other = app.test_client()
    user = users.create("manager", username="other_boss")
    login(other, user.username, users.password)
    assert other.get(url).status_code == 404
    assert other.get(url + "/status").status_code == 404
    assert other.post(url + "/download").status_code == 404
    assert audits(db, "download") == []
    assert owner.post(url + "/download").status_code == 200


def test_a_viewer_never_starts_or_reads_a_job(login_as, db, ledger, app):
    with app.test_request_context():
        token = extraction.start_job(db, {"subject": "cards"}, actor=CLERK).token
    client = login_as("viewer", username="clerk_kato")  # even under the owner's name
    for method, url in (("GET", f"/extraction/jobs/{token}"),
                        ("GET", f"/extraction/jobs/{token}/status"),
                        ("POST", f"/extraction/jobs/{token}/download")):
        response = client.open(url, method=method)
        assert response.status_code == 403 or "/login" in response.headers.get("Location", "")
    db.execute(ExportJob.__table__.delete())
    db.commit()
    assert client.post("/extraction/export/xlsx", data=FORM).status_code == 403
    settings.configure(app, EXPORT_JOB_MIN_ROWS=1)
    assert client.post("/extraction/export/csv", data=FORM).status_code == 403
    assert db.query(ExportJob).count() == 0
    viewer = CardActor("viewer", frozenset({"閲覧者"}))
    with app.test_request_context(), pytest.raises(NotPermittedError):
        extraction.start_job(db, {"subject": "cards"}, actor=viewer)
    assert db.query(ExportJob).count() == 0 and audits(db, "export") == []


def test_a_large_csv_becomes_a_job_small_ones_stream(login_as, db, ledger, app):
    client = login_as("clerk")
    direct = client.post("/extraction/export/csv", data={**FORM, "encoding": "utf-8-sig"})
    assert direct.status_code == 200 and direct.mimetype == "text/csv"
    settings.configure(app, EXPORT_JOB_MIN_ROWS=2)  # 3 rows: more than the threshold
    started = client.post("/extraction/export/csv", data={**FORM, "encoding": "utf-8-sig"})
    assert started.status_code == 302
    body = client.post(started.headers["Location"] + "/download").get_data()
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body[3:].decode(), newline="")))
    assert rows[0] == ["申請書ID", "氏名", "郵便番号"] and len(rows) == 4
    assert rows[3] == ["00000000000000000000003", "山田　3郎", "012-3456"]


def test_a_cp932_job_stops_or_replaces(login_as, db, ledger, app):
    make_card(db, application_id="00000000000000000000009", name="𠮷田　花子")
    settings.configure(app, EXPORT_JOB_MIN_ROWS=1)
    client = login_as("clerk")
    stopped = client.post("/extraction/export/csv", data={**FORM, "encoding": "cp932",
                                                         "on_unmappable": "stop"})
    job = job_of(db, stopped.headers["Location"])
    assert job.state == "failed" and job.file_name is None
    page = text_of(client.get(stopped.headers["Location"]))
    assert "00000000000000000000009" in page and "𠮷" in page
    assert audits(db, "export") == []  # nothing was made
    assert scratch(app) == [] and stored(db) == []
    replaced = client.post("/extraction/export/csv", data={
        **FORM, "encoding": "cp932", "on_unmappable": "replace", "replacement": "〓"})
    job = job_of(db, replaced.headers["Location"])
    assert (job.state, job.replaced) == ("done", 1)
    body = client.post(replaced.headers["Location"] + "/download").get_data()
    assert "〓田　花子" in body.decode("cp932")
    (export,) = audits(db, "export")
    assert json.loads(export.changes)["replaced"] == 1


def test_files_are_purged_after_the_keeping_time(login_as, db, ledger, app, clock):
    client = login_as("clerk")
    url = client.post("/extraction/export/xlsx", data=FORM).headers["Location"]
    job = job_of(db, url)
    assert stored(db) == [job.token]
    # made 61 minutes ago (the keeping time is 60; the clock stays, or the sign-in lapses)
    db.execute(ExportJob.__table__.update().values(
        finished_at=clock() - timedelta(minutes=61)))
    db.commit()
    assert client.get(url + "/status").json["state"] == "expired"  # read: nothing written
    assert client.post(url + "/download").status_code == 302
    assert audits(db, "download") == []
    result = CliRunner().invoke(app.cli, ["extraction", "purge-exports"],
                                catch_exceptions=False)
    assert "expired: 1, failed: 0, files removed: 1" in result.output
    assert stored(db) == [] and job_of(db, url).state == "expired"


def test_a_job_whose_process_died_is_failed_never_a_file(db, ledger, app, clock, login_as):
    client = login_as("clerk", username="clerk_kato")
    with app.test_request_context():
        job = extraction.start_job(db, {"subject": "cards"}, actor=CLERK)  # never launched
    folder = os.path.join(app.instance_path, "exports")
    half = os.path.join(folder, f"{job.token}.xlsx.part")
    with open(half, "wb") as out:
        out.write(b"PK half a file")
    db.execute(ExportJob.__table__.update().values(state="running"))
    db.commit()
    url = f"/extraction/jobs/{job.token}"
    assert client.get(url + "/status").json["state"] == "running"
    clock.advance(minutes=6)
    status = client.get(url + "/status").json
    assert status["state"] == "failed" and status["finished"] and "止まりました" in status["error"]
    assert client.post(url + "/download").status_code == 302
    # the next start purges it
    with app.test_request_context():
        extraction.start_job(db, {"subject": "cards"}, actor=CLERK, now=clock())
    db.expire_all()
    assert db.get(ExportJob, job.id).state == "failed"
    assert not os.path.exists(half)


@pytest.mark.own_app
def test_a_job_in_a_real_thread(app, db, ledger, users):
    settings.configure(app, EXPORT_JOBS_INLINE=False)
    client = app.test_client()
    user = users.create("clerk", username="clerk_thread")
    login(client, user.username, users.password)
    started = client.post("/extraction/export/xlsx", data=FORM)
    assert started.status_code == 302
    url = started.headers["Location"]
    deadline = time.monotonic() + 30
    states = []
    while time.monotonic() < deadline:
        status = client.get(url + "/status").json
        states.append(status["state"])
        if status["finished"]:
            break
        time.sleep(0.05)
    assert states[-1] == "done", states
    body = client.post(url + "/download").get_data()
    rows = list(openpyxl.load_workbook(io.BytesIO(body)).active.iter_rows(values_only=True))
    assert len(rows) == 4 and rows[1][0] == "00000000000000000000001"
    (export,) = audits(db, "export")
    assert export.username == "clerk_thread"
    assert timedelta(0) <= job_of(db, url).finished_at - job_of(db, url).created_at


# --- any app server, and the worker (issue 16 §1, §3) -----------------------------------------

def second_server(app, make_app, tmp_path):
    """Another app server on the same database, with an instance folder of its own (the
    keys given as in production, through the environment)."""
    other = make_app(INSTANCE_DIR=str(tmp_path / "server_b"),
                     SECRET_KEY=app.config["SECRET_KEY"],
                     AUDIT_HMAC_KEY=app.config["AUDIT_HMAC_KEY"])
    assert other.instance_path != app.instance_path
    return other


def test_a_job_started_on_one_server_downloads_on_another(app, make_app, db, ledger, users,
                                                          tmp_path):
    other = second_server(app, make_app, tmp_path)
    user = users.create("clerk", username="clerk_two")
    server_a, server_b = app.test_client(), other.test_client()
    login(server_a, user.username, users.password)
    login(server_b, user.username, users.password)
    url = server_a.post("/extraction/export/xlsx", data=FORM).headers["Location"]
    assert server_b.get(url + "/status").json["state"] == "done"
    response = server_b.post(url + "/download")
    assert response.status_code == 200
    rows = list(openpyxl.load_workbook(io.BytesIO(response.get_data())).active
                .iter_rows(values_only=True))
    assert len(rows) == 4 and rows[3][1] == "山田　3郎"
    assert not os.path.exists(os.path.join(other.instance_path, "exports")) or \
        scratch(other) == []
    (download,) = audits(db, "download")
    assert download.username == "clerk_two"


def test_the_worker_makes_a_queued_job(app, db, ledger, login_as):
    from app.models.job import JobRun
    from app.services import jobs

    client = login_as("clerk", username="clerk_kato")
    with app.test_request_context():
        job = extraction.start_job(db, FORM | {"columns": FORM["col"]}, actor=CLERK)
    db.commit()  # queued, never launched (the web thread died before it started)
    outcomes = jobs.run_due(db, "worker-1", only=["exports"])
    assert [(o.job, o.state) for o in outcomes] == [("exports", "succeeded")]
    assert "1" in outcomes[0].text
    db.expire_all()
    done = db.get(ExportJob, job.id)
    assert (done.state, done.rows_written, done.attempts) == ("done", 3, 1)
    assert stored(db) == [job.token]
    (export,) = audits(db, "export")
    assert export.username == "clerk_kato"  # the owner, not the worker
    body = client.post(f"/extraction/jobs/{job.token}/download").get_data()
    rows = list(openpyxl.load_workbook(io.BytesIO(body)).active.iter_rows(values_only=True))
    assert len(rows) == 4
    # a second loop finds nothing to do (quiet), and the job is made once
    assert jobs.run_due(db, "worker-2", only=["exports"])[0].quiet
    assert len(audits(db, "export")) == 1
    assert db.query(JobRun).filter_by(job="exports").count() == 1


def test_a_stalled_job_is_taken_over_once(app, db, ledger, clock):
    from app.services import jobs

    with app.test_request_context():
        job = extraction.start_job(db, FORM | {"columns": FORM["col"]}, actor=CLERK,
                                   now=clock())
        second = extraction.start_job(db, FORM | {"columns": FORM["col"]}, actor=CLERK,
                                      now=clock())
    # the first's runner stopped after it claimed it; the second's after its take-over
    db.execute(ExportJob.__table__.update().where(ExportJob.id == job.id).values(
        state="running", attempts=1, rows_written=2))
    db.execute(ExportJob.__table__.update().where(ExportJob.id == second.id).values(
        state="running", attempts=2))
    db.commit()
    assert jobs.run_due(db, "w", only=["exports"])[0].quiet  # one minute: still its own
    clock.advance(minutes=3)
    (outcome,) = jobs.run_due(db, "w", only=["exports"])
    db.expire_all()
    taken, stopped = db.get(ExportJob, job.id), db.get(ExportJob, second.id)
    assert (taken.state, taken.attempts, taken.rows_written) == ("done", 2, 3)
    assert stopped.state == "failed" and "止まりました" in stopped.error
    assert stored(db) == [job.token]
    assert len(audits(db, "export")) == 1


def test_a_runner_whose_job_was_taken_over_cannot_finish_it(app, db, ledger, clock,
                                                              monkeypatch):
    monkeypatch.setattr(extraction, "CHUNK_ROWS", 1)
    monkeypatch.setattr(extraction, "PROGRESS_ROWS", 1)
    with app.test_request_context():
        job = extraction.start_job(db, FORM | {"columns": FORM["col"]}, actor=CLERK)
        real = extraction._set

        def taken_over(session, job_id, from_states, attempt=None, **values):
            if "rows_written" in values and attempt == 1:  # meanwhile another runner took it
                db.execute(ExportJob.__table__.update().values(attempts=2))
                db.commit()
            return real(session, job_id, from_states, attempt=attempt, **values)
        monkeypatch.setattr(extraction, "_set", taken_over)
        extraction.launch(app, job)
    db.expire_all()
    left = db.get(ExportJob, job.id)
    assert (left.state, left.attempts) == ("running", 2)  # the new runner's, untouched
    assert stored(db) == [] and scratch(app) == [] and audits(db, "export") == []
