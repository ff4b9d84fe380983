"""Flask-AppBuilder's own CRUD endpoints on every registered ModelView (ours and FAB's
security views): an unknown action, a download, junk page and filter arguments or an
out-of-range id are refused with 400/404 or dropped with a message, never a 500, and
nothing runs. Run on SQLite and PostgreSQL."""
import pytest
from flask_appbuilder.baseviews import BaseCRUDView

from app.models.card import Card
from app.services import cards as svc
from tests.conftest import text_of
from tests.factories import make_card, make_storage


@pytest.fixture
def app_config(app_config):
    # An exception becomes the 500 a visitor would see, instead of failing the request.
    return {**app_config, "PROPAGATE_EXCEPTIONS": False}


def crud_views(app):
    views = [v for v in app.appbuilder.baseviews if isinstance(v, BaseCRUDView)]
    names = {v.__class__.__name__ for v in views}
    assert {"CardModelView", "StoragePlaceModelView", "UserDBModelView",
            "RoleModelView"} <= names
    return views


def _client(request_role, login_as, client):
    return login_as(request_role) if request_role else client


@pytest.mark.parametrize("role", [None, "sysadmin", "manager"])
def test_unknown_action_and_download_are_refused_on_every_view(app, client, login_as, role):
    client = _client(role, login_as, client)
    answers = {}
    for view in crud_views(app):
        base = view.route_base
        answers[(base, "action_post")] = client.post(
            f"{base}/action_post", data={"action": "nonexistent", "rowid": "1"}).status_code
        answers[(base, "action")] = client.post(f"{base}/action/nonexistent/1").status_code
        answers[(base, "download")] = client.get(f"{base}/download/x.txt").status_code
        answers[(base, "show")] = client.get(f"{base}/show/99999999999999999999").status_code
        answers[(base, "delete")] = client.post(
            f"{base}/delete/99999999999999999999").status_code
    wrong = {k: v for k, v in answers.items()
             if v != {"action_post": 400, "action": 404, "download": 404, "show": 404,
                      "delete": 404}[k[1]]}
    assert wrong == {}


def test_unknown_action_says_so_in_japanese(login_as):
    client = login_as("manager")
    response = client.post("/cardmodelview/action_post",
                           data={"action": "nonexistent", "rowid": "1"})
    assert response.status_code == 400
    assert "この画面にはない操作です" in text_of(response)


def test_known_action_on_a_missing_row_changes_nothing(login_as, db):
    card = make_card(db)
    client = login_as("manager")
    response = client.post("/cardmodelview/action_post",
                           data={"action": "to_setup", "rowid": [str(card.id), "999999"]})
    assert response.status_code == 400
    assert "見つかりません" in text_of(response)
    db.expire_all()
    assert db.get(Card, card.id).state == card.state
    # The same action on rows that exist still works.
    response = client.post("/cardmodelview/action_post",
                           data={"action": "to_setup", "rowid": [str(card.id)]})
    assert response.status_code == 302
    db.expire_all()
    assert db.get(Card, card.id).state == svc.SETUP


def _junk_list_urls(view):
    base, name = view.route_base, view.__class__.__name__
    urls = [f"{base}/list/?_flt_0_state=", f"{base}/list/?page_size=-1",
            f"{base}/list/?order_column=nonexistent",
            f"{base}/list/?_oc_{name}=nonexistent&_od_{name}=asc",
            f"{base}/list/?psize_{name}=-1", f"{base}/list/?psize_{name}=abc",
            f"{base}/list/?psize_{name}=99999999", f"{base}/list/?page_{name}=abc",
            f"{base}/list/?page_{name}=-5", f"{base}/list/?page_{name}=99999999999999999999"]
    urls.append(f"{base}/list/?_flt_0_{(view.search_columns or ['x'])[0]}={'y' * 600}")
    for column in view.search_columns or []:
        for index in (0, 1, 7):
            for value in ("", "zz", "%00zz", "99999999999999999999", "2026-13-45"):
                urls.append(f"{base}/list/?_flt_{index}_{column}={value}")
    return urls


@pytest.mark.parametrize("role", ["sysadmin", "manager"])
def test_list_views_survive_junk_arguments(app, login_as, db, role):
    make_card(db, storage_place_id=make_storage(db).id)
    client = login_as(role)
    failures = []
    for view in crud_views(app):
        for url in _junk_list_urls(view):
            response = client.get(url)
            if response.status_code >= 500:
                failures.append(url)
            elif response.status_code == 302:
                # Junk is dropped and the list shows without it.
                again = client.get(response.headers["Location"])
                if again.status_code >= 500:
                    failures.append((url, again.status_code))
    assert failures == []


def test_junk_filter_is_dropped_with_a_message_and_valid_filters_kept(login_as, db):
    make_card(db, name="山田 花子")
    make_card(db, name="佐藤 次郎")
    client = login_as("manager")
    response = client.get("/cardmodelview/list/?_flt_0_name=山田&_flt_0_discard_hold=zz"
                          "&page_CardModelView=abc")
    assert response.status_code == 302
    location = response.headers["Location"]
    assert "discard_hold" not in location and "page_CardModelView" not in location
    assert "_flt_0_name" in location
    page = client.get(location)
    assert page.status_code == 200
    assert "山田 花子" in text_of(page) and "佐藤 次郎" not in text_of(page)
    assert "検索条件" in text_of(page)


def test_valid_search_is_not_redirected(login_as, db):
    make_card(db)
    client = login_as("manager")
    for url in ("/cardmodelview/list/?_flt_0_discard_hold=y",
                "/cardmodelview/list/?_flt_0_birth_date=1980-03-01",
                "/cardmodelview/list/?page_CardModelView=0&psize_CardModelView=25"):
        assert client.get(url).status_code == 200, url


API_JUNK = ["(page:-1,page_size:10)", "(page:99999999999999999999,page_size:10)",
            "(page_size:99999999999999999999)",
            "(filters:!((col:state,opr:eq,value:99999999999999999999)))",
            "(filters:!((col:name,opr:eq,value:!(1,2))))",
            "(filters:!((col:name,opr:ct,value:'a\x00b')))",
            "(filters:!((col:name,opr:eq,value:(a:1))))"]


def _bearer(client, users, role):
    user = users.create(role)
    response = client.post("/api/v1/security/login", json={
        "username": user.username, "password": users.password, "provider": "db"})
    return {"Authorization": f"Bearer {response.json['access_token']}"}


def test_rest_api_refuses_junk_arguments_and_ids(app, users, db):
    from urllib.parse import quote

    make_card(db, name="山田 花子")
    client = app.test_client()
    headers = _bearer(client, users, "manager")
    answers = {}
    for resource in ("card", "reservation"):
        for q in API_JUNK:
            answers[(resource, q)] = client.get(f"/api/v1/{resource}/?q={quote(q)}",
                                                headers=headers).status_code
        for method in ("get", "put", "delete"):
            answers[(resource, method)] = getattr(client, method)(
                f"/api/v1/{resource}/99999999999999999999", headers=headers,
                json={}).status_code
    wrong = {k: v for k, v in answers.items()
             if v != (404 if k[1] in ("get", "put", "delete") else 400)}
    assert wrong == {}
    # A sensible query still answers.
    good = client.get("/api/v1/card/?q=" + quote(
        "(page:0,page_size:10,filters:!((col:name,opr:ct,value:'山田')))"), headers=headers)
    assert good.status_code == 200 and good.json["count"] == 1
