"""What the read pages cost beyond the framework's floor (issue 11 §7).

On a throwaway SQLite database (or DATABASE_URL) filled by the demo seed (`flask demo seed`:
two venues, three purposes, slots made 60 days ahead, bookings today and in the coming two
weeks, cards waiting), with the clock fixed on a weekday at 10:00 inside the staff hours,
each page is asked for many times through the Flask test client, interleaved with:

- the floor: /healthz (one SELECT 1 through the same stack: session cookie, hooks, teardown);
- the bare work: the same rows read with plain SQL through the engine (SQLAlchemy Core on
  the tables, no ORM, no Flask) and turned into the answer with ``json.dumps`` or a minimal
  Jinja template of the same content (compiled once).

Pages: (a) the residents' availability JSON of the busiest offer (交付 at the main office,
the default 62-day window), (b) the staff home (/ for a signed-in clerk: today's figures per
venue, cards waiting, notices), (c) the residents' month calendar (/reserve/book/kofu/
calendar for a resident who gave a postcard number).

Printed per page: median and p90 of app, bare and floor (ms), and the ratio
``(app - floor) / bare`` (goal: at most 3), in wall time and in CPU time of this process
(steadier when other work shares the machine). BENCH_PROFILE=1 also prints cProfile's top
functions of each page (cumulative time); BENCH_READS_REPEAT sets the runs (200).
"""
from __future__ import annotations

import contextlib
import cProfile
import io
import json
import os
import pstats
import re
import shutil
import statistics
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

REPEAT = int(os.environ.get("BENCH_READS_REPEAT", "200"))
WARMUP = 20
GOAL = 3.0
JST = ZoneInfo("Asia/Tokyo")


def fixed_now() -> datetime:
    """The coming Tuesday at 10:00 in Japan (staff hours, venues open, bookings today)."""
    from app.clock import JST

    today = datetime.now(JST).date()
    day = today + timedelta(days=(1 - today.weekday()) % 7 or 7)
    return datetime(day.year, day.month, day.day, 10, 0, tzinfo=JST)


def build_app(instance: str, url: str, now: datetime, seeded: bool = False):
    from app import create_app
    from app.cli import init_database

    os.environ.setdefault("DEMO_PASSWORD", "Demo-pass-2026-bench")
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "INSTANCE_DIR": instance,
                      "CLOCK": lambda: now, "SESSION_COOKIE_SECURE": False,
                      "REMEMBER_COOKIE_SECURE": False, "IDENTITY_IP_ATTEMPTS": 100000000,
                      "FAB_PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000"})
    if seeded:
        return app
    with app.app_context(), contextlib.redirect_stderr(io.StringIO()):
        init_database()  # Alembic's log lines are kept out of the table
        from app.services.accounts import create_user
        from app.services.demo import seed_demo

        seed_demo()
        create_user("benchclerk", "Bench-pass-2026-ok", [app.config["ROLE_CLERK"]], "太郎",
                    "試験", "benchclerk@example.jp")
        app.appbuilder.session.remove()
    return app


def csrf_token(client, path: str) -> str:
    html = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


def signed_in_clerk(app):
    client = app.test_client()
    response = client.post("/login/", data={
        "username": "benchclerk", "password": "Bench-pass-2026-ok",
        "csrf_token": csrf_token(client, "/login/")})
    assert response.status_code == 302 and "/login" not in response.headers["Location"], \
        response.status_code
    return client


def waiting_resident(app) -> dict:
    """A resident of the demo whose card waits unbooked: postcard number, birth date and
    the 交付 venue, as they would type and choose them."""
    from sqlalchemy import select

    from app.models.card import Card
    from app.models.reservation import ReservationPerson
    from app.models.venue import Purpose, Venue, VenuePurpose
    from app.services import cards, notice_numbers

    with app.app_context():
        session = app.appbuilder.session
        venue_id = session.execute(
            select(Venue.id).join(VenuePurpose).join(Purpose)
            .where(Purpose.code == "kofu").order_by(Venue.id)).scalars().first()
        booked = select(ReservationPerson.card_id).where(ReservationPerson.card_id.is_not(None))
        card = session.execute(select(Card).where(
            Card.state == cards.NOTICE_SENT, Card.id.not_in(booked))
            .order_by(Card.id)).scalars().first()
        session.remove()
        return {"notice_number": notice_numbers.display(card.notice_number),
                "birth_date": card.birth_date, "venue_id": venue_id}


