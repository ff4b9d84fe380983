"""The audit trail (F5.2, S5): append-only, each row chained to the previous by an HMAC."""
from datetime import datetime

from flask_appbuilder import Model
from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.types import AwareDateTime


class AuditLog(Model):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(AwareDateTime(), nullable=False, index=True)
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    username: Mapped[str] = mapped_column(String(100), nullable=False, index=True)
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    action: Mapped[str] = mapped_column(String(40), nullable=False, index=True)
    target_table: Mapped[str | None] = mapped_column(String(80), nullable=True, index=True)
    target_id: Mapped[str | None] = mapped_column(String(80), nullable=True)
    changes: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    row_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)

    def __repr__(self) -> str:
        return f"#{self.id} {self.action} {self.target_table or ''} {self.target_id or ''}"
