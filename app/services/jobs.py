"""The worker's jobs (issue 16 §3): what `flask --app run worker` runs, when, and the record
of each run that the システム screen 定期処理 shows (docs/worker.md).

- ``outbox``: the queued mails (app/services/mail.py), every loop of the worker. The sender
  claims each mail by itself, so two workers may both run it; its last run is kept in one
  heartbeat row (period ``continuous``).
- ``exports``: the extraction exports (app/services/extraction.py), every loop: jobs whose
  runner stopped (no progress for two minutes: a restarted or recycled web worker) are
  taken over once, queued ones are made. The web server still starts a thread for each
  new job; whichever claims the job first runs it (compare-and-set queued → running).
- ``close_day``: 不来庁 for the bookings nobody checked in, at each venue once its last slot
  (and the late grace) is over; hourly, looking back CLOSE_LOOK_BACK_DAYS days for a day
  that was never closed.
- ``reminders``: the day-before reminders, daily at REMINDER_HOUR.
- ``slots``: bookable slots made ahead, daily at 00:10.
- ``discard``: the discard candidates refreshed, daily at 06:00.
- ``backup``: create, verify and prune the backups, daily at BACKUP_HOUR (WORKER_BACKUPS).
- ``housekeeping``: hourly, the files nobody came back for: extraction exports past
  EXPORT_KEEP_MINUTES (and jobs that stopped reporting), encrypted exports never
  downloaded, abandoned ledger-import uploads past their keep time, and backup staging
  folders a killed process left.

Every time is Japan time. A job's period is its most recent due time; the worker claims a
period by inserting its ``job_run`` row (UNIQUE(job, period): of two workers only one
succeeds), runs the job, and marks the row. A period missed while no worker ran is run
once when a worker starts (only the most recent one: never once per missed day). A row
left ``running`` past its lease (the worker was killed) is taken again by a compare-and-set;
a failed run is retried after RETRY_AFTER, at most MAX_ATTEMPTS times in its period.

Each job's data changes are units of work of their own (app/services/unit.py): a worker
killed in the middle of one leaves that unit rolled back, and the job's next run (the
retaken period, or the next period) does what is left: each job is idempotent. The claim
and the result are committed apart from the job's own units. Changes are audited as
``system``.
"""
from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time as _time
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Callable, Iterable

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import StatementError

from app import clock
from app.clock import JST
from app.models.job import CONTINUOUS, FAILED, RUNNING, SKIPPED, SUCCEEDED, JobRun
from app.models.outbox import FAILED as MAIL_FAILED
from app.models.outbox import QUEUED as MAIL_QUEUED
from app.models.outbox import SENDING as MAIL_SENDING
from app.models.outbox import OutboxMail
from app.models.reservation import BOOKED, Reservation, Slot
from app.models.venue import Venue, VenuePurpose
from app.services import (audit, backups, calendar, desk, discard, export_policy,
                          extraction, ledger_import, mail, unit)
from app.services.errors import DomainError
from app.settings import settings

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3  # runs of one job in one period: the first and two retries after failure
RETRY_AFTER = timedelta(minutes=10)  # a failed run is tried again after this
CLOSE_LOOK_BACK_DAYS = 7  # close_day also closes past days left open, this far back
KEEP_RUNS_DAYS = 400  # older job_run rows are removed when a newer period is claimed
OUTBOX_STALE = timedelta(minutes=5)  # the screen warns when the outbox ran longer ago
SLOTS_AT = time(0, 10)
DISCARD_AT = time(6, 0)


@dataclass(frozen=True)
class Done:
    """What a job did, in a line (the site's language) for the screen and the log."""

    result: str
    skipped: bool = False
    quiet: bool = False  # nothing happened (the outbox found no mail): no log line


