"""/metrics in the Prometheus text format (issue 16 §4), for docs/monitoring.md.

Two kinds of figures:

- counted by each process as it serves (requests, latency, errors, the database pool):
  prometheus_client metrics. Under gunicorn, PROMETHEUS_MULTIPROC_DIR (set in the
  environment before the server starts, emptied at each start) makes every worker write
  them to files there, and a scrape adds up the files of all workers
  (``MultiProcessCollector``); gunicorn's ``child_exit`` hook calls :func:`child_exit`
  so a dead worker's pool gauges stop counting. Without the variable (``flask run``, the
  tests) the process's own values are served.
- read at scrape time (outbox, bookings and check-ins of the last minute, backup age):
  counted by the database or read from the backup folder through
  app/services/monitoring.py, the same whichever server is scraped (aggregate them with
  ``max``, not ``sum``). Never a write.

Who may read it: an address in METRICS_ALLOW (after ProxyFix) or
``Authorization: Bearer <METRICS_TOKEN>``; anyone else gets the site's 404.
"""
from __future__ import annotations

import atexit
import hmac
import ipaddress
import os
import time
from functools import lru_cache

from flask import Flask, Response, abort, current_app, g, got_request_exception, request
from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge,
                               Histogram, generate_latest, multiprocess)
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import event

from app.extensions import session as db_session
from app.services import monitoring, unit
from app.settings import parse_networks, settings

ENDPOINT = "metrics"
NO_ENDPOINT = "(none)"  # an address no route matched (404) or a request refused earlier

# Latency buckets in seconds: a page is quick (< 0.25 s), a report or an export slow.
BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# registry=None: collected by the registry built for each scrape (below), never the
# library's global one, so building several apps in one process (tests) is harmless.
REQUESTS = Counter("mnc_http_requests", "Requests served, by Flask endpoint and status.",
                   ["endpoint", "status"], registry=None)
LATENCY = Histogram("mnc_http_request_duration_seconds",
                    "Time to serve a request, by Flask endpoint.", ["endpoint"],
                    buckets=BUCKETS, registry=None)
SERVER_ERRORS = Counter("mnc_http_server_errors",
                        "Responses with a 5xx status, by Flask endpoint.", ["endpoint"],
                        registry=None)
EXCEPTIONS = Counter("mnc_unhandled_exceptions",
                     "Exceptions no handler caught (each answered by the 500 page).",
                     ["endpoint"], registry=None)
# The pool of each worker; summed over the live workers (a dead worker's file is removed
# by child_exit).
POOL_CHECKED_OUT = Gauge("mnc_db_pool_checked_out", "Database connections in use.",
                         multiprocess_mode="livesum", registry=None)
POOL_SIZE = Gauge("mnc_db_pool_size", "Database connections the pools keep open.",
                  multiprocess_mode="livesum", registry=None)
POOL_OVERFLOW = Gauge("mnc_db_pool_overflow",
                      "Connections opened beyond the pools' size (negative: room left "
                      "before the size is reached).", multiprocess_mode="livesum",
                      registry=None)
