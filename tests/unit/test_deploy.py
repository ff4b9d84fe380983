"""The shipped deployment files (deploy/, docs/operations.md「冗長構成」) parse and say what
the app needs: gunicorn's configuration through gunicorn's own parser and its hooks, the
nginx site through `nginx -t` with a throwaway certificate, the systemd units through
`systemd-analyze verify`, and the production DATABASE_URL form through SQLAlchemy,
psycopg and the PostgreSQL tools against a real server."""
from __future__ import annotations

import configparser
import datetime
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import types

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

import config as app_config
from app.services import backups

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPLOY = os.path.join(ROOT, "deploy")
GUNICORN_CONF = os.path.join(DEPLOY, "gunicorn.conf.py")
NGINX_SITE = os.path.join(DEPLOY, "nginx", "mnc.conf")
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx")
                                  else None)
UNITS = ("mnc-web.service", "mnc-worker.service", "mnc-backup.service", "mnc-backup.timer")


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


# --- gunicorn ---------------------------------------------------------------------------------

def _gunicorn_config():
    """deploy/gunicorn.conf.py read by gunicorn itself (unknown or invalid values fail)."""
    from gunicorn.app.base import Application

    class Probe(Application):
        def init(self, parser, opts, args):
            return None

        def load_config(self):
            self.load_config_from_file(GUNICORN_CONF)

        def load(self):
            return None

    return Probe().cfg


def test_gunicorn_config_reads_the_environment(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["gunicorn"])
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    monkeypatch.setenv("GUNICORN_THREADS", "6")
    monkeypatch.setenv("GUNICORN_BIND", "10.0.0.11:8000")
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.10")
    cfg = _gunicorn_config()
    assert cfg.bind == ["10.0.0.11:8000"]
    assert cfg.workers == 3 and cfg.threads == 6
    assert cfg.worker_class_str == "gthread"
    assert cfg.forwarded_allow_ips == ["10.0.0.10"]
    assert cfg.graceful_timeout >= 60 and cfg.timeout >= 30
    assert cfg.max_requests > 0 and 0 < cfg.max_requests_jitter < cfg.max_requests
    assert cfg.worker_tmp_dir == ("/dev/shm" if os.path.isdir("/dev/shm") else None)
    assert cfg.errorlog == "-" and cfg.accesslog is None  # the app logs each request
    assert not cfg.preload_app
    assert os.environ["WEB_CONCURRENCY"] == "3"  # what app/security.py reads


def test_gunicorn_config_defaults(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["gunicorn"])
    for name in ("WEB_CONCURRENCY", "GUNICORN_BIND", "FORWARDED_ALLOW_IPS", "GUNICORN_THREADS"):
        monkeypatch.delenv(name, raising=False)
    cfg = _gunicorn_config()
    assert cfg.bind == ["127.0.0.1:8000"]
    assert 2 <= cfg.workers <= 8 and cfg.threads == 4
    assert cfg.forwarded_allow_ips == ["127.0.0.1"]
    # the app is told how many workers share its memory:// limits
    assert os.environ["WEB_CONCURRENCY"] == str(cfg.workers)


def test_gunicorn_config_passes_gunicorns_check(tmp_path):
    env = dict(os.environ, INSTANCE_DIR=str(tmp_path), WEB_CONCURRENCY="2",
               DATABASE_URL=f"sqlite:///{tmp_path}/app.db")
    checked = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "gunicorn"), "--check-config",
         "-c", GUNICORN_CONF, "run:app"], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=120)
    assert checked.returncode == 0, checked.stderr


def _hooks() -> dict:
    namespace: dict = {"__file__": GUNICORN_CONF, "__name__": "gunicorn_conf"}
    exec(compile(_read(GUNICORN_CONF), GUNICORN_CONF, "exec"), namespace)
    return namespace


class _Server:
    class log:
        @staticmethod
        def info(*args):
            return None


