import json

import pytest
from sqlalchemy import select, text

from app.models.audit import AuditLog
from app.services import audit
from tests.factories import make_notice


def _records(db, **filters):
    query = select(AuditLog).order_by(AuditLog.id)
    for key, value in filters.items():
        query = query.where(getattr(AuditLog, key) == value)
    return list(db.execute(query).scalars())


def test_create_update_delete_of_any_model_are_recorded_with_old_and_new(db, clock):
    notice = make_notice(db, clock(), title="旧件名")
    notice.title = "新件名"
    db.commit()
    db.delete(notice)
    db.commit()
    rows = _records(db, target_table="notice")
    assert [r.action for r in rows] == ["create", "update", "delete"]
    assert json.loads(rows[0].changes)["title"] == "旧件名"
    assert json.loads(rows[1].changes) == {"title": {"old": "旧件名", "new": "新件名"}}
    assert rows[1].target_id == str(notice.id)
    assert all(r.username == "system" for r in rows)


def test_passwords_never_reach_the_trail(app, users, db):
    user = users.create("clerk")
    created = _records(db, target_table="ab_user", action="create")[-1]
    assert "********" in created.changes
    assert "pbkdf2" not in created.changes and users.password not in created.changes
    assert created.target_id == str(user.id)


def test_role_changes_of_a_user_are_recorded(app, users, db):
    ref = users.create("viewer")
    sm = app.appbuilder.sm
    user = sm.get_user_by_id(ref.id)
    user.roles.append(sm.find_role(app.config["ROLE_CLERK"]))
    db.commit()
    row = _records(db, target_table="ab_user", action="update")[-1]
    assert json.loads(row.changes)["roles"]["added"] == [app.config["ROLE_CLERK"]]


def test_chain_verifies_when_untouched(app, db, clock):
    for i in range(3):
        make_notice(db, clock(), title=f"n{i}")
    assert audit.verify_chain(db).ok
    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "intact" in result.output


def _tamper_and_verify(app, db, statement, params):
    db.execute(text(statement), params)
    db.commit()
    return app.test_cli_runner().invoke(args=["audit", "verify"])


def test_verify_names_a_changed_record(app, db, clock):
    for i in range(4):
        make_notice(db, clock(), title=f"n{i}")
    target = _records(db)[2]
    result = _tamper_and_verify(app, db, "UPDATE audit_log SET username = 'intruder' WHERE id = :id",
                                {"id": target.id})
    assert result.exit_code == 1
    assert f"id={target.id}" in result.output


def test_verify_names_the_record_after_a_deleted_one(app, db, clock):
    for i in range(4):
        make_notice(db, clock(), title=f"n{i}")
    rows = _records(db)
    result = _tamper_and_verify(app, db, "DELETE FROM audit_log WHERE id = :id", {"id": rows[1].id})
    assert result.exit_code == 1
    assert f"id={rows[2].id}" in result.output


def test_verify_names_an_inserted_record(app, db, clock):
    for i in range(3):
        make_notice(db, clock(), title=f"n{i}")
    last = _records(db)[-1]
    # A forger who copies the previous hash still cannot compute the keyed hash.
    result = _tamper_and_verify(
        app, db,
        "INSERT INTO audit_log (created_at, username, action, prev_hash, row_hash) "
        "VALUES (:at, 'forger', 'delete', :prev, :hash)",
        {"at": last.created_at.replace(tzinfo=None), "prev": last.row_hash, "hash": "f" * 64})
    assert result.exit_code == 1
    forged = _records(db)[-1]
    assert f"id={forged.id}" in result.output


def test_explicit_events_carry_actor_and_ip(app, db):
    with app.test_request_context(environ_base={"REMOTE_ADDR": "10.1.2.3"}):
        audit.act_as("cli:test")
        audit.record_event(audit.ACTION_EXPORT, "notice", None, {"rows": 3})
    row = _records(db, action="export")[-1]
    assert row.ip == "10.1.2.3" and row.username == "cli:test"
    assert json.loads(row.changes) == {"rows": 3}


@pytest.mark.own_app  # adds a route
def test_a_request_nobody_can_be_named_for_is_never_recorded_as_anonymous(app, db):
    from app import settings

    @app.route("/_test/write", methods=["POST"])
    def _write():
        audit.record_event(audit.ACTION_EXPORT, "notice", None, {"rows": 1})
        return "ok"

    with pytest.raises(audit.UnresolvedActorError):  # strict in the tests
        app.test_client().post("/_test/write")
    settings.configure(app, AUDIT_STRICT_ACTOR=False)  # production: written as explicit
    assert app.test_client().post("/_test/write").status_code == 200
    assert _records(db, action="export")[-1].username == "unresolved:_write"
    assert not _records(db, username="anonymous")


def test_cli_and_jobs_outside_a_request(app, db):
    from flask import g

    with app.app_context():
        assert audit.current_actor().username == "system"
        audit.act_as(audit.cli_actor())
        assert audit.current_actor().username.startswith("cli:")
        g.pop("audit_actor")


def test_no_code_writes_anonymous_as_an_actor():
    """The word that hid who acted must not come back as a fallback anywhere in app/."""
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[2] / "app"
    offenders = [f"{path.relative_to(root.parent)}:{number}"
                 for path in root.rglob("*.py")
                 for number, line in enumerate(path.read_text("utf-8").splitlines(), 1)
                 if re.search(r"""["']anonymous["']""", line, re.IGNORECASE)]
    assert offenders == []


def test_a_user_id_typed_with_control_characters_is_recorded_on_one_line(app, db):
    """Outside testing: CR, LF and tab typed as a user ID at sign-in reached
    audit_log.username verbatim."""
    from sqlalchemy import select

    from app.models.audit import AuditLog
    from app.services import audit

    audit.record_event(audit.ACTION_LOGIN_FAILED, None, None, {"reason": "unknown user"},
                       actor=audit.Actor(None, "ab\r\nc\td\x00", None))
    name = db.execute(select(AuditLog.username).order_by(AuditLog.id.desc())).scalar()
    assert name == "ab\\r\\nc\\td\\x00"
    assert audit._printable("山田　太郎") == "山田　太郎"
    assert audit.verify_chain(db).ok