PROCESS_METRICS = (REQUESTS, LATENCY, SERVER_ERRORS, EXCEPTIONS, POOL_CHECKED_OUT,
                   POOL_SIZE, POOL_OVERFLOW)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def child_exit(server, worker) -> None:
    """For gunicorn's ``child_exit`` hook (deploy/gunicorn.conf.py): forget the gauges of
    a worker that ended."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(worker.pid)


_forget_at_exit = False


def _forget_own_gauges() -> None:
    """At the end of any process that wrote live gauges (a CLI command that built the app,
    a worker that exits normally): take them out of the sum."""
    path = multiprocess_dir()
    if path and os.path.isdir(path):
        multiprocess.mark_process_dead(os.getpid(), path)


# --- recording --------------------------------------------------------------------------

def endpoint_label() -> str:
    """The Flask endpoint name, never the address: a fixed set of values."""
    return request.endpoint or NO_ENDPOINT


def _started() -> None:
    g.metrics_started = time.perf_counter()


def _record(response):
    endpoint = endpoint_label()
    REQUESTS.labels(endpoint, str(response.status_code)).inc()
    started = g.get("metrics_started")
    if started is not None:
        LATENCY.labels(endpoint).observe(time.perf_counter() - started)
    if response.status_code >= 500:
        SERVER_ERRORS.labels(endpoint).inc()
    return response


def _unhandled(sender, exception, **extra) -> None:
    EXCEPTIONS.labels(endpoint_label()).inc()


def _watch_pool(engine) -> None:
    """Keep the pool gauges current at each connect, checkout and check-in (QueuePool
    only: the pools SQLite uses for a memory database have no size). Read from
    ``engine.pool`` each time: ``dispose()`` replaces the pool and keeps its listeners."""
    if not all(hasattr(engine.pool, name) for name in ("checkedout", "size", "overflow")):
        return

    def update(returning: int = 0) -> None:
        pool = engine.pool
        POOL_CHECKED_OUT.set(max(pool.checkedout() - returning, 0))
        POOL_SIZE.set(pool.size())
        POOL_OVERFLOW.set(pool.overflow())

    def on_checkin(*_args) -> None:
        update(returning=1)  # the event comes before the pool takes the connection back

    global _forget_at_exit
    if multiprocess_dir() and not _forget_at_exit:
        atexit.register(_forget_own_gauges)  # os.getpid() at exit: right after a fork too
        _forget_at_exit = True
    event.listen(engine, "connect", lambda *_args: update())
    event.listen(engine, "checkout", lambda *_args: update())
    event.listen(engine, "checkin", on_checkin)
    update()


# --- scraping ---------------------------------------------------------------------------

class ScrapeTimeCollector:
    """The figures read at scrape time (app/services/monitoring.py)."""

    def collect(self):
        database_up = GaugeMetricFamily(
            "mnc_metrics_database_up",
            "1 when the database answered the scrape's queries, 0 when not.")
        try:
            figures = monitoring.database_figures(db_session())
        except Exception as error:  # the scrape still answers, saying the database failed
            unit.discard(db_session())
            current_app.logger.warning("metrics: database figures unavailable: %s",
                                       str(error).splitlines()[0][:200] if str(error) else
                                       type(error).__name__)
            figures = None
        else:
            unit.discard(db_session())  # a read only: end it
        database_up.add_metric([], 1 if figures else 0)
        yield database_up
        if figures is not None:
            outbox = GaugeMetricFamily("mnc_outbox_mails",
                                       "Mails to residents waiting (queued) or given up "
                                       "(failed).", labels=["state"])
            outbox.add_metric(["queued"], figures.outbox_queued)
            outbox.add_metric(["failed"], figures.outbox_failed)
            yield outbox
            yield GaugeMetricFamily("mnc_outbox_oldest_queued_age_seconds",
                                    "How long the oldest queued mail has waited (0: none).",
                                    value=figures.outbox_oldest_queued_seconds)
            yield GaugeMetricFamily("mnc_bookings_last_minute",
                                    "Bookings made in the last 60 seconds (every channel).",
                                    value=figures.bookings_last_minute)
            yield GaugeMetricFamily("mnc_checkins_last_minute",
                                    "Check-ins at the counter in the last 60 seconds.",
                                    value=figures.checkins_last_minute)
        backup = monitoring.backup_figures()
        yield GaugeMetricFamily("mnc_backup_last_good_age_seconds",
                                "Age of the newest verified backup (+Inf: none).",
                                value=backup.last_good_age_seconds)
        yield GaugeMetricFamily("mnc_backup_folder_readable",
                                "1 when the backup folder could be read, 0 when not.",
                                value=1 if backup.folder_readable else 0)


def scrape_registry() -> CollectorRegistry:
    """A registry for one scrape: every worker's files (multiprocess) or this process's
    own metrics, and the figures read now."""
    registry = CollectorRegistry(auto_describe=True)
    path = multiprocess_dir()
    if path:
        multiprocess.MultiProcessCollector(registry, path=path)
    else:
        for metric in PROCESS_METRICS:
            registry.register(metric)
    registry.register(ScrapeTimeCollector())
    return registry


# --- who may read it --------------------------------------------------------------------

def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


@lru_cache(maxsize=8)
def _networks(allow: tuple) -> tuple:
    return parse_networks(allow, "METRICS_ALLOW")


def allowed() -> bool:
    """An address of METRICS_ALLOW, or the METRICS_TOKEN (compared in constant time;
    an empty token switches token access off)."""
    try:
        address = ipaddress.ip_address((request.remote_addr or "").split("%")[0])
    except ValueError:
        address = None
    if address is not None:
        if getattr(address, "ipv4_mapped", None) is not None:
            address = address.ipv4_mapped
        if any(address in network for network in _networks(settings().metrics_allow)):
            return True
    expected = settings().metrics_token
    given = _bearer_token()
    return bool(expected) and given is not None and hmac.compare_digest(
        given.encode("utf-8"), expected.encode("utf-8"))


def metrics_view():
    if not allowed():
        abort(404)  # not advertised
    body = generate_latest(scrape_registry())
    response = Response(body, status=200, headers={"Cache-Control": "no-store"})
    response.content_type = CONTENT_TYPE_LATEST
    return response


def install(app: Flask) -> None:
    """The route, and the hooks that count every request (app/web.py calls this)."""
    app.add_url_rule("/metrics", ENDPOINT, metrics_view)
    # first before_request (the clock starts before any other hook), last after_request
    app.before_request_funcs.setdefault(None, []).insert(0, _started)
    app.after_request_funcs.setdefault(None, []).insert(0, _record)
    got_request_exception.connect(_unhandled, app, weak=False)
    with app.app_context():
        _watch_pool(db_session().get_bind())
