"""/metrics (issue 16 §4): Prometheus text for allowed addresses and the token only, 404
for anyone else; counts by endpoint and status; latency buckets; pool, outbox, booking,
check-in and backup figures read at scrape time without a write; the multiprocess mode
adds up the workers' files."""
import math
import os
import subprocess
import sys
import textwrap
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app import settings
from app.models.outbox import FAILED, QUEUED, OutboxMail
from app.models.reservation import EVENT_ARRIVED
from tests.factories import make_staff_booking

LOCAL = {"REMOTE_ADDR": "127.0.0.1"}
OUTSIDE = {"REMOTE_ADDR": "203.0.113.9"}
TOKEN = "s3cret-metrics-token-0123456789"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def scrape(client, environ=LOCAL, headers=None):
    response = client.get("/metrics", environ_base=environ, headers=headers or {})
    assert response.status_code == 200, response.status_code
    assert response.mimetype == "text/plain"
    return response


def samples(response) -> dict:
    """{(name, ((label, value), ...)): value} of a scrape."""
    found = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found, name, **labels):
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_answer_the_local_address_and_nobody_else(client):
    assert scrape(client).status_code == 200
    assert scrape(client, {"REMOTE_ADDR": "::1"}).status_code == 200
    refused = client.get("/metrics", environ_base=OUTSIDE)
    assert refused.status_code == 404
    assert "mnc_" not in refused.get_data(as_text=True)


