"""Slots, holds and bookings (来庁予約, F1.1): the seats of a slot are never exceeded."""
from __future__ import annotations

from datetime import date, datetime

from flask_appbuilder import Model
from flask_babel import lazy_gettext as _l
from sqlalchemy import (Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint, text)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.types import AwareDateTime
from app.models.venue import VenuePurpose

HOLD_HELD = "held"
HOLD_RELEASED = "released"  # lapsed or given back: its seats returned to the slot
HOLD_BOOKED = "booked"  # became a booking: its seats passed to the booking

BOOKED = "booked"  # 予約済
ARRIVED = "arrived"  # 来庁済: checked in at the counter
COMPLETED = "completed"  # 完了: the visit is done (for 交付, every card handed over)
NO_SHOW = "no_show"  # 不来庁: not checked in by the day's close
CANCELLED = "cancelled"  # 取消
HOLDING_SEATS = (BOOKED, ARRIVED, COMPLETED, NO_SHOW)  # every state but cancelled

CHANNEL_WEB = "web"
CHANNEL_PHONE = "phone"
CHANNEL_COUNTER = "counter"
CHANNELS = (CHANNEL_WEB, CHANNEL_PHONE, CHANNEL_COUNTER)
# Statistics only: a counter booking made and checked in at once (予約なし来庁). The
# booking's own channel stays 窓口; its "made" event records this finer origin.
CHANNEL_WALK_IN = "walk_in"
EVENT_CHANNELS = CHANNELS + (CHANNEL_WALK_IN,)

# The one vocabulary of bookings: every screen (staff lists, the desk, the residents'
# pages, the API) names a state or a channel through these labels.
STATE_LABELS = {BOOKED: _l("Booked"), ARRIVED: _l("Arrived"), COMPLETED: _l("Completed"),
                NO_SHOW: _l("No-show"), CANCELLED: _l("Cancelled")}
CHANNEL_LABELS = {CHANNEL_WEB: _l("Web"), CHANNEL_PHONE: _l("By phone"),
                  CHANNEL_COUNTER: _l("Counter")}
EVENT_CHANNEL_LABELS = {**CHANNEL_LABELS, CHANNEL_WALK_IN: _l("Walk-in")}

# What happened to a booking (booking_event.kind): its history, from which the statistics
# are counted, so that a past month's figures never change when a booking moves later.
EVENT_MADE = "made"  # 予約: booked (web, phone, counter) or registered as a walk-in
EVENT_CHANGED = "changed"  # 変更: moved to another slot
EVENT_CANCELLED = "cancelled"  # 取消 (by the resident or by staff: ``by_staff``)
EVENT_ARRIVED = "arrived"  # 来庁 (checked in; late when ``at`` is past the grace)
EVENT_UNDONE = "undone"  # 来庁の取消し: a check-in undone
EVENT_NO_SHOW = "no_show"  # 不来庁: the day closed without a check-in
EVENT_COMPLETED = "completed"  # 完了
EVENT_LABELS = {EVENT_MADE: _l("Booked"), EVENT_CHANGED: _l("Changed"),
                EVENT_CANCELLED: _l("Cancelled"), EVENT_ARRIVED: _l("Arrived"),
                EVENT_UNDONE: _l("Check-in undone"), EVENT_NO_SHOW: _l("No-show"),
                EVENT_COMPLETED: _l("Completed")}
EVENT_KINDS = tuple(EVENT_LABELS)


def state_label(state: str | None) -> str:
    """A booking state as people read it (予約済, 来庁済 ...)."""
    return str(STATE_LABELS.get(state, state or ""))


def channel_label(channel: str | None) -> str:
    """How the booking was taken (Web, 電話, 窓口)."""
    return str(CHANNEL_LABELS.get(channel, channel or ""))


