"""Migration export and import (issue 15 §2, §5): `data export` of a database of
BENCH_MIGRATION_CARDS cards (300,000) and BENCH_MIGRATION_BOOKINGS bookings (as many, each
with the card it collects) and `data import` of that archive into a fresh database, on
SQLite and (when it answers) PostgreSQL: time, rows per second, archive size and the peak
memory of each (a child process of its own: ``VmHWM``, as bench/exports.py measures it).

The source is filled with Core inserts (bench/ledger.py's ``_fill`` for the cards; slots,
bookings and their persons here); the target is a new database made as `flask init` makes
one. Both share one instance folder (the same audit key and document keys, as the import
requires). The peak memory should not grow with the number of rows: the export streams
every table from a server-side cursor and the import inserts in batches.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CARDS = int(os.environ.get("BENCH_MIGRATION_CARDS", "300000"))
BOOKINGS = int(os.environ.get("BENCH_MIGRATION_BOOKINGS", str(CARDS)))
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _databases(tag: str):
    """(label, source url, target url, cleanup) for SQLite and, when it answers,
    PostgreSQL (url None and why otherwise)."""
    folder = tempfile.mkdtemp(prefix="mnc-migration-")
    found = [("SQLite", f"sqlite:///{folder}/source.db", f"sqlite:///{folder}/target.db",
              lambda: shutil.rmtree(folder, True))]
    try:
        from sqlalchemy import create_engine, text

        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        names = [f"bench_migration_{tag}_{os.getpid()}" for tag in ("source", "target")]
        with admin.connect() as connection:
            for name in names:
                connection.execute(text(f"CREATE DATABASE {name}"))

        def drop():
            with admin.connect() as connection:
                for name in names:
                    connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            admin.dispose()

        base = PG_ADMIN.rsplit("/", 1)[0]
        found.append(("PostgreSQL", f"{base}/{names[0]}", f"{base}/{names[1]}", drop))
    except Exception as error:  # no server here: SQLite only, said in the table
        found.append(("PostgreSQL", None, None, str(error).splitlines()[0][:60]))
    return found


def _fill_bookings(app, rng: random.Random) -> None:
    """BOOKINGS bookings on the slots of one offer, each collecting one card."""
    from sqlalchemy import insert, select

    from app.models.card import Card
    from app.models.reservation import Reservation, ReservationPerson, Slot
    from tests.factories import make_offer

    with app.app_context():
        db = app.appbuilder.session
        offer = make_offer(db, venue="市役所本庁舎 1階 市民課", weekdays=())
        engine = db.get_bind()
        slots, day = [], date(2026, 1, 5)
        while len(slots) * 2 < BOOKINGS:
            if day.weekday() < 5:
                for k in range(16):
                    start = datetime(day.year, day.month, day.day, 9).astimezone() \
                        + timedelta(minutes=30 * k)
                    slots.append({"offer_id": offer.id, "starts_at": start,
                                  "ends_at": start + timedelta(minutes=30), "seats": 2,
                                  "taken": 2, "closed": False})
            day += timedelta(days=1)
        with engine.begin() as connection:
            for low in range(0, len(slots), 20_000):
                connection.execute(insert(Slot.__table__), slots[low:low + 20_000])
        slot_rows = db.execute(select(Slot.id, Slot.starts_at).order_by(Slot.id)).all()
        card_ids = [row[0] for row in db.execute(select(Card.id).order_by(Card.id))]
        db.remove()
        reservations, persons = [], []
        for n in range(BOOKINGS):
            slot = slot_rows[n // 2]
            reservations.append({
                "id": n + 1, "number": f"B{n:07d}", "slot_id": slot.id, "offer_id": offer.id,
                "starts_at": slot.starts_at, "seats": 1,
                "state": rng.choice(("booked", "completed", "cancelled")),
                "channel": rng.choice(("web", "phone", "counter")),
                "name": "山田　太郎", "name_kana": "ヤマダ　タロウ",
                "birth_date": date(1980, 1, 1), "phone": "0312345678",
                "created_at": slot.starts_at - timedelta(days=5), "locale": "ja",
                "note": rng.choice((None, "", '車いす, "付き添い"あり'))})
            persons.append({"reservation_id": n + 1, "card_id": card_ids[n % len(card_ids)],
                            "active": True})
            if len(reservations) >= 20_000:
                with engine.begin() as connection:
                    connection.execute(insert(Reservation.__table__), reservations)
                    connection.execute(insert(ReservationPerson.__table__), persons)
                reservations, persons = [], []
        with engine.begin() as connection:
            if reservations:
                connection.execute(insert(Reservation.__table__), reservations)
                connection.execute(insert(ReservationPerson.__table__), persons)
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.exec_driver_sql("SELECT setval('reservation_id_seq', "
                                  "(SELECT max(id) FROM reservation))")
                c.exec_driver_sql("VACUUM ANALYZE")


def _target(url: str, instance: str) -> None:
    """A new instance as `flask init` makes it (schema, roles), nothing else."""
    from app import create_app
    from app.cli import init_database

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "INSTANCE_DIR": instance})
    with app.app_context(), contextlib.redirect_stderr(io.StringIO()):
        init_database()
        app.appbuilder.session.remove()
        app.appbuilder.session.get_bind().dispose()


def _peak_mb() -> float:
    from bench.exports import _peak_mb as peak

    return peak()


def measure(what: str, url: str, instance: str, path: str) -> dict:
    """One measurement in this (child) process: ``export`` or ``import``."""
    from app import create_app
    from app.services import audit, migration_export

    with contextlib.redirect_stderr(io.StringIO()):
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "INSTANCE_DIR": instance})
    with app.app_context():
        audit.act_as("cli:bench")
        session = app.appbuilder.session
        started = time.perf_counter()
        if what == "export":
            report = migration_export.export_all(session, path)
            rows = sum(report.rows.values())
        else:
            report = migration_export.import_all(session, path)
            rows = sum(report.rows.values())
        took = time.perf_counter() - started
    return {"seconds": took, "rows": rows, "bytes": os.path.getsize(path),
            "peak_mb": _peak_mb()}


def _child(what: str, url: str, instance: str, path: str) -> dict:
    output = subprocess.run([sys.executable, "-m", "bench.migration_export", "measure", what,
                             url, instance, path], cwd=ROOT, capture_output=True, text=True,
                            check=False)
    if output.returncode != 0:
        raise RuntimeError(f"{what}: {output.stderr.strip().splitlines()[-3:]}")
    return json.loads(output.stdout.strip().splitlines()[-1])


def bench_migration(rows: list) -> None:
    from bench.ledger import _app, _fill

    rows.append(("engine", f"{CARDS:,} cards, {BOOKINGS:,} bookings", "time", "rows",
                 "rows/s", "archive", "peak memory"))
    for label, source, target, cleanup in _databases("m"):
        if source is None:
            rows.append((label, f"not measured: {cleanup}", "", "", "", "", ""))
            continue
        instance = tempfile.mkdtemp(prefix="mnc-migration-instance-")
        path = os.path.join(instance, "export.zip")
        try:
            app = _app(source, instance)
            _fill(app, 0, CARDS, random.Random(15))
            _fill_bookings(app, random.Random(16))
            with app.app_context():
                app.appbuilder.session.remove()
                app.appbuilder.session.get_bind().dispose()
            _target(target, instance)
            out = _child("export", source, instance, path)
            back = _child("import", target, instance, path)
            assert back["rows"] == out["rows"], (out, back)
            size = f"{out['bytes'] / 2**20:.0f} MB"
            rows.append((label, "data export", f"{out['seconds']:.1f} s", f"{out['rows']:,}",
                         f"{out['rows'] / out['seconds']:,.0f}", size,
                         f"{out['peak_mb']:.0f} MB"))
            rows.append(("", "data import (fresh database)", f"{back['seconds']:.1f} s",
                         f"{back['rows']:,}", f"{back['rows'] / back['seconds']:,.0f}", "",
                         f"{back['peak_mb']:.0f} MB"))
        finally:
            shutil.rmtree(instance, ignore_errors=True)
            cleanup()


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    if len(sys.argv) == 6 and sys.argv[1] == "measure":
        print(json.dumps(measure(*sys.argv[2:])))
    else:
        result: list = []
        bench_migration(result)
        for row in result:
            print(" | ".join(str(c) for c in row))