def test_the_token_opens_metrics_from_anywhere_and_a_wrong_one_does_not(app, client):
    settings.configure(app, METRICS_TOKEN=TOKEN)
    assert scrape(client, OUTSIDE, {"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    for header in (f"Bearer {TOKEN}x", f"Basic {TOKEN}", "Bearer ", TOKEN):
        assert client.get("/metrics", environ_base=OUTSIDE,
                          headers={"Authorization": header}).status_code == 404, header


def test_without_a_token_setting_no_bearer_opens_metrics(client):
    response = client.get("/metrics", environ_base=OUTSIDE, headers={"Authorization": "Bearer "})
    assert response.status_code == 404


def test_an_allowed_network_opens_metrics(app, client):
    settings.configure(app, METRICS_ALLOW="10.1.0.0/16, 2001:db8::/32")
    assert scrape(client, {"REMOTE_ADDR": "10.1.200.3"}).status_code == 200
    assert scrape(client, {"REMOTE_ADDR": "2001:db8::5"}).status_code == 200
    assert client.get("/metrics", environ_base=LOCAL).status_code == 404  # not listed any more


@pytest.mark.parametrize("bad", ["10.0.0.300", "localhost", "10.0.0.0/40"])
def test_a_wrong_allow_list_stops_the_start(app, bad):
    with pytest.raises(ValueError, match="METRICS_ALLOW"):
        settings.configure(app, METRICS_ALLOW=bad)


def test_a_short_token_stops_the_start(app):
    with pytest.raises(ValueError, match="METRICS_TOKEN"):
        settings.configure(app, METRICS_TOKEN="short")


def test_metrics_need_no_session_set_no_cookie_and_write_nothing(client, no_writes, clock):
    clock.set(clock().replace(hour=3))  # outside the staff hours: still answers
    with no_writes("a scrape"):
        response = scrape(client)
    assert "Set-Cookie" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"


def test_requests_are_counted_by_endpoint_and_status_never_by_address(client):
    before = samples(scrape(client))
    client.get("/healthz")
    client.get("/healthz")
    client.get("/no-such-page-12345")
    after = samples(scrape(client))
    assert value(after, "mnc_http_requests_total", endpoint="healthz", status="200") == \
        value(before, "mnc_http_requests_total", endpoint="healthz", status="200") + 2
    assert value(after, "mnc_http_requests_total", endpoint="(none)", status="404") == \
        value(before, "mnc_http_requests_total", endpoint="(none)", status="404") + 1
    assert not any("no-such-page" in str(key) for key in after)


def test_latency_is_a_histogram_with_buckets(client):
    client.get("/healthz")
    found = samples(scrape(client))
    buckets = {dict(labels)["le"]: count for (name, labels), count in found.items()
               if name == "mnc_http_request_duration_seconds_bucket"
               and dict(labels)["endpoint"] == "healthz"}
    assert {"0.01", "0.1", "1.0", "+Inf"} <= set(buckets)
    assert buckets["+Inf"] >= 1
    counts = [buckets[le] for le in sorted(buckets, key=lambda le: float(le))]
    assert counts == sorted(counts)  # cumulative
    assert value(found, "mnc_http_request_duration_seconds_count", endpoint="healthz") == \
        buckets["+Inf"]


@pytest.mark.own_app
def test_errors_and_unhandled_exceptions_are_counted(app, client):
    app.config["PROPAGATE_EXCEPTIONS"] = False

    def boom():
        raise RuntimeError("test-only failure")

    app.add_url_rule("/test-only/metrics-boom", "test_metrics_boom", boom)
    before = samples(scrape(client))
    assert client.get("/test-only/metrics-boom").status_code == 500
    after = samples(scrape(client))
    for name in ("mnc_unhandled_exceptions_total", "mnc_http_server_errors_total"):
        assert value(after, name, endpoint="test_metrics_boom") == \
            value(before, name, endpoint="test_metrics_boom") + 1, name
    assert value(after, "mnc_http_requests_total", endpoint="test_metrics_boom",
                 status="500") == 1


def test_the_database_pool_is_reported(app, client):
    found = samples(scrape(client))
    engine_pool = None
    with app.app_context():
        engine_pool = app.appbuilder.session.get_bind().pool
    if not hasattr(engine_pool, "size"):
        pytest.skip("this database's pool has no size")
    assert value(found, "mnc_db_pool_size") == engine_pool.size()
    assert ("mnc_db_pool_checked_out", ()) in found and ("mnc_db_pool_overflow", ()) in found


def test_outbox_bookings_and_checkins_are_counted_by_the_database(app, db, client, clock):
    now = clock()
    for state in (QUEUED, QUEUED, FAILED):
        db.add(OutboxMail(kind="booked", to_address="taro@example.jp", locale="ja",
                          subject="件名", body="本文", created_at=now - timedelta(minutes=5),
                          state=state, attempts=0, next_attempt_at=now))
    db.commit()
    reservation = make_staff_booking(app, db)  # a booking event "made", now
    from app.services import booking_history
    with app.test_request_context():
        booking_history.record(db, reservation, EVENT_ARRIVED, now, by_staff=True)
        db.commit()
    found = samples(scrape(client))
    assert value(found, "mnc_metrics_database_up") == 1
    assert value(found, "mnc_outbox_mails", state="queued") == 2
    assert value(found, "mnc_outbox_mails", state="failed") == 1
    assert value(found, "mnc_outbox_oldest_queued_age_seconds") == 300
    assert value(found, "mnc_bookings_last_minute") == 1
    assert value(found, "mnc_checkins_last_minute") == 1
    clock.advance(minutes=2)
    found = samples(scrape(client))
    assert value(found, "mnc_bookings_last_minute") == 0
    assert value(found, "mnc_checkins_last_minute") == 0


def test_backup_age_without_a_backup_is_infinite_and_an_unreadable_folder_never_fails(
        app, client, tmp_path):
    settings.configure(app, BACKUP_DIR=str(tmp_path / "empty"))
    found = samples(scrape(client))
    assert math.isinf(value(found, "mnc_backup_last_good_age_seconds"))
    assert value(found, "mnc_backup_folder_readable") == 1
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    settings.configure(app, BACKUP_DIR=str(not_a_folder))
    found = samples(scrape(client))
    assert math.isinf(value(found, "mnc_backup_last_good_age_seconds"))
    assert value(found, "mnc_backup_folder_readable") == 0


def test_backup_age_is_that_of_the_last_verified_backup(app, client, clock, tmp_path):
    import json

    folder = tmp_path / "backups"
    folder.mkdir()
    made = clock() - timedelta(hours=40)
    name = f"mnc-backup-{made:%Y%m%d-%H%M%S}.mncbak"
    (folder / name).write_bytes(b"x")
    (folder / f"{name}.json").write_text(json.dumps(
        {"created_at": made.isoformat(), "verified_at": clock().isoformat()}))
    settings.configure(app, BACKUP_DIR=str(folder))
    found = samples(scrape(client))
    assert value(found, "mnc_backup_last_good_age_seconds") == 40 * 3600


def test_a_scrape_answers_when_the_database_is_down(app_config, tmp_path):
    from app import create_app

    broken = create_app({**app_config,
                         "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/no/such/dir/x.db"})
    response = broken.test_client().get("/metrics", environ_base=LOCAL)
    assert response.status_code == 200
    found = samples(response)
    assert value(found, "mnc_metrics_database_up") == 0
    assert ("mnc_outbox_mails", (("state", "queued"),)) not in found


WORKER = textwrap.dedent("""
    import sys
    from app import metrics
    for _ in range(int(sys.argv[1])):
        metrics.REQUESTS.labels("public.index", "200").inc()
        metrics.LATENCY.labels("public.index").observe(0.02)
    metrics.POOL_SIZE.set(5)
    metrics.POOL_CHECKED_OUT.set(int(sys.argv[2]))
    print(__import__("os").getpid())
""")


def test_multiprocess_mode_adds_up_the_workers_and_forgets_a_dead_ones_gauges(
        client, tmp_path, monkeypatch):
    """Two processes write their values into PROMETHEUS_MULTIPROC_DIR (as gunicorn's
    workers do); a scrape in a third process serves their sum; child_exit drops the live
    gauges of a worker that ended."""
    from app import metrics

    folder = tmp_path / "prometheus"
    folder.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    pids = [int(subprocess.run([sys.executable, "-c", WORKER, str(count), str(busy)],
                               cwd=ROOT, env=env, check=True, capture_output=True,
                               text=True).stdout.split()[-1])
            for count, busy in ((3, 1), (4, 2))]
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))  # undone after the test
    found = samples(scrape(client))
    assert value(found, "mnc_http_requests_total", endpoint="public.index", status="200") == 7
    assert value(found, "mnc_http_request_duration_seconds_count",
                 endpoint="public.index") == 7
    assert value(found, "mnc_http_request_duration_seconds_bucket", endpoint="public.index",
                 le="0.025") == 7
    assert value(found, "mnc_db_pool_size") == 10
    assert value(found, "mnc_db_pool_checked_out") == 3
    assert value(found, "mnc_bookings_last_minute") == 0  # scrape-time figures still there

    class Worker:
        pid = pids[1]

    metrics.child_exit(None, Worker())
    found = samples(scrape(client))
    assert value(found, "mnc_db_pool_size") == 5 and value(found, "mnc_db_pool_checked_out") == 1
    # counters of a worker that ended are kept: a rate never goes backwards
    assert value(found, "mnc_http_requests_total", endpoint="public.index", status="200") == 7


def test_the_test_leaves_no_multiprocess_directory_behind():
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ


def test_the_token_stays_out_of_the_settings_a_backup_carries(app):
    import json

    from app.services import backups

    settings.configure(app, METRICS_TOKEN=TOKEN, METRICS_ALLOW="10.0.0.0/8,::1")
    with app.app_context():
        carried = json.dumps(backups.public_settings())
    assert TOKEN not in carried and "metrics_token" not in carried
    assert json.loads(carried)["metrics_allow"] == ["10.0.0.0/8", "::1/128"]


def test_pool_gauges_follow_checkouts_and_checkins(app):
    from app import metrics

    with app.app_context():
        engine = app.appbuilder.session.get_bind()
        if not hasattr(engine.pool, "size"):
            pytest.skip("this database's pool has no size")
        idle = metrics.POOL_CHECKED_OUT._value.get()
        first, second = engine.connect(), engine.connect()
        assert metrics.POOL_CHECKED_OUT._value.get() == idle + 2
        first.close()
        assert metrics.POOL_CHECKED_OUT._value.get() == idle + 1
        second.close()
        assert metrics.POOL_CHECKED_OUT._value.get() == idle
