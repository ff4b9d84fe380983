"""Planned or immediate maintenance of the residents' site (O2)."""
from datetime import datetime

from flask_appbuilder import Model
from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.texts import EnglishTexts
from app.models.types import AwareDateTime


class MaintenanceWindow(EnglishTexts, Model):
    __tablename__ = "maintenance_window"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    starts_at: Mapped[datetime] = mapped_column(AwareDateTime(), nullable=False)
    ends_at: Mapped[datetime | None] = mapped_column(AwareDateTime(), nullable=True)  # None: until ended
    message: Mapped[str] = mapped_column(Text, nullable=False, default="")
    message_en: Mapped[str | None] = mapped_column(Text, nullable=True)  # optional English
    created_by: Mapped[str | None] = mapped_column(String(100), nullable=True)

    def __repr__(self) -> str:
        return f"{self.starts_at:%Y-%m-%d %H:%M} -"
