"""Exporting 300,000 cards (issue 14 §4): our CSV against a bare csv.writer over the same
query, and our XLSX, with the peak memory of each, on SQLite and (when it answers)
PostgreSQL.

One throwaway database per engine, filled with BENCH_EXPORT_CARDS cards (300,000) by
bench/ledger.py's ``_fill`` (Core inserts, no audit rows). Each measurement runs in a child
process of its own (``python -m bench.exports measure <what> <url> <instance>``), so its
peak resident memory (``VmHWM`` of /proc/self/status, which starts afresh at exec, unlike
``ru_maxrss``) is its own. On SQLite it includes the pages of the database file mapped by
``PRAGMA mmap_size`` (app/extensions.py) and read by the export: file cache, not heap:

- ``ours``: the CSV download as the screen streams it: ``extraction.plan_csv`` (checked and
  audited) then every chunk of ``extraction.csv_chunks`` (UTF-8 with BOM), into a null
  sink; all cards, the default columns (申請書ID, 交付通知書番号, 氏名, フリガナ, 生年月日,
  状態, 保管場所: a join to the storage places);
- ``bare``: the same SQL (``rows_statement`` of the same query, compiled) on a plain DBAPI
  cursor (a named server-side cursor on PostgreSQL), fetchmany(500), ``csv.writer`` writing
  the raw values to a null sink: the floor any CSV of these rows costs;
- ``xlsx``: the XLSX export as the screen runs it, a background job (``start_job`` then
  ``run_job``, here inside the child: EXPORT_JOBS_INLINE) writing the file with XlsxWriter
  in constant_memory mode.

Goals: bare time / our time ≥ 0.5; peak memory of each under 300 MB. The CSV figures are the
median of BENCH_EXPORT_REPEAT (3) children each, run alternately.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CARDS = int(os.environ.get("BENCH_EXPORT_CARDS", "300000"))
REPEAT = int(os.environ.get("BENCH_EXPORT_REPEAT", "3"))
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
MEMORY_GOAL_MB = 300


def _engines() -> list[tuple[str, str | None, object]]:
    """(label, url, cleanup) for SQLite and, when it answers, PostgreSQL."""
    folder = tempfile.mkdtemp(prefix="mnc-exports-")
    found = [("SQLite", f"sqlite:///{folder}/exports.db", lambda: shutil.rmtree(folder, True))]
    try:
        from sqlalchemy import create_engine, text

        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        name = f"bench_exports_{os.getpid()}"
        with admin.connect() as connection:
            connection.execute(text(f"CREATE DATABASE {name}"))

        def drop():
            with admin.connect() as connection:
                connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            admin.dispose()

        found.append(("PostgreSQL", PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", drop))
    except Exception as error:  # no server here: SQLite only, said in the table
        found.append(("PostgreSQL", None, str(error).splitlines()[0][:60]))
    return found


class _Null:
    """A sink that keeps nothing (counts what it was given)."""

    def __init__(self):
        self.size = 0

    def write(self, data):
        self.size += len(data)
        return len(data)


def _peak_mb() -> float:
    """This process's own peak resident memory (VmHWM). Not ru_maxrss: Linux carries it
    over exec from the forked parent, so a child of a bench that holds 250 MB of test
    data would report the parent's peak."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _child_app(url: str, instance: str):
    from app import create_app

    with contextlib.redirect_stderr(io.StringIO()):
        return create_app({"SQLALCHEMY_DATABASE_URI": url, "INSTANCE_DIR": instance,
                           "EXPORT_JOBS_INLINE": True})


