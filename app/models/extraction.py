"""Saved extraction queries (抽出条件, F4.2): a subject, its AND/OR condition groups and the
chosen columns, kept by name. A query is private to its owner or shared with the office;
管理者 manage the shared ones (app/services/extraction.py keeps the rules)."""
from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from sqlalchemy import Boolean, CheckConstraint, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.types import AwareDateTime


class SavedQuery(Model):
    __tablename__ = "saved_query"
    __table_args__ = (
        CheckConstraint("length(name) > 0", name="ck_saved_query_name"),
        CheckConstraint("length(subject) > 0", name="ck_saved_query_subject"),
        # One name per owner among private queries, one name among shared ones.
        Index("uq_saved_query_private_name", "owner", "name", unique=True,
              sqlite_where=text("shared = 0"), postgresql_where=text("NOT shared")),
        Index("uq_saved_query_shared_name", "name", unique=True,
              sqlite_where=text("shared = 1"), postgresql_where=text("shared")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    subject: Mapped[str] = mapped_column(String(30), nullable=False)
    # JSON: {"groups": [{"op": "and"|"or", "conditions": [...]}], "join": "and"|"or",
    #        "columns": [...], "order": [...]} as app/services/extraction.py defines it.
    definition: Mapped[str] = mapped_column(Text, nullable=False)
    owner: Mapped[str] = mapped_column(String(100), nullable=False)  # username
    shared: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = mapped_column(AwareDateTime(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(AwareDateTime(), nullable=False)

    def __repr__(self) -> str:
        return self.name
