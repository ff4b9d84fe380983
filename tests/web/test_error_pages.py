"""Error pages (issue 12 §1): every status on both sites, in Japanese and in English, in the
site's layout with a way back; a 500 carries a reference that is also in the log with the
traceback; the APIs keep answering JSON; no Werkzeug English page anywhere."""
import logging
import re
from datetime import datetime

import pytest
from flask import abort

from app.clock import JST
from tests.conftest import text_of

CODES = (400, 403, 404, 405, 500, 503)

# Werkzeug's own pages: none of these may reach a clerk or a resident.
WERKZEUG = ("You don't have the permission", "The requested URL was not found",
            "The method is not allowed", "The server encountered an internal error",
            "The browser (or proxy) sent a request", "The server is temporarily unable",
            "Internal Server Error", "Method Not Allowed", "Service Unavailable",
            "Bad Request", "Forbidden", "Not Found")

TITLES = {
    ("staff", "ja"): {400: "処理できませんでした", 403: "この画面を開く権限がありません",
                      404: "ページが見つかりません", 405: "この方法では操作できません",
                      500: "システムエラーが発生しました", 503: "ただいまシステムを利用できません"},
    ("staff", "en"): {400: "The request could not be processed", 403: "You cannot open this screen",
                      404: "Page not found", 405: "This screen cannot be used this way",
                      500: "A system error occurred", 503: "The system is temporarily unavailable"},
    ("public", "ja"): {400: "処理できませんでした", 403: "このページは表示できません",
                       404: "ページが見つかりません", 405: "この方法ではページを利用できません",
                       500: "システムエラーが発生しました", 503: "ただいま予約サイトを利用できません"},
    ("public", "en"): {400: "The request could not be processed", 403: "This page cannot be shown",
                       404: "Page not found", 405: "This page cannot be used this way",
                       500: "A system error occurred", 503: "The site is temporarily unavailable"},
}
BACK = {("staff", "ja"): "ホーム", ("staff", "en"): "Home",
        ("public", "ja"): "予約サイトのトップへ戻る",
        ("public", "en"): "Back to the top page of the booking site"}
REFERENCE = re.compile(r"E-\d{8}-[0-9A-F]{6}")

# How each status is reached: (method, path). The test-only routes are added below.
REQUESTS = {
    "staff": {400: ("GET", "/noticemodelview/list/?q=%00"), 403: ("GET", "/users/list/"),
              404: ("GET", "/no-such-screen/"), 405: ("POST", "/"),
              500: ("GET", "/test-only/boom"), 503: ("GET", "/test-only/unavailable")},
    "public": {400: ("GET", "/reserve/?q=%00"), 403: ("GET", "/reserve/test-only/forbidden"),
               404: ("GET", "/reserve/no-such-page"), 405: ("POST", "/reserve/"),
               500: ("GET", "/reserve/test-only/boom"),
               503: ("GET", "/reserve/test-only/unavailable")},
}


def _boom():
    raise RuntimeError("test-only failure")


def _half_written():
    """A change in the session, then a failure: the 500 page must not keep it."""
    from app.extensions import session
    from app.models.notice import AUDIENCE_BOTH, Notice

    now = datetime(2026, 12, 1, 9, 0, tzinfo=JST)
    session().add(Notice(title="半端な書き込み", body="x", audience=AUDIENCE_BOTH,
                         importance=0, starts_at=now))
    session().flush()
    raise RuntimeError("failed after a flush")


def _add_test_routes(app):
    """Routes that fail on purpose. The residents' ones carry the blueprint's endpoint
    names (request.blueprint == "public", its before_request hooks run); a 403 there is
    found by the address prefix alone."""
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: the 500 page, not a raise
    app.add_url_rule("/test-only/boom", "test_boom", _boom)
    app.add_url_rule("/test-only/half-written", "test_half_written", _half_written)
    app.add_url_rule("/test-only/unavailable", "test_unavailable", lambda: abort(503))
    app.add_url_rule("/reserve/test-only/boom", "public.test_boom", _boom)
    app.add_url_rule("/reserve/test-only/unavailable", "public.test_unavailable",
                     lambda: abort(503))
    app.add_url_rule("/reserve/test-only/forbidden", "test_public_forbidden",
                     lambda: abort(403))
    app.add_url_rule("/api/v1/test-only/boom", "test_api_boom", _boom)


