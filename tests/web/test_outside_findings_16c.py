"""Outside review of the issue-16 work (third pass): the shared file store, lease renewal
and log redaction. Each test showed a defect the review found (a strict xfail that
failed); all are fixed and the tests now guard the fixes."""
from __future__ import annotations

import io
import logging
import os
import traceback

import pytest

from app import settings
from app.observability import install_redaction

_DETAIL = ('new row for relation "card" violates check constraint "ck_card_name"\n'
           "DETAIL:  Failing row contains (7, 00000000000000000000001, 山田太郎, "
           "ヤマダタロウ, 緑市中央1-2-3, 1980-03-01).")


def _logger(name: str):
    install_redaction()
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger(f"tests.review16c.{name}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, out


def test_a_log_line_whose_format_mentions_key_or_detail_is_not_lost(monkeypatch):
    """The redacting record factory cuts "Key (x)=(y)" and "DETAIL: ..." out of
    ``record.msg`` — the *format string*, before the arguments are put in. A message such
    as ``log.info("Key (%s)=(%s) changed", "printer", "A4")`` becomes
    "Key (%s)=(...) changed" with two arguments: ``getMessage()`` raises TypeError, the
    handler prints '--- Logging error ---' to stderr and the line is never written.
    Likewise ``log.warning("DETAIL: %s", text)``."""
    monkeypatch.setattr(logging, "raiseExceptions", False)  # as in production
    logger, out = _logger("format")
    logger.info("Key (%s)=(%s) changed", "printer", "A4")
    logger.warning("DETAIL: %s", "the second line of a report")
    written = out.getvalue()
    assert "changed" in written, "the line 'Key (...) changed' was lost"
    assert "DETAIL:" in written, "the line 'DETAIL: ...' was lost"


def test_a_database_detail_passed_as_text_is_cut_too():
    """observability.py says every record gets the DETAIL cut "whatever writes it", but
    only exception *objects* among the arguments are redacted. Code that passes the
    error's text as an argument — ``log.error("import failed: %s", str(error))``, or
    ``"%s", traceback.format_exc()`` — writes the failing row (山田太郎, 緑市中央1-2-3)
    into the log. (An f-string message is cut: it is the format string.)"""
    logger, out = _logger("text_arg")
    logger.error("import failed: %s", str(_DETAIL))
    assert "山田太郎" not in out.getvalue()


def test_a_handler_that_reads_exc_info_gets_no_detail():
    """Only ``record.exc_text`` is redacted; ``record.exc_info`` still holds the exception
    whose text carries the DETAIL line. logging.Formatter uses exc_text, but handlers
    that read exc_info themselves (sentry_sdk's LoggingIntegration / EventHandler, many
    JSON log shippers, ``traceback.format_exception(*record.exc_info)``) send the failing
    row off the machine. Not installed today, but the docstring promises "whatever
    handler ... writes it"."""
    install_redaction()
    seen = []

    class SentryLike(logging.Handler):
        def emit(self, record):
            seen.append("".join(traceback.format_exception(*record.exc_info)))

    logger = logging.getLogger("tests.review16c.exc_info")
    logger.handlers[:] = [SentryLike()]
    logger.propagate = False
    try:
        raise RuntimeError(_DETAIL)
    except RuntimeError:
        logger.exception("job failed")
    assert seen and "山田太郎" not in seen[0]


# --- extraction: the purge removes the scratch file of a job started while it ran -------------

def test_the_purge_never_removes_the_scratch_file_of_a_job_started_meanwhile(
        app, db, monkeypatch):
    """purge_exports (run by every start_job, on any server) reads the tokens of live jobs
    in one transaction, *then* deletes the old stored files (chunks of up to 50 MB: the
    slow part), and only after that lists this server's scratch folder, removing every
    file whose token was not live at the first read. A job another person started on this
    server in between (committed, claimed by its thread, its CSV being written) is not in
    that old set: its scratch file is unlinked under the writer (a CSV job writes into
    the open file, so it goes on into the unlinked inode), whose final
    ``file_store.put(part)`` then fails (FileNotFoundError) and the job ends 'failed' with
    "an error on the server" (an XLSX job survives unless the unlink falls after
    xlsxwriter's close). Two clerks starting exports at nearly the same moment is
    enough. Here the other job is started and claimed at the moment the purge asks for
    its folder (after its transaction)."""
    from sqlalchemy.orm import Session as OrmSession

    from app.models.extraction import ExportJob
    from app.services import extraction
    from app.services.actors import CardActor
    from tests.factories import make_card, make_storage

    make_storage(db)
    make_card(db, application_id="0" * 22 + "1", name="山田　一郎", postal_code="012-3456")
    db.commit()
    form = {"subject": "cards", "columns": ["application_id", "name"]}
    clerk = CardActor("clerk_kato", frozenset({"窓口職員"}))
    real_folder = extraction.exports_folder
    made = {}

    def folder_when_listed():
        path = real_folder()
        if made.get("armed"):
            made["armed"] = False
            other = OrmSession(bind=db.get_bind())
            try:
                job = extraction.start_job(other, form, actor=clerk)
                other.commit()
                other.execute(ExportJob.__table__.update().where(ExportJob.id == job.id)
                              .values(state="running", attempts=1))
                other.commit()
                made["part"] = os.path.join(path, f"{job.token}.csv.part")
            finally:
                other.close()
            with open(made["part"], "wb") as out:
                out.write(b"PK... being written")
        return path

    monkeypatch.setattr(extraction, "exports_folder", folder_when_listed)
    with app.test_request_context():
        made["armed"] = True
        extraction.purge_exports(db)
        db.commit()
    assert os.path.exists(made["part"]), \
        "the scratch file of a running job (started during the purge) was removed"


# --- file store: a file removed mid-download, its id given to the next file (SQLite) -----------

def test_a_download_whose_file_was_removed_never_goes_on_with_another_file(app, db,
                                                                            monkeypatch):
    """file_store.stream reads piece ``seq`` of ``file_id`` on a fresh connection each
    time, and stops with FileGoneError only when that (file_id, seq) is missing. On
    SQLite (the default DATABASE_URL) ``stored_file.id`` is a plain INTEGER PRIMARY KEY:
    when the newest file is removed (the export purge, a ZIP's one download closing, the
    keeping time) the next file put gets *the same id*. A download still reading the
    removed file then carries on with the new file's pieces — another clerk's export, or
    another job's rejected ledger rows — under the first file's name and
    Content-Length: a silently wrong file with someone else's personal data.
    (PostgreSQL's sequence never hands an id out twice; this test is about SQLite.)"""
    from app.services import file_store

    if db.get_bind().dialect.name != "sqlite":
        pytest.skip("SQLite only: PostgreSQL never reuses an id")
    monkeypatch.setattr(file_store, "CHUNK_SIZE", 4)
    first = file_store.put_bytes(db, b"AAAAaaaa", kind="extraction", token="tok-first-1",
                                 owner="clerk_kato", filename="kato.csv")
    db.commit()
    pieces = file_store.stream(first)
    assert next(pieces) == b"AAAA"
    file_store.delete_token(db, "tok-first-1", "extraction")  # purged meanwhile
    db.commit()
    other = file_store.put_bytes(db, b"BBBBbbbb", kind="extraction", token="tok-other-2",
                                 owner="clerk_sato", filename="sato.csv")
    db.commit()
    assert other.id == first.id  # SQLite: the removed file's id comes back
    with pytest.raises(file_store.FileGoneError):
        rest = next(pieces)
        raise AssertionError(f"the download went on with another file's piece {rest!r}")


# --- extraction: a live runner silent for two minutes is taken over ------------------------

def test_a_live_export_runner_slow_to_its_first_rows_is_not_taken_over(app, db, clock,
                                                                         monkeypatch):
    """jobs.py now renews a worker job's lease from a thread while it runs (39f73b6);
    export jobs did not get the same: ExportJob.heartbeat_at moves only when
    ``progress()`` is called, i.e. after a chunk of rows was written. A query that needs
    more than TAKE_OVER_AFTER (2 minutes) to give its first rows on a large ledger, or
    XlsxWriter's close of a big workbook, leaves a live runner silent; the worker's
    'exports' job (every loop) requeues it and runs it again — the same heavy query twice
    at once — and the first runner's finished file is thrown away (JobCancelled). When the
    second attempt is as slow, the job ends 'failed' with 「…止まりました…」 (a restart) although
    nothing stopped, and the export can never be made. Here the runner is alive; the
    worker looks in while its query runs."""
    from sqlalchemy.orm import Session as OrmSession

    from app.models.extraction import ExportJob
    from app.services import extraction
    from app.services.actors import CardActor
    from tests.factories import make_card, make_storage

    make_storage(db)
    make_card(db, application_id="0" * 22 + "1", name="山田　一郎", postal_code="012-3456")
    db.commit()
    clerk = CardActor("clerk_kato", frozenset({"窓口職員"}))
    real = extraction.write_xlsx
    seen = {}

    import time as real_time

    monkeypatch.setattr(extraction, "HEARTBEAT_SECONDS", 0.05)

    def slow_query(session, query, path, tally, on_progress=None):
        clock.advance(minutes=3)  # the query's first rows come after three minutes
        real_time.sleep(0.5)  # ... during which the runner's heartbeat goes on
        worker = OrmSession(bind=db.get_bind())
        try:
            seen["taken_over"] = extraction.take_over_stalled(worker)  # the worker's loop
            worker.commit()
        finally:
            worker.close()
        return real(session, query, path, tally, on_progress)

    monkeypatch.setattr(extraction, "write_xlsx", slow_query)
    settings.configure(app, EXPORT_JOBS_INLINE=True)
    with app.test_request_context():
        job = extraction.start_job(db, {"subject": "cards", "columns": ["application_id"]},
                                   actor=clerk, now=clock())
        db.commit()
        extraction.launch(app, job)
    db.expire_all()
    row = db.get(ExportJob, job.id)
    assert seen["taken_over"] == (0, 0), "the worker took over a job whose runner was alive"
    assert row.state == "done", f"the live runner's file was thrown away ({row.state})"


# --- logs: LOG_FORMAT=json writes the exception unredacted -------------------------------------

def test_the_json_log_format_writes_no_database_detail():
    """install_redaction puts the redacted traceback in ``record.exc_text`` (which
    logging.Formatter.format uses), but the app's own JsonFormatter (LOG_FORMAT=json, the
    format a log shipper reads in production) writes
    ``entry["exception"] = self.formatException(record.exc_info)``: the raw traceback,
    whose last line is the PostgreSQL DETAIL "Failing row contains (…, 山田太郎, …,
    緑市中央1-2-3, …)". The 16b fix is bypassed for every job failure and 500 logged as
    JSON."""
    from app.observability import JsonFormatter

    install_redaction()
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tests.review16c.json")
    logger.handlers[:] = [handler]
    logger.propagate = False
    try:
        raise RuntimeError(_DETAIL)
    except RuntimeError:
        logger.exception("job %s failed", "reminders")
    written = out.getvalue()
    assert "job reminders failed" in written
    assert "山田太郎" not in written


# --- ledger import: a slow import is "discarded" while it runs, and imports anyway -------------

def test_an_import_that_is_still_running_cannot_be_discarded(login_as, app, db, clock,
                                                              monkeypatch):
    """The import step's heartbeat moves only when import_ledger reports progress (and on
    SQLite never in the row: progress is in-process only, so another app process sees no
    heartbeat at all). An import slow to report (a large XLSX being opened, a slow
    database) for JOB_STALE_MINUTES (10) is shown failed; the discard button (discard_job) then
    deletes its row and files by a compare-and-set on the *stale* state and heartbeat,
    which still match. The import goes on, writes the residents' cards, puts its report
    files for a job that no longer exists (orphans until the 24 h purge) and ignores that
    its final ``_write_status`` changed nothing. The 管理者 was told it was discarded."""
    from app.models.card import Card
    from app.services import ledger_import
    from app.services.actors import CardActor
    from app.services.errors import DomainError
    from sqlalchemy import func, select
    from tests.ledger_import_files import csv_text, row

    manager = login_as("manager", username="kanri")
    data = csv_text([row(1), row(2)]).encode("utf-8-sig")
    job_url = manager.post("/ledger-import/upload",
                           data={"file": (io.BytesIO(data), "ledger.csv")},
                           content_type="multipart/form-data").headers["Location"]
    token = job_url.rsplit("/", 1)[1]
    real = ledger_import.import_ledger
    seen = {}

    def slow_import(session, path, **options):
        if not options.get("dry_run"):
            clock.advance(minutes=11)  # opening the file took long; no progress yet
            try:
                ledger_import.discard_job(token, actor=CardActor("kanri", frozenset(
                    {"管理者"})))
                seen["discarded"] = True
            except DomainError:
                seen["discarded"] = False
        return real(session, path, **options)

    monkeypatch.setattr(ledger_import, "import_ledger", slow_import)
    manager.post(job_url + "/import", data={"skip_invalid": "1"})
    db.expire_all()
    imported = db.execute(select(func.count()).select_from(Card)).scalar()
    assert not (seen.get("discarded") and imported), \
        f"discarded while running, and {imported} cards were imported anyway"
