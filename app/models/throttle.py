"""Counters that slow down guessing on the residents' site (DOMAIN.md, "Privacy").

One row per key: an IP address, or a keyed hash of a typed postcard or booking number
(the number itself is not stored here). ``count`` counts events since ``window_started_at``;
past the limit the key is locked until ``locked_until``.
"""
from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.types import AwareDateTime


class Throttle(Model):
    __tablename__ = "throttle"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(80), nullable=False, unique=True)
    count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    window_started_at: Mapped[datetime] = mapped_column(AwareDateTime(), nullable=False)
    locked_until: Mapped[datetime | None] = mapped_column(AwareDateTime(), nullable=True)