@dataclass(frozen=True)
class Job:
    name: str
    label: object
    kind: str  # "continuous", "hourly" or "daily"
    run: Callable[..., Done]  # (session, now) -> Done
    at: Callable[[], time] | None = None  # daily: the time of day it is due
    lease: timedelta = timedelta(minutes=30)

    def due(self, now: datetime) -> datetime | None:
        """The most recent time the job was due, at or before ``now`` (None: continuous)."""
        local = now.astimezone(JST)
        if self.kind == "hourly":
            return local.replace(minute=0, second=0, microsecond=0)
        if self.kind == "daily":
            today = datetime.combine(local.date(), self.at(), JST)
            return today if today <= local else today - timedelta(days=1)
        return None

    def next_due(self, now: datetime) -> datetime | None:
        due = self.due(now)
        if due is None:
            return None
        return due + (timedelta(hours=1) if self.kind == "hourly" else timedelta(days=1))

    def period(self, now: datetime) -> str:
        """The text key of the period ``now`` falls in (the row's ``period``)."""
        due = self.due(now)
        if due is None:
            return CONTINUOUS
        return due.strftime("%Y-%m-%dT%H" if self.kind == "hourly" else "%Y-%m-%d")

    def expected_every(self) -> timedelta:
        """How old the last good run may be before the screen warns."""
        if self.kind == "continuous":
            return OUTBOX_STALE
        if self.kind == "hourly":
            return timedelta(hours=2)
        return timedelta(hours=26)

    def schedule(self) -> str:
        """The schedule in words."""
        if self.kind == "continuous":
            return _("Continuously (every %(seconds)d seconds)",
                     seconds=settings().worker_interval_seconds)
        if self.kind == "hourly":
            return _("Every hour (on the hour)")
        return _("Every day at %(time)s", time=self.at().strftime("%H:%M"))


# --- the jobs ---------------------------------------------------------------------------------

def send_outbox(session, now: datetime) -> Done:
    if not mail.configured():
        return Done(_("MAIL_SERVER is not set: the mails stay queued."), skipped=True,
                    quiet=True)
    report = mail.send_outbox(session)
    return Done(_("Mails sent: %(sent)d, to retry later: %(retried)d, failed for good: "
                  "%(failed)d", sent=report.sent, retried=report.retried,
                  failed=report.failed),
                quiet=not (report.sent or report.retried or report.failed))


def run_exports(session, now: datetime) -> Done:
    """Extraction exports (app/services/extraction.py): take over the jobs whose runner
    stopped, run the queued ones. A web thread may claim a job first; each job is run
    once (compare-and-set queued → running)."""
    from flask import current_app

    report = extraction.run_queued(current_app._get_current_object(), session, now)
    return Done(_("Exports made: %(ran)d, taken over: %(requeued)d, stopped for good: "
                  "%(failed)d", ran=report.ran, requeued=report.requeued,
                  failed=report.failed),
                quiet=not (report.ran or report.requeued or report.failed))


def send_reminders(session, now: datetime) -> Done:
    if not mail.configured():
        return Done(_("MAIL_SERVER is not set: no reminders queued."), skipped=True)
    # the visits of the day after the period's day: a period caught up after midnight
    # (the worker was down that evening) still reminds that day's visitors, not the next
    period_day = JOBS["reminders"].due(now).astimezone(JST).date()
    queued, failed = mail.send_reminders(session, now, day=period_day + timedelta(days=1))
    return Done(_("Reminders queued: %(queued)d, not queued (no usable address): "
                  "%(failed)d", queued=queued, failed=failed))


@dataclass
class DayClose:
    """One venue's day in :func:`close_days`: closed with ``no_shows``, or still open."""

    venue: str
    day: date
    last_slot_end: datetime
    no_shows: int | None = None  # None: still open

    @property
    def still_open(self) -> bool:
        return self.no_shows is None


def _days_left_open(session, now: datetime) -> set[tuple[int, date]]:
    """(venue, day) of the last CLOSE_LOOK_BACK_DAYS days before today with a booking
    still 予約済 (a day nobody closed)."""
    today = now.astimezone(JST).date()
    first = datetime.combine(today - timedelta(days=CLOSE_LOOK_BACK_DAYS), time.min, JST)
    rows = session.execute(
        select(VenuePurpose.venue_id, Slot.starts_at).distinct()
        .select_from(Reservation).join(Slot, Reservation.slot_id == Slot.id)
        .join(VenuePurpose, Slot.offer_id == VenuePurpose.id)
        .where(Reservation.state == BOOKED, Slot.starts_at >= first,
               Slot.starts_at < datetime.combine(today, time.min, JST))).all()
    return {(venue_id, starts_at.astimezone(JST).date()) for venue_id, starts_at in rows}


