"""Backups (issue 15 §3): a backup restored gives the same rows in every table, on SQLite and
PostgreSQL; it undoes an operation made after it; a flipped byte or another key is refused
with a Japanese message and restores nothing; a backup taken while bookings are written is
consistent; retention keeps what the settings say; a backup of an older schema is upgraded.

Restores go into a throwaway database (SQLite: a file of the test; PostgreSQL: a database
created on the same server and dropped after), never the worker's shared test database."""
from __future__ import annotations

import base64
import os
import secrets
import shutil
import threading
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from app import settings
from app.clock import JST
from app.models.audit import AuditLog
from app.models.reservation import Reservation
from app.services import archive, audit, backups, booking
from app.services.calendar import ensure_slots
from app.services.errors import DomainError
from tests.factories import make_card, make_offer, make_staff_booking, make_storage

JAPANESE = ("ぁ", "ヿ")  # hiragana..katakana: a message a person reads in Japanese


def _japanese(message) -> bool:
    return any(JAPANESE[0] <= ch <= JAPANESE[1] for ch in str(message))


@pytest.fixture
def app_config(app_config, tmp_path):
    return {**app_config, "BACKUP_DIR": str(tmp_path / "backups")}


@pytest.fixture
def target(make_app, base_config, tmp_path):
    """An app on an empty database of its own, to restore into."""
    url = base_config["SQLALCHEMY_DATABASE_URI"]
    if url.startswith("sqlite"):
        yield make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/restored.db")
        return
    base = make_url(url)
    name = f"{base.database}_restore_{secrets.token_hex(3)}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    made = make_app(SQLALCHEMY_DATABASE_URI=base.set(database=name)
                    .render_as_string(hide_password=False))
    yield made
    with made.app_context():
        made.appbuilder.session.remove()
        made.appbuilder.session.get_bind().dispose()
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def rows_of(engine) -> dict[str, list[tuple]]:
    """Every row of every table, in a stable order (audit_log by id)."""
    dialect = engine.dialect.name
    quote = engine.dialect.identifier_preparer.quote
    with engine.connect() as connection:
        names = backups._table_names(connection, dialect)
        found = {}
        for name in names:
            rows = [tuple(row) for row in connection.execute(text(f"SELECT * FROM {quote(name)}"))]
            found[name] = sorted(rows, key=lambda row: (row[0], repr(row))
                                 if name == "audit_log" else repr(row))
    return found


def without_restore_record(rows: dict) -> dict:
    """The restored rows without the audit record of the restore itself (the last one)."""
    trail = rows["audit_log"]
    assert trail and '"restore"' not in repr(trail[:-1])
    restore = [row for row in trail if "restore" in row]
    assert restore and restore[-1] == trail[-1], "the restore is the last audit record"
    return {**rows, "audit_log": trail[:-1]}


def _seed(app, db):
    make_storage(db)
    for number in range(3):
        make_card(db, application_id=f"{number + 1:023d}", name=f"試験　太郎{number}")
    reservation = make_staff_booking(app, db)
    db.commit()
    return reservation


def _create(db) -> backups.Created:
    audit.act_as(audit.cli_actor())
    return backups.create(db)


def _restore(target, path, **options) -> backups.Restored:
    with target.app_context():
        audit.act_as(audit.cli_actor())
        session = target.appbuilder.session
        try:
            return backups.restore(session, path, **options)
        finally:
            session.remove()


def _target_engine(target):
    with target.app_context():
        return target.appbuilder.session.get_bind()


def test_backup_destroy_restore_gives_the_same_rows_in_every_table(app, db, target):
    _seed(app, db)
    engine = db.get_bind()
    before = rows_of(engine)
    made = _create(db)
    assert os.path.basename(made.path).startswith("mnc-backup-20261201-1000")
    assert made.path.endswith(".mncbak") and made.rows["card"] == 3
    # the manifest counts every table; the key is not inside, the file is sealed
    with open(made.path, "rb") as handle:
        assert handle.read(8) == archive.SEAL_MAGIC
    key = backups.backup_key()
    assert key not in open(made.path, "rb").read()
    assert made.rows == {name: len(rows) for name, rows in before.items()}

    restored = _restore(target, made.path)
    assert not restored.upgraded and restored.revision_after == restored.revision_before
    assert without_restore_record(rows_of(_target_engine(target))) == before

    # Damage the data, then restore over it: --force and the typed name.
    with _target_engine(target).begin() as connection:
        connection.execute(text("UPDATE card SET name = '壊れた'"))
        connection.execute(text("DELETE FROM booking_event"))
    with target.app_context():
        name = backups.database_name(target.appbuilder.session)
    with pytest.raises(backups.BackupError) as refused:
        _restore(target, made.path)
    assert _japanese(refused.value.message) and "--force" in str(refused.value.message)
    with pytest.raises(backups.BackupError) as mistyped:
        _restore(target, made.path, force=True, confirm=name + "x")
    assert "一致しません" in str(mistyped.value.message)
    assert {row[0] for row in _scalar_rows(target, "SELECT name FROM card")} == {"壊れた"}
    _restore(target, made.path, force=True, confirm=name)
    assert without_restore_record(rows_of(_target_engine(target))) == before

    # The audit trail goes on from the restored one: its chain is intact.
    with target.app_context():
        assert audit.verify_chain(target.appbuilder.session).ok
        target.appbuilder.session.remove()