@pytest.fixture
def failing(app):
    _add_test_routes(app)
    return app


def _client(login_as, client, site, lang):
    browser = login_as("clerk") if site == "staff" else client
    if lang == "en":
        browser.get("/lang/en" if site == "staff" else "/reserve/lang/en")
    return browser


@pytest.mark.own_app
@pytest.mark.parametrize("site", ["staff", "public"])
@pytest.mark.parametrize("lang", ["ja", "en"])
def test_each_status_has_a_page_of_its_site_in_the_users_language(failing, login_as, client,
                                                                  caplog, site, lang):
    browser = _client(login_as, client, site, lang)
    for code in CODES:
        method, path = REQUESTS[site][code]
        response = browser.open(path, method=method, headers={"Referer": "http://localhost/"})
        page = response.get_data(as_text=True)
        words = text_of(response)
        assert response.status_code == code, (code, path)
        assert response.mimetype == "text/html", (code, path)
        assert f'data-status="{code}"' in page, (code, path, words[:300])
        assert TITLES[(site, lang)][code] in words, (code, path, words[:500])
        assert BACK[(site, lang)] in words, (code, path)
        assert f'lang="{lang}' in page
        for phrase in WERKZEUG:
            assert phrase not in words, (code, path, phrase)
        if lang == "ja":  # no English title of any status left on a Japanese page
            for english in TITLES[(site, "en")].values():
                assert english not in words, (code, path, english)
        if site == "staff":
            assert 'class="navbar' in page and 'href="/"' in page  # the staff layout, ホーム
        else:
            assert 'class="site-header"' in page and 'href="/reserve/"' in page
        if code == 405:
            assert "GET" in response.headers["Allow"]
        references = set(REFERENCE.findall(words))
        if code == 500:
            assert len(references) == 1, words
            reference = references.pop()
            assert ("問い合わせ番号" if lang == "ja" else "Reference") in words
            logged = [r for r in caplog.records if reference in r.getMessage()]
            assert logged and logged[0].levelno == logging.ERROR
            assert "RuntimeError: test-only failure" in caplog.text.split(reference, 1)[1]
        else:
            assert not references, (code, references)


@pytest.mark.own_app
def test_two_failures_get_different_references(failing, client):
    first = REFERENCE.findall(text_of(client.get("/reserve/test-only/boom")))
    second = REFERENCE.findall(text_of(client.get("/reserve/test-only/boom")))
    assert first and second and first != second


@pytest.mark.own_app
def test_a_500_discards_the_half_done_change_and_the_next_page_works(failing, login_as, db):
    from app.models.notice import Notice

    browser = login_as("manager")
    response = browser.get("/test-only/half-written")
    assert response.status_code == 500
    assert "システムエラーが発生しました" in text_of(response)
    assert 'class="navbar' in response.get_data(as_text=True)  # the menu could be drawn
    db.expire_all()
    assert db.query(Notice).filter_by(title="半端な書き込み").count() == 0
    assert browser.get("/noticemodelview/list/").status_code == 200


@pytest.mark.own_app
def test_apis_keep_answering_json(failing, login_as, client):
    for path, code in (("/api/v1/no-such-thing", 404), ("/reserve/api/no-such-thing", 404),
                       ("/api/v1/test-only/boom", 500)):
        response = client.get(path)
        assert response.status_code == code
        assert response.is_json, path
        assert "message" in response.get_json()
    assert REFERENCE.fullmatch(client.get("/api/v1/test-only/boom").get_json()["reference"])
    response = client.post("/reserve/api/venues")
    assert response.status_code == 405 and response.is_json