def resident_at_calendar(app, card) -> str:
    """A resident's client through the postcard step and the venue step; the calendar's
    path."""
    client = app.test_client()
    path = "/reserve/book/kofu/"
    response = client.post(path, data={
        "notice_number": card["notice_number"],
        "birth_date": card["birth_date"].isoformat(), "csrf_token": csrf_token(client, path)})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    response = client.post("/reserve/book/kofu/venue", data={
        "venue": card["venue_id"], "csrf_token": csrf_token(client, "/reserve/book/kofu/venue")})
    assert response.status_code == 302 and response.headers["Location"].endswith("/calendar")
    return client


# --- the bare work: plain SQL through the engine, json.dumps or a minimal template ----------

class Bare:
    """The same reads without Flask, FAB or the ORM."""

    def __init__(self, app, now: datetime):
        import jinja2
        from sqlalchemy import select

        from app.models import card, notice, reservation, venue

        self.now = now
        with app.app_context():
            self.engine = app.appbuilder.session.get_bind()
        self.t = {name: table for name, table in (
            ("slot", reservation.Slot.__table__), ("hold", reservation.Hold.__table__),
            ("reservation", reservation.Reservation.__table__),
            ("venue", venue.Venue.__table__), ("purpose", venue.Purpose.__table__),
            ("offer", venue.VenuePurpose.__table__), ("card", card.Card.__table__),
            ("notice", notice.Notice.__table__))}
        self.select = select
        with app.test_request_context():  # the menu's structure: fixed at start-up
            self.menu = [(item.name, str(item.label), item.icon, [
                (child.name, str(child.label), child.icon, child.get_url())
                for child in item.childs if child and child.name != "-"])
                for item in app.appbuilder.menu.get_list()]
        self.role_patterns = app.config.get("FAB_ROLES", {})
        self.menu_names = [name for name, _, _, children in self.menu
                           for name in [name] + [c[0] for c in children]]
        env = jinja2.Environment(autoescape=True)
        self.home_template = env.from_string(HOME_TEMPLATE)
        self.calendar_template = env.from_string(CALENDAR_TEMPLATE)

    def _offer(self, connection, venue_id: int, code: str):
        t = self.t
        return connection.execute(self.select(
            t["offer"].c.id, t["offer"].c.opens_days_ahead, t["offer"].c.closes_minutes_before)
            .join(t["venue"], t["venue"].c.id == t["offer"].c.venue_id)
            .join(t["purpose"], t["purpose"].c.id == t["offer"].c.purpose_id)
            .where(t["venue"].c.id == venue_id, t["purpose"].c.code == code,
                   t["offer"].c.active.is_(True), t["venue"].c.active.is_(True),
                   t["purpose"].c.active.is_(True))).one()

    def _slots(self, connection, offer_id: int, start: datetime, end: datetime):
        """(id, start, end, seats, free) of the open slots in [start, end]: one statement in
        the database's own SQL, the driver's values, times turned into Japan time by hand."""
        sqlite = connection.dialect.name == "sqlite"
        mark = "?" if sqlite else "%s"

        def bind(value: datetime):
            utc = value.astimezone(timezone.utc)
            return utc.replace(tzinfo=None).isoformat(" ") if sqlite else utc

        def aware(value):
            if isinstance(value, str):
                value = datetime.fromisoformat(value)
            if value.tzinfo is None:
                value = value.replace(tzinfo=timezone.utc)
            return value.astimezone(JST)

        rows = connection.exec_driver_sql(
            "SELECT slot.id, slot.starts_at, slot.ends_at, slot.seats, slot.taken, "
            "(SELECT SUM(hold.seats) FROM hold WHERE hold.slot_id = slot.id "
            f"AND hold.state = 'held' AND hold.expires_at <= {mark}) "
            f"FROM slot WHERE slot.offer_id = {mark} AND NOT slot.closed "
            f"AND slot.starts_at >= {mark} AND slot.starts_at <= {mark} ORDER BY slot.starts_at",
            (bind(self.now), offer_id, bind(start), bind(end))).all()
        return [(i, aware(s), aware(e), seats, max(seats - taken + (lapsed or 0), 0))
                for i, s, e, seats, taken, lapsed in rows]

    def _window(self, offer, first: date, last: date):
        from datetime import time as dtime

        earliest = self.now + timedelta(minutes=offer.closes_minutes_before)
        latest = datetime.combine(self.now.date() + timedelta(days=offer.opens_days_ahead),
                                  dtime(23, 59), JST)
        return (max(earliest, datetime.combine(first, dtime.min, JST)),
                min(latest, datetime.combine(last, dtime.max, JST)))

    def availability(self, venue_id: int) -> bytes:
        today = self.now.date()
        with self.engine.connect() as connection:
            offer = self._offer(connection, venue_id, "kofu")
            start, end = self._window(offer, today, today + timedelta(days=61))
            slots = self._slots(connection, offer.id, start, end)
        return json.dumps({"venue": venue_id, "purpose": "kofu", "slots": [
            {"id": i, "start": s.isoformat(), "end": e.isoformat(), "seats": seats,
             "free": free} for i, s, e, seats, free in slots]}).encode()

    def home(self, user_id: int) -> str:
        from sqlalchemy import func, or_, text

        from app.clock import JST

        t = self.t
        today = self.now.astimezone(JST).date()
        day_start = datetime.combine(today, datetime.min.time(), JST)
        day_end = day_start + timedelta(days=1)
        r, s, o, v = t["reservation"].c, t["slot"].c, t["offer"].c, t["venue"].c
        late_before = self.now - timedelta(minutes=5)
        with self.engine.connect() as connection:
            # the signed-in clerk and the menu entries the roles may see (one query each)
            user = connection.execute(text(
                "SELECT first_name, last_name FROM ab_user WHERE id = :id AND active"),
                {"id": user_id}).one()
            roles = connection.execute(text(
                "SELECT r.name FROM ab_user_role ur JOIN ab_role r ON r.id = ur.role_id "
                "WHERE ur.user_id = :id"), {"id": user_id}).scalars().all()
            venues = connection.execute(self.select(v.id, v.name).where(v.active.is_(True))
                                        .order_by(v.name)).all()
            booked = {}
            for venue_id, state, late, seats in connection.execute(
                    self.select(o.venue_id, r.state, s.starts_at < late_before,
                                func.sum(r.seats))
                    .select_from(t["reservation"].join(t["slot"], s.id == r.slot_id)
                                 .join(t["offer"], o.id == s.offer_id))
                    .where(s.starts_at >= day_start, s.starts_at < day_end,
                           r.state != "cancelled")
                    .group_by(o.venue_id, r.state, s.starts_at < late_before)):
                booked.setdefault(venue_id, []).append((state, late, seats))
            free = dict(connection.execute(
                self.select(o.venue_id, func.sum(s.seats - s.taken))
                .select_from(t["slot"].join(t["offer"], o.id == s.offer_id)
                             .join(t["venue"], v.id == o.venue_id)
                             .join(t["purpose"], t["purpose"].c.id == o.purpose_id))
                .where(s.starts_at >= day_start, s.starts_at < day_end, s.ends_at > self.now,
                       s.closed.is_(False), o.active.is_(True), v.active.is_(True),
                       t["purpose"].c.active.is_(True))
                .group_by(o.venue_id)).all())
            waiting = connection.execute(self.select(func.count(t["card"].c.id)).where(
                t["card"].c.state.in_(("notice_sent", "renotified", "reserved")))).scalar_one()
            n = t["notice"].c
            notices = connection.execute(
                self.select(n.title, n.body, n.importance, n.starts_at)
                .where(n.audience.in_(("staff", "both")), n.starts_at <= self.now,
                       or_(n.ends_at.is_(None), n.ends_at > self.now))
                .order_by(n.importance.desc(), n.starts_at.desc())).all()
        figures = []
        for venue_id, name in venues:
            c = {"booked": 0, "arrived": 0, "waiting": 0, "late": 0, "no_show": 0}
            for state, late, seats in booked.get(venue_id, []):
                c["booked"] += seats
                if state in ("arrived", "completed"):
                    c["arrived"] += seats
                elif state == "no_show":
                    c["no_show"] += seats
                elif state == "booked":
                    c["waiting"] += seats
                    c["late"] += seats if late else 0
            figures.append({"id": venue_id, "name": name, "c": c, "free": free.get(venue_id, 0)})
        # the roles' permissions are patterns in the configuration (FAB_ROLES)
        patterns = [p for role in roles for p in self.role_patterns.get(role, [])]
        names = self.menu_names
        visible = {name for name in names if any(
            re.match(view, name) and re.match(permission, "menu_access")
            for view, permission in patterns)}
        menu = [(label, icon, [c for c in children if c[0] in visible])
                for name, label, icon, children in self.menu if name in visible]
        return self.home_template.render(figures=figures, waiting=waiting, notices=notices,
                                         today=today, menu=menu, user=user)

    def calendar(self, venue_id: int, seats: int = 1) -> str:
        today = self.now.date()
        month = today.replace(day=1)
        last_day = (month + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        with self.engine.connect() as connection:
            offer = self._offer(connection, venue_id, "kofu")
            start, end = self._window(offer, month, last_day)
            slots = self._slots(connection, offer.id, start, end)
        by_day: dict[date, list] = {}
        for slot in slots:
            by_day.setdefault(slot[1].date(), []).append(slot)
        status = {}
        day = month
        while day <= last_day:
            rows = by_day.get(day, [])
            usable = [r for r in rows if r[4] >= seats]
            if not rows:
                status[day] = "closed"
            elif not usable:
                status[day] = "full"
            else:
                status[day] = ("few" if sum(r[4] for r in usable)
                               <= 0.3 * sum(r[3] for r in rows) else "free")
            day += timedelta(days=1)
        weeks, week = [], [None] * ((month.weekday() + 1) % 7)
        day = month
        while day <= last_day:
            week.append(day)
            if len(week) == 7:
                weeks.append(week)
                week = []
            day += timedelta(days=1)
        if week:
            weeks.append(week + [None] * (7 - len(week)))
        return self.calendar_template.render(weeks=weeks, status=status, month=month)


HOME_TEMPLATE = """<nav><ul>{% for label, icon, children in menu %}<li class="dropdown">
<a href="#"><i class="fa {{ icon }}"></i> {{ label }}</a><ul>
{% for name, child, icon, href in children %}
<li><a href="{{ href }}"><i class="fa fa-fw {{ icon }}"></i> {{ child }}</a></li>
{% endfor %}</ul></li>{% endfor %}</ul><p>{{ user.last_name }} {{ user.first_name }}</p></nav>
<h3>Today <small>{{ today }}</small></h3><table>
{% for f in figures %}<tr><td>{{ f.name }}</td><td>{{ f.c.booked }}</td><td>{{ f.c.arrived }}</td>
<td>{{ f.c.waiting }}{% if f.c.late %} late {{ f.c.late }}{% endif %}</td><td>{{ f.c.no_show }}</td>
<td>{{ f.free }}</td><td><a href="/desk/day/{{ f.id }}">desk</a></td></tr>{% endfor %}</table>
<p>Cards waiting for hand-over: {{ waiting }}</p>
{% for n in notices %}<article class="notice importance-{{ n.importance }}"><h4>{{ n.title }}</h4>
<div class="meta">{{ n.starts_at.strftime("%Y-%m-%d %H:%M") }}</div>
<div>{{ n.body }}</div></article>
{% endfor %}"""

CALENDAR_TEMPLATE = """<h2>{{ month.year }}年{{ month.month }}月</h2><table><tbody>
{% for week in weeks %}<tr>{% for d in week %}{% if d is none %}<td class="empty"></td>{% else %}
<td class="{{ status[d] }}">{% if status[d] in ("free", "few") %}
<a href="/reserve/book/kofu/day/{{ d.isoformat() }}" data-day="{{ d.isoformat() }}">{{ d.day }}</a>
{% else %}{{ d.day }}{% endif %}</td>
{% endif %}{% endfor %}</tr>{% endfor %}</tbody></table>"""


# --- timing -----------------------------------------------------------------------------------

def stats(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]


def measure(floor, app_call, bare_call, repeat: int = REPEAT):
    """Interleaved, so that a noisy neighbour hits all three alike; seconds of wall time and
    of this process's CPU time (steadier on a busy machine; with SQLite the database works
    in this process too)."""
    runs = {"floor": [], "app": [], "bare": []}
    cpu = {"floor": [], "app": [], "bare": []}
    calls = (("floor", floor), ("app", app_call), ("bare", bare_call))
    for index in range(WARMUP + repeat):
        for name, call in calls:
            start, start_cpu = time.perf_counter(), time.process_time()
            call()
            elapsed, elapsed_cpu = time.perf_counter() - start, time.process_time() - start_cpu
            if index >= WARMUP:
                runs[name].append(elapsed)
                cpu[name].append(elapsed_cpu)
    return ({name: stats(values) for name, values in runs.items()},
            {name: statistics.median(values) for name, values in cpu.items()})


def profile(title: str, call, repeat: int = 100, top: int = 25) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(repeat):
        call()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    print(f"== profile: {title} ({repeat} requests) ==")
    print(out.getvalue())


def bench_reads(rows: list) -> None:
    # BENCH_READS_KEEP=<folder>: keep the seeded SQLite database there and reuse it (the same
    # day), to profile again without seeding again.
    keep = os.environ.get("BENCH_READS_KEEP")
    instance = keep or tempfile.mkdtemp(prefix="mnc-bench-reads-")
    seeded = bool(keep) and os.path.exists(os.path.join(instance, "bench.db"))
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{instance}/bench.db"
    now = fixed_now()
    try:
        app = build_app(instance, url, now, seeded)
        card = waiting_resident(app)
        venue_id = card["venue_id"]
        clerk = signed_in_clerk(app)
        with app.app_context():
            clerk_id = app.appbuilder.sm.find_user(username="benchclerk").id
            app.appbuilder.session.remove()
        resident = resident_at_calendar(app, card)
        bare = Bare(app, now)
        json_path = f"/reserve/api/availability?venue={venue_id}&purpose=kofu"
        calendar_path = "/reserve/book/kofu/calendar"

        def ok(client, path, kind):
            def call():
                response = client.get(path)
                assert response.status_code == 200, (path, response.status_code)
                response.get_data()
                return response
            return call

        pages = [
            ("(a) availability JSON", ok(resident, json_path, "json"),
             lambda: bare.availability(venue_id), ok(resident, "/healthz", "json")),
            ("(b) staff home /", ok(clerk, "/", "html"), lambda: bare.home(clerk_id),
             ok(clerk, "/healthz", "json")),
            ("(c) resident calendar", ok(resident, calendar_path, "html"),
             lambda: bare.calendar(venue_id), ok(resident, "/healthz", "json")),
        ]
        answer = json.loads(pages[0][1]().get_data())
        assert answer == json.loads(bare.availability(venue_id)), "bare JSON differs"
        slots = len(answer["slots"])
        database = "PostgreSQL" if url.startswith("postgres") else "SQLite"
        for title, app_call, bare_call, floor in pages:
            if os.environ.get("BENCH_PROFILE"):
                profile(title, app_call)
            result, cpu = measure(floor, app_call, bare_call)
            (app_med, app_p90), (bare_med, bare_p90), (floor_med, floor_p90) = (
                result["app"], result["bare"], result["floor"])
            ratio = (app_med - floor_med) / bare_med
            cpu_ratio = (cpu["app"] - cpu["floor"]) / cpu["bare"]
            rows.append((title, f"{app_med * 1000:.2f} / {app_p90 * 1000:.2f}",
                         f"{bare_med * 1000:.2f} / {bare_p90 * 1000:.2f}",
                         f"{floor_med * 1000:.2f} / {floor_p90 * 1000:.2f}",
                         f"{ratio:.1f}x {'OK' if ratio <= GOAL else 'over'}",
                         f"{cpu['app'] * 1000:.2f} / {cpu['bare'] * 1000:.2f} / "
                         f"{cpu['floor'] * 1000:.2f} = {cpu_ratio:.1f}x "
                         f"{'OK' if cpu_ratio <= GOAL else 'over'}"))
        rows.insert(0, (f"{database}, {slots} slots in the JSON, {REPEAT} runs",
                        "app ms (median / p90)", "bare ms", "floor ms (/healthz)",
                        f"(app-floor)/bare, goal <= {GOAL:g}x",
                        "CPU ms app / bare / floor = ratio"))
    finally:
        if not keep:
            shutil.rmtree(instance, ignore_errors=True)
