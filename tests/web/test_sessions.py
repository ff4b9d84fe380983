"""Sign-in and sessions (issue 10, part 2): the lock whatever identifier was typed, locks
that end and grow, the administrator's lock, one answer for locked and unknown accounts,
sessions and JWTs that end with a lock, a deactivation or a new password, a sign-in limit
shared by every instance, the current password for a change, sign-out by POST."""
import logging
import re
from datetime import timedelta

import jwt as pyjwt
import pytest
from sqlalchemy import select

from app import settings
from app.models.audit import AuditLog
from tests.conftest import IsolatedClient, login, text_of

WRONG = "Wrongpass2026x"
NEW_PASSWORD = "Harukaze2026x"


def _actions(db, username=None):
    query = select(AuditLog).order_by(AuditLog.id)
    if username:
        query = query.where(AuditLog.username == username)
    return [r.action for r in db.execute(query).scalars()]


def _api_login(client, username, password, refresh=False):
    return client.post("/api/v1/security/login",
                       json={"username": username, "password": password, "provider": "db",
                             "refresh": refresh})


def _signed_in(client) -> bool:
    return client.get("/").status_code == 200


def _user(app, username):
    with app.app_context():
        user = app.appbuilder.sm.find_user(username=username)
        app.appbuilder.session.expunge(user)
        return user


def _admin(app, users, username="root9"):
    users.create("sysadmin", username=username)
    admin = app.test_client()
    assert login(admin, username, users.password).status_code == 302
    return admin


# --- the lock, whatever identifier was typed ------------------------------------------------
def test_failures_through_the_email_address_lock_the_account(app, client, users, db):
    users.create("clerk", username="mail1")
    for _ in range(5):
        login(client, "mail1@example.jp", WRONG)
    assert "account_locked" in _actions(db, "mail1")
    for identifier in ("mail1@example.jp", "mail1"):
        response = login(client, identifier, users.password)
        assert "/login" in response.headers["Location"]
    assert not _signed_in(client)


def test_failures_by_user_id_and_email_count_together(app, client, users):
    users.create("clerk", username="mail2")
    for identifier in ("mail2", "mail2@example.jp", "mail2", "mail2@example.jp", "mail2"):
        login(client, identifier, WRONG)
    assert _user(app, "mail2").locked_at is not None
    assert "/login" in login(client, "mail2@example.jp", users.password).headers["Location"]


def test_the_api_login_is_locked_through_the_email_address_too(app, client, users, db):
    users.create("clerk", username="mail3")
    for _ in range(5):
        assert _api_login(client, "mail3@example.jp", WRONG).status_code == 401
    assert _api_login(client, "mail3@example.jp", users.password).status_code == 401
    assert _api_login(client, "mail3", users.password).status_code == 401
    assert "account_locked" in _actions(db, "mail3")


def test_a_locked_account_is_not_active(app, client, users):
    users.create("clerk", username="inact1")
    for _ in range(5):
        login(client, "inact1", WRONG)
    with app.app_context():
        user = app.appbuilder.sm.find_user(username="inact1")
        assert user.active and not user.is_active


# --- locks after failures end, and grow with repeats ----------------------------------------
def test_the_lock_after_failures_ends_after_the_configured_time(app, client, users, clock):
    users.create("clerk", username="temp1")
    for _ in range(5):
        login(client, "temp1", WRONG)
    user = _user(app, "temp1")
    assert user.locked_until - user.locked_at == timedelta(minutes=15)
    clock.advance(minutes=14)
    assert "/login" in login(client, "temp1", users.password).headers["Location"]
    clock.advance(minutes=2)
    assert "/login" not in login(client, "temp1", users.password).headers["Location"]
    user = _user(app, "temp1")
    assert user.locked_at is None and user.lock_count == 0


def test_each_further_lock_lasts_longer_until_a_successful_sign_in(app, client, users, clock):
    users.create("clerk", username="temp2")
    durations = []
    for _ in range(3):
        for _ in range(5):
            login(client, "temp2", WRONG)
        user = _user(app, "temp2")
        durations.append(user.locked_until - user.locked_at)
        clock.set(user.locked_until + timedelta(seconds=1))
    assert durations == [timedelta(minutes=15), timedelta(minutes=30), timedelta(minutes=60)]
    assert "/login" not in login(client, "temp2", users.password).headers["Location"]
    client.post("/logout/")
    for _ in range(5):
        login(client, "temp2", WRONG)
    user = _user(app, "temp2")
    assert user.locked_until - user.locked_at == timedelta(minutes=15)  # counted afresh


