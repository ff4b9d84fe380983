"""Migration export and import (issue 15 §2, §5): the round trip on SQLite and PostgreSQL
(export, import into a fresh database, export again: the same files), the refusals that
change nothing, the decrypted documents, who may, and the documentation of every column."""
from __future__ import annotations

import contextvars
import hashlib
import json
import os
import re
import zipfile
from unittest.mock import patch

import pytest
from flask import g
from flask_appbuilder import Model
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from app.models.audit import AuditLog
from app.models.document import IntakeDocument
from app.services import actors, archive, audit, documents, migration_export
from app.services.errors import NotPermittedError
from tests.factories import make_card

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AUDIT_PART = "tables/audit_log.csv"


# --- building the data and a fresh instance --------------------------------------------------

@pytest.fixture
def source(app, db):
    """The demo data (every kind of row: staff, cards in each state, venues, slots,
    bookings, intakes with fees and a scanned document, notices, saved queries, the audit
    trail) and cards whose values try the CSV: quotes, commas, line breaks, an empty
    string beside NULL, leading zeros."""
    from app.services import demo

    small_mix = [(min(entry[0], 2), *entry[1:]) for entry in demo.CARD_MIX]
    with patch.object(demo, "CARD_MIX", small_mix):
        g.audit_actor = "cli:test"
        demo.seed_demo()
    make_card(db, application_id="00000000000000000000001", notes='備考に "引用符", カンマ\r\n改行')
    make_card(db, application_id="00000000000000000000002", notes="")
    make_card(db, application_id="00000000000000000000003", notes=None, name="髙橋　﨑子")
    _fill_the_rest(db)
    db.commit()
    return db


def _fill_the_rest(db):
    """A row in each table the demo leaves empty (Core inserts: set-up only), and a staff
    account pointing at a later one (``changed_by_fk``: loaded after its table)."""
    from datetime import date, datetime, timedelta

    from app.clock import JST

    t = Model.metadata.tables
    now = datetime(2026, 12, 1, 10, 0, tzinfo=JST)
    venue_id = db.execute(select(t["venue"].c.id).order_by(t["venue"].c.id)).scalar()
    offer_id = db.execute(select(t["venue_purpose"].c.id)).scalar()
    slot_id = db.execute(select(t["slot"].c.id)).scalar()
    db.execute(t["daily_close"].insert().values(
        venue_id=venue_id, clerk="madoguchi01", day=date(2026, 11, 30), counted_cash=5000,
        expected_cash=4000, difference=1000, explanation="釣銭の誤り", closed_at=now,
        closed_by="kanri01"))
    db.execute(t["date_exception"].insert().values(offer_id=offer_id, day=date(2026, 12, 29),
                                                   closed=True, note="年末"))
    db.execute(t["export_job"].insert().values(
        token="t" * 64, owner="kanri01", subject="cards", definition='{"subject":"cards"}',
        format="csv", download_name="カード.csv", created_at=now, heartbeat_at=now,
        state="failed", error="途中で停止"))
    db.execute(t["hold"].insert().values(slot_id=slot_id, seats=1, token="h" * 40,
                                         expires_at=now + timedelta(minutes=10)))
    db.execute(t["outbox"].insert().values(
        kind="reminder", to_address="taro@example.jp", subject="明日のご予約",
        body="本文\n2行目, \"引用\"", created_at=now, next_attempt_at=now))
    batch = db.execute(t["scan_batch"].insert().values(created_at=now, created_by="clerk")
                       ).inserted_primary_key[0]
    db.execute(t["scan_item"].insert().values(batch_id=batch, seq=1, payload="QR,1,2",
                                              status="new"))
    db.execute(t["throttle"].insert().values(key="k" * 64, window_started_at=now))
    db.execute(t["site_setting"].insert().values(
        key="export_policy", value='{"encryption_required": false}', version=2,
        updated_at=now, updated_by="kanri01"))
    card_id = db.execute(select(t["card"].c.id).order_by(t["card"].c.id)).scalar()
    if not db.execute(select(t["discard_candidate"].c.id)).first():  # the demo's refresh
        db.execute(t["discard_candidate"].insert().values(
            card_id=card_id, reason="notice_sent", reason_on=date(2025, 10, 1), found_at=now))
    db.execute(t["job_run"].insert().values(
        job="close_day", period="2026-12-01T10", state="succeeded", attempts=1,
        worker="host-a:4242", started_at=now, lease_until=now + timedelta(minutes=30),
        finished_at=now, succeeded_at=now, result="締めた日 1、不来庁 0"))
    users = t["ab_user"]
    first, last = db.execute(select(func.min(users.c.id), func.max(users.c.id))).one()
    assert first < last
    db.execute(users.update().where(users.c.id == first).values(changed_by_fk=last))


