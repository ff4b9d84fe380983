"""The failover drill (issue 16 §2), on one machine: `make ha-drill`.

1. A PostgreSQL primary and a streaming-replication standby, two throwaway clusters on free
   loopback ports (initdb; pg_basebackup -R), synchronous replication
   (synchronous_standby_names on the primary, synchronous_commit=on): a commit confirmed to
   a resident is on both.
2. The schema, the demo data and two bench venues (bench/booking.py) in the primary.
3. Two app instances (gunicorn as `make run` serves it) with the libpq multi-host URL
   ``postgresql+psycopg://postgres@/mnc?host=127.0.0.1:P1&host=127.0.0.1:P2
   &target_session_attrs=read-write`` and one INSTANCE_DIR, behind nginx (an upstream of the
   two, production's proxy headers, PROXY_FIX_HOPS=1).
4. Residents booking (the whole booking flow, cookies and CSRF tokens) and clerks checking
   visitors in (REST API, JWT) through nginx. In the middle: kill -9 of one app instance;
   a few seconds later the primary stopped hard (pg_ctl stop -m immediate) and the standby
   promoted (pg_ctl promote). The remaining instance must reach the new primary through the
   multi-host URL without a restart.
5. A table: requests sent, failed during the switch and for how long, bookings confirmed to
   residents against bookings present in the new primary (none may be lost), overbooked
   seats (0), time from stopping the primary to the first successful booking. Exit status 1
   when a confirmed booking or check-in is missing or a seat is overbooked.

Everything (processes, clusters, temporary folders) is removed at the end, on failure and
on Ctrl-C too. Options: ``--residents``, ``--clerks``, ``--before`` (seconds of load before
the app instance is killed), ``--gap`` (kill to primary stop), ``--promote-after`` (primary
stop to promote), ``--after`` (seconds of load after the promotion), ``--keep`` (leave the
folder for a look).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
# `python bench/ha_drill.py` puts bench/ first on the path, where bench/statistics.py would
# stand for the standard library's statistics.
BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != BENCH]

from bench import throwaway  # noqa: E402
from bench.booking import Client, held_resident, prepare_database, start_server  # noqa: E402

DATABASE = "mnc"
DEMO_PASSWORD = "Drill-Failover-2026!"
CLERK = "madoguchi01"
JST = timezone(timedelta(hours=9))  # the desk checks in the bookings of its day
NUMBER = re.compile(r'data-testid="reservation-number">\s*([^<\s]+)\s*<')

NGINX_CONF = """\
# The failover drill's nginx (bench/ha_drill.py): two app instances behind one server.
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    client_max_body_size 64m;
    upstream mnc_app {{
{servers}
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://mnc_app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
            proxy_connect_timeout 2s;
            proxy_read_timeout 60s;
            proxy_next_upstream error timeout;
        }}
    }}
}}
"""


def multi_host_url(ports: list[int], database: str = DATABASE) -> str:
    """The libpq multi-host URL in the form SQLAlchemy 2.1 + psycopg 3 accept: one ``host=``
    per server (``host=a:p1,b:p2`` is passed to libpq as one host name ``a:p1,b:p2`` and
    fails); the first server that takes writes is used."""
    hosts = "&".join(f"host=127.0.0.1:{port}" for port in ports)
    return (f"postgresql+psycopg://postgres@/{database}?{hosts}"
            "&target_session_attrs=read-write&connect_timeout=3")


def nginx_conf(prefix: str, port: int, app_ports: list[int]) -> str:
    servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;"
                        for p in app_ports)
    return NGINX_CONF.format(prefix=prefix, port=port, servers=servers)


def write_nginx_conf(prefix: str, port: int, app_ports: list[int]) -> str:
    path = os.path.join(prefix, "nginx.conf")
    with open(path, "w", encoding="utf-8") as out:
        out.write(nginx_conf(prefix, port, app_ports))
    return path


def nginx_binary() -> str:
    return shutil.which("nginx") or "/usr/sbin/nginx"


def nginx_test(conf: str, prefix: str) -> subprocess.CompletedProcess:
    """nginx -t of the drill's configuration (its own prefix and error log)."""
    return subprocess.run([nginx_binary(), "-t", "-p", prefix, "-c", conf, "-e",
                           os.path.join(prefix, "nginx-error.log")],
                          capture_output=True, text=True, timeout=30)


