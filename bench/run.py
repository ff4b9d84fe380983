"""make bench: speed goals and race counts, printed as tables (`bench/run.py [qr] [booking]
[races] [reads] [documents] [ledger] [statistics] [exports] [ledger_import] [migration]
[backups] [discard] [ha]`; all but ``backups`` and ``ha`` by default; ``backups`` needs PostgreSQL: make
bench runs it under scripts/with-postgres.sh; ``ha`` needs PostgreSQL's server binaries and
nginx, make bench runs it after the others).

QR registration (issue 4):

- decoding one A4 page of 40 codes, one zbar pass against the several passes the product
  uses (goal: several passes well under a second per page);
- registering a batch of 500 scanned cards (classification of each scan, then the one
  transaction), on a throwaway SQLite database or DATABASE_URL.

Booking throughput and the last seats (bench/booking.py); booking races from two processes
(bench/races.py): overbooked seats and ``taken`` drift, both must be 0.

Read pages (bench/reads.py, issue 11 §7): the residents' availability JSON, the staff home
and the residents' month calendar, each against the bare work (plain SQL and json.dumps or a
minimal template) and the floor (/healthz): ``(app - floor) / bare`` at most 3.

Scanned documents (bench/documents.py, issue 13 §5): uploading and encrypting a 20-page
300 dpi PDF against writing it plainly to disk, and the viewer's first page.

The card ledger at 3,000 and 300,000 cards (bench/ledger.py, issue 14 §3): the list's first
page and three searches (kana prefix, 申請書ID, name contains) through the app, on SQLite
and PostgreSQL, one database per size measured alternately, with the ratio (goal ≤ 1.5×
for the first three; docs/cards.md "台帳の規模と速さ").

Statistics (bench/statistics.py, issue 14 §4): a 年度 report by month of bookings (also by
venue and by clerk), cards with their stock at the end of a day, applications and fees,
through the 集計 screen, over 300,000 cards and 1,000,000 booking events, on SQLite and
PostgreSQL (goal: each under 1 s).

Exports of 300,000 cards (bench/exports.py, issue 14 §4): our CSV as a ratio to a bare
csv.writer over the same query (goal ≥ 0.5) and our XLSX (a background job), each in a child
process with its peak memory (goal under 300 MB), on SQLite and PostgreSQL.

Backups of 300,000 cards and 1,000,000 bookings on PostgreSQL (bench/backups.py, issue 15
§6): ``backup create`` and ``backup restore`` as a ratio to a plain ``pg_dump -Fc`` and
``pg_restore`` of the same database (sizes: BENCH_BACKUP_CARDS, BENCH_BACKUP_BOOKINGS).

Import of an existing ledger (bench/ledger_import.py, issue 15 §5): a generated 300,000-row
CP932 file through the import (time, rows per second, peak memory) as a ratio to a bare
executemany of the same parsed rows into the card table (goal ≥ 0.3), on SQLite and
PostgreSQL (BENCH_IMPORT_ROWS for a quick run).

Migration export and import (bench/migration_export.py, issue 15 §2): `data export` of
300,000 cards and 300,000 bookings and `data import` of it into a fresh database, each in a
child process: time, rows per second, archive size, peak memory; SQLite and PostgreSQL.

Discard candidates over 300,000 cards (bench/discard.py, issue 16 §3): the old live rules
(every page view before the snapshot), ``discard.refresh`` (nightly, 今すぐ更新) and the
廃棄候補 page reading the snapshot, on SQLite and PostgreSQL.

Two app servers and failover (bench/ha.py, issue 16 §5): booking throughput through nginx
with two app instances as a ratio to one instance, same load, same throwaway PostgreSQL
cluster; and the failover drill (bench/ha_drill.py, `make ha-drill`) shortened: time from
stopping the primary to the first successful booking, failed requests, lost bookings.
"""
from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# `python bench/run.py` puts bench/ first on the path, where bench/statistics.py would
# stand for the standard library's statistics: the bench modules are bench.*, from ROOT.
sys.path[:] = [ROOT] + [p for p in sys.path
                        if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import io  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from PIL import Image  # noqa: E402

from tests.qrpages import draw_page, payload  # noqa: E402


def timed(fn, repeat=3):
    runs = []
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs), result