@pytest.fixture
def fresh_url(database_url, tmp_path):
    """The address of a new, empty database on the same engine as the tests'."""
    if not database_url.startswith("postgresql"):
        yield f"sqlite:///{tmp_path}/fresh.db"
        return
    base = make_url(database_url)
    name = f"{base.database}_fresh_{os.getpid()}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield base.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def target(make_app, fresh_url):
    """A new instance on the fresh database: schema and roles as `flask init` makes them."""
    from app.cli import init_database

    made = make_app(SQLALCHEMY_DATABASE_URI=fresh_url)
    with made.app_context():
        g.audit_actor = "cli:test"
        init_database()
    return made


def _export(app, path, **kwargs):
    with app.app_context():
        g.audit_actor = "cli:test"
        return migration_export.export_all(app.appbuilder.session, str(path), **kwargs)


def _import(app, path, **kwargs):
    with app.app_context():
        g.audit_actor = "cli:test"
        return migration_export.import_all(app.appbuilder.session, str(path), **kwargs)


def _counts(app) -> dict[str, int]:
    with app.app_context():
        session = app.appbuilder.session
        found = {table.name: session.execute(select(func.count()).select_from(table)).scalar()
                 for table in migration_export.tables()}
        session.rollback()
        return found


def _files(manifest) -> dict[str, dict]:
    return {entry["path"]: entry for entry in manifest["files"]}


# --- the round trip ----------------------------------------------------------------------------

def test_round_trip_gives_the_same_export(app, source, target, tmp_path):
    first = _export(app, tmp_path / "first.zip")
    assert first.rows["card"] >= 30 and first.rows["reservation"] > 0
    assert first.rows["fee_entry"] > 0 and first.rows["intake_document"] >= 1
    assert first.rows["ab_user"] > 0 and first.rows["ab_user_role"] > 0
    assert first.rows["audit_log"] > 0 and first.rows["card_tally"] > 0
    assert first.documents == first.rows["document_blob"] >= 1
    empty = {name for name, count in first.rows.items() if not count}
    assert empty <= {"ab_api_key", "ab_group", "ab_group_role", "ab_register_user",
                     "ab_user_group"}, empty  # FAB's tables the product does not use

    imported = _import(target, tmp_path / "first.zip")
    assert imported.rows == first.rows
    second = _export(target, tmp_path / "second.zip")

    one, two = archive.comparable(first.manifest), archive.comparable(second.manifest)
    # The one difference: the target's audit trail goes on with the import's own record.
    files_one, files_two = _files(one), _files(two)
    assert set(files_one) == set(files_two)
    for path in files_one:
        if path != AUDIT_PART:
            assert files_one[path] == files_two[path], path
    assert files_two[AUDIT_PART]["rows"] == files_one[AUDIT_PART]["rows"] + 1
    with zipfile.ZipFile(tmp_path / "first.zip") as a, zipfile.ZipFile(
            tmp_path / "second.zip") as b:
        before, after = a.read(AUDIT_PART), b.read(AUDIT_PART)
    assert after.startswith(before)
    assert b'"import","migration-export"' in after[len(before):]
    for key in set(one) - {"files", "tables"}:
        assert one[key] == two[key], key
    assert [t for t in one["tables"] if t["name"] != "audit_log"] == [
        t for t in two["tables"] if t["name"] != "audit_log"]

    with target.app_context():
        session = target.appbuilder.session
        assert audit.verify_chain(session).ok
        assert not documents.verify_all(session).failed  # same ids, key ids, nonces
        last, before_it = session.execute(
            select(AuditLog).order_by(AuditLog.id.desc()).limit(2)).scalars().all()
        assert (last.action, last.username) == ("export", "cli:test")  # the second export
        last = before_it
        assert (last.action, last.username) == ("import", "cli:test")
        detail = json.loads(last.changes)
        assert detail["sha256"] == archive.sha256_of(str(tmp_path / "first.zip"))
        assert detail["rows"] == sum(first.rows.values()) and detail["decrypted"] is False
        # the sequences go on after the imported ids (PostgreSQL): a new record fits
        audit.record_event(audit.ACTION_VIEW, "card", 1, None)
        assert audit.verify_chain(session).ok


