"""The outbox: mails to residents written in the same transaction as the change they
announce, and delivered afterwards by `flask --app run outbox send` (app/services/mail.py).
No request waits for the mail relay, and a crash between the commit and the sending loses
no mail.

A row is ``queued`` until a sender claims it (compare-and-set to ``sending``, which also
sets ``next_attempt_at`` to the end of the sender's lease); then ``sent``, or ``queued``
again with a later ``next_attempt_at`` after a failure, or ``failed`` after the last
attempt. A row left in ``sending`` past its lease (a sender that crashed) is claimed again.
The subject and body are rendered at enqueue time in the resident's language, so the
sender needs no request.
"""
from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.types import AwareDateTime

QUEUED = "queued"
SENDING = "sending"
SENT = "sent"
FAILED = "failed"
STATES = (QUEUED, SENDING, SENT, FAILED)


class OutboxMail(Model):
    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint("state IN ('queued', 'sending', 'sent', 'failed')",
                        name="ck_outbox_state"),
        CheckConstraint("attempts >= 0", name="ck_outbox_attempts"),
        Index("ix_outbox_state_next_attempt_at", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    reservation_id: Mapped[int | None] = mapped_column(ForeignKey("reservation.id"),
                                                       nullable=True, index=True)
    to_address: Mapped[str] = mapped_column(String(200), nullable=False)
    locale: Mapped[str] = mapped_column(String(10), nullable=False, default="ja")
    subject: Mapped[str] = mapped_column(String(300), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(AwareDateTime(), nullable=False)
    state: Mapped[str] = mapped_column(String(10), nullable=False, default=QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(AwareDateTime(), nullable=False)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(AwareDateTime(), nullable=True)
