"""`flask ledger import`: exit codes, the summary, the rejects and problems files, and a
kill -9 in the middle of the write that leaves the database exactly as before."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import create_engine, func, select

from app.models.audit import AuditLog
from app.models.card import Card, CardEvent, CardTally
from app.models.storage import StoragePlace
from tests.ledger_import_files import row, write_csv


def ledger(app, *args):
    return app.test_cli_runner().invoke(args=["ledger", "import", *map(str, args)])


def count(db, model):
    return db.execute(select(func.count()).select_from(model)).scalar()


def test_a_clean_file_is_imported_with_a_summary_and_exit_0(app, db, tmp_path):
    path = write_csv(tmp_path / "l.csv", [row(1), row(2)])
    result = ledger(app, path)
    assert result.exit_code == 0, result.output
    assert "rows: 2, new: 2, updated: 0, unchanged: 0, rejected: 0" in result.output
    assert count(db, Card) == 2
    record = db.execute(select(AuditLog).where(AuditLog.action == "import")).scalar_one()
    assert record.username.startswith("cli:")
    events = db.execute(select(CardEvent.username)).scalars().all()
    assert set(events) == {record.username}
    # the same file again: nothing changes, still a success
    result = ledger(app, path)
    assert result.exit_code == 0, result.output
    assert "unchanged: 2" in result.output and count(db, Card) == 2


def test_a_bad_row_prints_line_column_value_reason_and_imports_nothing(app, db, tmp_path):
    path = write_csv(tmp_path / "l.csv", [row(1), row(2, 生年月日="H31.5.1")])
    result = ledger(app, path)
    assert result.exit_code == 1
    assert "line 3: 生年月日: 'H31.5.1': その日付には平成は終わっています。" in result.output
    assert "nothing imported" in result.output
    assert count(db, Card) == 0


def test_dry_run_exits_1_on_a_bad_row_and_0_on_a_clean_file(app, db, tmp_path):
    bad = write_csv(tmp_path / "bad.csv", [row(1, 交付状況="謎")])
    good = write_csv(tmp_path / "good.csv", [row(1)])
    assert ledger(app, bad, "--dry-run").exit_code == 1
    result = ledger(app, good, "--dry-run")
    assert result.exit_code == 0 and "dry run: nothing written" in result.output
    assert count(db, Card) == 0 and count(db, AuditLog) == 0


def test_skip_invalid_writes_rejects_and_problems_files(app, db, tmp_path):
    rows = [row(1), row(2, 生年月日="x")] + [row(i, 交付状況="謎") for i in range(3, 40)]
    path = write_csv(tmp_path / "l.csv", rows)
    problems = tmp_path / "problems.csv"
    result = ledger(app, path, "--skip-invalid", "--problems", problems)
    assert result.exit_code == 1  # some rows were bad
    assert count(db, Card) == 1
    assert "... and 8 more problem(s)" in result.output
    rejects = tmp_path / "l.rejects.csv"
    assert rejects.read_bytes().startswith(b"\xef\xbb\xbf")
    assert len(rejects.read_text(encoding="utf-8-sig").splitlines()) == 1 + 38
    listed = problems.read_text(encoding="utf-8-sig").splitlines()
    assert listed[0] == "行,項目,値,理由" and len(listed) == 1 + 38


def test_update_applies_the_differences(app, db, tmp_path):
    ledger(app, write_csv(tmp_path / "a.csv", [row(1)]))
    changed = write_csv(tmp_path / "b.csv", [row(1, 氏名="髙橋　花子")])
    assert ledger(app, changed).exit_code == 1
    result = ledger(app, changed, "--update")
    assert result.exit_code == 0, result.output
    assert "updated: 1" in result.output
    assert db.execute(select(Card.name)).scalar() == "髙橋　花子"


def test_an_unreadable_file_is_refused_with_exit_1(app, db, tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes(b"\xff\xfe\x00\x81" * 5)
    result = ledger(app, path)
    assert result.exit_code == 1 and "error:" in result.output


def _snapshot(url):
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return {model.__tablename__: connection.execute(
                select(func.count()).select_from(model)).scalar()
                for model in (Card, CardEvent, StoragePlace, AuditLog)} | {
                "tally": connection.execute(select(func.coalesce(func.sum(CardTally.cards),
                                                                 0))).scalar()}
    finally:
        engine.dispose()


def test_kill_9_in_the_middle_of_the_write_leaves_the_database_as_before(
        app, db, tmp_path, database_url, instance_dir):
    """The CLI in a process of its own, killed once it has written its first chunks: no
    card, event, place or audit record of it remains (SQLite and PostgreSQL)."""
    ledger(app, write_csv(tmp_path / "first.csv", [row(1)]))  # something there before
    db.commit()
    before = _snapshot(database_url)
    assert before["card"] == 1
    path = write_csv(tmp_path / "big.csv", [row(i, 保管場所=f"棚{i // 500:03d}")
                                           for i in range(2, 40_002)])
    env = {**os.environ, "DATABASE_URL": database_url, "INSTANCE_DIR": instance_dir}
    flask = os.path.join(os.path.dirname(sys.executable), "flask")
    process = subprocess.Popen([flask, "--app", "run", "ledger", "import", path], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        written = 0
        deadline = time.monotonic() + 60
        while written < 6_000 and time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line:
                break
            if line.startswith("written: "):
                written = int(line.split()[1])
        assert written >= 6_000, process.stderr.read()
        assert process.poll() is None  # still writing
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL
    if database_url.startswith("postgresql"):
        time.sleep(0.5)  # the server notices the lost client and rolls back
    assert _snapshot(database_url) == before
