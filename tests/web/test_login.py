"""Sign-in protection: lockout, rate limit, idle timeout, CSRF, audit of each event."""
import pytest
from sqlalchemy import select

from app.models.audit import AuditLog
from tests.conftest import login, text_of


def _actions(db, username=None):
    query = select(AuditLog).order_by(AuditLog.id)
    if username:
        query = query.where(AuditLog.username == username)
    return [r.action for r in db.execute(query).scalars()]


def test_login_page_is_japanese(client):
    page = text_of(client.get("/login/"))
    assert "ログイン" in page and "パスワード" in page


def test_successful_login_and_logout_are_audited(app, client, users, db):
    user = users.create("clerk", username="yamada")
    assert login(client, "yamada", users.password).status_code == 302
    client.post("/logout/")
    actions = _actions(db, "yamada")
    assert actions[-2:] == ["login", "logout"]
    row = db.execute(select(AuditLog).where(AuditLog.action == "login")).scalar_one()
    assert row.user_id == user.id and row.ip == "127.0.0.1"


def test_five_failures_lock_the_account_even_against_the_right_password(app, client, users, db):
    users.create("clerk", username="suzuki")
    for _ in range(5):
        login(client, "suzuki", "Wrongpass2026x")
    response = login(client, "suzuki", users.password, follow=True)
    assert "ログインできませんでした" in text_of(response)
    assert client.get("/").status_code == 302  # still not signed in
    actions = _actions(db, "suzuki")
    assert actions.count("login_failed") == 6 and actions.count("account_locked") == 1
    with app.app_context():
        assert app.appbuilder.sm.find_user(username="suzuki").locked_at is not None


def test_four_failures_then_success_resets_the_count(app, client, users):
    users.create("clerk", username="kato")
    for _ in range(4):
        login(client, "kato", "Wrongpass2026x")
    assert "/login" not in login(client, "kato", users.password).headers["Location"]
    client.post("/logout/")
    for _ in range(4):
        login(client, "kato", "Wrongpass2026x")
    assert "/login" not in login(client, "kato", users.password).headers["Location"]


def test_admin_sees_the_lock_and_unlocks(app, users, db):
    locked = users.create("clerk", username="sato")
    victim = app.test_client()
    for _ in range(5):
        login(victim, "sato", "Wrongpass2026x")
    admin = app.test_client()
    users.create("sysadmin", username="root1")
    login(admin, "root1", users.password)
    listing = admin.get("/users/list/").get_data(as_text=True)
    assert "ロック日時" in listing and "2026-12-01 10:00" in listing
    response = admin.post("/users/action_post", data={"action": "unlock", "rowid": [locked.id]},
                          follow_redirects=True)
    assert "ロックを解除しました" in text_of(response)
    assert "/login" not in login(victim, "sato", users.password).headers["Location"]
    assert "account_unlocked" in _actions(db, "root1")


def test_unknown_user_failure_is_audited(client, db):
    login(client, "nobody", "Whatever2026x")
    assert _actions(db, "nobody") == ["login_failed"]


def test_login_form_is_rate_limited(app_config, app, client):
    statuses = [login(client, "someone", f"Wrong{i}pass2026").status_code for i in range(25)]
    assert 429 in statuses
    assert statuses.index(429) == 20  # "20 per minute"


def test_idle_session_times_out(login_as, clock, db):
    client = login_as("clerk", username="idle1")
    assert client.get("/").status_code == 200
    clock.advance(minutes=29)
    assert client.get("/").status_code == 200
    clock.advance(minutes=31)
    response = client.get("/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert client.get("/").status_code == 302  # really signed out
    row = db.execute(select(AuditLog).where(AuditLog.action == "logout")).scalars().all()[-1]
    assert "idle" in row.changes


def test_session_cookie_flags(app_config, users, _schema):
    from app import create_app

    app = create_app({**app_config, "SESSION_COOKIE_SECURE": True})
    users.app = app
    users.create("clerk", username="cookie1")
    client = app.test_client()
    response = login(client, "cookie1", users.password)
    cookie = response.headers.get("Set-Cookie")
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=Lax" in cookie


@pytest.fixture
def csrf_app(app_config, _schema):
    from app import create_app

    return create_app({**app_config, "WTF_CSRF_ENABLED": True})


def test_csrf_is_required_on_forms(csrf_app, users):
    users.app = csrf_app
    users.create("manager", username="csrf1")
    client = csrf_app.test_client()
    assert login(client, "csrf1", users.password).status_code == 400  # no token
    page = client.get("/login/").get_data(as_text=True)
    import re

    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    response = client.post("/login/", data={"username": "csrf1", "password": users.password,
                                            "csrf_token": token})
    assert response.status_code == 302 and "/login" not in response.headers["Location"]
    assert client.post("/noticemodelview/add", data={"title": "x"}).status_code == 400


def _api_login(client, username, password):
    return client.post("/api/v1/security/login",
                       json={"username": username, "password": password, "provider": "db"})


def test_api_login_shares_the_lockout(client, users, db):
    users.create("clerk", username="api1")
    assert _api_login(client, "api1", users.password).status_code == 200
    for _ in range(5):
        assert _api_login(client, "api1", "Wrongpass2026x").status_code == 401
    assert _api_login(client, "api1", users.password).status_code == 401
    assert "account_locked" in _actions(db, "api1")


def test_api_login_is_rate_limited(client):
    statuses = [_api_login(client, "someone", f"Wrong{i}pass2026").status_code for i in range(22)]
    assert statuses[:20] == [401] * 20 and statuses[20] == 429
