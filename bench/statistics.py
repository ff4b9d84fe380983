"""A 年度 report of the statistics (集計, issue 14 §4) over 300,000 cards (1.2 million card
events) and 1,000,000 booking events, on SQLite and (when it answers) PostgreSQL.

Rows are inserted with SQLAlchemy Core (no audit rows: this measures reading), spread over
five 年度. Timed through the Flask test client as the screen asks (a signed-in clerk): the
bookings, cards, applications and fees of 年度 2025 by month, bookings by venue, and the
cards' stock at the end of 2026-03-31. Goal: each under 1 s. BENCH_STATS_CARDS and
BENCH_STATS_EVENTS change the sizes.
"""
from __future__ import annotations

import os
import random
import shutil
import statistics
import tempfile
import time
from datetime import date, datetime, timedelta

from bench.ledger import PG_ADMIN, _app, _client, _fill

CARDS = int(os.environ.get("BENCH_STATS_CARDS", "300000"))
EVENTS = int(os.environ.get("BENCH_STATS_EVENTS", "1000000"))
REPEAT = 5
FY = "start=2025-04-01&end=2026-03-31&unit=month"
PAGES = [("bookings, 年度 by month", f"/statistics/?subject=bookings&{FY}"),
         ("bookings by venue", f"/statistics/?subject=bookings&{FY}&breakdown=venue"),
         ("bookings by clerk", f"/statistics/?subject=bookings&{FY}&breakdown=clerk"),
         ("cards + stock on 2026-03-31",
          f"/statistics/?subject=cards&{FY}&stock_day=2026-03-31"),
         ("applications", f"/statistics/?subject=applications&{FY}"),
         ("fees", f"/statistics/?subject=fees&{FY}")]
STEPS = ("received", "setup", "notice_sent", "handed_over")


def _engines():
    """(label, url, cleanup) per engine: a throwaway SQLite file, and a throwaway
    PostgreSQL database when the server answers (else url None and why)."""
    folder = tempfile.mkdtemp(prefix="mnc-stats-")
    yield "SQLite", f"sqlite:///{folder}/stats.db", lambda: shutil.rmtree(folder, True)
    try:
        from sqlalchemy import create_engine, text

        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        name = f"bench_stats_{os.getpid()}"
        with admin.connect() as connection:
            connection.execute(text(f"CREATE DATABASE {name}"))
    except Exception as error:  # no server here: SQLite only, said in the table
        yield "PostgreSQL", None, str(error).splitlines()[0][:60]
        return

    def drop():
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))

    yield "PostgreSQL", PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", drop


