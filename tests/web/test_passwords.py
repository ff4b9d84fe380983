"""The password policy on every path that sets a password: screens, our CLI, FAB's CLI."""
from tests.conftest import text_of


def _user_form(**overrides):
    data = {"first_name": "花子", "last_name": "山田", "username": "hanako", "active": "y",
            "email": "hanako@example.jp", "roles": "", "password": "short1",
            "conf_password": "short1"}
    data.update(overrides)
    return data


def test_add_user_screen_refuses_a_weak_password(app, login_as):
    admin = login_as("sysadmin")
    with app.app_context():
        role_id = app.appbuilder.sm.find_role(app.config["ROLE_CLERK"]).id
    response = admin.post("/users/add", data=_user_form(roles=str(role_id)), follow_redirects=True)
    assert "12 文字以上にしてください" in text_of(response)
    contains_id = "hanako2026pass"
    response = admin.post("/users/add", data=_user_form(roles=str(role_id), password=contains_id,
                                                        conf_password=contains_id),
                          follow_redirects=True)
    assert "ユーザーIDを含めないでください" in text_of(response)
    with app.app_context():
        assert app.appbuilder.sm.find_user(username="hanako") is None
    good = "Harukaze2026x"
    admin.post("/users/add", data=_user_form(roles=str(role_id), password=good, conf_password=good))
    with app.app_context():
        assert app.appbuilder.sm.find_user(username="hanako") is not None


def test_reset_password_screen_refuses_a_weak_password(app, login_as, users):
    target = users.create("clerk", username="reset1")
    admin = login_as("sysadmin")
    response = admin.post(f"/resetpassword/form?pk={target.id}",
                          data={"password": "reset1reset1x", "conf_password": "reset1reset1x"},
                          follow_redirects=True)
    assert "ユーザーIDを含めないでください" in text_of(response)


def test_own_password_change_follows_the_policy(login_as):
    client = login_as("clerk", username="jibun1")
    response = client.post("/resetmypassword/form",
                           data={"password": "abcdefghijkl", "conf_password": "abcdefghijkl"},
                           follow_redirects=True)
    assert "数字を1文字以上含めてください" in text_of(response)


def test_cli_users_create_applies_the_policy(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "create", "--username", "cli1", "--role", "窓口職員",
                                 "--email", "cli1@example.jp", "--password", "weak"])
    assert result.exit_code == 2 and "12 文字以上" in result.output
    result = runner.invoke(args=["users", "create", "--username", "cli1", "--role", "窓口職員",
                                 "--email", "cli1@example.jp", "--password", "Goodpass2026z"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert app.appbuilder.sm.find_user(username="cli1") is not None


def test_fab_create_admin_cannot_bypass_the_policy(app):
    runner = app.test_cli_runner()
    runner.invoke(args=["fab", "create-admin", "--username", "fabadmin", "--firstname", "a",
                        "--lastname", "b", "--email", "fab@example.jp", "--password", "admin"])
    with app.app_context():
        assert app.appbuilder.sm.find_user(username="fabadmin") is None


def test_sm_reset_password_refuses_a_weak_password(app, users):
    import pytest

    from app.services.errors import PasswordPolicyError

    target = users.create("clerk", username="reset2")
    with app.test_request_context():
        with pytest.raises(PasswordPolicyError):
            app.appbuilder.sm.reset_password(target.id, "weak")