def start_nginx(prefix: str, app_ports: list[int]) -> tuple[subprocess.Popen, int]:
    """nginx in the foreground (daemon off, a child we stop) with its own prefix, in front
    of ``app_ports``; returns it and its port once /healthz answers through it."""
    os.makedirs(prefix, exist_ok=True)
    port = throwaway.free_port()
    conf = write_nginx_conf(prefix, port, app_ports)
    checked = nginx_test(conf, prefix)
    if checked.returncode:
        raise RuntimeError(f"nginx -t: {checked.stderr}")
    nginx = subprocess.Popen([nginx_binary(), "-p", prefix, "-c", conf, "-e",
                              os.path.join(prefix, "nginx-error.log")],
                             start_new_session=True)
    for _ in range(100):
        with contextlib.suppress(Exception):
            if Client(port).request("GET", "/healthz")[0] == 200:
                return nginx, port
        time.sleep(0.1)
    nginx.kill()
    raise RuntimeError("nginx did not answer")


def stop_nginx(nginx: subprocess.Popen | None) -> None:
    if nginx is None:
        return
    with contextlib.suppress(Exception):
        nginx.terminate()
        nginx.wait(timeout=10)
    if nginx.poll() is None:
        nginx.kill()
        nginx.wait(timeout=10)


# --- the load -------------------------------------------------------------------------------

@dataclass
class Log:
    """Every request the drill's clients sent: (time, ok); failed = 5xx or no answer."""

    started: float = field(default_factory=time.monotonic)
    sent: int = 0
    failures: list = field(default_factory=list)  # (time, what)
    confirmed: dict = field(default_factory=dict)  # booking number -> confirmed at
    confirmed_unnumbered: int = 0  # 302 to the done page seen, the number page never read
    booking_times: list = field(default_factory=list)
    checked_in: dict = field(default_factory=dict)  # number -> time
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, ok: bool, what: str) -> None:
        with self.lock:
            self.sent += 1
            if not ok:
                self.failures.append((time.monotonic(), what))


class DrillClient(Client):
    """bench/booking.py's client, each request counted (a 5xx or no answer: failed)."""

    log: Log

    def request(self, method, path, form=None):
        try:
            status, location, body = super().request(method, path, form)
        except Exception as error:
            self.log.note(False, f"{method} {path.split('?')[0]}: {type(error).__name__}")
            raise
        self.log.note(status < 500, f"{method} {path.split('?')[0]}: {status}")
        return status, location, body

    def json(self, method: str, path: str, payload=None, token: str | None = None):
        import http.client

        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        body = json.dumps(payload) if payload is not None else None
        try:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
            connection.close()
        except Exception as error:
            self.log.note(False, f"{method} {path.split('?')[0]}: {type(error).__name__}")
            raise
        self.log.note(response.status < 500, f"{method} {path.split('?')[0]}: "
                                             f"{response.status}")
        try:
            return response.status, json.loads(data or b"null")
        except ValueError:
            return response.status, None


def client_class(log: Log):
    return type("BoundDrillClient", (DrillClient,), {"log": log})


def resident_loop(port: int, venue: int, log: Log, stop: threading.Event, numbers: list):
    """Residents one after another: the whole booking flow, then the number page."""
    day_path = None
    while not stop.is_set():
        try:
            client, form, day_path = held_resident(port, venue, day_path)
            if form is None:  # the day is full: the next resident starts on the calendar
                day_path = None
                continue
            status, location, _ = client.request("POST", "/reserve/book/bench/confirm", form)
            if status != 302 or not location.endswith("/reserve/done"):
                continue
            at = time.monotonic()
            with log.lock:
                log.booking_times.append(at)
            number = None
            for _ in range(20):  # the confirmation is shown; read its number
                with contextlib.suppress(Exception):
                    status, _, page = client.request("GET", "/reserve/done")
                    found = NUMBER.search(page) if status == 200 else None
                    if found:
                        number = found.group(1)
                        break
                time.sleep(0.5)
            with log.lock:
                if number:
                    log.confirmed[number] = at
                    numbers.append(number)
                else:
                    log.confirmed_unnumbered += 1
        except Exception:
            time.sleep(0.2)  # a failed step: counted by the client; the next resident


