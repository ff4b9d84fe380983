"""Staff accounts: FAB's user, extended with the lock state and a session generation (FAB
has no lockout, and its sessions and JWTs outlive a lock or a new password)."""
from datetime import datetime

from flask_appbuilder.security.sqla.models import User
from flask_babel import gettext
from sqlalchemy import Integer
from sqlalchemy.orm import Mapped, mapped_column

from app import clock
from app.models.types import AwareDateTime


class StaffUser(User):
    __tablename__ = "ab_user"

    # Set when the account was locked; ``locked_until`` NULL means "until an administrator
    # unlocks it" (an administrator's lock), else the lock after failed sign-ins ends then.
    locked_at: Mapped[datetime | None] = mapped_column(AwareDateTime(), nullable=True)
    locked_until: Mapped[datetime | None] = mapped_column(AwareDateTime(), nullable=True)
    # Locks after failed sign-ins since the last successful one: each lasts longer.
    lock_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0,
                                            server_default="0")
    # Bumped on lock, deactivation and password change: browser sessions and JWTs carry
    # the value they were issued with and are refused once it differs.
    session_generation: Mapped[int] = mapped_column(Integer, nullable=False, default=0,
                                                    server_default="0")

    def get_full_name(self) -> str:
        """Japanese order: family name first (姓 名)."""
        return f"{self.last_name} {self.first_name}".strip()

    def locked_now(self, now: datetime | None = None) -> bool:
        if self.locked_at is None:
            return False
        if self.locked_until is None:
            return True
        if now is None:
            now = clock.now()
        return self.locked_until > now

    def lock_state(self) -> str:
        """The user list's lock column: empty, "until <time>", or "until unlocked"."""
        if self.locked_at is None:
            return ""
        if self.locked_until is None:
            return gettext("Locked until an administrator unlocks it")
        if self.locked_now():
            return gettext("Locked until %(time)s",
                           time=clock.to_jst(self.locked_until).strftime("%Y-%m-%d %H:%M"))
        return ""

    @property
    def is_locked(self) -> bool:
        return self.locked_now()

    @property
    def is_active(self) -> bool:
        """Flask-Login and FAB refuse an inactive user: a locked account is inactive too."""
        return bool(self.active) and not self.locked_now()
