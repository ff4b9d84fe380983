"""`users ensure-admin`: the first administrator with a generated password shown once
(app/services/passwords.generate_password, shared with the demo users), recorded as the
CLI operator; a second run changes nothing."""
import re

import pytest
from sqlalchemy import select

from app.models.audit import AuditLog
from app.services.passwords import password_problems
from tests.conftest import login


def test_ensure_admin_generates_a_password_that_meets_the_policy(app, db, monkeypatch):
    import getpass

    monkeypatch.setattr(getpass, "getuser", lambda: "operator9")
    for name in ("ADMIN_PASSWORD", "ADMIN_EMAIL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ADMIN_USERNAME", "firstadmin")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "ensure-admin"])
    assert result.exit_code == 0, result.output
    password = re.search(r"password '([^']+)'", result.output).group(1)
    with app.test_request_context():
        assert password_problems(password, "firstadmin") == []
    signed_in = login(app.test_client(), "firstadmin", password)
    assert signed_in.status_code == 302 and "/login" not in signed_in.headers["Location"]
    created = db.execute(select(AuditLog).where(AuditLog.target_table == "ab_user",
                                                AuditLog.action == "create")
                         .order_by(AuditLog.id)).scalars().all()[-1]
    assert created.username == "cli:operator9"

    again = runner.invoke(args=["users", "ensure-admin"])
    assert again.exit_code == 0 and "exists" in again.output and password not in again.output


def test_a_role_the_city_does_not_use_is_refused_at_every_entry_point(app, db):
    """FAB's "Public" (visitors who are not signed in) is no staff role: the accounts
    service refuses it, so the CLI refuses it as the user screen does."""
    from app.services import accounts
    from app.services.errors import UnknownRoleError

    with app.app_context():
        assert "Public" not in accounts.city_role_names()
        with pytest.raises(UnknownRoleError):
            accounts.create_user("public01", "Kofu-Desk-2026!x", ["Public"], "太郎", "試験",
                                 "public01@example.jp")
        assert app.appbuilder.sm.find_user(username="public01") is None
    result = app.test_cli_runner().invoke(args=[
        "users", "create", "--username", "public02", "--role", "Public",
        "--email", "public02@example.jp", "--first-name", "太郎", "--last-name", "試験"],
        input="Kofu-Desk-2026!x\nKofu-Desk-2026!x\n")
    assert result.exit_code != 0
    with app.app_context():
        assert app.appbuilder.sm.find_user(username="public02") is None