def test_the_lock_time_is_capped(app_config, app, client, users, clock):
    settings.configure(app, LOGIN_LOCK_MINUTES=15, LOGIN_LOCK_MAX_MINUTES=40)
    users.create("clerk", username="temp3")
    for _ in range(3):
        for _ in range(5):
            login(client, "temp3", WRONG)
        user = _user(app, "temp3")
        clock.set(user.locked_until + timedelta(seconds=1))
    assert user.locked_until - user.locked_at == timedelta(minutes=40)


def test_an_administrators_lock_lasts_until_unlocked(app, users, clock, db):
    target = users.create("clerk", username="perm1")
    admin = _admin(app, users)
    response = admin.post("/users/action_post", data={"action": "lock", "rowid": [target.id]},
                          follow_redirects=True)
    assert "1 件のアカウントをロックしました" in text_of(response)
    assert "account_locked" in _actions(db, "root9")
    listing = text_of(admin.get("/users/list/"))
    assert "管理者が解除するまでロック中" in listing
    victim = app.test_client()
    clock.advance(days=1)
    assert "/login" in login(victim, "perm1", users.password).headers["Location"]
    admin = app.test_client()  # the first session timed out meanwhile
    login(admin, "root9", users.password)
    admin.post("/users/action_post", data={"action": "unlock", "rowid": [target.id]})
    assert "/login" not in login(victim, "perm1", users.password).headers["Location"]


def test_an_administrator_cannot_lock_their_own_account(app, users):
    admin = _admin(app, users, "root8")
    me = _user(app, "root8")
    response = admin.post("/users/action_post", data={"action": "lock", "rowid": [me.id]},
                          follow_redirects=True)
    assert "ご自身のアカウントはロックできません" in text_of(response)
    assert _user(app, "root8").locked_at is None and _signed_in(admin)


def test_a_clerk_cannot_lock_accounts(app, users, login_as):
    target = users.create("clerk", username="perm2")
    clerk = login_as("clerk")
    clerk.post("/users/action_post", data={"action": "lock", "rowid": [target.id]})
    assert _user(app, "perm2").locked_at is None


# --- locked and unknown accounts answer alike ---------------------------------------------
def test_locked_and_unknown_accounts_answer_alike(app, users):
    users.create("clerk", username="same1")
    attacker = app.test_client()
    for _ in range(5):
        login(attacker, "same1", WRONG)
    answers = {}
    for name, identifier, password in (("locked", "same1", users.password),
                                       ("locked-wrong", "same1", WRONG),
                                       ("unknown", "nosuchuser", users.password),
                                       ("wrong", "same2", WRONG)):
        if name == "wrong":
            users.create("clerk", username="same2")
        client = app.test_client()
        first = login(client, identifier, password)
        page = text_of(client.get(first.headers["Location"]))
        api = _api_login(app.test_client(), identifier, password)
        answers[name] = (first.status_code, first.headers["Location"], page,
                         api.status_code, api.get_data())
    assert answers["locked"] == answers["unknown"] == answers["locked-wrong"] == answers["wrong"]
    assert "ログインできませんでした" in answers["locked"][2]
    assert "管理者に解除" not in answers["locked"][2] and "ロックされています" not in answers["locked"][2]


# --- sessions and JWTs end with a lock, a deactivation or a new password --------------------
def _deactivate(app, admin, target):
    with app.app_context():
        role_id = app.appbuilder.sm.find_role(app.config["ROLE_CLERK"]).id
    response = admin.post(f"/users/edit/{target.id}", data={
        "first_name": "太郎", "last_name": "試験", "username": target.username,
        "email": f"{target.username}@example.jp", "roles": str(role_id)})
    assert response.status_code == 302
    assert _user(app, target.username).active is False


def _lock(app, admin, target):
    admin.post("/users/action_post", data={"action": "lock", "rowid": [target.id]})
    assert _user(app, target.username).locked_at is not None


def _reset(app, admin, target):
    response = admin.post(f"/resetpassword/form?pk={target.id}",
                          data={"password": NEW_PASSWORD, "conf_password": NEW_PASSWORD})
    assert response.status_code == 302


def _failures(app, admin, target):
    attacker = app.test_client()
    for _ in range(5):
        login(attacker, target.username, WRONG)
    assert _user(app, target.username).locked_at is not None


