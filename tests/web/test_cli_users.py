"""`users ensure-admin`: the first administrator with a generated password shown once
(app/services/passwords.generate_password, shared with the demo users), recorded as the
CLI operator; a second run changes nothing."""
import re

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