def test_export_is_audited_with_its_checksum(app, source, tmp_path):
    report = _export(app, tmp_path / "out.zip")
    last = source.execute(select(AuditLog).order_by(AuditLog.id.desc())).scalars().first()
    detail = json.loads(last.changes)
    assert (last.action, last.target_table, last.username) == (
        "export", "migration-export", "cli:test")
    assert detail["sha256"] == report.sha256 == archive.sha256_of(str(tmp_path / "out.zip"))
    assert detail["rows"] == sum(report.rows.values()) and detail["decrypted"] is False
    assert detail["documents"] == report.documents


def _alembic_head() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", os.path.join(ROOT, "migrations"))
    return ScriptDirectory.from_config(config).get_current_head()


def test_manifest_and_csv_as_documented(app, source, tmp_path):
    report = _export(app, tmp_path / "out.zip")
    manifest = report.manifest
    with archive.ArchiveReader(str(tmp_path / "out.zip")) as reader:
        assert reader.verify() == []
        assert manifest["kind"] == "migration-export"
        assert manifest["schema_revision"] == _alembic_head()
        names = [entry["name"] for entry in manifest["tables"]]
        # every table but the temporary files of the shared file store
        assert names == [table.name for table in Model.metadata.sorted_tables
                         if table.name not in migration_export.NOT_EXPORTED]
        assert "stored_file" not in names and "stored_file_chunk" not in names
        assert names.index("card") < names.index("card_event")
        card_csv = reader.read("tables/card.csv")
    assert not card_csv.startswith(b"\xef\xbb\xbf")
    text_ = card_csv.decode("utf-8")
    assert text_.startswith('"id","application_id",') or text_.startswith('"id",')
    assert '"00000000000000000000001"' in text_  # the ID as text, leading zeros kept
    assert '"備考に ""引用符"", カンマ\r\n改行"' in text_
    assert "髙橋　﨑子" in text_
    rows = list(migration_export.read_records(__import__("io").BytesIO(card_csv)))
    header = rows[0]
    by_id = {row[header.index("application_id")]: row for row in rows[1:]}
    notes = header.index("notes")
    assert by_id["00000000000000000000002"][notes] == ""  # empty string
    assert by_id["00000000000000000000003"][notes] is None  # NULL
    assert by_id["00000000000000000000001"][notes] == '備考に "引用符", カンマ\r\n改行'
    assert by_id["00000000000000000000001"][header.index("has_sign_cert")] == "true"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", by_id["00000000000000000000001"][
        header.index("birth_date")])
    with archive.ArchiveReader(str(tmp_path / "out.zip")) as reader:
        audit_rows = list(migration_export.read_records(reader.open(AUDIT_PART)))
    stamp = audit_rows[1][audit_rows[0].index("created_at")]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+09:00", stamp), stamp
    documents_ = [path for path in _files(manifest) if path.startswith("documents/")]
    assert documents_ and all(path.endswith(".pdf.enc") for path in documents_)


def test_decrypted_documents_match_their_checksums(app, source, target, tmp_path):
    report = _export(app, tmp_path / "plain.zip", decrypt=True)
    assert report.decrypted and report.manifest["documents"]["decrypted"] is True
    stored = source.execute(select(IntakeDocument.id, IntakeDocument.filename,
                                   IntakeDocument.sha256)).all()
    assert stored
    with archive.ArchiveReader(str(tmp_path / "plain.zip")) as reader:
        for document_id, filename, sha256 in stored:
            data = reader.read(migration_export.plain_part(document_id, filename))
            assert data.startswith(b"%PDF-")
            assert hashlib.sha256(data).hexdigest() == sha256
        assert not [name for name in reader.names() if name.endswith(".enc")]
    last = source.execute(select(AuditLog).order_by(AuditLog.id.desc())).scalars().first()
    assert json.loads(last.changes)["decrypted"] is True
    # such an export is for reading: the import refuses it, writing nothing
    before = _counts(target)
    with pytest.raises(migration_export.MigrationError, match="--decrypt"):
        _import(target, tmp_path / "plain.zip")
    assert _counts(target) == before