def _fill_history(app, rng: random.Random) -> None:
    from sqlalchemy import insert, select

    from app.models.card import Card, CardEvent
    from app.models.reservation import BookingEvent, Reservation, Slot
    from tests.factories import make_offer

    first = datetime(2021, 4, 1, 9, 0).astimezone()
    span = (datetime(2026, 3, 31, 17, 0).astimezone() - first).total_seconds()
    with app.app_context():
        db = app.appbuilder.session
        offers = [make_offer(db, venue=f"会場{i}", weekdays=()) for i in range(3)]
        engine = db.get_bind()
        # card events: each card's path as far as it got, days apart
        card_ids = [row[0] for row in db.execute(select(Card.id))]
        rows = []
        for card_id in card_ids:
            at = first + timedelta(seconds=rng.random() * span)
            for step in STEPS[:rng.randint(1, 4)]:
                rows.append({"card_id": card_id, "from_state": None if step == "received"
                             else STEPS[STEPS.index(step) - 1], "to_state": step, "at": at,
                             "username": "benchclerk", "storage_place_id": None})
                at += timedelta(days=rng.randint(1, 20))
            if len(rows) >= 50_000:
                with engine.begin() as connection:
                    connection.execute(insert(CardEvent.__table__), rows)
                rows = []
        with engine.begin() as connection:
            connection.execute(insert(CardEvent.__table__), rows) if rows else None
        # slots: 16 a day, weekdays, five years, per offer
        slots = []
        day = first.date()
        while day <= date(2026, 3, 31):
            if day.weekday() < 5:
                for offer in offers:
                    for k in range(16):
                        start = datetime(day.year, day.month, day.day, 9).astimezone() \
                            + timedelta(minutes=30 * k)
                        slots.append({"offer_id": offer.id, "starts_at": start,
                                      "ends_at": start + timedelta(minutes=30), "seats": 2,
                                      "taken": 0, "closed": False})
            day += timedelta(days=1)
        with engine.begin() as connection:
            for low in range(0, len(slots), 20_000):
                connection.execute(insert(Slot.__table__), slots[low:low + 20_000])
        slot_rows = db.execute(select(Slot.id, Slot.offer_id, Slot.starts_at)).all()
        # bookings (5 events each on average) and their events
        reservations, events = [], []
        kinds = ("made", "changed", "cancelled", "arrived", "no_show", "completed")
        per = 5
        for n in range(EVENTS // per):
            slot = rng.choice(slot_rows)
            reservations.append({"id": n + 1, "number": f"B{n:07d}", "slot_id": slot.id,
                                 "offer_id": slot.offer_id, "starts_at": slot.starts_at,
                                 "seats": 1, "state": "booked", "channel": "web",
                                 "birth_date": date(1980, 1, 1), "phone": "0312345678",
                                 "created_at": slot.starts_at - timedelta(days=5),
                                 "locale": "ja"})
            for k in range(per):
                events.append({"reservation_id": n + 1, "kind": kinds[rng.randrange(6)],
                               "at": slot.starts_at - timedelta(days=5 - k),
                               "by_staff": k % 2 == 0, "actor": rng.choice(
                                   ("benchclerk", "住民:B1", "system")),
                               "channel": rng.choice(("web", "phone", "counter", "walk_in")),
                               "offer_id": slot.offer_id, "starts_at": slot.starts_at,
                               "seats": 1})
            if len(events) >= 50_000:
                with engine.begin() as connection:
                    connection.execute(insert(Reservation.__table__), reservations)
                    connection.execute(insert(BookingEvent.__table__), events)
                reservations, events = [], []
        with engine.begin() as connection:
            if reservations:
                connection.execute(insert(Reservation.__table__), reservations)
                connection.execute(insert(BookingEvent.__table__), events)
            if engine.dialect.name != "postgresql":
                connection.exec_driver_sql("ANALYZE")
        if engine.dialect.name == "postgresql":
            # What autovacuum does to a history written over the years: statistics for the
            # planner and the visibility map that lets a report read its indexes alone.
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.exec_driver_sql("VACUUM ANALYZE")
        db.remove()


def _measure(client, path: str) -> float:
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    runs = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        client.get(path)
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def bench_statistics(rows: list) -> None:
    rows.append(("engine", "page (年度 2025)", "time", "goal"))
    for label, url, cleanup in _engines():
        if url is None:
            rows.append((label, f"not measured: {cleanup}", "", ""))
            continue
        instance = tempfile.mkdtemp(prefix="mnc-stats-instance-")
        try:
            app = _app(url, instance)
            rng = random.Random(14)
            _fill(app, 0, CARDS, rng)
            _fill_history(app, rng)
            client = _client(app)
            for index, (name, path) in enumerate(PAGES):
                took = _measure(client, path)
                rows.append((label if index == 0 else "", name, f"{took * 1000:.0f} ms",
                             "< 1 s" + (" ✓" if took < 1 else " ✗")))
            with app.app_context():
                app.appbuilder.session.remove()
                app.appbuilder.session.get_bind().dispose()
        finally:
            shutil.rmtree(instance, ignore_errors=True)
            cleanup()


if __name__ == "__main__":
    result: list = []
    bench_statistics(result)
    for row in result:
        print(" | ".join(str(c) for c in row))
