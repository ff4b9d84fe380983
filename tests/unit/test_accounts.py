"""Account locks as units of work (issue 11 §1): the change and its audit record are kept
or lost together; the lock's length comes from the typed settings."""
import pytest
from sqlalchemy import select

from app import settings
from app.models.audit import AuditLog
from app.models.user import StaffUser
from app.services import accounts, audit, unit


def _locks(db, username):
    return [r for r in db.execute(select(AuditLog).where(AuditLog.action.in_(
        (audit.ACTION_LOCKED, audit.ACTION_UNLOCKED))).order_by(AuditLog.id)).scalars()
        if username in (r.changes or "")]


def test_an_administrators_lock_and_its_record_are_one_unit(app, db, users, clock):
    ref = users.create("clerk", username="unit1")
    with app.app_context():
        audit.act_as("cli:test")
        user = db.get(StaffUser, ref.id)
        with pytest.raises(RuntimeError):
            with unit.transaction(db):
                accounts.lock_user(db, user, clock())
                raise RuntimeError("the larger operation failed")
        db.expire_all()
        assert db.get(StaffUser, ref.id).locked_at is None and _locks(db, "unit1") == []

        accounts.lock_user(db, db.get(StaffUser, ref.id), clock())
        db.expire_all()
        assert db.get(StaffUser, ref.id).locked_now(clock())
        accounts.unlock_user(db, db.get(StaffUser, ref.id),
                             actor=audit.Actor(None, "cli:operator", None))
        db.expire_all()
        assert not db.get(StaffUser, ref.id).locked_now(clock())
    records = _locks(db, "unit1")
    assert [(r.action, r.username) for r in records] == [
        (audit.ACTION_LOCKED, "cli:test"), (audit.ACTION_UNLOCKED, "cli:operator")]


def test_the_lock_length_comes_from_the_settings(app):
    with app.app_context():
        settings.configure(app, LOGIN_LOCK_MINUTES=10, LOGIN_LOCK_MAX_MINUTES=35)
        assert [accounts.lock_minutes(n) for n in range(4)] == [10, 20, 35, 35]