def bench_decode(rows):
    from app.services.qr_decode import PASSES, decode_image

    for dpi, label, kwargs in ((300, "clean", {}), (300, "rotated 4°, blurred, JPEG", {
            "rotate": 4, "blur": 1.0, "jpeg_quality": 70}), (150, "clean", {}),
            (150, "rotated 2°, JPEG", {"rotate": 2, "jpeg_quality": 80})):
        image = Image.open(io.BytesIO(draw_page([payload(i) for i in range(40)], dpi=dpi,
                                                **kwargs)))
        image.load()
        one, found_one = timed(lambda: decode_image(image, passes=("plain",)))
        quick, found_quick = timed(lambda: decode_image(image, PASSES, thorough=False))
        several, found = timed(lambda: decode_image(image, PASSES, thorough=True))
        rows.append((f"decode A4 {dpi} dpi, {label}", "1 pass", f"{one:.2f} s",
                     f"{len(found_one)}/40"))
        rows.append(("", "passes as uploaded (stop when clean)", f"{quick:.2f} s",
                     f"{len(found_quick)}/40"))
        rows.append(("", f"all {len(PASSES)} passes", f"{several:.2f} s", f"{len(found)}/40"))


def bench_register(rows, count=500):
    from app import create_app
    from app.cli import init_database
    from app.models.storage import StoragePlace
    from app.services import scan

    instance = tempfile.mkdtemp(prefix="mnc-bench-")
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{instance}/bench.db"
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "INSTANCE_DIR": instance})
    with app.app_context():
        init_database()
        session = app.appbuilder.session
        for shelf in range(15):
            session.add(StoragePlace(code=f"BENCH-{shelf:02d}", capacity=40, sort_key=shelf))
        session.commit()
        batch = scan.open_batch(session)
        start = time.perf_counter()
        for n in range(count):
            scan.add_payload(session, batch, payload(n, "KS"[n % 2], seed=4242))
        scanned = time.perf_counter() - start
        start = time.perf_counter()
        created = scan.register_batch(session, batch)
        registered = time.perf_counter() - start
    rows.append((f"scan {count} codes into a batch", "each classified and kept",
                 f"{scanned:.2f} s", f"{scanned / count * 1000:.1f} ms/scan"))
    rows.append((f"register the batch of {count}", "one transaction", f"{registered:.2f} s",
                 f"{len(created)} cards"))


def table(rows, header):
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(str(c).ljust(w) for c, w in zip(row, widths)))


def main():
    what = sys.argv[1:] or ["qr", "booking", "races", "reads", "documents", "ledger",
                            "statistics", "exports", "ledger_import", "migration",
                            "discard"]
    if "qr" in what:
        rows = []
        bench_decode(rows)
        bench_register(rows)
        table(rows, ("what", "how", "time", "result"))
        print()
    if "booking" in what:
        from bench.booking import bench_booking

        rows = []
        bench_booking(rows)
        table(rows[1:], rows[0])
        print()
    if "races" in what:
        from bench.races import bench_races

        rows = []
        bench_races(rows)
        table(rows, ("what", "how", "time", "result (overbooked and drift must be 0)"))
        print()
    if "reads" in what:
        from bench.reads import bench_reads

        rows = []
        bench_reads(rows)
        table(rows[1:], rows[0])
        print()
    if "documents" in what:
        from bench.documents import bench_documents

        rows = []
        bench_documents(rows)
        table(rows[1:], rows[0])
        print()
    if "ledger" in what:
        from bench.ledger import bench_ledger

        rows = []
        bench_ledger(rows)
        table(rows[1:], rows[0])
    if "statistics" in what:
        from bench.statistics import bench_statistics

        print()
        rows = []
        bench_statistics(rows)
        table(rows[1:], rows[0])
    if "exports" in what:
        from bench.exports import bench_exports

        print()
        rows = []
        bench_exports(rows)
        table(rows[1:], rows[0])
    if "backups" in what:
        from bench.backups import bench_backups

        print()
        rows = []
        bench_backups(rows)
        table(rows[1:], rows[0])
    if "ledger_import" in what:
        from bench.ledger_import import bench_ledger_import

        print()
        rows = []
        bench_ledger_import(rows)
    if "migration" in what:
        from bench.migration_export import bench_migration

        print()
        rows = []
        bench_migration(rows)
        table(rows[1:], rows[0])
    if "discard" in what:
        from bench.discard import bench_discard

        print()
        rows = []
        bench_discard(rows)
        table(rows[1:], rows[0])
    if "ha" in what:
        from bench.ha import bench_ha

        print()
        rows = []
        bench_ha(rows)
        table(rows[1:], rows[0])


if __name__ == "__main__":
    main()