class Slot(Model):
    """One bookable time of one venue and purpose. ``taken`` counts booked and held seats
    and only ever changes by one conditional UPDATE (app/services/booking.py)."""

    __tablename__ = "slot"
    __table_args__ = (UniqueConstraint("offer_id", "starts_at"),
                      CheckConstraint("taken >= 0 AND taken <= seats",
                                      name="ck_slot_taken_within_seats"),
                      CheckConstraint("seats >= 0", name="ck_slot_seats_positive"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    offer_id: Mapped[int] = mapped_column(ForeignKey("venue_purpose.id"), nullable=False)
    offer: Mapped[VenuePurpose] = relationship()
    starts_at: Mapped[datetime] = mapped_column(AwareDateTime(), nullable=False, index=True)
    ends_at: Mapped[datetime] = mapped_column(AwareDateTime(), nullable=False)
    seats: Mapped[int] = mapped_column(Integer, nullable=False)
    taken: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # Closed by staff: no new seats are taken; bookings already made stay until changed.
    closed: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False,
                                         server_default=text("false"))

    def __repr__(self) -> str:
        return f"{self.starts_at:%Y-%m-%d %H:%M}"


class Hold(Model):
    """Seats kept for a resident filling in the form; they lapse by themselves."""

    __tablename__ = "hold"
    __table_args__ = (CheckConstraint("seats >= 1", name="ck_hold_seats_positive"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slot_id: Mapped[int] = mapped_column(ForeignKey("slot.id"), nullable=False, index=True)
    slot: Mapped[Slot] = relationship()
    seats: Mapped[int] = mapped_column(Integer, nullable=False)
    token: Mapped[str] = mapped_column(String(40), nullable=False, unique=True)
    expires_at: Mapped[datetime] = mapped_column(AwareDateTime(), nullable=False, index=True)
    state: Mapped[str] = mapped_column(String(10), nullable=False, default=HOLD_HELD,
                                       index=True)


class Reservation(Model):
    __tablename__ = "reservation"
    __table_args__ = (CheckConstraint("seats >= 1", name="ck_reservation_seats_positive"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(12), nullable=False, unique=True)
    slot_id: Mapped[int] = mapped_column(ForeignKey("slot.id"), nullable=False, index=True)
    slot: Mapped[Slot] = relationship()
    # Copies of the slot's venue/purpose and start, kept by the engine, so that staff lists
    # filter and sort by them (never empty: migration 0011).
    offer_id: Mapped[int] = mapped_column(ForeignKey("venue_purpose.id"), nullable=False,
                                          index=True)
    offer: Mapped[VenuePurpose] = relationship()
    starts_at: Mapped[datetime] = mapped_column(AwareDateTime(), nullable=False, index=True)
    seats: Mapped[int] = mapped_column(Integer, nullable=False)
    state: Mapped[str] = mapped_column(String(12), nullable=False, default=BOOKED, index=True)
    checked_in_at: Mapped[datetime | None] = mapped_column(AwareDateTime(), nullable=True)
    checked_in_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(AwareDateTime(), nullable=True)
    channel: Mapped[str] = mapped_column(String(10), nullable=False, default=CHANNEL_WEB)
    name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    name_kana: Mapped[str | None] = mapped_column(String(200), nullable=True)
    birth_date: Mapped[date] = mapped_column(Date, nullable=False)  # with the number: look-up
    phone: Mapped[str] = mapped_column(String(20), nullable=False)
    email: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(AwareDateTime(), nullable=False)
    cancelled_at: Mapped[datetime | None] = mapped_column(AwareDateTime(), nullable=True)
    cancel_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    locale: Mapped[str] = mapped_column(String(10), nullable=False, default="ja",
                                        server_default="ja")  # language of the e-mails
    reminded_at: Mapped[datetime | None] = mapped_column(AwareDateTime(), nullable=True)
    people: Mapped[list["ReservationPerson"]] = relationship(
        back_populates="reservation", cascade="all, delete-orphan")

    def __repr__(self) -> str:
        return self.number


class ReservationPerson(Model):
    """One seat of a party; for 交付, the card collected. A card has at most one active
    booking (partial unique index, honoured by SQLite and PostgreSQL)."""

    __tablename__ = "reservation_person"
    __table_args__ = (
        Index("uq_reservation_person_active_card", "card_id", unique=True,
              sqlite_where=text("active = 1 AND card_id IS NOT NULL"),
              postgresql_where=text("active AND card_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reservation_id: Mapped[int] = mapped_column(ForeignKey("reservation.id"), nullable=False,
                                                index=True)
    reservation: Mapped[Reservation] = relationship(back_populates="people")
    card_id: Mapped[int | None] = mapped_column(ForeignKey("card.id"), nullable=True)
    card: Mapped["Card | None"] = relationship("Card")  # noqa: F821 (app.models.card)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)


class BookingEvent(Model):
    """One thing that happened to a booking, written in the same unit of work as the change
    itself (app/services/booking_history.py). ``offer_id``, ``starts_at`` and ``seats``
    are the booking's as they were after the event (for a change: the new slot), so a
    figure per venue, purpose or day never depends on where the booking is today.
    ``actor`` is who did it as the audit trail names them (a clerk, 住民:…, system)."""

    __tablename__ = "booking_event"
    __table_args__ = (
        CheckConstraint("kind IN ('made', 'changed', 'cancelled', 'arrived', 'undone', "
                        "'no_show', 'completed')", name="ck_booking_event_kind"),
        CheckConstraint("channel IN ('web', 'phone', 'counter', 'walk_in')",
                        name="ck_booking_event_channel"),
        CheckConstraint("seats >= 1", name="ck_booking_event_seats"),
        Index("ix_booking_event_kind_at", "kind", "at"),
        # the statistics read a range of these in index order (migration 0017)
        Index("ix_booking_event_statistics", "at", "kind", "by_staff", "offer_id", "channel",
              "seats", "starts_at", "reservation_id", "actor"),
        Index("ix_booking_event_kind_starts_at", "kind", "starts_at", "offer_id", "seats",
              "reservation_id", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reservation_id: Mapped[int] = mapped_column(ForeignKey("reservation.id"), nullable=False,
                                                index=True)
    reservation: Mapped[Reservation] = relationship()
    kind: Mapped[str] = mapped_column(String(12), nullable=False)
    at: Mapped[datetime] = mapped_column(AwareDateTime(), nullable=False, index=True)
    by_staff: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    actor: Mapped[str] = mapped_column(String(100), nullable=False)
    channel: Mapped[str] = mapped_column(String(10), nullable=False)
    offer_id: Mapped[int] = mapped_column(ForeignKey("venue_purpose.id"), nullable=False)
    offer: Mapped[VenuePurpose] = relationship()
    starts_at: Mapped[datetime] = mapped_column(AwareDateTime(), nullable=False)
    seats: Mapped[int] = mapped_column(Integer, nullable=False)

    def __repr__(self) -> str:
        return f"{self.kind} {self.at:%Y-%m-%d %H:%M}"