def clerk_loop(port: int, log: Log, stop: threading.Event, numbers: list, today: str):
    """A clerk checks in today's confirmed bookings through the REST API (JWT)."""
    cls = client_class(log)
    client = cls(port)
    token = None
    while not stop.is_set():
        try:
            if token is None:
                status, body = client.json("POST", "/api/v1/security/login", {
                    "username": CLERK, "password": DEMO_PASSWORD, "provider": "db"})
                if status != 200:
                    time.sleep(0.5)
                    continue
                token = body["access_token"]
            with log.lock:
                number = numbers.pop(0) if numbers else None
            if number is None:
                time.sleep(0.2)
                continue
            query = quote(f"(filters:!((col:number,opr:eq,value:'{number}')),"
                          "columns:!(id,starts_at))")
            status, body = client.json("GET", f"/api/v1/reservation/?q={query}", token=token)
            if status != 200 or not body.get("result"):
                with log.lock:
                    numbers.append(number)  # again later
                time.sleep(0.2)
                continue
            row = body["result"][0]
            if not row["starts_at"].startswith(today):
                continue  # another day's booking: not for today's desk
            status, body = client.json("POST", f"/api/v1/reservation/{body['ids'][0]}"
                                               "/check-in", token=token)
            if status == 200:
                with log.lock:
                    log.checked_in[number] = time.monotonic()
            elif status >= 500:
                with log.lock:
                    numbers.append(number)
                time.sleep(0.2)
        except Exception:
            time.sleep(0.2)


# --- the drill -------------------------------------------------------------------------------

@dataclass
class Stack:
    tmp: str
    primary: throwaway.Cluster | None = None
    standby: throwaway.Cluster | None = None
    apps: list = field(default_factory=list)  # (port, Popen)
    nginx: subprocess.Popen | None = None
    nginx_port: int = 0
    more_nginx: list = field(default_factory=list)
    env: dict = field(default_factory=dict)
    venues: tuple = ()

    def close(self) -> None:
        for _, server in self.apps:
            with contextlib.suppress(Exception):
                os.killpg(server.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                server.wait(timeout=10)
        for nginx in [self.nginx, *self.more_nginx]:
            stop_nginx(nginx)
        throwaway.remove(self.primary, self.standby)


def redis_uri() -> str:
    """A Redis database for the limits when Redis answers on loopback, else memory://."""
    db = os.environ.get("HA_DRILL_REDIS_DB", "14")
    try:
        import redis

        redis.Redis(host="127.0.0.1", port=6379, db=int(db), socket_timeout=1).ping()
        return f"redis://127.0.0.1:6379/{db}"
    except Exception:
        return "memory://"


def build(stack: Stack, instances: int = 2, standby: bool = True, say=print) -> None:
    """Clusters, schema and data, ``instances`` app servers, nginx in front of them."""
    tmp = stack.tmp  # throwaway.temp_dir(): open to postgres and nginx's workers
    started = time.monotonic()
    sync = {"synchronous_standby_names": "FIRST 1 (standby)"} if standby else {}
    stack.primary = throwaway.Cluster(os.path.join(tmp, "pg"), "primary").init(
        synchronous_commit="on", **sync)
    if standby:
        stack.standby = stack.primary.standby(os.path.join(tmp, "pg"), "standby")
        stack.primary.wait_synchronous("standby")
    stack.primary.sql(f"CREATE DATABASE {DATABASE}")
    ports = [stack.primary.port] + ([stack.standby.port] if standby else [])
    instance = os.path.join(tmp, "instance")
    os.makedirs(instance)
    limits = redis_uri()
    stack.env = dict(
        os.environ, DATABASE_URL=multi_host_url(ports), INSTANCE_DIR=instance,
        COOKIE_SECURE="0", PROXY_FIX_HOPS="1", RATELIMIT_STORAGE_URI=limits,
        IDENTITY_IP_ATTEMPTS="100000000", LOGIN_RATE_LIMIT="100000",
        STAFF_HOURS_ENFORCED="0", DEMO_PASSWORD=DEMO_PASSWORD, FLASK_APP="run",
        WEB_CONCURRENCY="2")
    say(f"  clusters: primary 127.0.0.1:{stack.primary.port}"
        + (f", standby 127.0.0.1:{stack.standby.port} (synchronous)" if standby else "")
        + f"; limits: {limits}")
    stack.venues = prepare_database(stack.env)  # flask init, the bench's two venues
    subprocess.run([sys.executable, "-m", "flask", "--app", "run", "demo", "seed"],
                   env=stack.env, cwd=ROOT, check=True, capture_output=True)
    say(f"  schema and demo data: {time.monotonic() - started:.1f} s")
    for n in range(instances):
        port = throwaway.free_port()
        log = open(os.path.join(tmp, f"app{n + 1}.log"), "w", encoding="utf-8")
        stack.apps.append((port, start_server(stack.env, port, stdout=log, stderr=log)))
    stack.nginx, stack.nginx_port = start_nginx(os.path.join(tmp, "nginx"),
                                                [p for p, _ in stack.apps])
    say(f"  {instances} app instance(s) on "
        f"{', '.join(str(p) for p, _ in stack.apps)} behind nginx on 127.0.0.1:"
        f"{stack.nginx_port}: {time.monotonic() - started:.1f} s")


def verify(cluster: throwaway.Cluster, log: Log) -> dict:
    """What the (new) primary holds of what the residents and clerks were told."""
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=cluster.port, user="postgres",
                         dbname=DATABASE, connect_timeout=5) as conn:
        states = dict(conn.execute("SELECT number, state FROM reservation").fetchall())
        overbooked = conn.execute("""
            SELECT count(*), coalesce(sum(booked - s.seats), 0) FROM slot s
            JOIN (SELECT slot_id, sum(seats) AS booked FROM reservation
                  WHERE state <> 'cancelled' GROUP BY slot_id) r ON r.slot_id = s.id
            WHERE r.booked > s.seats OR s.taken > s.seats""").fetchone()
        in_recovery = conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
    missing = sorted(n for n in log.confirmed if n not in states)
    not_arrived = sorted(n for n in log.checked_in if states.get(n) != "arrived")
    return {"present": sum(1 for n in log.confirmed if n in states), "missing": missing,
            "checked_in_missing": not_arrived, "overbooked_slots": overbooked[0],
            "overbooked_seats": overbooked[1], "in_recovery": in_recovery}