def _scalar_rows(target, sql):
    with _target_engine(target).connect() as connection:
        return connection.execute(text(sql)).all()


def test_the_card_tally_triggers_come_back_with_the_restore(app, db, target):
    _seed(app, db)
    made = _create(db)
    _restore(target, made.path)
    engine = _target_engine(target)
    if engine.dialect.name == "postgresql":
        sql = "SELECT tgname FROM pg_trigger WHERE tgname LIKE 'card_tally%'"
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'card_tally%'"
    assert _scalar_rows(target, sql)
    # and they work: a new card is counted in the tally
    before = _scalar_rows(target, "SELECT sum(cards) FROM card_tally")[0][0]
    with target.app_context():
        audit.act_as(audit.cli_actor())
        make_card(target.appbuilder.session, application_id="9" * 23)
        target.appbuilder.session.remove()
    assert _scalar_rows(target, "SELECT sum(cards) FROM card_tally")[0][0] == before + 1


def test_a_restore_undoes_an_operation_made_after_the_backup(app, db, target):
    reservation = _seed(app, db)
    engine = db.get_bind()
    before = rows_of(engine)
    made = _create(db)
    # the operation that went wrong: a booking cancelled through the service
    booking.cancel(db, reservation, reason="誤操作", staff=True)
    db.expire_all()
    assert db.get(Reservation, reservation.id).state == "cancelled"
    after = rows_of(engine)
    assert after["reservation"] != before["reservation"]
    _restore(target, made.path)
    restored = without_restore_record(rows_of(_target_engine(target)))
    assert restored == before
    assert [row for row in restored["reservation"]] == before["reservation"]
    assert restored["slot"] == before["slot"] != after["slot"]


def _flip_one_byte(path):
    with open(path, "r+b") as handle:
        handle.seek(os.path.getsize(path) // 2)
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0x01]))


def test_a_tampered_backup_is_refused_and_restores_nothing(app, db, target):
    _seed(app, db)
    made = _create(db)
    good = made.path.replace(".mncbak", "-good.mncbak")
    shutil.copyfile(made.path, good)
    _flip_one_byte(made.path)
    with pytest.raises(archive.SealIntegrityError) as refused:
        backups.verify(made.path)
    assert _japanese(refused.value.message) and "書き換えられたか壊れています" in str(
        refused.value.message)
    info = backups.read_info(made.path)
    assert not info.verified and info.verify_problem
    with pytest.raises(archive.SealIntegrityError):
        _restore(target, made.path)
    with target.app_context():
        assert backups.is_empty(target.appbuilder.session)
        target.appbuilder.session.remove()
    assert backups.status().last_good is None and backups.status().stale
    # over existing data, with --force and the right name: still nothing changed
    _restore(target, good)
    restored = rows_of(_target_engine(target))
    with target.app_context():
        name = backups.database_name(target.appbuilder.session)
    with pytest.raises(archive.SealIntegrityError):
        _restore(target, made.path, force=True, confirm=name)
    assert rows_of(_target_engine(target)) == restored


