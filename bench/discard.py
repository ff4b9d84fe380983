"""Discard candidates over a city's ledger (issue 16 §3): `python -m bench.discard`.

One throwaway database per engine (SQLite; PostgreSQL when 127.0.0.1:5432 answers), filled
with BENCH_DISCARD_CARDS cards (300,000) by Core inserts as bench/ledger.py fills it, with
the dates a ledger has (notices, reminders, returns, expiry): cards received over five
years up to the bench's day; those of the last half year in every state, 1 in 100 older
ones still waiting (the candidates), the rest handed over. Printed, the median of BENCH_DISCARD_REPEAT runs (3):

- the old live rules (every not-yet-issued card loaded and judged in Python, as the screen
  did on each page view before issue 16; the reference of tests/unit/test_discard.py);
- ``discard.refresh`` (SQL pre-filter, judge the few, replace the snapshot, audit): what
  the nightly job and 「今すぐ更新」 run;
- the 廃棄候補 page as a signed-in clerk reads it now (the snapshot, judged again).
"""
from __future__ import annotations

import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta

CARDS = int(os.environ.get("BENCH_DISCARD_CARDS", "300000"))
REPEAT = int(os.environ.get("BENCH_DISCARD_REPEAT", "3"))


def _fill(app, size: int, rng: random.Random) -> None:
    """Cards received over five years; the states of bench/ledger.py, with their dates."""
    from sqlalchemy import insert

    from bench.ledger import FAMILY, GIVEN, STATES
    from app.models.card import Card

    last = datetime(2026, 11, 30, 9, 0).astimezone()
    step = timedelta(days=5 * 365) / size
    with app.app_context():
        engine = app.appbuilder.session.get_bind()
        for low in range(0, size, 10_000):
            rows = []
            for n in range(low, min(size, low + 10_000)):
                family, given = rng.choice(FAMILY), rng.choice(GIVEN)
                received = last - step * n
                state = rng.choice(STATES)
                if last - received > timedelta(days=180) and rng.random() > 0.01:
                    state = "handed_over"
                waiting = state in ("notice_sent", "reserved", "renotified", "returned")
                rows.append({
                    "application_id": f"{n + 10**22:023d}", "name": f"{family[0]}　{given[0]}",
                    "name_kana": f"{family[1]}　{given[1]}",
                    "birth_date": date(1930, 1, 1) + timedelta(days=rng.randrange(30000)),
                    "has_sign_cert": True, "has_auth_cert": True, "visit_mode": "K",
                    "state": state, "discard_hold": False, "received_at": received,
                    "card_expires_on": (received + timedelta(days=365 * 10)).date(),
                    "notice_sent_at": received + timedelta(days=7) if waiting else None,
                    "renotified_at": received + timedelta(days=120)
                    if state == "renotified" else None,
                    "returned_at": received + timedelta(days=20)
                    if state == "returned" else None})
            with engine.begin() as connection:
                connection.execute(insert(Card.__table__), rows)
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.exec_driver_sql("VACUUM ANALYZE card")
        app.appbuilder.session.remove()


def _median(fn) -> tuple[float, object]:
    runs, result = [], None
    for _ in range(REPEAT):
        started = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs), result


def bench_discard(rows: list) -> None:
    from bench.ledger import _app, _client, _databases
    from app import clock
    from app.services import discard
    from tests.unit.test_discard import old_live_rules

    rows.append(("engine", "what", f"{CARDS:,} cards", "candidates"))
    for label in ("SQLite", "PostgreSQL"):
        databases = _databases(label)  # one per size of bench/ledger.py: the first is used
        if databases[0][0] is None:
            rows.append((label, f"not measured: {databases[0][1]}", "", ""))
            continue
        url = databases[0][0]
        instance = tempfile.mkdtemp(prefix="mnc-discard-instance-")
        app = None
        try:
            app = _app(url, instance)
            _fill(app, CARDS, random.Random(16))
            with app.test_request_context():
                session = app.appbuilder.session
                now = clock.now()
                live, found = _median(lambda: old_live_rules(session, now.date()))
                session.remove()
                fresh, count = _median(lambda: discard.refresh(session, now))
                session.remove()
            client = _client(app)
            client.get("/discard/")
            page, response = _median(lambda: client.get("/discard/"))
            assert response.status_code == 200 and count == len(found)
            rows.append((label, "old live rules (every page view)", f"{live * 1000:.0f} ms",
                         f"{len(found):,}"))
            rows.append(("", "refresh (nightly, 今すぐ更新)", f"{fresh * 1000:.0f} ms",
                         f"{count:,}"))
            rows.append(("", "廃棄候補 page (snapshot)", f"{page * 1000:.0f} ms", ""))
        finally:
            if app is not None:
                with app.app_context():
                    app.appbuilder.session.remove()
                    app.appbuilder.session.get_bind().dispose()
            shutil.rmtree(instance, ignore_errors=True)
            for _url, cleanup in databases:
                cleanup()


def main() -> None:
    rows: list = []
    bench_discard(rows)
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)))


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    main()
