"""Backup and restore of a PostgreSQL database with 300,000 cards and 1,000,000 bookings
(issue 15 §6), as a ratio to a plain ``pg_dump -Fc`` / ``pg_restore`` of the same database.

- ``backup create`` (ours): pg_dump of an exported snapshot with the row counts of every
  table taken in it, the settings, the archive with SHA-256 of each part, sealed with
  AES-256-GCM (app/services/backups.py); against ``pg_dump --format=custom`` alone into a
  file (same compression level).
- ``backup verify``: decrypting, every checksum, ``pg_restore --list``.
- ``backup restore`` (ours, into an empty database): the verify above, then the dump loaded
  in one transaction (psql --single-transaction) and the restore audited; against
  ``pg_restore --no-owner`` of the plain dump into another empty database.

The source database is filled with set-based SQL (generate_series): BENCH_BACKUP_CARDS cards
(300,000), BENCH_BACKUP_BOOKINGS bookings (1,000,000) in slots of 10 seats. The server is
DATABASE_URL's when it is PostgreSQL (``make bench`` runs it under scripts/with-postgres.sh),
else 127.0.0.1:5432; the bench's databases are created there and dropped after.
"""
from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import tempfile
import time
from datetime import datetime

CARDS = int(os.environ.get("BENCH_BACKUP_CARDS", "300000"))
BOOKINGS = int(os.environ.get("BENCH_BACKUP_BOOKINGS", "1000000"))
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _server():
    from sqlalchemy.engine import make_url

    url = os.environ.get("DATABASE_URL") or ""
    base = make_url(url) if url.startswith("postgresql") else make_url(PG_ADMIN)
    return base


def _app(url: str, instance: str):
    from app import create_app

    now = datetime(2026, 12, 1, 10, 0).astimezone()
    return create_app({"SQLALCHEMY_DATABASE_URI": url, "INSTANCE_DIR": instance,
                       "CLOCK": lambda: now, "BACKUP_DIR": os.path.join(instance, "backups")})


def _fill(app) -> None:
    from sqlalchemy import text

    from app.cli import init_database
    from app.services import audit
    from tests.factories import make_offer

    with app.app_context(), contextlib.redirect_stderr(io.StringIO()):
        audit.act_as("system")
        init_database()
        db = app.appbuilder.session
        offer = make_offer(db, venue="ベンチ会場", weekdays=())
        offer_id = offer.id
        db.commit()
        db.remove()
        slots = (BOOKINGS + 9) // 10
        engine = db.get_bind()
        with engine.begin() as connection:
            # The per-state tally (migration 0015) is counted once at the end, not by its
            # deferred trigger 300,000 times at commit.
            connection.execute(text("ALTER TABLE card DISABLE TRIGGER card_tally_change"))
            connection.execute(text(
                "INSERT INTO card (application_id, name, name_kana, birth_date, "
                "has_sign_cert, has_auth_cert, visit_mode, state, discard_hold, received_at) "
                "SELECT lpad((10000000000 + n)::text, 23, '0'), '試験　太郎' || n, "
                "'シケン　タロウ', DATE '1930-01-01' + (n % 30000), true, true, 'K', "
                "(ARRAY['received','setup','notice_sent','handed_over'])[1 + n % 4], false, "
                "TIMESTAMPTZ '2021-12-01 09:00+09' + n * INTERVAL '5 minutes' "
                "FROM generate_series(0, :cards - 1) AS n"), {"cards": CARDS})
            connection.execute(text(
                "INSERT INTO slot (offer_id, starts_at, ends_at, seats, taken, closed) "
                "SELECT :offer, TIMESTAMPTZ '2020-01-01 09:00+09' + n * INTERVAL '30 minutes', "
                "TIMESTAMPTZ '2020-01-01 09:30+09' + n * INTERVAL '30 minutes', 10, "
                "LEAST(10, :bookings - n * 10), false FROM generate_series(0, :slots - 1) AS n"),
                {"offer": offer_id, "slots": slots, "bookings": BOOKINGS})
            first = connection.execute(text("SELECT min(id) FROM slot WHERE offer_id = :o"),
                                       {"o": offer_id}).scalar()
            connection.execute(text(
                "INSERT INTO reservation (number, slot_id, offer_id, starts_at, seats, state, "
                "channel, birth_date, phone, created_at, locale) "
                "SELECT 'B' || lpad(n::text, 7, '0'), s.id, s.offer_id, s.starts_at, 1, "
                "'booked', 'web', DATE '1980-01-01', '0312345678', "
                "s.starts_at - INTERVAL '5 days', 'ja' "
                "FROM generate_series(0, :bookings - 1) AS n "
                "JOIN slot s ON s.id = :first + n / 10"), {"bookings": BOOKINGS, "first": first})
            connection.execute(text("ALTER TABLE card ENABLE TRIGGER card_tally_change"))
            connection.execute(text("DELETE FROM card_tally"))
            connection.execute(text(
                "INSERT INTO card_tally (visit_mode, state, cards) "
                "SELECT visit_mode, state, count(*) FROM card GROUP BY visit_mode, state"))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")
        db.remove()
        engine.dispose()


