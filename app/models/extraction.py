"""Saved extraction queries (抽出条件, F4.2): a subject, its AND/OR condition groups and the
chosen columns, kept by name. A query is private to its owner or shared with the office;
管理者 manage the shared ones (app/services/extraction.py keeps the rules)."""
from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from flask_babel import lazy_gettext as _l
from sqlalchemy import Boolean, CheckConstraint, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.types import AwareDateTime


class SavedQuery(Model):
    __tablename__ = "saved_query"
    __table_args__ = (
        CheckConstraint("length(name) > 0", name="ck_saved_query_name"),
        CheckConstraint("length(subject) > 0", name="ck_saved_query_subject"),
        # One name per owner among private queries, one name among shared ones.
        Index("uq_saved_query_private_name", "owner", "name", unique=True,
              sqlite_where=text("shared = 0"), postgresql_where=text("NOT shared")),
        Index("uq_saved_query_shared_name", "name", unique=True,
              sqlite_where=text("shared = 1"), postgresql_where=text("shared")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    subject: Mapped[str] = mapped_column(String(30), nullable=False)
    # JSON: {"groups": [{"op": "and"|"or", "conditions": [...]}], "join": "and"|"or",
    #        "columns": [...], "order": [...]} as app/services/extraction.py defines it.
    definition: Mapped[str] = mapped_column(Text, nullable=False)
    owner: Mapped[str] = mapped_column(String(100), nullable=False)  # username
    shared: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = mapped_column(AwareDateTime(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(AwareDateTime(), nullable=False)

    def __repr__(self) -> str:
        return self.name


# --- background exports (issue 14 §2: large exports never hold a web worker) --------------

JOB_QUEUED, JOB_RUNNING, JOB_DONE, JOB_FAILED, JOB_EXPIRED = (
    "queued", "running", "done", "failed", "expired")
JOB_STATES = (JOB_QUEUED, JOB_RUNNING, JOB_DONE, JOB_FAILED, JOB_EXPIRED)
JOB_STATE_LABELS = {
    JOB_QUEUED: _l("Waiting to start"),
    JOB_RUNNING: _l("Making the file"),
    JOB_DONE: _l("Ready to download"),
    JOB_FAILED: _l("Failed"),
    JOB_EXPIRED: _l("Removed (kept for a limited time)"),
}
JOB_FORMATS = ("csv", "xlsx")


class ExportJob(Model):
    """One export written in the background (XLSX, and large CSV) and offered to its
    owner when done. The file is written to a local temporary file, then copied into the
    database's file store (``stored_file``, token = ``file_name``) in the same transaction
    that marks the job done, so any app server can serve the download and a job that dies
    never leaves a half file offered as done; ``heartbeat_at`` tells a job whose process
    died (no progress for a while) from one still running."""

    __tablename__ = "export_job"
    __table_args__ = (
        CheckConstraint("state IN ('queued', 'running', 'done', 'failed', 'expired')",
                        name="ck_export_job_state"),
        CheckConstraint("format IN ('csv', 'xlsx')", name="ck_export_job_format"),
        CheckConstraint("rows_total >= 0 AND rows_written >= 0 AND replaced >= 0",
                        name="ck_export_job_counts"),
        CheckConstraint("state <> 'done' OR (file_name IS NOT NULL AND finished_at IS NOT NULL)",
                        name="ck_export_job_done_file"),
        Index("ix_export_job_owner_created", "owner", "created_at"),
        Index("ix_export_job_state", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    owner: Mapped[str] = mapped_column(String(100), nullable=False)  # username
    subject: Mapped[str] = mapped_column(String(30), nullable=False)
    definition: Mapped[str] = mapped_column(Text, nullable=False)  # the checked query, JSON
    format: Mapped[str] = mapped_column(String(4), nullable=False)
    encoding: Mapped[str | None] = mapped_column(String(10))  # CSV: utf-8-sig or cp932
    on_unmappable: Mapped[str | None] = mapped_column(String(10))  # CP932: stop or replace
    replacement: Mapped[str | None] = mapped_column(String(1))
    state: Mapped[str] = mapped_column(String(10), nullable=False, default=JOB_QUEUED)
    rows_total: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    rows_written: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    replaced: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    file_name: Mapped[str | None] = mapped_column(String(200))  # stored_file.token
    download_name: Mapped[str] = mapped_column(String(200), nullable=False)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(AwareDateTime(), nullable=False)
    heartbeat_at: Mapped[datetime] = mapped_column(AwareDateTime(), nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(AwareDateTime())
    downloaded_at: Mapped[datetime | None] = mapped_column(AwareDateTime())
    # times the job was started (queued → running); a worker takes over a stopped one once
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0,
                                          server_default="0")

    def __repr__(self) -> str:
        return f"ExportJob({self.id}, {self.state})"