def measure(what: str, url: str, instance: str) -> dict:
    """One measurement, in this (child) process."""
    from app.services import extraction
    from app.services.cards import SYSTEM

    app = _child_app(url, instance)
    data = {"subject": "cards"}
    with app.app_context():
        session = app.appbuilder.session
        query = extraction.parse_definition(data)
        before = _rss_mb()
        started = time.perf_counter()
        if what == "ours":
            plan = extraction.plan_csv(session, data, actor=SYSTEM)
            sink = _Null()
            for chunk in extraction.csv_chunks(app, plan):
                sink.write(chunk)
            rows, size = plan.rows, sink.size
        elif what == "bare":
            engine = session.get_bind()
            sql = str(extraction.rows_statement(query).compile(
                engine, compile_kwargs={"literal_binds": True}))
            connection = engine.raw_connection()
            try:
                if engine.dialect.name == "postgresql":
                    cursor = connection.driver_connection.cursor(name="bare_export")
                else:
                    cursor = connection.cursor()
                cursor.execute(sql)
                sink = _Null()
                writer = csv.writer(sink, lineterminator="\r\n")
                writer.writerow([str(f.label) for f in query.columns])
                rows = 0
                while True:
                    part = cursor.fetchmany(extraction.CHUNK_ROWS)
                    if not part:
                        break
                    writer.writerows(part)
                    rows += len(part)
                cursor.close()
                size = sink.size
            finally:
                connection.close()
        elif what == "xlsx":
            job = extraction.start_job(session, data, actor=SYSTEM,
                                       fmt=extraction.FORMAT_XLSX)
            extraction.launch(app, job)
            session.expire_all()
            job = session.get(extraction.ExportJob, job.id)
            assert job.state == "done", (job.state, job.error)
            rows = job.rows_written
            size = os.path.getsize(os.path.join(extraction.exports_folder(), job.file_name))
        else:
            raise SystemExit(f"unknown measurement {what}")
        took = time.perf_counter() - started
    peak = _peak_mb()
    return {"seconds": took, "rows": rows, "bytes": size, "peak_mb": peak,
            "before_mb": before}


def _child(what: str, url: str, instance: str) -> dict:
    output = subprocess.run([sys.executable, "-m", "bench.exports", "measure", what, url,
                             instance], cwd=ROOT, capture_output=True, text=True, check=False)
    if output.returncode != 0:
        raise RuntimeError(f"{what}: {output.stderr.strip().splitlines()[-1:]}")
    return json.loads(output.stdout.strip().splitlines()[-1])


def _memory(result: dict) -> str:
    ok = "✓" if result["peak_mb"] < MEMORY_GOAL_MB else "✗"
    return f"{result['peak_mb']:.0f} MB {ok} (before: {result['before_mb']:.0f} MB)"


def bench_exports(rows: list) -> None:
    from bench.ledger import _app, _fill

    rows.append(("engine", f"export of {CARDS:,} cards", "time", "rows", "peak memory "
                 f"(goal < {MEMORY_GOAL_MB} MB)", "ratio (goal ≥ 0.5)"))
    for label, url, cleanup in _engines():
        if url is None:
            rows.append((label, f"not measured: {cleanup}", "", "", "", ""))
            continue
        instance = tempfile.mkdtemp(prefix="mnc-exports-instance-")
        try:
            app = _app(url, instance)
            _fill(app, 0, CARDS, random.Random(14))
            with app.app_context():
                app.appbuilder.session.remove()
                app.appbuilder.session.get_bind().dispose()
            ours, bare = [], []
            for _ in range(REPEAT):  # alternately, so other work on the machine weighs alike
                bare.append(_child("bare", url, instance))
                ours.append(_child("ours", url, instance))
            xlsx = _child("xlsx", url, instance)
            ours_s = statistics.median(r["seconds"] for r in ours)
            bare_s = statistics.median(r["seconds"] for r in bare)
            ratio = bare_s / ours_s
            worst_ours = max(ours, key=lambda r: r["peak_mb"])
            worst_bare = max(bare, key=lambda r: r["peak_mb"])
            rows.append((label, "bare csv.writer, same SQL (DBAPI cursor)", f"{bare_s:.2f} s",
                         f"{bare[0]['rows']:,}", _memory(worst_bare), ""))
            rows.append(("", "our CSV (csv_chunks, UTF-8 BOM)", f"{ours_s:.2f} s",
                         f"{ours[0]['rows']:,}", _memory(worst_ours),
                         f"{ratio:.2f}" + (" ✓" if ratio >= 0.5 else " ✗")))
            rows.append(("", "our XLSX (background job, constant_memory)",
                         f"{xlsx['seconds']:.2f} s", f"{xlsx['rows']:,}", _memory(xlsx),
                         f"{xlsx['bytes'] / 2**20:.0f} MB file"))
        finally:
            shutil.rmtree(instance, ignore_errors=True)
            cleanup()


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    if len(sys.argv) == 5 and sys.argv[1] == "measure":
        print(json.dumps(measure(*sys.argv[2:])))
    else:
        result: list = []
        bench_exports(result)
        for row in result:
            print(" | ".join(str(c) for c in row))