def close_days(session, now: datetime | None = None,
               day: date | None = None) -> list[DayClose]:
    """不来庁 for the bookings nobody checked in, at each venue whose day is over (its last
    slot's end plus the late grace): ``day`` (default today) at every venue, and without
    ``day`` also each of the last CLOSE_LOOK_BACK_DAYS days that still has a booking
    予約済 (no one closed it). Each venue's day is one unit of work (desk.close_day);
    closing a day twice finds nothing the second time. Shared by ``reservations
    close-day`` and the worker."""
    now = now or clock.now()
    today = now.astimezone(JST).date()
    venues = {venue.id: venue for venue in session.execute(select(Venue)).scalars()}
    pairs = {(venue_id, day or today) for venue_id in venues}
    if day is None:
        pairs |= _days_left_open(session, now)
    report = []
    for venue_id, when in sorted(pairs, key=lambda p: (p[1], venues[p[0]].name, p[0])):
        last = desk.last_slot_end(session, venue_id, when)
        if last is None:
            continue
        name = venues[venue_id].name
        if last + desk.grace() > now:
            report.append(DayClose(name, when, last))
            continue
        missed = desk.close_day(session, venue_id, when, now=now)
        report.append(DayClose(name, when, last, len(missed)))
    return report


def run_close_days(session, now: datetime) -> Done:
    report = close_days(session, now)
    closed = [r for r in report if not r.still_open]
    return Done(_("Days closed: %(days)d, no-shows: %(no_shows)d, venues still open: "
                  "%(open)d", days=len(closed), no_shows=sum(r.no_shows for r in closed),
                  open=len(report) - len(closed)))


def make_slots(session, now: datetime) -> Done:
    made = calendar.materialise_slots(session, today=now.astimezone(JST).date())
    return Done(_("Slots made: %(made)d", made=made))


def refresh_discard(session, now: datetime) -> Done:
    """The discard candidates (app/services/discard.py), as ``system``."""
    found = discard.refresh(session, now)
    return Done(_("Discard candidates: %(found)d", found=found))


def make_backup(session, now: datetime) -> Done:
    """Create a backup, verify it, then prune the old ones (as deploy/mnc-backup.service)."""
    if not settings().worker_backups:
        return Done(_("WORKER_BACKUPS is off: the backups are made by the timer "
                      "(deploy/mnc-backup.timer) or by hand."), skipped=True)
    made = backups.create(session)
    backups.verify(made.path)
    removed = backups.prune(now=now)
    return Done(_("Backup %(file)s made and verified (%(megabytes).1f MB); old backups "
                  "removed: %(removed)d", file=os.path.basename(made.path),
                  megabytes=made.bytes / 1024 / 1024, removed=len(removed)))


def housekeeping(session, now: datetime) -> Done:
    """Files kept on the server for a while: removed once nobody needs them."""
    exports = extraction.purge_exports(session, now)
    prepared = export_policy.purge()
    imports = ledger_import.purge_jobs(now, session=session)
    staging = backups.sweep_staging()
    return Done(_("Removed: extraction files %(files)d (jobs expired %(expired)d, failed "
                  "%(failed)d), encrypted exports not downloaded %(prepared)d, ledger "
                  "import uploads %(imports)d, backup work folders %(staging)d",
                  files=exports.files, expired=exports.expired, failed=exports.failed,
                  prepared=prepared, imports=imports, staging=len(staging)),
                quiet=not (exports.files or exports.expired or exports.failed or prepared
                           or imports or staging))


