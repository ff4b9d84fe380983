"""The card ledger (カード管理簿, F3.1, F3.6): one row per card received, with its history."""
from __future__ import annotations

from datetime import date, datetime

from flask_appbuilder import Model
from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.storage import StoragePlace
from app.models.types import AwareDateTime

VISIT_AT_HANDOVER = "K"  # 交付時来庁: apply, then visit to collect
VISIT_AT_APPLICATION = "S"  # 申請時来庁: identity checked at application, card mailed


class Card(Model):
    __tablename__ = "card"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[str] = mapped_column(String(23), nullable=False, unique=True)
    shipment_number: Mapped[str | None] = mapped_column(String(20), nullable=True, index=True)
    manufacture_number: Mapped[str | None] = mapped_column(String(16), nullable=True,
                                                           unique=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False, index=True)
    # Code-point order on PostgreSQL too (as SQLite's BINARY): a kana prefix search is the
    # range [ヤマダ, ヤマヂ) on this index, exact in no other collation (a linguistic one
    # sorts ヤマタロウ between the two).
    name_kana: Mapped[str] = mapped_column(
        String(200).with_variant(String(200, collation="C"), "postgresql"), nullable=False,
        index=True)
    postal_code: Mapped[str | None] = mapped_column(String(8), nullable=True)
    address: Mapped[str | None] = mapped_column(String(300), nullable=True)
    birth_date: Mapped[date] = mapped_column(Date, nullable=False)
    has_sign_cert: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    has_auth_cert: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    visit_mode: Mapped[str] = mapped_column(String(1), nullable=False, default=VISIT_AT_HANDOVER,
                                            index=True)
    state: Mapped[str] = mapped_column(String(20), nullable=False, index=True)
    held_from: Mapped[str | None] = mapped_column(String(20), nullable=True)
    storage_place_id: Mapped[int | None] = mapped_column(ForeignKey("storage_place.id"),
                                                         nullable=True, index=True)
    storage_place: Mapped[StoragePlace | None] = relationship(StoragePlace)
    notice_number: Mapped[str | None] = mapped_column(String(16), nullable=True, unique=True)
    card_expires_on: Mapped[date | None] = mapped_column(Date, nullable=True)

    received_at: Mapped[datetime | None] = mapped_column(AwareDateTime(), nullable=True,
                                                         index=True)
    setup_at: Mapped[datetime | None] = mapped_column(AwareDateTime(), nullable=True)
    notice_sent_at: Mapped[datetime | None] = mapped_column(AwareDateTime(), nullable=True,
                                                            index=True)
    renotified_at: Mapped[datetime | None] = mapped_column(AwareDateTime(), nullable=True)
    returned_at: Mapped[datetime | None] = mapped_column(AwareDateTime(), nullable=True)
    mailed_at: Mapped[datetime | None] = mapped_column(AwareDateTime(), nullable=True)
    handed_over_at: Mapped[datetime | None] = mapped_column(AwareDateTime(), nullable=True,
                                                            index=True)
    discarded_at: Mapped[datetime | None] = mapped_column(AwareDateTime(), nullable=True)

    handed_over_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    identity_check: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON checklist
    discard_hold: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    discard_hold_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    discard_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    notes: Mapped[str | None] = mapped_column(Text, nullable=True)

    events: Mapped[list["CardEvent"]] = relationship(
        back_populates="card", order_by="CardEvent.id", cascade="all, delete-orphan")

    def __repr__(self) -> str:
        return f"{self.application_id} {self.name}"


class CardEvent(Model):
    """One state change of a card: from, to, when, who, note."""

    __tablename__ = "card_event"
    __table_args__ = (Index("ix_card_event_to_state_at", "to_state", "at"),
                      Index("ix_card_event_card_at", "card_id", "at"),
                      # the statistics read a range of these in index order (migration 0017)
                      Index("ix_card_event_statistics", "at", "to_state", "from_state",
                            "username", "card_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("card.id"), nullable=False, index=True)
    card: Mapped[Card] = relationship(back_populates="events")
    from_state: Mapped[str | None] = mapped_column(String(20), nullable=True)
    to_state: Mapped[str] = mapped_column(String(20), nullable=False)
    at: Mapped[datetime] = mapped_column(AwareDateTime(), nullable=False)
    username: Mapped[str] = mapped_column(String(100), nullable=False)
    note: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # Where the card was kept after this event (None once handed over, mailed or
    # discarded): with ``to_state``, the stock by state and by place at the end of any day
    # is read from the history. A move between places is an event of its own (from_state
    # = to_state).
    storage_place_id: Mapped[int | None] = mapped_column(ForeignKey("storage_place.id"),
                                                         nullable=True)
    storage_place: Mapped[StoragePlace | None] = relationship()

    @property
    def is_move(self) -> bool:
        """A move between storage places: the state stays (from_state = to_state)."""
        return self.from_state is not None and self.from_state == self.to_state

    def change(self) -> str:
        """What happened, as the history lists show it: 納品 → 交付前設定済, or
        保管場所の移動 for a move (the labels live in app/models/card_states.py)."""
        from app.models.card_states import change_label  # it imports this module
        return change_label(self.from_state, self.to_state)

    def __repr__(self) -> str:
        return f"{self.from_state or '-'} → {self.to_state}"


class CardTally(Model):
    """How many cards are in each state per visit mode, kept by the database itself:
    triggers on ``card`` (migration 0015) add and subtract on every insert, delete and
    change of state or visit mode, whatever path makes it (ORM, Core bulk updates, SQL by
    hand). The ledger's summary bar and its unfiltered count read these few rows instead
    of counting every card on each page view. On PostgreSQL the triggers run at commit
    (deferred), so a transaction sees its own changes here only after it commits.

    A migration that rebuilds the ``card`` table on SQLite (Alembic's batch mode) drops
    its triggers: it must create them again (tests/unit/test_ledger_indexes.py fails
    otherwise)."""

    __tablename__ = "card_tally"

    visit_mode: Mapped[str] = mapped_column(String(1), primary_key=True)
    state: Mapped[str] = mapped_column(String(20), primary_key=True)
    cards: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