def test_another_key_is_refused_and_restores_nothing(app, db, target):
    _seed(app, db)
    made = _create(db)
    other = base64.b64encode(secrets.token_bytes(32)).decode()
    settings.configure(app, BACKUP_KEY=other)
    with pytest.raises(archive.SealKeyError) as refused:
        backups.verify(made.path)
    assert "別の鍵で暗号化されています" in str(refused.value.message)
    # the key is wrong, not the file: nothing recorded against the backup
    assert backups.read_info(made.path).verify_problem is None
    settings.configure(target, BACKUP_KEY=other)
    with pytest.raises(archive.SealKeyError):
        _restore(target, made.path)
    with target.app_context():
        assert backups.is_empty(target.appbuilder.session)
        target.appbuilder.session.remove()
    # the right key (hex in the environment works as base64 does) opens it again
    settings.configure(app, BACKUP_KEY="")
    key_hex = backups.backup_key().hex()
    settings.configure(app, BACKUP_KEY=key_hex)
    assert backups.verify(made.path).manifest["kind"] == "backup"


def test_the_cli_refuses_a_tampered_file_with_exit_1(app, db):
    _seed(app, db)
    made = _create(db)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["backup", "verify", made.path])
    assert result.exit_code == 0, result.output
    _flip_one_byte(made.path)
    result = runner.invoke(args=["backup", "verify", made.path])
    assert result.exit_code == 1
    assert "書き換えられたか壊れています" in result.output


