"""Jobs of the screen 既存データ取込 (app/services/ledger_import.py): one row per uploaded
file, its state and what the check or the import found (``status``, JSON), so that any app
server shows the job and any can start its import (issue 16 §1). The uploaded file and the
reports are in the shared file store (``stored_file``, kind ``ledger_import``)."""
from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from sqlalchemy import CheckConstraint, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.types import AwareDateTime


class LedgerImportJob(Model):
    __tablename__ = "ledger_import_job"
    __table_args__ = (
        CheckConstraint("state IN ('checking', 'checked', 'importing', 'done', 'failed')",
                        name="ck_ledger_import_job_state"),
        Index("ix_ledger_import_job_owner_created", "owner", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    owner: Mapped[str] = mapped_column(String(100), nullable=False)  # username
    state: Mapped[str] = mapped_column(String(10), nullable=False)
    status: Mapped[str] = mapped_column(Text, nullable=False)  # JSON: the check's findings
    created_at: Mapped[datetime] = mapped_column(AwareDateTime(), nullable=False)
    heartbeat_at: Mapped[datetime] = mapped_column(AwareDateTime(), nullable=False)

    def __repr__(self) -> str:
        return f"LedgerImportJob({self.id}, {self.state})"
