"""Runs of the worker's scheduled jobs (issue 16 §3, app/services/jobs.py).

One row per job and period (``UNIQUE(job, period)``): the period is the most recent time
the job was due, written as a text key (``2026-11-28`` for a daily job, ``2026-11-28T17``
for an hourly one). A worker claims a period by inserting its row; of two workers at once
only one insert succeeds. A row left ``running`` whose ``lease_until`` has passed (its
worker was killed) and a ``failed`` row with attempts left are claimed again by a
compare-and-set on their state. The outbox, which runs every loop and claims each mail by
itself, keeps one heartbeat row (period ``continuous``) with its last run.
"""
from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from sqlalchemy import CheckConstraint, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.types import AwareDateTime

RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
SKIPPED = "skipped"  # nothing to do by design (e.g. WORKER_BACKUPS off): not a failure
STATES = (RUNNING, SUCCEEDED, FAILED, SKIPPED)
CONTINUOUS = "continuous"  # the period key of the outbox's heartbeat row


class JobRun(Model):
    __tablename__ = "job_run"
    __table_args__ = (
        UniqueConstraint("job", "period", name="uq_job_run_job_period"),
        CheckConstraint("state IN ('running', 'succeeded', 'failed', 'skipped')",
                        name="ck_job_run_state"),
        CheckConstraint("attempts >= 1", name="ck_job_run_attempts"),
        CheckConstraint("length(job) > 0 AND length(period) > 0", name="ck_job_run_keys"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job: Mapped[str] = mapped_column(String(40), nullable=False)
    period: Mapped[str] = mapped_column(String(20), nullable=False)
    state: Mapped[str] = mapped_column(String(10), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    worker: Mapped[str] = mapped_column(String(120), nullable=False)  # host:pid
    started_at: Mapped[datetime] = mapped_column(AwareDateTime(), nullable=False)
    lease_until: Mapped[datetime] = mapped_column(AwareDateTime(), nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(AwareDateTime(), nullable=True)
    # The time of the last run that ended well (the heartbeat row keeps it across runs).
    succeeded_at: Mapped[datetime | None] = mapped_column(AwareDateTime(), nullable=True)
    result: Mapped[str | None] = mapped_column(String(500), nullable=True)
    error: Mapped[str | None] = mapped_column(String(1000), nullable=True)

    def __repr__(self) -> str:
        return f"{self.job} {self.period}"