# --- refusals that change nothing ---------------------------------------------------------------

def _rewrite(source_path, target_path, change_part=None, manifest_change=None):
    with zipfile.ZipFile(source_path) as old, zipfile.ZipFile(target_path, "w") as new:
        for info in old.infolist():
            data = old.read(info.filename)
            if info.filename == change_part:
                data = data[:-10] + bytes([data[-10] ^ 0x01]) + data[-9:]
            if info.filename == archive.MANIFEST and manifest_change:
                manifest = json.loads(data)
                manifest_change(manifest)
                data = json.dumps(manifest).encode()
            new.writestr(info, data)


def test_refusals_change_nothing(app, source, target, tmp_path):
    good = tmp_path / "good.zip"
    _export(app, good)
    empty = _counts(target)

    tampered = tmp_path / "tampered.zip"
    _rewrite(good, tampered, change_part="tables/card.csv")
    with pytest.raises(migration_export.MigrationError, match="tables/card.csv"):
        _import(target, tampered)
    assert _counts(target) == empty

    flipped = tmp_path / "flipped.zip"  # one byte of the file itself, in a part's data
    raw = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as z:
        info = z.getinfo("tables/card.csv")
    raw[info.header_offset + 30 + len(info.filename) + len(info.extra) + 40] ^= 0x01
    flipped.write_bytes(bytes(raw))
    with pytest.raises(migration_export.MigrationError):
        _import(target, flipped)
    assert _counts(target) == empty

    older = tmp_path / "older.zip"
    _rewrite(good, older, manifest_change=lambda m: m.update(schema_revision="0016_export_jobs"))
    with pytest.raises(migration_export.MigrationError, match="0016_export_jobs"):
        _import(target, older)
    assert _counts(target) == empty

    # into a database that holds data (the source itself): refused, nothing added
    before = _counts(app)
    with pytest.raises(migration_export.MigrationError, match="すでにデータがあります"):
        _import(app, good)
    assert _counts(app) == before

    # and the good archive then imports; a second import is refused
    _import(target, good)
    loaded = _counts(target)
    with pytest.raises(migration_export.MigrationError, match="すでにデータがあります"):
        _import(target, good)
    assert _counts(target) == loaded


def test_only_the_system_administrator(app, source, target, tmp_path):
    manager = actors.CardActor("kanri01", frozenset({app.config["ROLE_MANAGER"]}))
    nobody = actors.CardActor("")
    for actor in (manager, nobody):
        with pytest.raises(NotPermittedError):
            _export(app, tmp_path / "no.zip", actor=actor)
        assert not (tmp_path / "no.zip").exists()
    admin = actors.CardActor("admin", frozenset({app.config["ROLE_SYSADMIN"]}))
    _export(app, tmp_path / "yes.zip", actor=admin)
    empty = _counts(target)
    with pytest.raises(NotPermittedError):
        _import(target, tmp_path / "yes.zip", actor=manager)
    assert _counts(target) == empty
    _import(target, tmp_path / "yes.zip", actor=admin)
    assert _counts(target)["card"] == _counts(app)["card"]


def test_command_line(app, source, target, tmp_path):
    path = str(tmp_path / "cli.zip")
    result = app.test_cli_runner().invoke(args=["data", "export", path])
    assert result.exit_code == 0, result.output
    assert "card:" in result.output and "sha256" in result.output
    last = source.execute(select(AuditLog).order_by(AuditLog.id.desc())).scalars().first()
    assert last.username.startswith("cli:") and last.action == "export"
    # the target's own app context (the test holds the source's open)
    run = lambda: target.test_cli_runner().invoke(args=["data", "import", path])  # noqa: E731
    result = contextvars.Context().run(run)
    assert result.exit_code == 0, result.output
    assert "audit chain intact" in result.output
    result = contextvars.Context().run(run)
    assert result.exit_code == 2 and "すでにデータがあります" in result.output


# --- the documentation ----------------------------------------------------------------------------

