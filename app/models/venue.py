"""Venues (会場), purposes of a visit and their opening rules (F1.5)."""
from __future__ import annotations

from datetime import date, time

from flask_appbuilder import Model
from sqlalchemy import Boolean, Date, ForeignKey, Integer, String, Text, Time, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.texts import EnglishTexts


class Venue(Model):
    __tablename__ = "venue"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False, unique=True)
    address: Mapped[str | None] = mapped_column(String(300), nullable=True)
    access_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)

    def __repr__(self) -> str:
        return self.name


class Purpose(EnglishTexts, Model):
    """交付 (collect a card), 申請, 電子証明書 ... the list is editable."""

    __tablename__ = "purpose"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(20), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    needs_postcard: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # Shown to residents: what the visit is for, and what to bring (one item a line).
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    what_to_bring: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The same in English for residents who chose English (optional: else the Japanese).
    name_en: Mapped[str | None] = mapped_column(String(100), nullable=True)
    description_en: Mapped[str | None] = mapped_column(Text, nullable=True)
    what_to_bring_en: Mapped[str | None] = mapped_column(Text, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)

    def __repr__(self) -> str:
        return self.name


class VenuePurpose(Model):
    """What one venue offers for one purpose: window, cut-off, party size."""

    __tablename__ = "venue_purpose"
    __table_args__ = (UniqueConstraint("venue_id", "purpose_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    venue_id: Mapped[int] = mapped_column(ForeignKey("venue.id"), nullable=False)
    venue: Mapped[Venue] = relationship()
    purpose_id: Mapped[int] = mapped_column(ForeignKey("purpose.id"), nullable=False)
    purpose: Mapped[Purpose] = relationship()
    opens_days_ahead: Mapped[int] = mapped_column(Integer, nullable=False, default=45)
    closes_minutes_before: Mapped[int] = mapped_column(Integer, nullable=False,
                                                       default=3 * 24 * 60)
    last_start: Mapped[time | None] = mapped_column(Time, nullable=True)  # e.g. 19:30
    max_party: Mapped[int] = mapped_column(Integer, nullable=False, default=4)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    rules: Mapped[list["WeeklyRule"]] = relationship(back_populates="offer",
                                                     cascade="all, delete-orphan")
    exceptions: Mapped[list["DateException"]] = relationship(back_populates="offer",
                                                             cascade="all, delete-orphan")

    def __repr__(self) -> str:
        return f"{self.venue} / {self.purpose}"


class WeeklyRule(Model):
    """Open on a weekday from-to, in slots of N minutes, with S seats (counters) each."""

    __tablename__ = "weekly_rule"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    offer_id: Mapped[int] = mapped_column(ForeignKey("venue_purpose.id"), nullable=False,
                                          index=True)
    offer: Mapped[VenuePurpose] = relationship(back_populates="rules")
    weekday: Mapped[int] = mapped_column(Integer, nullable=False)  # 0 = Monday
    starts: Mapped[time] = mapped_column(Time, nullable=False)
    ends: Mapped[time] = mapped_column(Time, nullable=False)
    slot_minutes: Mapped[int] = mapped_column(Integer, nullable=False, default=30)
    seats: Mapped[int] = mapped_column(Integer, nullable=False, default=2)


class DateException(Model):
    """A date that differs from the weekly pattern: closed, opened, or other seats."""

    __tablename__ = "date_exception"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    offer_id: Mapped[int] = mapped_column(ForeignKey("venue_purpose.id"), nullable=False,
                                          index=True)
    offer: Mapped[VenuePurpose] = relationship(back_populates="exceptions")
    day: Mapped[date] = mapped_column(Date, nullable=False)
    closed: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # When open on a day the pattern or a holiday closes, or with changed seats:
    starts: Mapped[time | None] = mapped_column(Time, nullable=True)
    ends: Mapped[time | None] = mapped_column(Time, nullable=True)
    slot_minutes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    seats: Mapped[int | None] = mapped_column(Integer, nullable=True)
    note: Mapped[str | None] = mapped_column(String(200), nullable=True)
