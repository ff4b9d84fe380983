"""Logs (issue 16 §4): JSON lines with the request's fields, one access line per request,
the request id on the response header, in every line of the request and on the error
pages; a bad incoming X-Request-ID is replaced."""
import json
import logging

import pytest

from app import observability, settings
from tests.conftest import text_of

ACCESS_FIELDS = {"time", "level", "logger", "message", "request_id", "user", "client",
                 "method", "path", "status", "duration_ms"}


@pytest.fixture
def json_app(make_app):
    app = make_app(LOG_FORMAT="json")
    yield app
    observability.configure_logging("text")  # the next tests' apps log as text again


def lines(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines()
            if line.startswith("{")]


def test_a_json_access_line_carries_every_field(json_app, capsys):
    capsys.readouterr()
    response = json_app.test_client().get("/healthz", environ_base={"REMOTE_ADDR": "192.0.2.7"})
    request_id = response.headers["X-Request-ID"]
    (access,) = [line for line in lines(capsys) if line["logger"] == "app.access"]
    assert ACCESS_FIELDS <= set(access)
    assert access["request_id"] == request_id
    assert access["method"] == "GET" and access["path"] == "/healthz"
    assert access["status"] == 200 and access["client"] == "192.0.2.7"
    assert access["user"] == "-" and access["level"] == "INFO"
    assert isinstance(access["duration_ms"], float) and access["duration_ms"] >= 0
    assert "T" in access["time"] and access["time"].endswith("+09:00")


def test_the_access_line_names_the_signed_in_user(json_app, capsys):
    from tests.conftest import login
    from tests.factories import UserFactory

    user = UserFactory(json_app).create("clerk")
    client = json_app.test_client()
    assert login(client, user.username, UserFactory.password).status_code == 302
    capsys.readouterr()
    client.get("/")
    (access,) = [line for line in lines(capsys) if line["logger"] == "app.access"]
    assert access["user"] == user.username and access["status"] == 200


@pytest.mark.own_app
def test_every_line_of_a_request_carries_its_id_and_the_500_page_shows_it(json_app, capsys):
    json_app.config["PROPAGATE_EXCEPTIONS"] = False

    def boom():
        logging.getLogger("app.test").warning("before the failure")
        raise RuntimeError("test-only failure")

    json_app.add_url_rule("/test-only/log-boom", "test_log_boom", boom)
    capsys.readouterr()
    response = json_app.test_client().get("/test-only/log-boom",
                                          headers={"X-Request-ID": "nginx-abc.123_X"})
    assert response.status_code == 500
    assert response.headers["X-Request-ID"] == "nginx-abc.123_X"
    assert "nginx-abc.123_X" in text_of(response)
    logged = lines(capsys)
    assert {"app.test", "app.access"} <= {line["logger"] for line in logged}
    assert all(line["request_id"] == "nginx-abc.123_X" for line in logged), logged
    error = [line for line in logged if line["level"] == "ERROR" and "exception" in line]
    assert error and "RuntimeError: test-only failure" in error[0]["exception"]


def test_outside_a_request_the_fields_are_dashes(json_app, capsys):
    capsys.readouterr()
    logging.getLogger("app.job").warning("nightly")
    (line,) = lines(capsys)
    assert line["message"] == "nightly" and line["request_id"] == "-" and line["user"] == "-"


@pytest.mark.parametrize("incoming", ["", "a" * 65, "with space", "bad\u3042id", "x;rm -rf",
                                      "<script>"])
def test_a_bad_incoming_request_id_is_replaced(client, incoming):
    response = client.get("/healthz", headers={"X-Request-ID": incoming})
    given = response.headers["X-Request-ID"]
    assert given != incoming and observability.SANE_ID.fullmatch(given)


def test_each_request_gets_its_own_id(client):
    ids = {client.get("/healthz").headers["X-Request-ID"] for _ in range(3)}
    assert len(ids) == 3


@pytest.mark.parametrize("path", ["/no-such-screen/", "/reserve/no-such-page"])
@pytest.mark.parametrize("lang", ["ja", "en"])
def test_a_404_page_shows_the_request_id_to_quote(client, path, lang):
    if lang == "en":
        client.get("/reserve/lang/en" if path.startswith("/reserve") else "/lang/en")
    response = client.get(path)
    assert response.status_code == 404
    words = text_of(response)
    request_id = response.headers["X-Request-ID"]
    assert request_id in words
    assert {"ja": "お問い合わせの際はこの番号をお伝えください",
            "en": "quote this number"}[lang] in words


def test_an_api_error_carries_the_request_id(client):
    response = client.get("/api/v1/no-such-api/")
    assert response.status_code == 404
    assert response.get_json()["request_id"] == response.headers["X-Request-ID"]


def test_a_wrong_log_format_stops_the_start(app):
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        settings.configure(app, LOG_FORMAT="xml")