JOBS: dict[str, Job] = {job.name: job for job in (
    Job("outbox", _l("Send queued mails"), "continuous", send_outbox),
    Job("exports", _l("Make the queued extraction exports"), "continuous", run_exports),
    Job("close_day", _l("Close the day (no-shows)"), "hourly", run_close_days),
    Job("reminders", _l("Reminders for tomorrow's visits"), "daily", send_reminders,
        at=lambda: time(settings().reminder_hour)),
    Job("slots", _l("Make bookable slots ahead"), "daily", make_slots, at=lambda: SLOTS_AT),
    Job("discard", _l("Refresh the discard candidates"), "daily", refresh_discard,
        at=lambda: DISCARD_AT),
    Job("backup", _l("Backup (create, verify, prune)"), "daily", make_backup,
        at=lambda: time(settings().backup_hour), lease=timedelta(hours=3)),
    Job("housekeeping", _l("Remove files kept past their time"), "hourly", housekeeping),
)}


# --- claiming and recording a run -------------------------------------------------------------

def worker_name() -> str:
    """host:pid of this process, recorded on the runs it claims."""
    return f"{socket.gethostname()}:{os.getpid()}"[:120]


@dataclass(frozen=True)
class Claim:
    run_id: int
    attempt: int
    period: str


def _insert_run(session, values: dict):
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(JobRun).values(**values).on_conflict_do_nothing(
        index_elements=["job", "period"]).returning(JobRun.id)


def claim(session, job: Job, now: datetime, worker: str) -> Claim | None:
    """Take the job's current period for ``worker``, or None when it is done, being run by
    another worker, or failed with no attempt left. One unit, committed before the job
    runs: the INSERT of a new period (UNIQUE(job, period) lets one of two workers win), or a
    compare-and-set on a row left ``running`` past its lease or ``failed`` long enough ago."""
    period = job.period(now)
    lease_until = now + job.lease
    with unit.transaction(session):
        run_id = session.execute(_insert_run(session, dict(
            job=job.name, period=period, state=RUNNING, attempts=1, worker=worker,
            started_at=now, lease_until=lease_until))).scalar()
        if run_id is not None:
            session.execute(delete(JobRun).where(
                JobRun.job == job.name, JobRun.period != CONTINUOUS,
                JobRun.started_at < now - timedelta(days=KEEP_RUNS_DAYS))
                .execution_options(synchronize_session=False))
            return Claim(run_id, 1, period)
        row = session.execute(
            update(JobRun).where(
                JobRun.job == job.name, JobRun.period == period,
                JobRun.attempts < MAX_ATTEMPTS,
                or_(and_(JobRun.state == RUNNING, JobRun.lease_until < now),
                    and_(JobRun.state == FAILED, JobRun.finished_at <= now - RETRY_AFTER)))
            .values(state=RUNNING, attempts=JobRun.attempts + 1, worker=worker,
                    started_at=now, lease_until=lease_until, finished_at=None, result=None,
                    error=None)
            .returning(JobRun.id, JobRun.attempts)
            .execution_options(synchronize_session=False)).first()
    return Claim(row[0], row[1], period) if row is not None else None


def finish(session, claimed: Claim, state: str, now: datetime, result: str | None = None,
           error: str | None = None) -> bool:
    """Mark the claimed run (compare-and-set on its state and attempt: a run whose lease
    another worker took over is not overwritten; the continuous job's heartbeat row takes
    the last word of whichever worker ends last). One unit."""
    values = dict(state=state, finished_at=now, result=_short(result, 500),
                  error=_short(error, 1000))
    if state in (SUCCEEDED, SKIPPED):
        values["succeeded_at"] = now
    conditions = [JobRun.id == claimed.run_id]
    if claimed.period != CONTINUOUS:
        conditions += [JobRun.state == RUNNING, JobRun.attempts == claimed.attempt]
    with unit.transaction(session):
        return session.execute(
            update(JobRun).where(*conditions).values(**values)
            .execution_options(synchronize_session=False)).rowcount == 1


