"""The residents' month calendar on a freshly seeded demo database (issue 12, 6): the time
of the FIRST GET of each month in the booking window by a new resident (a new process's
first request, then each month's first view), the steady time after it, and the writes each
GET made (a GET never writes: expected 0).

    .venv/bin/python bench/first_calendar.py          # SQLite in a throwaway folder
    BENCH_PROFILE=1 .venv/bin/python bench/first_calendar.py   # and where the time goes
    DATABASE_URL=postgresql://... .venv/bin/python bench/first_calendar.py
"""
from __future__ import annotations

import os
import re
import shutil
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.reads import (build_app, fixed_now, resident_at_calendar,  # noqa: E402
                         waiting_resident)

WRITE = re.compile(r"\s*(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)


def main() -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    instance = tempfile.mkdtemp(prefix="mnc-first-calendar-")
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{instance}/bench.db"
    now = fixed_now()
    try:
        start = time.perf_counter()
        build_app(instance, url, now)  # seeds the demo (slots made ahead, as `make run`)
        print(f"demo seeded in {time.perf_counter() - start:.1f} s; clock {now:%Y-%m-%d %H:%M}")
        app = build_app(instance, url, now, seeded=True)  # a new app: nothing warmed up
        card = waiting_resident(app)
        resident = resident_at_calendar(app, card)
        writes: list[str] = []

        def spy(conn, cursor, statement, parameters, context, executemany):
            if WRITE.match(statement):
                writes.append(" ".join(statement.split())[:100])

        event.listen(Engine, "before_cursor_execute", spy)

        def get(path):
            begin = time.perf_counter()
            response = resident.get(path)
            response.get_data()
            assert response.status_code == 200, (path, response.status_code)
            return (time.perf_counter() - begin) * 1000, response.get_data(as_text=True)

        path = "/reserve/book/kofu/calendar"
        if os.environ.get("BENCH_PROFILE"):  # where the first GET's time goes
            import cProfile
            import pstats

            profile = cProfile.Profile()
            first_ms, html = profile.runcall(get, path)
            pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
        else:
            first_ms, html = get(path)
        first_writes = len(writes)
        months = sorted(set(re.findall(r"month=(\d{4}-\d{2})", html)))
        rows = [("this month, first GET", first_ms, first_writes)]
        seen = {None}
        queue = months[:]
        while queue:  # every month reachable by the next/previous links, first view each
            month = queue.pop(0)
            if month in seen:
                continue
            seen.add(month)
            before = len(writes)
            ms, page = get(f"{path}?month={month}")
            rows.append((f"{month}, first GET", ms, len(writes) - before))
            queue += [m for m in re.findall(r"month=(\d{4}-\d{2})", page) if m not in seen]
        steady = [get(path)[0] for _ in range(20)]
        event.remove(Engine, "before_cursor_execute", spy)
        print(f"{'GET /reserve/book/kofu/calendar':<34}{'ms':>8}{'writes':>8}")
        for label, ms, count in rows:
            print(f"{label:<34}{ms:>8.1f}{count:>8}")
        print(f"{'this month, steady (median of 20)':<34}{statistics.median(steady):>8.1f}"
              f"{len(writes) - sum(r[2] for r in rows):>8}")
        if writes:
            print("writes:", *writes[:10], sep="\n  ")
    finally:
        shutil.rmtree(instance, ignore_errors=True)


if __name__ == "__main__":
    main()
