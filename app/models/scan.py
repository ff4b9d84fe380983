"""Batches of scanned QR codes (F3.2): kept on the server until registered or discarded."""
from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.types import AwareDateTime

BATCH_OPEN = "open"
BATCH_REGISTERED = "registered"
BATCH_DISCARDED = "discarded"

ITEM_OK = "ok"
ITEM_DUPLICATE = "duplicate"  # the same 申請書ID earlier in this batch
ITEM_EXISTS = "exists"  # already in the ledger
ITEM_INVALID = "invalid"  # not a readable code of a known format
ITEM_INCOMPLETE = "incomplete"  # short form with no personal data to take


class ScanBatch(Model):
    __tablename__ = "scan_batch"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(AwareDateTime(), nullable=False)
    created_by: Mapped[str] = mapped_column(String(100), nullable=False)
    status: Mapped[str] = mapped_column(String(12), nullable=False, default=BATCH_OPEN,
                                        index=True)
    expected_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    registered_at: Mapped[datetime | None] = mapped_column(AwareDateTime(), nullable=True)
    items: Mapped[list["ScanItem"]] = relationship(
        back_populates="batch", order_by="ScanItem.seq", cascade="all, delete-orphan")

    def __repr__(self) -> str:
        return f"#{self.id}"


class ScanItem(Model):
    __tablename__ = "scan_item"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("scan_batch.id"), nullable=False,
                                          index=True)
    batch: Mapped[ScanBatch] = relationship(back_populates="items")
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    payload: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(String(12), nullable=False)
    reason: Mapped[str | None] = mapped_column(String(300), nullable=True)
    application_id: Mapped[str | None] = mapped_column(String(23), nullable=True, index=True)
    visit_mode: Mapped[str | None] = mapped_column(String(1), nullable=True)
    fields: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON of the parsed card
    source: Mapped[str | None] = mapped_column(String(200), nullable=True)  # file and page
    card_id: Mapped[int | None] = mapped_column(ForeignKey("card.id"), nullable=True)

    def __repr__(self) -> str:
        return f"{self.seq}: {self.application_id or self.payload[:20]}"