def _timed(function):
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def bench_backups(rows: list) -> None:
    from sqlalchemy import create_engine, text

    from app.services import audit, backups

    rows.append(("what", "ours", "plain pg_dump / pg_restore", "ratio (ours / plain)", "size"))
    base = _server()
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    names = {role: f"bench_backups_{os.getpid()}_{role}" for role in ("src", "ours", "bare")}
    try:
        with admin.connect() as connection:
            for name in names.values():
                connection.execute(text(f"CREATE DATABASE {name}"))
    except Exception as error:  # noqa: BLE001  (no server here: said in the table)
        rows.append(("backups on PostgreSQL", "skipped", str(error).splitlines()[0][:60],
                     "", ""))
        return
    instance = tempfile.mkdtemp(prefix="mnc-bench-backups-")
    url = {role: base.set(database=name).render_as_string(hide_password=False)
           for role, name in names.items()}
    try:
        source = _app(url["src"], instance)
        fill, _ = _timed(lambda: _fill(source))
        rows.append((f"fill {CARDS:,} cards and {BOOKINGS:,} bookings", f"{fill:.1f} s",
                     "", "", ""))
        env = backups.pg_environment(base.set(database=names["src"]))
        plain = os.path.join(instance, "plain.dump")
        bare_dump, _ = _timed(lambda: subprocess.run(
            ["pg_dump", "--format=custom", "--compress=6", f"--file={plain}"], env=env,
            check=True))
        with source.app_context():
            audit.act_as("system")
            ours_dump, made = _timed(lambda: backups.create(source.appbuilder.session))
            verify, _ = _timed(lambda: backups.verify(made.path))
            source.appbuilder.session.remove()
        rows.append(("backup create", f"{ours_dump:.1f} s", f"{bare_dump:.1f} s",
                     f"{ours_dump / bare_dump:.2f}",
                     f"{made.bytes / 2**20:.0f} MB (plain {os.path.getsize(plain) / 2**20:.0f}"
                     f" MB)"))
        rows.append(("backup verify (decrypt, checksums, pg_restore --list)",
                     f"{verify:.1f} s", "", "", ""))
        target = _app(url["ours"], instance)
        with target.app_context():
            audit.act_as("system")
            ours_restore, _ = _timed(lambda: backups.restore(target.appbuilder.session,
                                                             made.path))
            target.appbuilder.session.remove()
        bare_env = backups.pg_environment(base.set(database=names["bare"]))
        bare_restore, _ = _timed(lambda: subprocess.run(
            ["pg_restore", "--no-owner", f"--dbname={names['bare']}", plain], env=bare_env,
            check=True))
        rows.append(("backup restore (verify + one transaction)", f"{ours_restore:.1f} s",
                     f"{bare_restore:.1f} s", f"{ours_restore / bare_restore:.2f}", ""))
        for app in (source, target):
            with app.app_context():
                app.appbuilder.session.get_bind().dispose()
    finally:
        with admin.connect() as connection:
            for name in names.values():
                connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()
        shutil.rmtree(instance, ignore_errors=True)


if __name__ == "__main__":
    from bench.run import table

    found: list = []
    bench_backups(found)
    table(found[1:], found[0])