CHANGES = {"lock": _lock, "deactivate": _deactivate, "reset password": _reset,
           "lock after failures": _failures}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_change_of_the_account_ends_its_browser_sessions(app, users, change):
    target = users.create("clerk", username="sess1")
    victim = app.test_client()
    assert login(victim, "sess1", users.password).status_code == 302
    assert _signed_in(victim)
    admin = _admin(app, users)
    CHANGES[change](app, admin, target)
    response = victim.get("/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert _signed_in(admin)  # the administrator's own session goes on


def test_an_edit_that_keeps_the_account_active_keeps_its_sessions(app, users):
    target = users.create("clerk", username="sess2")
    victim = app.test_client()
    login(victim, "sess2", users.password)
    admin = _admin(app, users)
    with app.app_context():
        role_id = app.appbuilder.sm.find_role(app.config["ROLE_CLERK"]).id
    admin.post(f"/users/edit/{target.id}", data={
        "first_name": "次郎", "last_name": "試験", "username": "sess2", "active": "y",
        "email": "sess2@example.jp", "roles": str(role_id)})
    assert _user(app, "sess2").first_name == "次郎"
    assert _signed_in(victim)


def _tokens(app, username, password):
    response = _api_login(app.test_client(), username, password, refresh=True)
    assert response.status_code == 200, response.get_data()
    body = response.get_json()
    return body["access_token"], body["refresh_token"]


def _bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_change_of_the_account_refuses_its_jwts(app, users, change):
    target = users.create("clerk", username="jwt1")
    access, refresh = _tokens(app, "jwt1", users.password)
    api = app.test_client()
    assert api.get("/api/v1/card/", headers=_bearer(access)).status_code == 200
    assert api.post("/api/v1/security/refresh", headers=_bearer(refresh)).status_code == 200
    admin = _admin(app, users)
    CHANGES[change](app, admin, target)
    assert api.get("/api/v1/card/", headers=_bearer(access)).status_code == 401
    assert api.post("/api/v1/security/refresh", headers=_bearer(refresh)).status_code == 401


def test_new_tokens_after_a_password_reset_work(app, users):
    target = users.create("clerk", username="jwt2")
    admin = _admin(app, users)
    _reset(app, admin, target)
    access, refresh = _tokens(app, "jwt2", NEW_PASSWORD)
    api = app.test_client()
    assert api.get("/api/v1/card/", headers=_bearer(access)).status_code == 200
    fresh = api.post("/api/v1/security/refresh", headers=_bearer(refresh))
    assert fresh.status_code == 200
    assert api.get("/api/v1/card/",
                   headers=_bearer(fresh.get_json()["access_token"])).status_code == 200


def test_tokens_are_short_lived(app, users):
    users.create("clerk", username="jwt3")
    access, refresh = _tokens(app, "jwt3", users.password)
    for token, seconds in ((access, 15 * 60), (refresh, 8 * 60 * 60)):
        claims = pyjwt.decode(token, options={"verify_signature": False})
        assert claims["exp"] - claims["iat"] == seconds
    assert app.config["JWT_ACCESS_TOKEN_EXPIRES"] == timedelta(minutes=15)
    assert app.config["JWT_REFRESH_TOKEN_EXPIRES"] <= timedelta(hours=8)


# --- the sign-in limit, shared by every instance -------------------------------------------
@pytest.fixture
def second_app(app, app_config):
    from app import create_app

    other = create_app(dict(app_config))
    other.test_client_class = IsolatedClient
    yield other
    with other.app_context():
        other.appbuilder.session.remove()
        other.appbuilder.session.get_bind().dispose()


def test_two_app_instances_share_the_sign_in_limit(app, second_app):
    first, second = app.test_client(), second_app.test_client()
    statuses = []
    for i in range(11):
        statuses.append(login(first, "someone", f"Wrong{i}pass2026").status_code)
        statuses.append(login(second, "someone", f"Wrong{i}pass2026").status_code)
    assert statuses[:20] == [302] * 20
    assert statuses[20:] == [429, 429]
    assert _api_login(second_app.test_client(), "someone", WRONG).status_code == 429


def test_the_sign_in_limit_ends_with_its_window(app, client, clock):
    for i in range(20):
        login(client, "someone", f"Wrong{i}pass2026")
    response = login(client, "someone", WRONG)
    assert response.status_code == 429
    assert "試行回数が多すぎます" in text_of(response) and "10:01以降" in text_of(response)
    clock.advance(seconds=61)
    assert login(client, "someone", WRONG).status_code == 302


def test_a_warning_when_several_workers_share_memory_storage(app, caplog):
    from app.security import warn_about_per_worker_limits

    gunicorn = {"SERVER_SOFTWARE": "gunicorn/23.0.0", "WEB_CONCURRENCY": "2"}
    with caplog.at_level(logging.WARNING):
        assert warn_about_per_worker_limits(app, gunicorn)
    assert "memory://" in caplog.text
    assert not warn_about_per_worker_limits(app, {**gunicorn, "WEB_CONCURRENCY": "1"})
    assert not warn_about_per_worker_limits(app, {})
    app.config["RATELIMIT_STORAGE_URI"] = "redis://127.0.0.1:6379"
    assert not warn_about_per_worker_limits(app, gunicorn)


def test_make_run_tells_the_app_its_worker_count():
    import os

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "Makefile")) as f:
        makefile = f.read()
    run = makefile.split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert "WEB_CONCURRENCY=$(WORKERS)" in run and "--workers $(WORKERS)" in run


