"""Issuance fees (手数料, F2.3): the fee table supervisors edit, the money taken per intake
as an append-only list of entries, gapless receipt numbers per 年度 and the clerks'
closed days (日計表). Money is integer yen everywhere.

Entries are never edited or deleted: a refund (還付) is a new negative entry, a correction
after a day is closed is a new entry on a later day.
"""
from __future__ import annotations

from datetime import date, datetime

from flask_appbuilder import Model
from flask_babel import lazy_gettext as _l
from sqlalchemy import (CheckConstraint, Date, ForeignKey, Integer, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.intake import KIND_EXPRESS, KIND_REISSUE, Intake
from app.models.types import AwareDateTime
from app.models.venue import Venue

# The kinds that cost money (DOMAIN.md "Fees"); every other kind is free.
CHARGED_KINDS = (KIND_REISSUE, KIND_EXPRESS)

ENTRY_CHARGE = "charge"  # 調定: the amount due
ENTRY_PAYMENT = "payment"  # 収納: money received, with a receipt number
ENTRY_WAIVER = "waiver"  # 免除: nothing due, with a reason
ENTRY_REFUND = "refund"  # 還付: money given back (negative), with a reason
ENTRY_LABELS = {ENTRY_CHARGE: _l("Charge"), ENTRY_PAYMENT: _l("Payment"),
                ENTRY_WAIVER: _l("Waiver"), ENTRY_REFUND: _l("Refund")}
ENTRY_TYPES = tuple(ENTRY_LABELS)

METHOD_CASH = "cash"  # 現金
METHOD_CASHLESS = "cashless"  # キャッシュレス
PAYMENT_METHOD_LABELS = {METHOD_CASH: _l("Cash"), METHOD_CASHLESS: _l("Cashless")}
PAYMENT_METHODS = tuple(PAYMENT_METHOD_LABELS)


class FeeSchedule(Model):
    """The fee of one chargeable kind from a date on: the card's part and the electronic
    certificates' part (DOMAIN.md: 再交付 800 + 200, 特急発行 1,800 + 200)."""

    __tablename__ = "fee_schedule"
    __table_args__ = (
        UniqueConstraint("kind", "valid_from", name="uq_fee_schedule_kind_valid_from"),
        CheckConstraint("kind IN ('reissue', 'express')", name="ck_fee_schedule_kind"),
        CheckConstraint("card_amount >= 0 AND cert_amount >= 0",
                        name="ck_fee_schedule_amounts"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    valid_from: Mapped[date] = mapped_column(Date, nullable=False)
    card_amount: Mapped[int] = mapped_column(Integer, nullable=False)
    cert_amount: Mapped[int] = mapped_column(Integer, nullable=False)
    note: Mapped[str | None] = mapped_column(String(200), nullable=True)

    def __repr__(self) -> str:
        return f"{self.kind} {self.valid_from:%Y/%m/%d}"


class FeeEntry(Model):
    """One line of an intake's money: charge, payment, waiver or refund."""

    __tablename__ = "fee_entry"
    __table_args__ = (
        UniqueConstraint("fiscal_year", "receipt_seq", name="uq_fee_entry_receipt"),
        CheckConstraint("entry_type IN ('charge', 'payment', 'waiver', 'refund')",
                        name="ck_fee_entry_type"),
        CheckConstraint("entry_type <> 'charge' OR amount >= 0", name="ck_fee_charge_amount"),
        CheckConstraint("entry_type <> 'payment' OR (amount > 0 AND receipt_seq IS NOT NULL"
                        " AND fiscal_year IS NOT NULL AND method IS NOT NULL)",
                        name="ck_fee_payment"),
        CheckConstraint("entry_type <> 'waiver' OR (amount = 0 AND reason IS NOT NULL)",
                        name="ck_fee_waiver"),
        CheckConstraint("entry_type <> 'refund' OR (amount < 0 AND reason IS NOT NULL)",
                        name="ck_fee_refund"),
        CheckConstraint("method IS NULL OR method IN ('cash', 'cashless')",
                        name="ck_fee_method"),
        CheckConstraint("tendered IS NULL OR (tendered >= amount AND change_due = tendered - amount)",
                        name="ck_fee_change"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    intake_id: Mapped[int] = mapped_column(ForeignKey("intake.id"), nullable=False, index=True)
    intake: Mapped[Intake] = relationship(Intake)
    entry_type: Mapped[str] = mapped_column(String(10), nullable=False, index=True)
    amount: Mapped[int] = mapped_column(Integer, nullable=False)  # yen; a refund is negative
    standard_amount: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the table's
    override_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    method: Mapped[str | None] = mapped_column(String(10), nullable=True)
    tendered: Mapped[int | None] = mapped_column(Integer, nullable=True)  # 預り金
    change_due: Mapped[int | None] = mapped_column(Integer, nullable=True)  # 釣銭
    fiscal_year: Mapped[int | None] = mapped_column(Integer, nullable=True)  # 年度 (April)
    receipt_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
    receipt_number: Mapped[str | None] = mapped_column(String(20), nullable=True, unique=True)
    reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    refund_of_id: Mapped[int | None] = mapped_column(ForeignKey("fee_entry.id"), nullable=True)
    venue_id: Mapped[int] = mapped_column(ForeignKey("venue.id"), nullable=False, index=True)
    venue: Mapped[Venue] = relationship(Venue)
    clerk: Mapped[str] = mapped_column(String(100), nullable=False, index=True)
    business_day: Mapped[date] = mapped_column(Date, nullable=False, index=True)
    at: Mapped[datetime] = mapped_column(AwareDateTime(), nullable=False)
    printed_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0,
                                               server_default="0")

    def __repr__(self) -> str:
        return self.receipt_number or f"{self.entry_type} {self.amount}"


class ReceiptCounter(Model):
    """The last receipt number given in a 年度: taken with an UPDATE in the payment's own
    transaction, so a rolled-back payment gives its number back (gapless)."""

    __tablename__ = "receipt_counter"
    __table_args__ = (CheckConstraint("last >= 0", name="ck_receipt_counter_last"),)

    fiscal_year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class DailyClose(Model):
    """A clerk's closed day at a venue (日計表): the cash counted against what the entries
    say; a difference needs its explanation. Entries of a closed day never change."""

    __tablename__ = "daily_close"
    __table_args__ = (
        UniqueConstraint("venue_id", "clerk", "day", name="uq_daily_close"),
        CheckConstraint("difference = counted_cash - expected_cash", name="ck_daily_difference"),
        CheckConstraint("difference = 0 OR explanation IS NOT NULL",
                        name="ck_daily_explained"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    venue_id: Mapped[int] = mapped_column(ForeignKey("venue.id"), nullable=False)
    venue: Mapped[Venue] = relationship(Venue)
    clerk: Mapped[str] = mapped_column(String(100), nullable=False)
    day: Mapped[date] = mapped_column(Date, nullable=False, index=True)
    counted_cash: Mapped[int] = mapped_column(Integer, nullable=False)
    expected_cash: Mapped[int] = mapped_column(Integer, nullable=False)
    difference: Mapped[int] = mapped_column(Integer, nullable=False)
    explanation: Mapped[str | None] = mapped_column(Text, nullable=True)
    closed_at: Mapped[datetime] = mapped_column(AwareDateTime(), nullable=False)
    closed_by: Mapped[str] = mapped_column(String(100), nullable=False)
