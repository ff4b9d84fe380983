"""Files kept in the database (issue 16 §1: any app server serves any request).

A file one request or job makes and another request downloads (an extraction export, an
encrypted export prepared for one download, a ledger import's upload) is kept here rather
than in one server's instance folder: ``stored_file`` is the file, ``stored_file_chunk`` its
content in pieces of about 1 MiB (app/services/file_store.py writes and reads them one
piece per statement, so a large file never sits whole in memory). These files are
temporary: each feature removes its own, and what is left goes after its keeping time.
They are not part of the migration export (app/services/migration_export.py)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (BigInteger, CheckConstraint, ForeignKey, Index, Integer, LargeBinary,
                        String)
from sqlalchemy.orm import Mapped, mapped_column
from flask_appbuilder import Model

from app.models.types import AwareDateTime

KINDS = ("extraction", "protected_export", "ledger_import")


class StoredFile(Model):
    __tablename__ = "stored_file"
    __table_args__ = (
        CheckConstraint("size >= 0 AND chunks >= 0", name="ck_stored_file_counts"),
        CheckConstraint("length(token) > 0", name="ck_stored_file_token"),
        Index("ix_stored_file_kind_created", "kind", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(30), nullable=False)
    token: Mapped[str] = mapped_column(String(100), nullable=False, unique=True)
    owner: Mapped[str | None] = mapped_column(String(100))  # username
    filename: Mapped[str] = mapped_column(String(200), nullable=False)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    chunks: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    sha256: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(AwareDateTime(), nullable=False)
    # set once by the one request that takes a file meant for a single download
    claimed_at: Mapped[datetime | None] = mapped_column(AwareDateTime())

    def __repr__(self) -> str:
        return f"StoredFile({self.id}, {self.kind}, {self.filename})"


class StoredFileChunk(Model):
    __tablename__ = "stored_file_chunk"
    __table_args__ = (CheckConstraint("seq >= 0", name="ck_stored_file_chunk_seq"),)

    file_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("stored_file.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