# --- changing one's own password asks for the current one ----------------------------------
def test_changing_ones_password_needs_the_current_one(app, users, login_as, db):
    client = login_as("clerk", username="own1")
    before = _user(app, "own1").password
    response = client.post("/resetmypassword/form", data={
        "current_password": WRONG, "password": NEW_PASSWORD, "conf_password": NEW_PASSWORD})
    assert response.status_code == 200
    assert "現在のパスワードが正しくありません" in text_of(response)
    assert _user(app, "own1").password == before
    assert "password_change_failed" in _actions(db, "own1")
    response = client.post("/resetmypassword/form", data={
        "password": NEW_PASSWORD, "conf_password": NEW_PASSWORD})
    assert _user(app, "own1").password == before  # no current password: nothing changes
    assert "現在のパスワード" in text_of(client.get("/resetmypassword/form"))


def test_a_password_change_keeps_this_session_and_ends_the_others(app, users, login_as):
    client = login_as("clerk", username="own2")
    other = app.test_client()
    login(other, "own2", users.password)
    response = client.post("/resetmypassword/form", data={
        "current_password": users.password, "password": NEW_PASSWORD,
        "conf_password": NEW_PASSWORD})
    assert response.status_code == 302
    assert _signed_in(client)
    assert not _signed_in(other)
    assert "/login" not in login(app.test_client(), "own2", NEW_PASSWORD).headers["Location"]


# --- sign-out is a POST --------------------------------------------------------------------
def test_get_logout_does_not_sign_out(app, login_as, db):
    client = login_as("clerk", username="out1")
    page = client.get("/logout/")
    assert page.status_code == 200
    assert re.search(r'<form method="post" action="/logout/"', page.get_data(as_text=True))
    assert "ログアウト" in text_of(page)
    assert _signed_in(client)
    assert "logout" not in _actions(db, "out1")
    response = client.post("/logout/")
    assert response.status_code == 302
    assert not _signed_in(client)
    assert _actions(db, "out1")[-1] == "logout"


def test_the_menu_signs_out_with_a_post_form(login_as):
    client = login_as("clerk", username="out2")
    html = client.get("/").get_data(as_text=True)
    assert re.search(r'<button type="submit" form="logout-form"', html)
    assert re.search(r'<form id="logout-form" method="post" action="/logout/"', html)
    assert re.search(r'id="logout-form"[^>]*>\s*<input type="hidden" name="csrf_token"', html)
    assert 'href="/logout/"' not in html


def test_logout_needs_the_form_token(app_config, users, _schema):
    from app import create_app

    app = create_app({**app_config, "WTF_CSRF_ENABLED": True})
    app.test_client_class = IsolatedClient
    users.app = app
    users.create("clerk", username="out3")
    client = app.test_client()
    page = client.get("/login/").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    client.post("/login/", data={"username": "out3", "password": users.password,
                                 "csrf_token": token})
    assert _signed_in(client)
    assert client.post("/logout/").status_code == 400  # a forged cross-site POST
    assert _signed_in(client)
    html = client.get("/logout/").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    assert client.post("/logout/", data={"csrf_token": token}).status_code == 302
    assert not _signed_in(client)
    with app.app_context():
        app.appbuilder.session.remove()
        app.appbuilder.session.get_bind().dispose()
