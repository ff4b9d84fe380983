"""Explicit audit events are units of work (issue 11 §1): kept at once on their own, kept
or lost with the operation they are recorded in."""
import json

import pytest
from sqlalchemy import select

from app.models.audit import AuditLog
from app.services import audit, unit


def _records(db, **filters):
    query = select(AuditLog).order_by(AuditLog.id)
    for key, value in filters.items():
        query = query.where(getattr(AuditLog, key) == value)
    return list(db.execute(query).scalars())


def test_an_event_on_its_own_is_kept_at_once(app, db):
    with app.app_context():
        audit.act_as("cli:test")
        audit.record_event(audit.ACTION_PRINT, "notice", None, {"pages": 1})
        assert not unit.in_transaction(db)
    with db.get_bind().connect() as other:  # another connection sees it: committed
        rows = other.execute(select(AuditLog.username, AuditLog.changes)
                             .where(AuditLog.action == "print")).all()
    assert [(name, json.loads(changes)) for name, changes in rows] == [("cli:test", {"pages": 1})]


def test_an_event_inside_an_operation_commits_or_rolls_back_with_it(app, db):
    with app.app_context():
        audit.act_as("cli:test")
        with pytest.raises(RuntimeError):
            with unit.transaction(db):
                audit.record_event(audit.ACTION_EXPORT, "notice", None, {"kept": False})
                raise RuntimeError("the operation failed")
        with unit.transaction(db):
            audit.record_event(audit.ACTION_EXPORT, "notice", None, {"kept": True})
            assert unit.in_transaction(db)  # joined: the outer unit commits
    assert [json.loads(r.changes) for r in _records(db, action="export")] == [{"kept": True}]
    assert audit.verify_chain(db).ok


def test_the_old_commit_flag_is_accepted_and_the_unit_decides(app, db):
    with app.app_context():
        audit.act_as("cli:test")
        audit.record_event(audit.ACTION_DOWNLOAD, "notice", None, None, commit=False)
    db.rollback()  # nothing of the event was left to the caller
    assert len(_records(db, action="download")) == 1
