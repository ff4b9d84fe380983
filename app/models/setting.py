"""Settings of the whole office changed on a screen (not in config.py, which holds what the
server's operator sets): one row per key, changed by compare-and-set on ``version``.
The first is the export policy (issue 15 §4): encryption of exports with personal data."""
from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from sqlalchemy import CheckConstraint, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.types import AwareDateTime


class SiteSetting(Model):
    __tablename__ = "site_setting"
    __table_args__ = (
        CheckConstraint("length(key) > 0", name="ck_site_setting_key"),
        CheckConstraint("version >= 1", name="ck_site_setting_version"),
    )

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text, nullable=False)  # JSON
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    updated_at: Mapped[datetime] = mapped_column(AwareDateTime(), nullable=False)
    updated_by: Mapped[str] = mapped_column(String(100), nullable=False)

    def __repr__(self) -> str:
        return self.key
