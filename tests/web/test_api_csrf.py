"""The REST API takes the browser's session cookie (the desk and scripts in the staff's
browser), so a write signed only by that cookie must carry the CSRF token, as the screens'
forms do: a forged cross-site POST/PUT/DELETE changes nothing. A JWT needs no token."""
import re

import pytest

from app.models.card import Card
from app.services import cards as svc
from tests.conftest import login
from tests.factories import make_card


@pytest.fixture
def csrf_app(app, app_config):
    """The same database as ``app`` (its teardown wipes the data), CSRF switched on."""
    from app import create_app

    return create_app({**app_config, "WTF_CSRF_ENABLED": True})


def _token_from(client, url):
    page = client.get(url).get_data(as_text=True)
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)


@pytest.fixture
def cookie_clerk(csrf_app, users):
    users.create("clerk", username="csrf_clerk")
    client = csrf_app.test_client()
    token = _token_from(client, "/login/")
    response = client.post("/login/", data={"username": "csrf_clerk",
                                            "password": users.password, "csrf_token": token})
    assert response.status_code == 302 and "/login" not in response.headers["Location"]
    return client


def test_cookie_writes_without_the_token_are_refused_and_change_nothing(cookie_clerk, db):
    card = make_card(db, notes="元のメモ")
    put = cookie_clerk.put(f"/api/v1/card/{card.id}", json={"notes": "forged"})
    assert put.status_code == 400 and "何も変更していません" in put.json["message"]
    post = cookie_clerk.post(f"/api/v1/card/{card.id}/transition", json={"to": "setup"})
    assert post.status_code == 400
    form_post = cookie_clerk.post(f"/api/v1/card/{card.id}/transition",
                                  data={"to": "setup"})  # what a cross-site <form> sends
    assert form_post.status_code == 400
    wrong = cookie_clerk.put(f"/api/v1/card/{card.id}", json={"notes": "forged"},
                             headers={"X-CSRFToken": "not-the-token"})
    assert wrong.status_code == 400
    db.expire_all()
    unchanged = db.get(Card, card.id)
    assert unchanged.notes == "元のメモ" and unchanged.state == card.state
    # Reading with the cookie needs no token.
    assert cookie_clerk.get(f"/api/v1/card/{card.id}").status_code == 200


def test_cookie_writes_with_the_token_work(cookie_clerk, db):
    card = make_card(db, notes="元のメモ")
    token = _token_from(cookie_clerk, "/cardmodelview/add")
    put = cookie_clerk.put(f"/api/v1/card/{card.id}", json={"notes": "窓口で確認"},
                           headers={"X-CSRFToken": token})
    assert put.status_code == 200, put.json
    post = cookie_clerk.post(f"/api/v1/card/{card.id}/transition", json={"to": "setup"},
                             headers={"X-CSRFToken": token})
    assert post.status_code == 200 and post.json["state"] == svc.SETUP
    db.expire_all()
    assert db.get(Card, card.id).notes == "窓口で確認"


def test_jwt_writes_need_no_csrf_token(csrf_app, users, db):
    users.create("clerk", username="jwt_clerk")
    card = make_card(db)
    client = csrf_app.test_client()
    response = client.post("/api/v1/security/login", json={
        "username": "jwt_clerk", "password": users.password, "provider": "db"})
    assert response.status_code == 200
    bearer = {"Authorization": f"Bearer {response.json['access_token']}"}
    ok = client.post(f"/api/v1/card/{card.id}/transition", headers=bearer, json={"to": "setup"})
    assert ok.status_code == 200 and ok.json["state"] == svc.SETUP


def test_anonymous_write_is_still_unauthorised(csrf_app, db):
    card = make_card(db)
    response = csrf_app.test_client().put(f"/api/v1/card/{card.id}", json={"notes": "x"})
    assert response.status_code == 401
    db.expire_all()
    assert db.get(Card, card.id).notes != "x"


def test_reservation_check_in_with_the_cookie_needs_the_token(cookie_clerk):
    # No such booking: with the token FAB answers 404; without it the guard refuses first.
    assert cookie_clerk.post("/api/v1/reservation/999999/check-in").status_code == 400
    token = _token_from(cookie_clerk, "/cardmodelview/add")
    assert cookie_clerk.post("/api/v1/reservation/999999/check-in",
                             headers={"X-CSRFToken": token}).status_code == 404