def _heartbeat_start(session, job: Job, now: datetime, worker: str) -> Claim:
    """The continuous job's one row: made once, then marked by every run (two workers may
    both run it: the work itself claims each item)."""
    with unit.transaction(session):
        session.execute(_insert_run(session, dict(
            job=job.name, period=CONTINUOUS, state=RUNNING, attempts=1, worker=worker,
            started_at=now, lease_until=now + job.lease)))
        row = session.execute(
            update(JobRun).where(JobRun.job == job.name, JobRun.period == CONTINUOUS)
            .values(state=RUNNING, worker=worker, started_at=now,
                    lease_until=now + job.lease, finished_at=None)
            .returning(JobRun.id, JobRun.attempts)
            .execution_options(synchronize_session=False)).first()
    return Claim(row[0], row[1], CONTINUOUS)


LEASE_RENEWALS = 3  # a running job renews its lease this many times per lease


@contextlib.contextmanager
def _lease_kept(session, job: Job, claimed: Claim, now: datetime):
    """While the job runs, renew its lease (a compare-and-set on the run's state and
    attempt, on a connection of its own) every third of the lease, so a job that runs
    longer than its lease is not taken over by another worker while it still works; a
    worker that dies stops renewing, and the lease runs out as before. The new lease is
    counted from the claim's time plus the time the job has run."""
    if claimed.period == CONTINUOUS:
        yield
        return
    engine, started, stop = session.get_bind(), _time.monotonic(), threading.Event()
    interval = job.lease.total_seconds() / LEASE_RENEWALS

    def renew() -> None:
        while not stop.wait(interval):
            until = now + timedelta(seconds=_time.monotonic() - started) + job.lease
            try:
                with engine.begin() as connection:
                    kept = connection.execute(
                        update(JobRun).where(JobRun.id == claimed.run_id,
                                             JobRun.state == RUNNING,
                                             JobRun.attempts == claimed.attempt)
                        .values(lease_until=until)).rowcount
            except Exception:  # noqa: BLE001 - tried again at the next interval
                log.warning("job %s: its lease could not be renewed", job.name)
                continue
            if kept != 1:  # finished, or taken over: nothing more to keep
                return

    keeper = threading.Thread(target=renew, name=f"lease-{job.name}", daemon=True)
    keeper.start()
    try:
        yield
    finally:
        stop.set()
        keeper.join(timeout=30)


def _short(text: str | None, size: int) -> str | None:
    if text is None:
        return None
    text = " ".join(str(text).split())
    return text if len(text) <= size else text[:size - 1] + "…"


def _error_text(error: BaseException) -> str:
    """What the 定期処理 screen and the log say of a failed run: a database error by the
    driver's first line only (the constraint or the connection), never the statement's
    bound values, which may be residents' names and addresses (the screen is the system
    administrator's, who may not read the ledger)."""
    if isinstance(error, DomainError):
        return str(error.message)
    if isinstance(error, StatementError):
        cause = error.orig if error.orig is not None else error
        first = (str(cause).strip().splitlines() or [""])[0]
        return f"{type(error).__name__}: {type(cause).__name__}: {first[:300]}"
    return f"{type(error).__name__}: {error}"


@dataclass
class Outcome:
    """One run of one job by this worker, for the log line."""

    job: str
    period: str
    state: str
    attempt: int
    text: str
    started_at: datetime
    quiet: bool = False

    def line(self) -> str:
        again = f" (attempt {self.attempt})" if self.attempt > 1 else ""
        return (f"{self.started_at:%Y-%m-%d %H:%M:%S} {self.job} {self.period} "
                f"{self.state}{again}: {self.text}")