def run_drill(residents: int = 6, clerks: int = 2, before: float = 8, gap: float = 3,
              promote_after: float = 0.5, after: float = 12, keep: bool = False,
              say=print) -> dict:
    """The drill; returns its figures (see table())."""
    tmp = throwaway.temp_dir("mnc-ha-drill-")
    stack = Stack(tmp)
    wall = time.monotonic()
    stop = threading.Event()
    threads: list[threading.Thread] = []
    try:
        say("setting up")
        build(stack, say=say)
        log = Log()
        cls = client_class(log)
        numbers: list = []
        today = datetime.now(JST).date().isoformat()
        tight = stack.venues[1]
        import bench.booking as booking_module

        booking_module.Client = cls  # held_resident makes its clients through this name
        for _ in range(residents):
            threads.append(threading.Thread(target=resident_loop, daemon=True, args=(
                stack.nginx_port, tight, log, stop, numbers)))
        for _ in range(clerks):
            threads.append(threading.Thread(target=clerk_loop, daemon=True, args=(
                stack.nginx_port, log, stop, numbers, today)))
        say(f"load: {residents} residents booking, {clerks} clerks checking in, through "
            "nginx")
        log.started = time.monotonic()
        for thread in threads:
            thread.start()
        time.sleep(before)
        killed_port, killed = stack.apps[1]
        os.killpg(killed.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        say(f"  {killed_at - log.started:5.1f} s  kill -9 of the app instance on {killed_port}")
        time.sleep(gap)
        stopping_at = time.monotonic()
        stack.primary.stop("immediate")
        stopped_at = time.monotonic()
        say(f"  {stopped_at - log.started:5.1f} s  primary stopped (pg_ctl stop -m immediate)")
        time.sleep(promote_after)
        stack.standby.promote()
        promoted_at = time.monotonic()
        say(f"  {promoted_at - log.started:5.1f} s  standby promoted (pg_ctl promote), "
            f"{promoted_at - stopped_at:.1f} s after the stop")
        time.sleep(after)
        stop.set()
        for thread in threads:
            thread.join(timeout=70)
        ended = time.monotonic()
        say(f"  {ended - log.started:5.1f} s  load stopped")
        checked = verify(stack.standby, log)
        at_kill = [w for t, w in log.failures if killed_at <= t < stopping_at]
        switch = [(t, w) for t, w in log.failures if t >= stopping_at]
        after_stop = [t for t in log.booking_times if t > stopped_at]
        result = {
            "sent": log.sent, "failed": len(log.failures),
            "failed_kill": len(at_kill), "failed_kill_how": _statuses(at_kill),
            "failed_switch": len(switch),
            "failed_switch_how": _statuses([w for _, w in switch]),
            "failed_seconds": (switch[-1][0] - switch[0][0]) if switch else 0.0,
            "failed_before": len([t for t, _ in log.failures if t < killed_at]),
            "failed_before_how": _statuses([w for t, w in log.failures if t < killed_at]),
            "failure_times": [(round(t - stopped_at, 2), w) for t, w in log.failures],
            "confirmed": len(log.confirmed) + log.confirmed_unnumbered,
            "confirmed_numbers": sorted(log.confirmed),
            "confirmed_unnumbered": log.confirmed_unnumbered,
            "checked_in": len(log.checked_in),
            "first_booking_after_stop": (after_stop[0] - stopped_at) if after_stop else None,
            "bookings_after_stop": len(after_stop),
            "promote_seconds": promoted_at - stopped_at,
            **checked,
        }
        problems = []
        if checked["missing"]:
            problems.append(f"confirmed bookings missing: {', '.join(checked['missing'])}")
        if checked["checked_in_missing"]:
            problems.append("check-ins confirmed but not arrived: "
                            + ", ".join(checked["checked_in_missing"]))
        if checked["overbooked_slots"]:
            problems.append(f"overbooked slots: {checked['overbooked_slots']}")
        if checked["in_recovery"]:
            problems.append("the standby was not promoted")
        if not after_stop:
            problems.append("no booking succeeded after the primary stopped")
        result["problems"] = problems
        result["ok"] = not problems
        return result
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            import bench.booking as booking_module

            booking_module.Client = Client
        stack.close()
        if keep:
            say(f"kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        say(f"wall time {time.monotonic() - wall:.1f} s")


def _statuses(failures: list[str]) -> str:
    """'503 x12, 502 x2, RemoteDisconnected x1' of 'GET /path: 503' lines."""
    counts: dict = {}
    for what in failures:
        how = what.rsplit(": ", 1)[-1]
        counts[how] = counts.get(how, 0) + 1
    return ", ".join(f"{how} x{n}" for how, n in sorted(counts.items(), key=lambda i: -i[1]))


def table(result: dict) -> list[tuple]:
    first = result["first_booking_after_stop"]
    numbers = result["confirmed_numbers"]
    shown = ", ".join(numbers[:4]) + (", ..." if len(numbers) > 4 else "")
    return [
        ("what", "value", "must be"),
        ("requests sent (through nginx)", str(result["sent"]), ""),
        ("requests failed (5xx or no answer) before the kill",
         f"{result['failed_before']} ({result['failed_before_how'] or '-'})",
         "counted (0 on an idle machine)"),
        ("requests failed at the kill -9 of an app instance",
         f"{result['failed_kill']} ({result['failed_kill_how'] or '-'})", "counted"),
        ("requests failed at the database switch",
         f"{result['failed_switch']} over {result['failed_seconds']:.1f} s, first to last "
         f"({result['failed_switch_how'] or '-'})", "counted"),
        *([("  failed otherwise than 502/503 (what)", ", ".join(sorted(odd)), "")]
          if (odd := {w for _, w in result["failure_times"]
                      if not w.endswith((": 502", ": 503"))}) else []),
        ("bookings confirmed to residents", f"{result['confirmed']} ({shown})", ""),
        ("  confirmed and present in the new primary",
         f"{result['present']} (missing: {', '.join(result['missing']) or 'none'})",
         "all (none lost)"),
        ("check-ins confirmed to clerks (REST API)", str(result["checked_in"]), ""),
        ("  confirmed but not arrived in the new primary",
         str(len(result["checked_in_missing"])), "0"),
        ("overbooked slots (seats)",
         f"{result['overbooked_slots']} ({result['overbooked_seats']})", "0"),
        ("primary stop to promotion", f"{result['promote_seconds']:.1f} s", ""),
        ("primary stop to first successful booking",
         f"{first:.1f} s" if first is not None else "none", "a booking"),
        ("bookings after the stop", str(result["bookings_after_stop"]), "> 0"),
        ("verdict", "OK" if result["ok"] else "FAILED: " + "; ".join(result["problems"]),
         "OK"),
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--residents", type=int, default=6)
    parser.add_argument("--clerks", type=int, default=2)
    parser.add_argument("--before", type=float, default=8)
    parser.add_argument("--gap", type=float, default=3)
    parser.add_argument("--promote-after", type=float, default=0.5)
    parser.add_argument("--after", type=float, default=12)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in background
    from bench.run import table as print_table

    result = run_drill(args.residents, args.clerks, args.before, args.gap,
                       args.promote_after, args.after, args.keep)
    rows = table(result)
    print()
    print_table(rows[1:], rows[0])
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: every process and temporary folder of the drill removed",
              file=sys.stderr)
        sys.exit(130)
