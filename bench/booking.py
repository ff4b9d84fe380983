"""Booking speed and correctness through the whole WSGI stack (issue 5).

The app runs under gunicorn as `make run` serves it (2 workers x 4 threads), on a throwaway
SQLite database or on DATABASE_URL. Clients are threads speaking plain HTTP with their own
session cookies, CSRF tokens included, from 127.0.0.1 (the per-IP guessing limit is raised
for the run, since every client shares that address).

Printed:
- requests per second of a minimal endpoint (/healthz: one SELECT 1), of the availability
  JSON (a venue's bookable slots over 62 days) and of the booking POST (the confirmation
  that turns a held time into a booking), at 1, 10 and 50 concurrent clients; each also as
  a ratio to the minimal endpoint at the same concurrency;
- a concurrency count: many residents try the last seats of one time at once; booked must
  equal seats, and no seat may be lost.
"""
from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LEVELS = (1, 10, 50)
DURATION = float(os.environ.get("BENCH_SECONDS", "3"))


class Client:
    """One resident's browser: keeps the session cookie, never follows redirects."""

    def __init__(self, port: int):
        self.port = port
        self.cookie = ""
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def request(self, method: str, path: str, form: dict | None = None):
        body = urlencode(form, doseq=True) if form is not None else None
        headers = {"Cookie": self.cookie} if self.cookie else {}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in range(2):
            try:
                self.connection.request(method, path, body=body, headers=headers)
                response = self.connection.getresponse()
                data = response.read()
                break
            except (http.client.HTTPException, OSError):
                self.connection.close()
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                if attempt:
                    raise
        for header, value in response.getheaders():
            if header.lower() == "set-cookie" and value.startswith("session="):
                self.cookie = value.split(";", 1)[0]
        return response.status, response.getheader("Location") or "", data.decode("utf-8",
                                                                                  "replace")

    def token(self, path: str) -> str:
        _, _, html = self.request("GET", path)
        return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)

    def post_form(self, path: str, form: dict):
        form = dict(form, csrf_token=self.token(path))
        return self.request("POST", path, form)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare_database(env: dict) -> tuple[int, int]:
    """Schema, and two venues taking bookings every day: a roomy one (08:30-19:30 in slots
    of 30 minutes, as a long opening day) for throughput, a tight one (7 seats a slot) for
    the count. Returns their venue ids."""
    subprocess.run([sys.executable, "-m", "flask", "--app", "run", "init"], env=env, cwd=ROOT,
                   check=True, capture_output=True)
    code = """
from datetime import time
from app import create_app
from app.models.venue import Purpose, Venue, VenuePurpose, WeeklyRule
app = create_app()
with app.app_context():
    s = app.appbuilder.session
    purpose = Purpose(code="bench", name="bench", needs_postcard=False)
    roomy = VenuePurpose(venue=Venue(name="bench roomy"), purpose=purpose, opens_days_ahead=60,
                         closes_minutes_before=0, max_party=4)
    tight = VenuePurpose(venue=Venue(name="bench tight"), purpose=purpose, opens_days_ahead=60,
                         closes_minutes_before=0, max_party=4)
    for weekday in range(7):
        roomy.rules.append(WeeklyRule(weekday=weekday, starts=time(8, 30), ends=time(19, 30),
                                      slot_minutes=30, seats=100000))
        tight.rules.append(WeeklyRule(weekday=weekday, starts=time(0, 0), ends=time(23, 30),
                                      slot_minutes=30, seats=7))
    s.add_all([roomy, tight]); s.commit()
    print(roomy.venue.id, tight.venue.id)
"""
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.split()
    return int(out[-2]), int(out[-1])


def start_server(env: dict, port: int, **popen) -> subprocess.Popen:
    """gunicorn as `make run` serves the app, in a session of its own (os.killpg stops it
    with its workers); ``popen``: e.g. stdout/stderr to a log file."""
    server = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "gunicorn"), "--bind",
         f"127.0.0.1:{port}", "--workers", "2", "--threads", "4", "--log-level", "warning",
         "run:app"], env=env, cwd=ROOT, start_new_session=True, **popen)
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return server
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("gunicorn did not start")


def throughput(port: int, clients: int, make_call, seconds: float = DURATION) -> float:
    """Requests per second with `clients` threads calling for `seconds`."""
    stop = time.perf_counter() + seconds
    counts = [0] * clients

    def worker(index):
        client = Client(port)
        call = make_call(client, index)
        while time.perf_counter() < stop:
            status = call()
            assert status < 500, status
            counts[index] += 1

    elapsed = run_threads(clients, worker)
    return sum(counts) / elapsed


def run_threads(count: int, target) -> float:
    """Run target(i) in `count` threads at once; returns the seconds it took."""
    start = time.perf_counter()
    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


def start_resident(port: int, venue: int) -> Client:
    """A resident's client through the first two steps (who, venue) of a 申請 booking."""
    client = Client(port)
    client.post_form("/reserve/book/bench/", {"name": "山田 太郎", "name_kana": "ヤマダ タロウ",
                                              "birth_date": "1980-03-01", "seats": "1"})
    client.post_form("/reserve/book/bench/venue", {"venue": venue})
    return client


