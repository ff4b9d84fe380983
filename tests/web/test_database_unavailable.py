"""The database out of reach for a moment (a failover under way, issue 16 §2): the request
answers 503 with Retry-After and the site's "temporarily unavailable" page, not a 500; the
next request works again."""
import re

import pytest
from sqlalchemy.exc import OperationalError

from tests.conftest import text_of


def _lost():
    """As psycopg reports a primary stopped under a request, or a standby not yet promoted."""
    from app.extensions import session

    session().connection()  # the request had begun its work
    raise OperationalError("SELECT 1", {}, Exception(
        'connection to server at "127.0.0.1", port 5432 failed: session is read-only'))


@pytest.fixture
def losing(app):
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production
    app.add_url_rule("/test-only/db-lost", "test_db_lost", _lost)
    app.add_url_rule("/reserve/test-only/db-lost", "public.test_db_lost", _lost)
    app.add_url_rule("/api/v1/test-only/db-lost", "test_api_db_lost", _lost)
    return app


@pytest.mark.own_app
def test_residents_get_the_unavailable_page_with_retry_after(losing, client):
    response = client.get("/reserve/test-only/db-lost")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    page = text_of(response)
    assert "ただいま予約サイトを利用できません" in page
    assert not re.search(r"E-\d{8}-[0-9A-F]{6}", page)  # no error reference to look up
    assert client.get("/reserve/").status_code == 200  # the next request works


@pytest.mark.own_app
def test_staff_get_the_unavailable_page(losing, login_as):
    clerk = login_as("clerk")
    response = clerk.get("/test-only/db-lost")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "ただいまシステムを利用できません" in text_of(response)


@pytest.mark.own_app
def test_apis_answer_json_503(losing, client):
    response = client.get("/api/v1/test-only/db-lost")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.is_json


@pytest.mark.own_app
def test_other_failures_stay_500(losing, client):
    def boom():
        raise RuntimeError("not the database")

    losing.add_url_rule("/reserve/test-only/boom2", "public.test_boom2", boom)
    assert client.get("/reserve/test-only/boom2").status_code == 500
