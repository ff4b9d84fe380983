"""Hours, security headers, health, and the residents' top page."""
import re
from datetime import datetime

import pytest

from app.clock import JST
from tests.conftest import text_of
from tests.factories import make_notice

EXTERNAL = re.compile(r"""(src|href|action)\s*=\s*["'](https?:)?//""", re.I)


def test_staff_pages_outside_hours_say_when_they_reopen(login_as, clock):
    client = login_as("clerk")
    clock.set(datetime(2026, 12, 1, 23, 0, tzinfo=JST))
    response = client.get("/noticemodelview/list/")
    assert response.status_code == 503
    page = text_of(response)
    assert "利用時間外" in page and "2026-12-02 06:30" in page
    assert int(response.headers["Retry-After"]) > 0


def test_closed_on_the_day_after_the_third_saturday(login_as, clock):
    client = login_as("manager")
    clock.set(datetime(2026, 12, 20, 12, 0, tzinfo=JST))  # 12/19 is the third Saturday
    response = client.get("/")
    assert response.status_code == 503
    assert "2026-12-21 06:30" in text_of(response)


def test_login_page_stays_reachable_and_sysadmin_may_work(login_as, client, clock):
    clock.set(datetime(2026, 12, 30, 12, 0, tzinfo=JST))
    assert client.get("/login/").status_code == 200
    admin = login_as("sysadmin")
    assert admin.get("/users/list/").status_code == 200


def test_sysadmin_bypass_can_be_switched_off(app_config, users, _schema, clock):
    from app import create_app
    from tests.conftest import login

    app = create_app({**app_config, "STAFF_HOURS_ADMIN_BYPASS": False})
    users.app = app
    users.create("sysadmin", username="nobypass")
    client = app.test_client()
    login(client, "nobypass", users.password)
    clock.set(datetime(2026, 12, 30, 12, 0, tzinfo=JST))
    assert client.get("/users/list/").status_code == 503


def test_residents_site_is_always_on(client, clock):
    clock.set(datetime(2027, 1, 1, 3, 0, tzinfo=JST))
    assert client.get("/reserve/").status_code == 200


@pytest.mark.parametrize("url", ["/login/", "/reserve/", "/healthz"])
def test_security_headers(client, url):
    response = client.get(url)
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "http" not in csp  # no external source of any kind
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_scripts_carry_the_nonce_of_the_policy(login_as):
    response = login_as("sysadmin").get("/users/list/")
    nonce = re.search(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"]).group(1)
    scripts = re.findall(r"<script[^>]*>", response.get_data(as_text=True))
    assert scripts and all(f'nonce="{nonce}"' in tag for tag in scripts)


@pytest.mark.parametrize("url", ["/", "/noticemodelview/list/", "/noticemodelview/add",
                                 "/auditlogmodelview/list/", "/users/list/",
                                 "/maintenancewindowmodelview/list/"])
def test_no_page_loads_anything_from_outside(login_as, url):
    client = login_as("sysadmin") if "users" in url or "maint" in url else login_as("manager")
    html = client.get(url).get_data(as_text=True)
    assert not EXTERNAL.search(html)


def test_public_page_loads_nothing_from_outside(client):
    assert not EXTERNAL.search(client.get("/reserve/").get_data(as_text=True))


def test_healthz_reports_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok", "database": "ok"}


def test_healthz_503_when_the_database_is_down(app_config, tmp_path):
    from app import create_app

    broken = create_app({**app_config,
                         "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/no/such/dir/x.db"})
    response = broken.test_client().get("/healthz")
    assert response.status_code == 503 and response.json["database"] == "unavailable"


def test_residents_top_shows_resident_notices_only(client, db, clock):
    from app.models.notice import AUDIENCE_RESIDENTS, AUDIENCE_STAFF

    make_notice(db, clock(), title="住民の皆様へ", audience=AUDIENCE_RESIDENTS)
    make_notice(db, clock(), title="職員限定の連絡", audience=AUDIENCE_STAFF)
    page = text_of(client.get("/reserve/"))
    assert "みどり市" in page and "住民の皆様へ" in page and "職員限定の連絡" not in page


def test_residents_switch_to_english_and_back(client):
    response = client.get("/reserve/lang/en?next=/reserve/")
    assert response.headers["Location"].endswith("/reserve/")
    page = text_of(client.get("/reserve/"))
    assert "Book a visit for your My Number Card" in page
    client.get("/reserve/lang/ja_JP")
    assert "来庁予約" in text_of(client.get("/reserve/"))


def test_language_switch_refuses_foreign_redirects(client):
    response = client.get("/reserve/lang/en?next=https://evil.example/")
    assert response.headers["Location"].endswith("/reserve/")


def test_staff_ui_is_japanese_first_and_switches_to_english(login_as):
    client = login_as("manager")
    page = text_of(client.get("/noticemodelview/list/"))
    assert "お知らせ" in page and "掲載開始" in page and "試験 太郎" in page  # 姓 名 order
    client.get("/lang/en")
    page = text_of(client.get("/noticemodelview/list/"))
    assert "Notices" in page and "Shown from" in page
