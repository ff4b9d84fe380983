"""Notices (お知らせ, F5.3) shown to staff, residents or both."""
from datetime import datetime

from flask_appbuilder import Model
from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.texts import EnglishTexts
from app.models.types import AwareDateTime

AUDIENCE_STAFF = "staff"
AUDIENCE_RESIDENTS = "residents"
AUDIENCE_BOTH = "both"
IMPORTANCE_NORMAL = 0
IMPORTANCE_IMPORTANT = 1
IMPORTANCE_URGENT = 2


class Notice(EnglishTexts, Model):
    __tablename__ = "notice"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False, default="")
    # English for residents who chose English (optional: else the Japanese).
    title_en: Mapped[str | None] = mapped_column(String(200), nullable=True)
    body_en: Mapped[str | None] = mapped_column(Text, nullable=True)
    audience: Mapped[str] = mapped_column(String(20), nullable=False, default=AUDIENCE_BOTH)
    importance: Mapped[int] = mapped_column(Integer, nullable=False, default=IMPORTANCE_NORMAL)
    starts_at: Mapped[datetime] = mapped_column(AwareDateTime(), nullable=False)
    ends_at: Mapped[datetime | None] = mapped_column(AwareDateTime(), nullable=True)

    def __repr__(self) -> str:
        return self.title