def test_the_cli_commands_are_each_audited_with_file_size_and_checksum(app, db, target):
    _seed(app, db)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["backup", "create"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["backup", "verify", "--latest"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["backup", "list"])
    assert "verified" in result.output and backups.head_revision() in result.output
    db.expire_all()
    records = db.query(AuditLog).filter(AuditLog.action.like("backup%")).order_by(
        AuditLog.id).all()
    assert [r.action for r in records] == ["backup", "backup_verify"]
    latest = backups.list_backups()[0]
    for record in records:
        assert record.username.startswith("cli:")
        assert latest.name in record.changes and latest.sha256 in record.changes
    runner = target.test_cli_runner()
    with target.app_context():  # the CLI runs in the app of the context it finds
        result = runner.invoke(args=["backup", "restore", latest.path])
        assert result.exit_code == 0, result.output
        session = target.appbuilder.session
        trail = session.query(AuditLog).order_by(AuditLog.id).all()
        assert trail[-1].action == "restore" and latest.sha256 in trail[-1].changes
        assert trail[-1].username.startswith("cli:")
        session.remove()
        # over existing data the CLI asks for the database name; a wrong one restores nothing
        result = runner.invoke(args=["backup", "restore", latest.path, "--force"],
                               input="nein\n")
        assert result.exit_code == 1 and "一致しません" in result.output
        assert "REPLACES every row" in result.output
        session.remove()


def test_a_backup_taken_while_bookings_are_written_is_consistent(app, db, target):
    offer = make_offer(db, seats=50, purpose_code="shinsei")
    days = [date(2026, 12, 8) + timedelta(days=n) for n in range(3)]
    slot_ids = [slot.id for slot in ensure_slots(db, offer, days[0], days[-1])]
    db.commit()
    engine = db.get_bind()
    stop, made_bookings, errors = threading.Event(), [], []

    def keep_booking():
        with app.app_context():
            audit.act_as("system")
            session = Session(bind=engine)
            from app.models.reservation import Slot
            try:
                number = 0
                while not stop.is_set() and number < 2000:
                    slot = session.get(Slot, slot_ids[number % len(slot_ids)])
                    booking.book(session, slot, None, date(1980, 1, 1),
                                 booking.Contact(f"090{number:08d}"), seats=1 + number % 2,
                                 staff=True)
                    made_bookings.append(number)
                    number += 1
            except Exception as error:  # noqa: BLE001  (reported by the test)
                errors.append(error)
            finally:
                session.close()

    writer = threading.Thread(target=keep_booking)
    writer.start()
    try:
        while len(made_bookings) < 5 and writer.is_alive():
            threading.Event().wait(0.01)
        made = _create(db)
        during = len(made_bookings)
    finally:
        stop.set()
        writer.join()
    assert not errors, errors
    _restore(target, made.path)
    with target.app_context():
        session = target.appbuilder.session
        assert booking.seat_drift(session) == []
        orphans = session.execute(text(
            "SELECT count(*) FROM reservation r LEFT JOIN slot s ON s.id = r.slot_id "
            "WHERE s.id IS NULL")).scalar()
        assert orphans == 0
        restored = session.query(Reservation).count()
        session.remove()
    assert 5 <= restored == made.rows["reservation"] <= len(made_bookings)
    assert during >= 5


def _info(name, when, verified=False):
    return backups.BackupInfo(name=name, path=name, created_at=when, bytes=1,
                              verified_at=when if verified else None)


def test_retention_keeps_n_daily_and_m_monthly_and_the_newest_verified():
    now = datetime(2026, 12, 1, 10, 0, tzinfo=JST)
    found = []
    # two backups a day for 120 days: 03:00 (verified) and 15:00 (not)
    for back in range(120):
        day = now - timedelta(days=back)
        morning = day.replace(hour=3)
        found.append(_info(f"m{back:03d}", morning, verified=True))
        if back > 0:
            found.append(_info(f"e{back:03d}", day.replace(hour=15)))
    keep = backups.to_keep(found, now, daily=7, monthly=3)
    # the newest of each of the last 7 days: today's morning, then the evenings
    expected_daily = {"m000"} | {f"e{back:03d}" for back in range(1, 7)}
    # the newest of each of the last 3 months (Dec: today's, Nov: 30th evening, Oct: 31st)
    expected_monthly = {"m000", "e001", "e031"}
    assert keep == expected_daily | expected_monthly
    # the newest verified one is kept even when no rule keeps it
    only_unverified_recent = [_info("new", now - timedelta(hours=1)),
                              _info("old-ok", now - timedelta(days=400), verified=True)]
    assert backups.to_keep(only_unverified_recent, now, daily=1, monthly=0) == {"new", "old-ok"}


def test_prune_removes_what_the_settings_do_not_keep(app, db, tmp_path):
    settings.configure(app, BACKUP_KEEP_DAILY=2, BACKUP_KEEP_MONTHLY=1)
    folder = backups.backup_dir()
    os.makedirs(folder)
    names = []
    for back in range(5):
        moment = datetime(2026, 12, 1, 3, 0, tzinfo=JST) - timedelta(days=back)
        name = f"mnc-backup-{moment:%Y%m%d-%H%M%S}.mncbak"
        open(os.path.join(folder, name), "wb").write(b"x")
        backups._write_sidecar(os.path.join(folder, name), {
            "created_at": moment.isoformat(), "verified_at": None})
        names.append(name)
    audit.act_as(audit.cli_actor())
    runner = app.test_cli_runner()
    result = runner.invoke(args=["backup", "prune", "--dry-run"])
    assert result.exit_code == 0 and len(os.listdir(folder)) == 10
    result = runner.invoke(args=["backup", "prune"])
    assert result.exit_code == 0, result.output
    # kept: 12-01 and 11-30 (days), 12-01 also the month's newest
    assert sorted(os.listdir(folder)) == sorted(
        [names[0], names[0] + ".json", names[1], names[1] + ".json"])
    db.expire_all()
    record = db.query(AuditLog).filter_by(action="backup_prune").one()
    assert names[4] in record.changes


def test_a_backup_of_an_older_schema_is_upgraded_when_restored(make_app, base_config,
                                                                tmp_path, target):
    if not base_config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("SQLite only (walks a throwaway database through the migrations)")
    from flask_migrate import upgrade

    old = make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/old.db")
    with old.app_context():
        upgrade(revision="0016_export_jobs")
        audit.act_as(audit.cli_actor())
        made = backups.create(old.appbuilder.session)
        old.appbuilder.session.remove()
    assert made.schema_revision == "0016_export_jobs"
    restored = _restore(target, made.path)
    assert restored.upgraded and restored.revision_before == "0016_export_jobs"
    with target.app_context():
        assert restored.revision_after == backups.head_revision() != "0016_export_jobs"
    # the CLI says so
    result = target.test_cli_runner().invoke(
        args=["backup", "restore", made.path, "--force", "--yes-i-typed", "restored.db"])
    assert result.exit_code == 0, result.output
    with target.app_context():
        assert f"upgraded to {backups.head_revision()}" in result.output


def test_the_settings_in_a_backup_hold_no_secret(app, db):
    settings.configure(app, MAIL_PASSWORD="s3cret-mail", DOCUMENT_KEYS="k1:" + base64.b64encode(
        b"k" * 32).decode(), DOCUMENT_KEY_CURRENT="k1")
    made = _create(db)
    plain = made.path + ".plain"
    archive.unseal(made.path, plain, backups.backup_key())
    with archive.ArchiveReader(plain) as reader:
        reader.verified()
        content = reader.read("settings.json").decode()
        assert "s3cret-mail" not in content and "a2tr" not in content
        assert '"backup_keep_daily": 14' in content
        assert reader.manifest["schema_revision"] == backups.head_revision()
        assert "document_blob" in reader.manifest["tables"]
        assert reader.manifest["key_fingerprint"] == backups.key_fingerprint()


def test_the_password_never_goes_on_a_command_line():
    env = backups.pg_environment("postgresql+psycopg://mnc:pa%40ss@db.example:6543/mnc"
                                 "?sslmode=require")
    assert env["PGPASSWORD"] == "pa@ss" and env["PGHOST"] == "db.example"
    assert env["PGPORT"] == "6543" and env["PGDATABASE"] == "mnc"
    assert env["PGSSLMODE"] == "require"


def test_an_old_pg_dump_is_refused_with_a_clear_message(app, db, monkeypatch):
    if db.get_bind().dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    monkeypatch.setattr(backups, "_tool_major", lambda name: 9)
    with pytest.raises(backups.BackupError) as refused:
        _create(db)
    assert "postgresql-client" in str(refused.value.message)
    assert _japanese(refused.value.message)
    assert backups.list_backups() == []


def test_a_bad_backup_key_setting_stops_the_start():
    with pytest.raises(ValueError):
        settings.parse_backup_key("short")
    assert len(settings.parse_backup_key("ab" * 32)) == 32


def test_domain_errors_keep_their_type():
    assert issubclass(backups.BackupError, DomainError)


def test_a_restore_that_fails_half_way_leaves_the_database_as_it_was(app, db, target,
                                                                     tmp_path, monkeypatch):
    """PostgreSQL: the schema is dropped and the dump loaded in one transaction; an error in
    the last statement of the load undoes the drop too."""
    if db.get_bind().dialect.name != "postgresql":
        pytest.skip("PostgreSQL only (SQLite swaps a finished file in at once)")
    _seed(app, db)
    made = _create(db)
    _restore(target, made.path)
    with _target_engine(target).begin() as connection:
        connection.execute(text("UPDATE card SET name = '復元の前'"))
    before = rows_of(_target_engine(target))
    broken = tmp_path / "pg_restore"
    broken.write_text(f"#!/bin/sh\n{shutil.which('pg_restore')} \"$@\" && echo 'SELECT 1/0;'\n")
    broken.chmod(0o755)
    real_tool = backups._tool
    monkeypatch.setattr(backups, "_tool", lambda name: str(broken) if name == "pg_restore"
                        else real_tool(name))
    with target.app_context():
        name = backups.database_name(target.appbuilder.session)
    with pytest.raises(backups.BackupError) as failed:
        _restore(target, made.path, force=True, confirm=name)
    assert "復元に失敗しました" in str(failed.value.message)
    assert rows_of(_target_engine(target)) == before


def test_verify_of_a_file_that_is_not_a_backup_writes_no_sidecar(app, tmp_path):
    stray = tmp_path / "notes.mncbak"
    stray.write_bytes(b"not a backup at all")
    with app.app_context():
        with pytest.raises(DomainError):
            backups.verify(str(stray))
    assert not (tmp_path / "notes.mncbak.json").exists()


def test_a_backup_verified_once_is_kept_until_a_newer_one_is_verified():
    now = datetime(2026, 12, 1, 10, 0, tzinfo=JST)
    old = backups.BackupInfo("old", "/x/old", datetime(2026, 8, 1, 3, 0, tzinfo=JST), 1,
                             verify_problem="broken later",
                             last_verified_at=datetime(2026, 8, 1, 4, 0, tzinfo=JST))
    new = backups.BackupInfo("new", "/x/new", datetime(2026, 11, 30, 3, 0, tzinfo=JST), 1)
    assert "old" in backups.to_keep([old, new], now, daily=1, monthly=1)
    new.verified_at = now
    assert "old" not in backups.to_keep([old, new], now, daily=1, monthly=1)


def test_staging_left_by_a_dead_process_is_swept(app, db):
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with app.app_context():
        root = backups.work_root()
        assert oct(os.stat(root).st_mode & 0o777) == "0o700"
        assert not root.startswith(os.path.abspath(backups.backup_dir()))
        left = os.path.join(root, f".backup-{dead.pid}-abc")
        mine = os.path.join(root, f".verify-{os.getpid()}-abc")
        old = os.path.join(backups.backup_dir(), ".backup-xyz")
        for folder in (left, mine, old):
            os.makedirs(folder)
            open(os.path.join(folder, "database.sqlite3"), "wb").write(b"plain")
        audit.act_as(audit.cli_actor())
        backups.prune()
        assert not os.path.exists(left) and not os.path.exists(old)
        assert os.path.exists(mine)  # a staging folder of a live process is left alone
        shutil.rmtree(mine)
