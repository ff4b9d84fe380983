"""gunicorn settings of one app server (docs/operations.md「冗長構成」).

    gunicorn -c deploy/gunicorn.conf.py run:app      (deploy/mnc-web.service)

Every value that differs between sites comes from the environment (/etc/mnc/mnc.env):

- GUNICORN_BIND          where nginx reaches this server (default 127.0.0.1:8000; an app
                         server behind a separate nginx: its LAN address, e.g. 10.0.0.11:8000)
- WEB_CONCURRENCY        worker processes (default: 2 per core, at least 2, at most 8)
- GUNICORN_THREADS       threads per worker (default 4, as `make run`)
- FORWARDED_ALLOW_IPS    the addresses of the load balancer / nginx whose X-Forwarded-*
                         headers are trusted (default 127.0.0.1): the app believes them
                         (PROXY_FIX_HOPS) only from these peers (app/proxies.py), gunicorn
                         for wsgi.url_scheme
- GUNICORN_TIMEOUT, GUNICORN_GRACEFUL_TIMEOUT, GUNICORN_MAX_REQUESTS
- GUNICORN_ACCESS_LOG    "-" for gunicorn's own access log on stdout; off by default, the app
                         logs one line per request itself (with its request id)
- PROMETHEUS_MULTIPROC_DIR  the metrics of all workers (emptied here at start-up)

Why these numbers: the app waits on PostgreSQL, SMTP and files far more than it computes
(it is I/O bound), so each worker runs a few threads (gthread); a CPU-bound page (a PDF, a
large statistics table) holds only its own thread. Each worker has its own SQLAlchemy pool
(5 + 10 overflow): app servers x workers x 15 must stay below PostgreSQL's
max_connections (2 servers x 4 workers x 15 = 120: set max_connections = 200).
"""
import os
import shutil


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def _default_workers() -> int:
    return max(2, min(2 * (os.cpu_count() or 1), 8))


# --- where and how many ---------------------------------------------------------------------
bind = [address.strip() for address in
        os.environ.get("GUNICORN_BIND", "127.0.0.1:8000").split(",") if address.strip()]
workers = _int("WEB_CONCURRENCY", _default_workers())
worker_class = "gthread"
threads = _int("GUNICORN_THREADS", 4)
# The app reads WEB_CONCURRENCY to warn when several workers count Flask-Limiter limits in
# memory (app/security.py several_workers): tell it the number actually used.
os.environ["WEB_CONCURRENCY"] = str(workers)

# --- time -----------------------------------------------------------------------------------
# gthread: `timeout` is the worker's heartbeat (a worker whose main loop hangs is killed),
# not a limit per request; a long export runs in its own thread.
timeout = _int("GUNICORN_TIMEOUT", 60)
# On stop or reload (HUP) a worker finishes what it is doing: the largest upload of scanned
# papers (MAX_CONTENT_LENGTH, about 121 MB) arrives from nginx (which buffers the body
# first) in seconds, but its PDF pages are counted and encrypted afterwards. systemd's
# TimeoutStopSec (deploy/mnc-web.service) is longer than this.
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 120)
# nginx opens a new connection per request (no upstream keepalive, deploy/nginx/mnc.conf):
# a short keepalive is enough for direct clients (a health check, curl).
keepalive = 5

# --- recycling ------------------------------------------------------------------------------
# A worker is replaced after about this many requests (a leak stays small); the jitter keeps
# the workers from restarting at the same moment.
max_requests = _int("GUNICORN_MAX_REQUESTS", 2000)
max_requests_jitter = max(1, max_requests // 10) if max_requests else 0
# The workers' heartbeat files on tmpfs: a slow or full disk must not make them look dead.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# No preload: every worker builds its own app and database pool after the fork (a pool
# opened before a fork would share its sockets between processes).
preload_app = False

# --- the proxy in front ---------------------------------------------------------------------
# Only the load balancer's (nginx's) addresses: anyone else's X-Forwarded-Proto is ignored.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# --- logs: stdout/stderr, collected by journald (journalctl -u mnc-web) ----------------------
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
proc_name = "mnc-web"


# --- hooks ----------------------------------------------------------------------------------

def on_starting(server):
    """Before any worker starts: empty PROMETHEUS_MULTIPROC_DIR (prometheus_client's
    multiprocess mode), or the counters of the previous run would be added again."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip()
    if not folder:
        return
    os.makedirs(folder, mode=0o700, exist_ok=True)
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    server.log.info("emptied PROMETHEUS_MULTIPROC_DIR %s", folder)


def child_exit(server, worker):
    """A worker ended: its live gauges leave the metrics (app/metrics.py, when present)."""
    try:
        from app.metrics import child_exit as metrics_child_exit
    except ImportError:
        return
    metrics_child_exit(server, worker)
