"""Staff accounts (F5.1, S3): creation under the password policy, lock and unlock."""
from __future__ import annotations

from datetime import datetime

from flask import current_app

from app.models.user import StaffUser
from app.services import audit
from app.services.errors import UnknownRoleError, UserExistsError
from app.services.passwords import check_password_policy


def create_user(username: str, password: str, role_names: list[str], first_name: str,
                last_name: str, email: str) -> StaffUser:
    """Create a staff account; the password policy applies (FAB's CLI path skips it)."""
    sm = current_app.appbuilder.sm
    username = username.strip()
    check_password_policy(password, username)
    if sm.find_user(username=username) is not None:
        raise UserExistsError()
    roles = []
    for name in role_names:
        role = sm.find_role(name)
        if role is None:
            raise UnknownRoleError()
        roles.append(role)
    user = sm.add_user(username, first_name, last_name, email, roles, password)
    if not user:
        raise UserExistsError()
    return user


def register_failed_login(session, user: StaffUser, now: datetime) -> bool:
    """After a failed password: lock at the threshold. Returns True when it locked now."""
    threshold = current_app.config.get("LOGIN_LOCK_THRESHOLD", 5)
    if user.locked_at is None and (user.fail_login_count or 0) >= threshold:
        user.locked_at = now
        session.commit()
        audit.record_event(audit.ACTION_LOCKED, "ab_user", user.id,
                           {"username": user.username, "failures": user.fail_login_count},
                           actor=audit.Actor(None, user.username, audit.current_actor().ip))
        return True
    return False


def unlock_user(session, user: StaffUser) -> None:
    """An administrator lifts the lock and clears the failure count."""
    user.locked_at = None
    user.fail_login_count = 0
    session.commit()
    audit.record_event(audit.ACTION_UNLOCKED, "ab_user", user.id, {"username": user.username})