def test_every_table_and_column_is_documented():
    """docs/data-export.md names every table and every column of the models (it is made by
    scripts/data_export_doc.py: run it again after a migration)."""
    with open(os.path.join(ROOT, "docs", "data-export.md"), encoding="utf-8") as handle:
        doc = handle.read()
    missing = []
    for table in Model.metadata.sorted_tables:
        heading = (f"### `{table.name}`" if table.name in migration_export.NOT_EXPORTED
                   else f"### `tables/{table.name}\\.csv`")
        section = re.search(rf"^{heading}.*?(?=^### |\Z)", doc, re.M | re.S)
        if section is None:
            missing.append(table.name)
            continue
        for column in table.columns:
            if f"| `{column.name}` |" not in section.group(0):
                missing.append(f"{table.name}.{column.name}")
    assert not missing, missing


def test_the_doc_is_as_generated_from_the_models():
    """Every table and column has its meaning in Japanese and English, and the generated
    reference in docs/data-export.md is current (run scripts/data_export_doc.py)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "data_export_doc", os.path.join(ROOT, "scripts", "data_export_doc.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    body, missing = module.reference()
    assert not missing, missing
    with open(os.path.join(ROOT, "docs", "data-export.md"), encoding="utf-8") as handle:
        assert body in handle.read()


def test_export_reads_one_snapshot(app, source, database_url, tmp_path):
    """A change committed by someone else while the export runs (here: after the cards are
    written, before their history is) is in no file: every table is read as it was when the
    export began (REPEATABLE READ on PostgreSQL, one read transaction on SQLite)."""
    from datetime import datetime

    from app.clock import JST
    from app.models.card import Card, CardEvent

    events_before = source.execute(select(func.count()).select_from(CardEvent)).scalar()
    card_id = source.execute(select(Card.id).order_by(Card.id)).scalars().first()
    source.rollback()
    other = create_engine(database_url)

    def meanwhile(table, rows):
        if table == "card":
            with other.begin() as connection:
                connection.execute(CardEvent.__table__.insert().values(
                    card_id=card_id, from_state=None, to_state="received",
                    at=datetime(2026, 12, 1, 10, 5, tzinfo=JST), username="someone"))

    try:
        report = _export(app, tmp_path / "out.zip", progress=meanwhile)
    finally:
        other.dispose()
    assert report.rows["card_event"] == events_before
    assert source.execute(select(func.count()).select_from(CardEvent)).scalar() == \
        events_before + 1  # it was committed, only after the snapshot


def test_card_counts_are_checked_and_kept_after_import(app, source, target, tmp_path):
    """card_tally (kept by triggers on card): counts in the export that do not fit its cards
    are refused, nothing loaded; after an import the triggers count again."""
    from app.models.card import CardTally

    good = tmp_path / "good.zip"
    _export(app, good)
    part = "tables/card_tally.csv"
    with zipfile.ZipFile(good) as old:
        records = old.read(part).decode().split("\r\n")
    fields = records[1].rsplit(",", 1)
    records[1] = f'{fields[0]},"{int(fields[1].strip(chr(34))) + 1}"'
    changed = "\r\n".join(records).encode()

    def fix(manifest):
        for entry in manifest["files"]:
            if entry["path"] == part:
                entry.update(sha256=hashlib.sha256(changed).hexdigest(), bytes=len(changed))

    wrong = tmp_path / "wrong.zip"
    with zipfile.ZipFile(good) as old, zipfile.ZipFile(wrong, "w") as new:
        for info in old.infolist():
            data = old.read(info.filename)
            if info.filename == part:
                data = changed
            elif info.filename == archive.MANIFEST:
                manifest = json.loads(data)
                fix(manifest)
                data = json.dumps(manifest).encode()
            new.writestr(info, data)
    empty = _counts(target)
    with pytest.raises(migration_export.MigrationError, match="card_tally"):
        _import(target, wrong)
    assert _counts(target) == empty

    _import(target, good)
    with target.app_context():
        session = target.appbuilder.session
        g.audit_actor = "cli:test"

        def received_k():
            session.expire_all()
            row = session.get(CardTally, ("K", "received"))
            return row.cards if row else 0

        before = received_k()
        make_card(session, visit_mode="K")  # received; commits
        assert received_k() == before + 1