def run_job(session, job: Job, now: datetime, worker: str) -> Outcome | None:
    """Run ``job`` once if its period is free for this worker (continuous: always); record
    the outcome. None: nothing to do. An error of the job is recorded, never raised."""
    claimed = _heartbeat_start(session, job, now, worker) if job.kind == "continuous" \
        else claim(session, job, now, worker)
    if claimed is None:
        return None
    audit.act_as(audit.SYSTEM)
    try:
        with _lease_kept(session, job, claimed, now):
            done = job.run(session, now)
    except Exception as error:  # noqa: BLE001 - recorded on the run and in the log
        # A failed unit has rolled back already; a read outside any unit may have left an
        # aborted transaction open (PostgreSQL): end it before the failure is recorded.
        unit.discard(session)
        text = _error_text(error)
        log.exception("job %s (%s) failed", job.name, claimed.period)
        finish(session, claimed, FAILED, clock.now(), error=text)
        return Outcome(job.name, claimed.period, FAILED, claimed.attempt, text, now)
    state = SKIPPED if done.skipped else SUCCEEDED
    finish(session, claimed, state, clock.now(), result=done.result)
    return Outcome(job.name, claimed.period, state, claimed.attempt, done.result, now,
                   quiet=done.quiet)


def run_due(session, worker: str, only: Iterable[str] = (),
            stopping: Callable[[], bool] = lambda: False) -> list[Outcome]:
    """One loop of the worker: every job (or those named in ``only``) whose period is free,
    in the order of JOBS; stops between jobs when ``stopping()`` says so."""
    wanted = set(only) or set(JOBS)
    outcomes = []
    for job in JOBS.values():
        if job.name not in wanted:
            continue
        if stopping():
            break
        outcome = run_job(session, job, clock.now(), worker)
        if outcome is not None:
            outcomes.append(outcome)
    return outcomes


# --- the screen -------------------------------------------------------------------------------

@dataclass
class JobStatus:
    job: Job
    last: JobRun | None  # the latest run (any state)
    last_success: datetime | None
    next_due: datetime | None
    overdue: bool  # next_due is past: the period's run is still to come (next loop)
    interrupted: bool  # the last run is 'running' past its lease: its worker stopped
    warning: str | None


@dataclass
class Overview:
    jobs: list[JobStatus] = field(default_factory=list)
    mails_queued: int = 0
    mails_failed: int = 0
    warnings: list[str] = field(default_factory=list)


def overview(session, now: datetime | None = None) -> Overview:
    """Each job's last run, next due time and a warning when its last good run is older
    than expected; the outbox's queued and failed mails. Reads only."""
    now = now or clock.now()
    view = Overview()
    stale_jobs = []
    for job in JOBS.values():
        last = session.execute(select(JobRun).where(JobRun.job == job.name)
                               .order_by(JobRun.started_at.desc(), JobRun.id.desc())
                               .limit(1)).scalars().first()
        success = session.execute(select(func.max(JobRun.succeeded_at))
                                  .where(JobRun.job == job.name)).scalar()
        interrupted = bool(last is not None and last.state == RUNNING
                           and last.lease_until < now)
        warning = None
        if success is None or success < now - job.expected_every():
            warning = _("No good run since %(when)s.", when=success.strftime(
                "%Y-%m-%d %H:%M")) if success else _("Never run successfully.")
            stale_jobs.append(job)
        next_due, overdue = None, False
        if job.kind != "continuous":  # the current period when it has not run yet
            ran = last is not None and last.period == job.period(now)
            next_due = job.next_due(now) if ran else job.due(now)
            overdue = not ran
        view.jobs.append(JobStatus(job, last, success, next_due, overdue, interrupted,
                                   warning))
    counts = dict(session.execute(
        select(OutboxMail.state, func.count()).where(
            OutboxMail.state.in_((MAIL_QUEUED, MAIL_SENDING, MAIL_FAILED)))
        .group_by(OutboxMail.state)).all())
    view.mails_queued = counts.get(MAIL_QUEUED, 0) + counts.get(MAIL_SENDING, 0)
    view.mails_failed = counts.get(MAIL_FAILED, 0)
    if any(job.kind == "continuous" for job in stale_jobs):
        view.warnings.append(_("The worker may not be running: the mails have not been "
                               "sent for more than %(minutes)d minutes.",
                               minutes=int(OUTBOX_STALE.total_seconds() // 60)))
    elif stale_jobs:
        view.warnings.append(_("The worker may not be running, or a job keeps failing: "
                               "%(jobs)s.", jobs="、".join(str(j.label) for j in stale_jobs)))
    return view