def held_resident(port: int, venue: int, day_path: str | None = None):
    """A resident's client up to the confirmation page with a time held; returns
    (client, the confirmation form, day page)."""
    client = start_resident(port, venue)
    if day_path is None:
        _, _, calendar = client.request("GET", "/reserve/book/bench/calendar")
        day_path = re.search(r'href="(/reserve/book/bench/day/[\d-]+)"', calendar).group(1)
    _, _, page = client.request("GET", day_path)
    slot = re.search(r'name="slot" value="(\d+)"', page)
    if slot is None:
        return client, None, day_path
    status, location, _ = client.post_form(day_path, {"slot": slot.group(1)})
    if status != 302 or "/contact" not in location:
        return client, None, day_path
    client.post_form("/reserve/book/bench/contact", {"phone": "0312345678"})
    _, _, confirm = client.request("GET", "/reserve/book/bench/confirm")
    form = {"key": re.search(r'name="key" value="([^"]+)"', confirm).group(1),
            "csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', confirm).group(1)}
    return client, form, day_path


def bench_booking(rows: list) -> None:
    instance = tempfile.mkdtemp(prefix="mnc-bench-web-")
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{instance}/bench.db"
    env = dict(os.environ, DATABASE_URL=url, INSTANCE_DIR=instance, COOKIE_SECURE="0",
               IDENTITY_IP_ATTEMPTS="100000000", STAFF_HOURS_ENFORCED="0",
               FLASK_APP="run")
    roomy, tight = prepare_database(env)
    port = free_port()
    server = start_server(env, port)
    database = "PostgreSQL" if url.startswith("postgres") else "SQLite"
    try:
        Client(port).request("GET", f"/reserve/api/availability?venue={roomy}&purpose=bench")
        first_day = None
        for clients in LEVELS:
            minimal = throughput(port, clients, lambda c, i: lambda: c.request(
                "GET", "/healthz")[0])
            json_rps = throughput(port, clients, lambda c, i: lambda: c.request(
                "GET", f"/reserve/api/availability?venue={roomy}&purpose=bench")[0])
            # the booking POST: residents with a time held, each confirms once
            per_client = max(4, int(40 / clients))
            prepared = []
            with ThreadPoolExecutor(max_workers=min(clients, 10)) as pool:
                for client, form, first_day in pool.map(
                        lambda _: held_resident(port, roomy, first_day),
                        range(clients * per_client)):
                    prepared.append((client, form))
            queues = [prepared[i::clients] for i in range(clients)]
            done = [0] * clients

            def confirm_all(index):
                for client, form in queues[index]:
                    status, location, _ = client.request(
                        "POST", "/reserve/book/bench/confirm", form)
                    assert status == 302 and location.endswith("/reserve/done"), status
                    done[index] += 1

            elapsed = run_threads(clients, confirm_all)
            booking_rps = sum(done) / elapsed
            rows.append((f"{clients} concurrent", f"{minimal:.0f}/s",
                         f"{json_rps:.0f}/s ({json_rps / minimal:.2f}x)",
                         f"{booking_rps:.0f}/s ({booking_rps / minimal:.2f}x)"))
        rows.append(("", "", "", ""))
        rows.append(count_last_seats(port, tight))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)
        shutil.rmtree(instance, ignore_errors=True)
    rows.insert(0, (f"database: {database}", "minimal (/healthz)", "availability JSON",
                    "booking POST (confirm)"))


def count_last_seats(port: int, venue: int, attempts: int = 60):
    """`attempts` residents go for the same 7-seat time at once: first holding (the
    conditional UPDATE), then confirming. Booked must equal seats."""
    prepared = []
    barrier = threading.Barrier(attempts)
    day_path = None
    first = Client(port)
    _, _, calendar = first.request("GET", f"/reserve/api/availability?venue={venue}"
                                          "&purpose=bench")
    import json

    slot = json.loads(calendar)["slots"][0]
    day_path = f"/reserve/book/bench/day/{slot['start'][:10]}"
    results = []

    def resident(_):
        client = start_resident(port, venue)
        token = client.token(day_path)
        barrier.wait()
        status, location, _ = client.request("POST", day_path, {"slot": slot["id"],
                                                                "csrf_token": token})
        if status != 302 or "/contact" not in location:
            return "refused"
        client.post_form("/reserve/book/bench/contact", {"phone": "0312345678"})
        _, _, confirm = client.request("GET", "/reserve/book/bench/confirm")
        key = re.search(r'name="key" value="([^"]+)"', confirm).group(1)
        status, location, _ = client.request("POST", "/reserve/book/bench/confirm", {
            "key": key, "csrf_token": client.token("/reserve/book/bench/confirm")})
        return "booked" if location.endswith("/reserve/done") else "refused"

    with ThreadPoolExecutor(max_workers=attempts) as pool:
        results = list(pool.map(resident, range(attempts)))
    _, _, after = first.request("GET", f"/reserve/api/availability?venue={venue}"
                                       "&purpose=bench")
    free_after = next(s for s in json.loads(after)["slots"] if s["id"] == slot["id"])["free"]
    booked = results.count("booked")
    verdict = "OK" if booked == slot["free"] and free_after == 0 else "WRONG"
    return (f"last seats: {attempts} residents at once", f"seats {slot['free']}",
            f"booked {booked}, refused {results.count('refused')}",
            f"free after {free_after}: {verdict}")
