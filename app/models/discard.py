"""The discard candidates as last found (issue 16 §3): a snapshot the nightly job and the
「今すぐ更新」 button rebuild (app/services/discard.py), so the 廃棄候補 screen reads these few
rows instead of judging every not-yet-issued card of the ledger on each page view. When it
was last rebuilt is the ``site_setting`` row ``discard_candidates``."""
from __future__ import annotations

from datetime import date, datetime

from flask_appbuilder import Model
from sqlalchemy import CheckConstraint, Date, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.types import AwareDateTime

# Why a card is a candidate, by the first rule that holds (DOMAIN.md "Discard"):
EXPIRED = "expired"  # the card's validity ended (reason_on: the expiry date)
RETURNED_LONG_AGO = "returned"  # returned by the post, no contact since (the return's date)
RENOTIFIED_LONG_AGO = "renotified"  # a reminder went out long ago (the reminder's date)
NOTICED_LONG_AGO = "notice_sent"  # the notice went out long ago, no reminder (its date)
REASONS = (EXPIRED, RETURNED_LONG_AGO, RENOTIFIED_LONG_AGO, NOTICED_LONG_AGO)


class DiscardCandidate(Model):
    """One card the last refresh found past a deadline. The reason is stored as a code and
    a date, and worded in the reader's language when shown."""

    __tablename__ = "discard_candidate"
    __table_args__ = (
        CheckConstraint("reason IN ('expired', 'returned', 'renotified', 'notice_sent')",
                        name="ck_discard_candidate_reason"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # A card deleted from the ledger takes its candidate row with it.
    card_id: Mapped[int] = mapped_column(ForeignKey("card.id", ondelete="CASCADE"),
                                         nullable=False, unique=True)
    reason: Mapped[str] = mapped_column(String(20), nullable=False)
    reason_on: Mapped[date] = mapped_column(Date, nullable=False)
    # When a refresh first found the card (kept while later refreshes find it again).
    found_at: Mapped[datetime] = mapped_column(AwareDateTime(), nullable=False)

    def __repr__(self) -> str:
        return f"{self.card_id} {self.reason}"
