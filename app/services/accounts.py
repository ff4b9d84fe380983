"""Staff accounts (F5.1, S3): creation under the password policy, lock and unlock, and the
session generation that ends every browser session and JWT of an account at once.

Locks:
- after ``LOGIN_LOCK_THRESHOLD`` failed sign-ins in a row an account is locked for
  ``LOGIN_LOCK_MINUTES``, doubled for each further lock before a successful sign-in, at
  most ``LOGIN_LOCK_MAX_MINUTES``; anyone can cause it, so it never lasts for ever;
- an administrator's lock (the user list's "Lock" action) lasts until unlocked.
Locking, deactivating and setting a new password bump ``session_generation``: sessions and
JWTs issued before carry the old value and are refused (app/security.py).
"""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import event, func, inspect, or_, update
from sqlalchemy.orm.base import NO_VALUE

from app.models.user import StaffUser
from app.services import audit, unit
from app.services.errors import UnknownRoleError, UserExistsError
from app.services.passwords import check_password_policy
from app.settings import settings


def city_role_names() -> list[str]:
    """The roles a city gives to its staff: those declared in code (config.FAB_ROLES),
    never FAB's "Public" or a role someone added by hand."""
    return list(current_app.appbuilder.sm.builtin_roles)


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
        role = sm.find_role(name) if name in city_role_names() else None
        if role is None:
            raise UnknownRoleError()
        roles.append(role)
    user = sm.add_user(username, first_name, last_name, email, roles, password)
    if not user:
        raise UserExistsError()
    return user


def find_account(sm, identifier: str) -> StaffUser | None:
    """The account a sign-in names: by user ID, else by e-mail address (as FAB accepts)."""
    if not identifier:
        return None
    return sm.find_user(username=identifier) or sm.find_user(email=identifier)


def lock_minutes(previous_locks: int) -> int:
    """How long the next lock after failed sign-ins lasts: doubles with each repeat."""
    config = settings()
    base = max(1, config.login_lock_minutes)
    cap = max(base, config.login_lock_max_minutes)
    return min(cap, base * 2 ** min(max(previous_locks, 0), 20))


def count_failed_login(session, user: StaffUser) -> None:
    """One more failed sign-in, counted in the database (two workers never lose one)."""
    with unit.transaction(session):
        session.execute(update(StaffUser).where(StaffUser.id == user.id).values(
            fail_login_count=func.coalesce(StaffUser.fail_login_count, 0) + 1))
    session.refresh(user)


def register_failed_login(session, user: StaffUser, now: datetime,
                          ip: str | None = None) -> bool:
    """After a failed password: lock for a while at the threshold (a compare-and-set on the
    count and the lock seen, so two workers lock once). The lock and its audit record are
    one unit. ``ip``: the address of the attempt (default: this request's). Returns True
    when it locked now."""
    threshold = settings().login_lock_threshold
    if (user.fail_login_count or 0) < threshold or user.locked_now(now):
        return False
    previous = user.lock_count or 0
    until = now + timedelta(minutes=lock_minutes(previous))
    with unit.transaction(session):
        result = session.execute(
            update(StaffUser)
            .where(StaffUser.id == user.id, StaffUser.fail_login_count >= threshold,
                   StaffUser.lock_count == previous,
                   or_(StaffUser.locked_at.is_(None),
                       StaffUser.locked_until.is_not(None) & (StaffUser.locked_until <= now)))
            .values(locked_at=now, locked_until=until, lock_count=previous + 1,
                    fail_login_count=0, session_generation=StaffUser.session_generation + 1))
        if result.rowcount != 1:  # another worker locked it first: nothing to record
            return False
        audit.record_event(audit.ACTION_LOCKED, "ab_user", user.id,
                           {"username": user.username, "failures": threshold,
                            "until": until.isoformat(), "lock": previous + 1},
                           actor=audit.Actor(None, user.username,
                                             ip if ip is not None else audit.current_actor().ip))
    session.refresh(user)
    return True


def register_successful_login(user: StaffUser) -> None:
    """A successful sign-in forgets an ended lock and the count of earlier locks (saved
    with FAB's login statistics, which FAB's own update_user_auth_stat commits)."""
    if user.locked_at is not None or user.lock_count:
        user.locked_at = None
        user.locked_until = None
        user.lock_count = 0


@unit.operation
def lock_user(session, user: StaffUser, now: datetime,
              actor: audit.Actor | None = None) -> None:
    """An administrator locks an account until it is unlocked; its sessions end now. The
    lock and its audit record are one unit (``actor``: default, who is acting now)."""
    user.locked_at = now
    user.locked_until = None
    user.session_generation = StaffUser.session_generation + 1
    session.flush()
    audit.record_event(audit.ACTION_LOCKED, "ab_user", user.id,
                       {"username": user.username, "by_administrator": True}, actor=actor)


@unit.operation
def unlock_user(session, user: StaffUser, actor: audit.Actor | None = None) -> None:
    """An administrator (or `users unlock` on the command line) lifts the lock and clears
    the failure count; the change and its audit record are one unit."""
    user.locked_at = None
    user.locked_until = None
    user.lock_count = 0
    user.fail_login_count = 0
    session.flush()
    audit.record_event(audit.ACTION_UNLOCKED, "ab_user", user.id, {"username": user.username},
                       actor=actor)


# --- every path that deactivates an account or sets its password ends its sessions ----------
def _bump(target: StaffUser) -> None:
    if not inspect(target).has_identity:  # a new account has no sessions yet
        return
    target.session_generation = StaffUser.session_generation + 1  # evaluated at the flush


@event.listens_for(StaffUser.active, "set", active_history=True)
def _on_active_set(target, value, oldvalue, _initiator):
    if oldvalue not in (NO_VALUE, None) and bool(oldvalue) and not value:
        _bump(target)


@event.listens_for(StaffUser.password, "set", active_history=True)
def _on_password_set(target, value, oldvalue, _initiator):
    if oldvalue not in (NO_VALUE, None) and value != oldvalue:
        _bump(target)