def test_on_starting_empties_the_prometheus_folder(tmp_path, monkeypatch):
    folder = tmp_path / "prometheus"
    (folder / "sub").mkdir(parents=True)
    (folder / "counter_123.db").write_bytes(b"x")
    (folder / "sub" / "gauge.db").write_bytes(b"y")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    _hooks()["on_starting"](_Server())
    assert folder.is_dir() and list(folder.iterdir()) == []
    missing = tmp_path / "not-yet"
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(missing))
    _hooks()["on_starting"](_Server())
    assert missing.is_dir()


def test_child_exit_calls_the_metrics_hook_when_there_is_one(monkeypatch):
    hooks = _hooks()
    monkeypatch.setitem(sys.modules, "app.metrics", None)  # "no such module": ignored
    hooks["child_exit"](_Server(), object())
    seen = []
    module = types.ModuleType("app.metrics")
    module.child_exit = lambda server, worker: seen.append(worker)
    monkeypatch.setitem(sys.modules, "app.metrics", module)
    worker = object()
    hooks["child_exit"](_Server(), worker)
    assert seen == [worker]


# --- nginx ------------------------------------------------------------------------------------

def _certificate(folder) -> tuple[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mnc.example.lg.jp")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .sign(key, hashes.SHA256()))
    crt, pem = os.path.join(folder, "mnc.crt"), os.path.join(folder, "mnc.key")
    with open(crt, "wb") as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(pem, "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return crt, pem


def _nginx_t(tmp_path, site_text: str) -> subprocess.CompletedProcess:
    """`nginx -t` of a main configuration that includes the site as Debian's does, with the
    certificate, logs and temporary folders moved into tmp_path (nothing else changed)."""
    if NGINX is None:
        pytest.skip("nginx is not installed (make test-deps installs it)")
    prefix = str(tmp_path)
    crt, pem = _certificate(prefix)
    site_text = (site_text.replace("/etc/nginx/tls/mnc.crt", crt)
                 .replace("/etc/nginx/tls/mnc.key", pem)
                 .replace("/var/log/nginx/", prefix + "/"))
    site = os.path.join(prefix, "mnc.conf")
    with open(site, "w", encoding="utf-8") as handle:
        handle.write(site_text)
    mime = "/etc/nginx/mime.types"
    main = os.path.join(prefix, "nginx.conf")
    with open(main, "w", encoding="utf-8") as handle:
        handle.write(f"""
pid {prefix}/nginx.pid;
error_log {prefix}/error.log;
events {{ worker_connections 64; }}
http {{
    {f"include {mime};" if os.path.exists(mime) else ""}
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {site};
}}
""")
    return subprocess.run([NGINX, "-t", "-p", prefix, "-e", f"{prefix}/error.log",
                           "-c", main], capture_output=True, text=True, timeout=60)


def test_the_shipped_nginx_site_passes_nginx_t(tmp_path):
    checked = _nginx_t(tmp_path, _read(NGINX_SITE))
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr


def test_nginx_t_refuses_a_broken_site(tmp_path):
    """The check above can fail: the site with its upstream misspelt is refused."""
    broken = _read(NGINX_SITE).replace("upstream mnc_app", "upstream mnc_app_x")
    checked = _nginx_t(tmp_path, broken)
    assert checked.returncode != 0


def _directives(name: str) -> list[str]:
    lines = [line.split("#", 1)[0].strip() for line in _read(NGINX_SITE).splitlines()]
    return [line for line in lines if re.match(rf"{name}\s", line)]


def test_nginx_site_matches_the_app():
    # an upload the app accepts is never refused by nginx (the app answers 413 in Japanese)
    size = _directives("client_max_body_size")[0].split()[1].rstrip(";")
    assert size.endswith("m") and int(size[:-1]) * 1024 * 1024 >= app_config.MAX_CONTENT_LENGTH
    # two app servers with passive health checks
    servers = _directives("server") and [line for line in _directives("server")
                                         if ":8000" in line]
    assert len(servers) >= 2 and all("max_fails=" in s and "fail_timeout=" in s
                                     for s in servers)
    # a POST (a booking) is never sent to a second server
    retry = _directives("proxy_next_upstream")
    assert retry == ["proxy_next_upstream error timeout;"]
    # PROXY_FIX_HOPS=1: X-Forwarded-For is the connecting address, never the client's own
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in _directives("proxy_set_header")
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in _directives("proxy_set_header")
    assert _directives("ssl_protocols") == ["ssl_protocols TLSv1.2 TLSv1.3;"]
    # the app's own security headers are not added again with other values
    added = " ".join(_directives("add_header"))
    for header in ("Content-Security-Policy", "X-Frame-Options", "Referrer-Policy"):
        assert header not in added


def test_nginx_serves_the_static_folders_the_app_uses(app):
    aliases = {}
    for block in re.finditer(r"location (\S+) \{[^}]*?alias (\S+);", _read(NGINX_SITE)):
        aliases[block.group(1)] = block.group(2)
    folders = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.endswith(".static"):
            blueprint = rule.endpoint.rpartition(".")[0]
            owner = app.blueprints[blueprint] if blueprint else app
            folders[rule.rule.split("<")[0]] = owner.static_folder
    assert set(folders) == set(aliases)
    for url, folder in folders.items():
        suffix = os.path.relpath(folder, ROOT) if folder.startswith(ROOT + os.sep) else None
        alias = aliases[url].rstrip("/")
        if suffix and not suffix.startswith(".venv"):
            assert alias == "/opt/mnc/" + suffix
        else:  # Flask-AppBuilder's, inside the venv
            assert alias.endswith("flask_appbuilder/static/appbuilder")
            assert folder.endswith("flask_appbuilder/static/appbuilder")


# --- systemd ----------------------------------------------------------------------------------

def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string(_read(os.path.join(DEPLOY, name)))
    return parser


def test_units_have_the_expected_settings():
    web, worker = _unit("mnc-web.service"), _unit("mnc-worker.service")
    assert "gunicorn -c deploy/gunicorn.conf.py run:app" in web["Service"]["ExecStart"]
    assert web["Service"]["Restart"] == "on-failure"
    assert web["Service"]["EnvironmentFile"] == "/etc/mnc/mnc.env"
    assert web["Service"]["RuntimeDirectory"] == "mnc-web"
    assert "Environment=PROMETHEUS_MULTIPROC_DIR=/run/mnc-web/" in _read(
        os.path.join(DEPLOY, "mnc-web.service"))
    assert worker["Service"]["ExecStart"].endswith("flask --app run worker")
    assert worker["Service"]["Restart"] == "always"
    assert worker["Service"]["KillSignal"] == "SIGTERM"
    for unit in (web, worker):
        service = unit["Service"]
        assert service["NoNewPrivileges"] == "yes" and service["ProtectSystem"] == "strict"
        assert service["PrivateTmp"] == "yes" and service["ReadWritePaths"]
    # the web server waits longer than gunicorn's graceful_timeout
    graceful = int(re.search(r'GUNICORN_GRACEFUL_TIMEOUT", (\d+)', _read(GUNICORN_CONF))[1])
    assert int(web["Service"]["TimeoutStopSec"]) > graceful


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_units_pass_systemd_analyze_verify(tmp_path):
    """Every unit as systemd reads it: no unknown key, no value it ignores. /opt/mnc is
    this checkout, so the programs named in ExecStart exist."""
    for name in UNITS:
        with open(tmp_path / name, "w", encoding="utf-8") as handle:
            handle.write(_read(os.path.join(DEPLOY, name)).replace("/opt/mnc", ROOT))
    (tmp_path / "broken.service").write_text(
        _read(os.path.join(DEPLOY, "mnc-web.service")).replace("/opt/mnc", ROOT)
        .replace("Restart=on-failure", "Restart=sometimes"))
    checked = subprocess.run(["systemd-analyze", "verify", "--man=no",
                              *[f"./{name}" for name in UNITS]], cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stderr
    assert not any(name in checked.stderr for name in UNITS), checked.stderr
    broken = subprocess.run(["systemd-analyze", "verify", "--man=no", "./broken.service"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert "broken.service" in broken.stderr  # the check above can fail


# --- the production settings ------------------------------------------------------------------

def _env_example() -> dict[str, str]:
    values = {}
    for line in _read(os.path.join(DEPLOY, "mnc.env.example")).splitlines():
        if line.strip() and not line.startswith("#"):
            key, _sep, value = line.partition("=")
            assert re.fullmatch(r"[A-Z_][A-Z0-9_]*", key), line
            assert "$" not in value and "`" not in value, line
            values[key] = shlex.split(value)[0] if value else ""
    return values


def test_env_example_holds_the_production_settings():
    values = _env_example()
    assert values["PROXY_FIX_HOPS"] == "1" and values["COOKIE_SECURE"] == "1"
    assert values["RATELIMIT_STORAGE_URI"].startswith("redis://")
    url = make_url(values["DATABASE_URL"])
    assert url.query["host"] == ("10.0.0.21:5432", "10.0.0.22:5432")
    assert url.query["target_session_attrs"] == "read-write"
    unknown = set(values) - set(vars(app_config)) - {
        "DATABASE_URL", "COOKIE_SECURE", "GUNICORN_BIND", "WEB_CONCURRENCY",
        "GUNICORN_THREADS", "FORWARDED_ALLOW_IPS", "LOG_FORMAT", "METRICS_ALLOW",
        "METRICS_TOKEN"}
    assert not unknown  # a misspelt setting would be ignored silently


def _postgres_port() -> int | None:
    url = os.environ.get("TEST_DATABASE_URL") or ""
    port = (make_url(url).port if url.startswith("postgresql") else None) or 5432
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return port
    except OSError:
        return None


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # released: nothing listens there


def test_multi_host_database_url_reaches_the_server_that_answers():
    """The DATABASE_URL form of mnc.env.example: one host= per server. The comma form
    host=a:5432,b:5432 is handed to libpq as ONE host name and fails."""
    port = _postgres_port()
    if port is None:
        pytest.skip("no PostgreSQL server on 127.0.0.1")
    closed = _closed_port()
    good = (f"postgresql+psycopg://postgres@/postgres?host=127.0.0.1:{closed}"
            f"&host=127.0.0.1:{port}&target_session_attrs=read-write&connect_timeout=3")
    engine = create_engine(good, pool_pre_ping=True)
    try:
        for _ in range(2):  # a new connection each time, through the whole host list
            with engine.connect() as connection:
                assert connection.execute(text("SELECT inet_server_port()")).scalar() == port
            engine.dispose()
    finally:
        engine.dispose()
    comma = (f"postgresql+psycopg://postgres@/postgres?host=127.0.0.1:{closed},"
             f"127.0.0.1:{port}&target_session_attrs=read-write&connect_timeout=3")
    engine = create_engine(comma)
    try:
        with pytest.raises(Exception):
            with engine.connect():
                pass
    finally:
        engine.dispose()


def test_backup_tools_get_every_host_of_a_multi_host_url():
    env = backups.pg_environment("postgresql+psycopg://mnc@/mnc?host=10.0.0.21:5432"
                                 "&host=10.0.0.22:5433&target_session_attrs=read-write")
    assert env["PGHOST"] == "10.0.0.21,10.0.0.22" and env["PGPORT"] == "5432,5433"
    assert env["PGTARGETSESSIONATTRS"] == "read-write" and env["PGDATABASE"] == "mnc"
    port = _postgres_port()
    if port is None or shutil.which("psql") is None:
        pytest.skip("no PostgreSQL server on 127.0.0.1 or no psql")
    env = backups.pg_environment(
        f"postgresql+psycopg://postgres@/postgres?host=127.0.0.1:{_closed_port()}"
        f"&host=127.0.0.1:{port}&target_session_attrs=read-write&connect_timeout=3")
    reached = subprocess.run(["psql", "-XAtc", "SELECT inet_server_port()"], env=env,
                             capture_output=True, text=True, timeout=60)
    assert reached.returncode == 0, reached.stderr
    assert reached.stdout.strip() == str(port)


# --- the site at work: headers and retries through a running nginx ---------------------------

class _HangUp:
    """An app server that reads each request, records it and closes the connection without
    an answer (a server dying in the middle of a request)."""

    def __init__(self):
        import threading

        self.requests: list[bytes] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                connection, _address = self.sock.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(5)
                data = b""
                try:
                    while b"\r\n\r\n" not in data:
                        block = connection.recv(65536)
                        if not block:
                            break
                        data += block
                except OSError:
                    pass
                self.requests.append(data)

    def close(self):
        self.sock.close()


def _free_port() -> int:
    return _closed_port()


def test_nginx_never_resends_a_post_and_overwrites_x_forwarded_for(tmp_path):
    import ssl
    import time
    import http.client

    if NGINX is None:
        pytest.skip("nginx is not installed (make test-deps installs it)")
    first, second = _HangUp(), _HangUp()
    https_port, http_port = _free_port(), _free_port()
    site = (_read(NGINX_SITE)
            .replace("server 10.0.0.11:8000", f"server 127.0.0.1:{first.port}")
            .replace("server 10.0.0.12:8000", f"server 127.0.0.1:{second.port}")
            .replace("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
            .replace("listen [::]:443 ssl http2;", "")
            .replace("listen 80;", f"listen 127.0.0.1:{http_port};")
            .replace("listen [::]:80;", ""))
    checked = _nginx_t(tmp_path, site)  # writes nginx.conf into tmp_path
    assert checked.returncode == 0, checked.stderr
    prefix = str(tmp_path)
    server = subprocess.Popen([NGINX, "-p", prefix, "-e", f"{prefix}/error.log", "-c",
                               f"{prefix}/nginx.conf", "-g", "daemon off; master_process off;"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", https_port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, \
                    server.stderr.read().decode() if server.poll() is not None else "no nginx"
                time.sleep(0.1)
        context = ssl._create_unverified_context()

        def ask(method: str, path: str, body: bytes | None = None) -> int:
            connection = http.client.HTTPSConnection("127.0.0.1", https_port,
                                                     context=context, timeout=20)
            connection.request(method, path, body=body, headers={
                "Host": "mnc.example.lg.jp", "X-Forwarded-For": "6.6.6.6"})
            status = connection.getresponse().status
            connection.close()
            return status

        assert ask("POST", "/reserve/book", b"a=1") == 502
        posts = first.requests + second.requests
        assert len(posts) == 1  # a booking is never sent to a second server
        assert b"\r\nX-Forwarded-For: 127.0.0.1\r\n" in posts[0]
        assert b"6.6.6.6" not in posts[0]
        assert b"\r\nX-Forwarded-Proto: https\r\n" in posts[0]
        assert b"\r\nX-Forwarded-Host: mnc.example.lg.jp\r\n" in posts[0]
        before = len(first.requests + second.requests)
        assert ask("GET", "/reserve/") == 502
        assert len(first.requests + second.requests) - before == 2  # a GET is tried again
        # http is sent to https
        plain = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10)
        plain.request("GET", "/reserve/", headers={"Host": "mnc.example.lg.jp"})
        answer = plain.getresponse()
        assert answer.status == 301
        assert answer.getheader("Location") == "https://mnc.example.lg.jp/reserve/"
        plain.close()
    finally:
        server.terminate()
        server.wait(timeout=20)
        first.close()
        second.close()