def test_anonymous_staff_404_is_japanese_in_the_staff_layout(client):
    response = client.get("/no-such-screen/")
    page = text_of(response)
    assert response.status_code == 404
    assert "ページが見つかりません" in page and "The requested URL" not in page
    assert 'class="navbar' in response.get_data(as_text=True)


def test_anonymous_staff_user_is_still_sent_to_the_login_page(client):
    """FAB's own refusal for someone not signed in stays: the sign-in page, not a 403."""
    response = client.get("/users/list/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_redirects_stay_redirects(login_as):
    """Werkzeug's redirect to the address with a slash is a RoutingException: untouched."""
    response = login_as("clerk").get("/noticemodelview/list")
    assert response.status_code == 308
    assert response.headers["Location"].endswith("/noticemodelview/list/")


def test_expired_form_keeps_its_own_page(app, login_as):
    """A missing form token (CSRFError, a 400) keeps the "expired form" pages."""
    client = login_as("manager")
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        staff = client.post("/noticemodelview/add", data={"title": "x"})
        resident = client.post("/reserve/lookup", data={"number": "x"})
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    assert staff.status_code == 400 and resident.status_code == 400
    assert "画面の有効期限が切れたため、保存されませんでした" in text_of(staff)
    assert "画面の有効期限が切れました" in text_of(resident)
    for response in (staff, resident):
        assert "data-status" not in response.get_data(as_text=True)


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_closed_hours_page_speaks_the_users_language(login_as, clock, lang):
    client = login_as("clerk")
    if lang == "en":
        client.get("/lang/en")
    clock.set(datetime(2026, 12, 1, 23, 0, tzinfo=JST))
    response = client.get("/noticemodelview/list/")
    page = text_of(response)
    assert response.status_code == 503
    expected = {"ja": "ただいま職員用サイトの利用時間外です",
                "en": "The staff site is closed now"}[lang]
    assert expected in page
    for phrase in WERKZEUG:
        assert phrase not in page


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_maintenance_page_speaks_the_users_language(db, client, clock, lang):
    from app.models.maintenance import MaintenanceWindow

    db.add(MaintenanceWindow(starts_at=clock(), ends_at=None, message="点検"))
    db.commit()
    if lang == "en":
        client.get("/reserve/lang/en")
    response = client.get("/reserve/")
    page = text_of(response)
    assert response.status_code == 503
    assert {"ja": "ただいまメンテナンス中です", "en": "The site is under maintenance"}[lang] in page
    assert 'class="site-header"' in response.get_data(as_text=True)


@pytest.mark.own_app
def test_when_the_staff_layout_cannot_be_drawn_the_page_is_plain_but_japanese(failing, client,
                                                                              caplog):
    """The menu needs the database; when drawing it fails too, the 500 page still comes,
    in the plain layout, with its reference."""
    failing.appbuilder.base_template = "no-such-layout.html"
    response = client.get("/test-only/boom")
    words = text_of(response)
    assert response.status_code == 500
    assert "システムエラーが発生しました" in words and REFERENCE.search(words)
    assert 'class="navbar' not in response.get_data(as_text=True)
    assert "the staff layout failed" in caplog.text


@pytest.mark.own_app
def test_when_the_residents_layout_cannot_be_drawn_the_page_is_plain_but_japanese(
        failing, client, caplog, monkeypatch):
    """The residents' layout reads notices and maintenance from the database; when it
    fails too, the 500 page still comes, plain, with its reference and the way back to the
    booking site's top."""
    from app import web

    real = web.render_template

    def broken_layout(name, **context):
        if name == "public/error.html":
            raise RuntimeError("the residents' layout is broken")
        return real(name, **context)

    monkeypatch.setattr(web, "render_template", broken_layout)
    response = client.get("/reserve/test-only/boom")
    words = text_of(response)
    assert response.status_code == 500
    assert "システムエラーが発生しました" in words and REFERENCE.search(words)
    assert "予約サイトのトップへ戻る" in words and 'href="/reserve/"' in response.get_data(
        as_text=True)
    assert "the residents' layout failed" in caplog.text
