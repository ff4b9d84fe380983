"""Staff accounts: FAB's user, extended with the lock state (FAB has no lockout)."""
from datetime import datetime

from flask_appbuilder.security.sqla.models import User
from sqlalchemy.orm import Mapped, mapped_column

from app.models.types import AwareDateTime


class StaffUser(User):
    __tablename__ = "ab_user"

    locked_at: Mapped[datetime | None] = mapped_column(AwareDateTime(), nullable=True)

    def get_full_name(self) -> str:
        """Japanese order: family name first (姓 名)."""
        return f"{self.last_name} {self.first_name}".strip()

    @property
    def is_locked(self) -> bool:
        return self.locked_at is not None
