"""Importing an existing card ledger (issue 15 §5): a generated CP932 file of
BENCH_IMPORT_ROWS rows (300,000) through `ledger_import.import_ledger` (every row checked
and normalised, cards, their first history events and the storage places written with Core
bulk inserts in one transaction, one audit record), against a bare DBAPI ``executemany`` of
the same already-parsed rows into the same ``card`` table (one transaction, committed): the
floor any import of these rows costs. On SQLite and (when it answers) PostgreSQL.

Each measurement runs in a child process of its own (``python -m bench.ledger_import
measure <what> <url> <instance> <file>``) so its peak resident memory (VmHWM) is its own.
The bare child parses the file first (not timed), then inserts and commits. Each child gets
a fresh database (schema by the migrations, no rows), so neither pays for the other's dead
rows.

Goal: bare time / our time ≥ 0.3. `BENCH_IMPORT_ROWS=20000 python bench/run.py
ledger_import` is a quick run.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROWS = int(os.environ.get("BENCH_IMPORT_ROWS", "300000"))
GOAL = 0.3


def write_file(path: str, rows: int) -> int:
    """A city's export as it looks: CP932, CRLF, the old system's headers, names with
    NEC/IBM extension characters, half-width kana, era dates, 3,000 storage places."""
    from tests.ledger_import_files import HEADER, row

    states = ["通知済", "交付済", "納品", "交付前設定済", "返戻"]
    eras = ["S55.3.1", "昭和60年12月24日", "H2.4.10", "平成元年1月8日", "1975/7/7", "R2.2.2"]
    with open(path, "w", encoding="cp932", newline="") as handle:
        import csv

        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(HEADER)
        for i in range(1, rows + 1):
            state = states[i % len(states)]
            writer.writerow(row(i, **{
                "氏名": f"髙橋　﨑子{i % 97}", "生年月日": eras[i % len(eras)],
                "交付状況": state, "保管場所": f"移行-棚{i % 3000:04d}",
                "交付日": "R6.5.10" if state == "交付済" else "",
                "備考": "再交付" if i % 50 == 0 else ""}))
    return os.path.getsize(path)


def _child_app(url: str, instance: str):
    from app import create_app

    with contextlib.redirect_stderr(io.StringIO()):
        return create_app({"SQLALCHEMY_DATABASE_URI": url, "INSTANCE_DIR": instance})


def _parsed(app, path: str) -> list[dict]:
    """The file's rows as card values, read and checked by the import's own code."""
    from app import clock
    from app.services import ledger_import as li

    mapping = li.load_mapping()
    source = li.open_source(path, mapping)
    report = li.ImportReport(file_name="bench", sha256="")
    now = clock.now()
    checker = li._header(source, mapping, report, clock.to_jst(now).date())
    values = []
    writer = li._Writer(app.appbuilder.session, report, checker, mapping, source,
                        actor=li.cards.SYSTEM, now=now,
                        dry_run=True, skip_invalid=False, update=False,
                        progress=li._noop, preview_rows=0)
    for line, raw in source.rows:
        row, problems = checker.check(line, raw)
        assert not problems, problems
        value = writer._card_values(row)
        value["storage_place_id"] = None
        values.append(value)
    source.close()
    return values


def measure(what: str, url: str, instance: str, path: str) -> dict:
    from bench.exports import _peak_mb, _rss_mb

    app = _child_app(url, instance)
    with app.app_context():
        session = app.appbuilder.session
        if what == "bare":
            values = _parsed(app, path)
            columns = list(values[0])
            engine = session.get_bind()
            mark = "%s" if engine.dialect.name == "postgresql" else "?"
            sql = (f"INSERT INTO card ({', '.join(columns)}) VALUES "
                   f"({', '.join([mark] * len(columns))})")
            params = [tuple(v[c] for c in columns) for v in values]
            connection = engine.raw_connection()
            before = _rss_mb()
            try:
                started = time.perf_counter()
                cursor = connection.cursor()
                cursor.executemany(sql, params)
                connection.commit()
                took = time.perf_counter() - started
                rows = len(params)
            finally:
                connection.close()
        elif what == "ours":
            from app.services import ledger_import

            before = _rss_mb()
            started = time.perf_counter()
            report = ledger_import.import_ledger(session, path)
            took = time.perf_counter() - started
            assert report.written and not report.problems, report.problems[:3]
            rows = report.created
        else:
            raise SystemExit(f"unknown measurement {what}")
    return {"seconds": took, "rows": rows, "peak_mb": _peak_mb(), "before_mb": before}


def _child(what: str, url: str, instance: str, path: str) -> dict:
    output = subprocess.run([sys.executable, "-m", "bench.ledger_import", "measure", what, url,
                             instance, path], cwd=ROOT, capture_output=True, text=True,
                            check=False)
    if output.returncode != 0:
        raise RuntimeError(f"{what}: {output.stderr.strip().splitlines()[-3:]}")
    return json.loads(output.stdout.strip().splitlines()[-1])


def _database(label: str, suffix: str) -> tuple[str | None, object]:
    """(url, cleanup) of a fresh SQLite file or (when it answers) a fresh PostgreSQL
    database, so each measurement starts on an empty, unbloated schema."""
    if label == "SQLite":
        folder = tempfile.mkdtemp(prefix="mnc-import-db-")
        return f"sqlite:///{folder}/import.db", lambda: shutil.rmtree(folder, True)
    try:
        from sqlalchemy import create_engine, text

        from bench.exports import PG_ADMIN

        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        name = f"bench_import_{suffix}_{os.getpid()}"
        with admin.connect() as connection:
            connection.execute(text(f"CREATE DATABASE {name}"))

        def drop():
            with admin.connect() as connection:
                connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            admin.dispose()

        return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", drop
    except Exception as error:  # no server here: SQLite only, said in the table
        return None, str(error).splitlines()[0][:60]


def _measured(what: str, label: str, path: str) -> dict | str:
    from bench.ledger import _app

    url, cleanup = _database(label, what)
    if url is None:
        return str(cleanup)
    instance = tempfile.mkdtemp(prefix="mnc-import-instance-")
    try:
        app = _app(url, instance)
        with app.app_context():
            app.appbuilder.session.remove()
            app.appbuilder.session.get_bind().dispose()
        return _child(what, url, instance, path)
    finally:
        shutil.rmtree(instance, ignore_errors=True)
        cleanup()


def bench_ledger_import(rows: list) -> None:
    rows.append(("engine", f"import of {ROWS:,} rows (CP932 CSV)", "time", "rows/s",
                 "peak memory", f"ratio (goal ≥ {GOAL})"))
    folder = tempfile.mkdtemp(prefix="mnc-import-")
    try:
        path = os.path.join(folder, "ledger.csv")
        size = write_file(path, ROWS)
        for label in ("SQLite", "PostgreSQL"):
            bare = _measured("bare", label, path)
            if isinstance(bare, str):
                rows.append((label, f"not measured: {bare}", "", "", "", ""))
                continue
            ours = _measured("ours", label, path)
            ratio = bare["seconds"] / ours["seconds"]
            rows.append((label, "bare executemany of the parsed rows (card only)",
                         f"{bare['seconds']:.1f} s", f"{bare['rows'] / bare['seconds']:,.0f}",
                         f"{bare['peak_mb']:.0f} MB", ""))
            rows.append(("", f"ours: read, check, write cards + events + places "
                             f"({size / 2**20:.0f} MB file)",
                         f"{ours['seconds']:.1f} s", f"{ours['rows'] / ours['seconds']:,.0f}",
                         f"{ours['peak_mb']:.0f} MB",
                         f"{ratio:.2f}" + (" ✓" if ratio >= GOAL else " ✗")))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    if len(sys.argv) == 6 and sys.argv[1] == "measure":
        print(json.dumps(measure(*sys.argv[2:])))
    else:
        result: list = []
        bench_ledger_import(result)
        for line in result:
            print(" | ".join(str(c) for c in line))
