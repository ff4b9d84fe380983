"""Guards of the failover drill (bench/ha_drill.py, `make ha-drill`) without running it: the
libpq multi-host URL it gives the app connects through SQLAlchemy and psycopg to the server
that takes writes, its nginx configuration passes `nginx -t`, and the throwaway clusters it
builds replicate synchronously and promote."""
from __future__ import annotations

import os
import shutil
import socket

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench import ha_drill, throwaway


def _server_port() -> int:
    """The PostgreSQL server the tests may use (TEST_DATABASE_URL's, else 5432)."""
    url = os.environ.get("TEST_DATABASE_URL") or ""
    port = make_url(url).port if url.startswith("postgresql") else None
    return port or 5432


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _closed_port() -> int:
    port = throwaway.free_port()  # bound and released: nothing listens there now
    assert not _answers(port)
    return port


def _port_reached(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT inet_server_port()")).scalar()
    finally:
        engine.dispose()


def test_multi_host_url_passes_every_host_to_libpq():
    url = make_url(ha_drill.multi_host_url([5001, 5002], "mnc"))
    args = create_engine(url).dialect.create_connect_args(url)[1]
    assert args["host"] == "127.0.0.1,127.0.0.1"
    assert args["port"] == "5001,5002"
    assert args["target_session_attrs"] == "read-write"
    assert args["dbname"] == "mnc"


def test_multi_host_url_skips_a_closed_port_and_reaches_the_server():
    port = _server_port()
    if not _answers(port):
        pytest.skip(f"no PostgreSQL server on 127.0.0.1:{port}")
    url = ha_drill.multi_host_url([_closed_port(), port], "postgres")
    assert _port_reached(url) == port


def test_nginx_config_renders_and_passes_nginx_t(tmp_path):
    if not os.path.exists(ha_drill.nginx_binary()):
        pytest.skip("nginx is not installed (make test-deps)")
    prefix = str(tmp_path)
    conf = ha_drill.write_nginx_conf(prefix, 18080, [18081, 18082])
    text_ = open(conf, encoding="utf-8").read()
    assert "server 127.0.0.1:18081 " in text_ and "server 127.0.0.1:18082 " in text_
    assert "listen 127.0.0.1:18080;" in text_
    assert "X-Forwarded-For $proxy_add_x_forwarded_for" in text_
    checked = ha_drill.nginx_test(conf, prefix)
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr


def test_nginx_t_refuses_a_broken_config(tmp_path):
    """The check above can fail: a configuration without its upstream servers is refused."""
    if not os.path.exists(ha_drill.nginx_binary()):
        pytest.skip("nginx is not installed (make test-deps)")
    prefix = str(tmp_path)
    conf = ha_drill.write_nginx_conf(prefix, 18080, [])
    checked = ha_drill.nginx_test(conf, prefix)
    assert checked.returncode != 0


def test_standby_is_synchronous_and_the_url_follows_the_promotion():
    """A primary and a pg_basebackup standby (as the drill builds them): the standby is a
    synchronous one; the multi-host URL naming the standby first reaches the primary
    (read-write), and the promoted standby once the primary is gone."""
    try:
        throwaway.pg_bin()
    except RuntimeError as error:
        pytest.skip(str(error))
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("root without runuser")
    folder = throwaway.temp_dir("mnc-test-ha-")  # pytest's tmp_path is closed to postgres
    base = os.path.join(folder, "pg")
    primary = standby = None
    try:
        primary = throwaway.Cluster(base, "primary").init(
            synchronous_commit="on", synchronous_standby_names="FIRST 1 (standby)")
        standby = primary.standby(base, "standby")
        primary.wait_synchronous("standby")  # raises unless it streams as the sync one
        primary.sql("CREATE TABLE drill (n int)")
        primary.sql("INSERT INTO drill VALUES (1)")  # returns once the standby has it
        url = ha_drill.multi_host_url([standby.port, primary.port], "postgres")
        assert _port_reached(url) == primary.port
        primary.stop("immediate")
        with pytest.raises(Exception):
            _port_reached(url)  # the standby alone is read-only: refused
        standby.promote()
        assert _port_reached(url) == standby.port
        assert standby.sql("SELECT n FROM drill") == [1]
    finally:
        throwaway.remove(primary, standby)
        shutil.rmtree(folder, ignore_errors=True)
