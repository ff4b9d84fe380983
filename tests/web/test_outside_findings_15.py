"""Outside tester's findings on issue 15 (import, migration export, backups, encrypted
exports). Each test reproduces one defect and is marked xfail(strict=True): when the defect
is fixed the test passes and the strict xfail fails, so the marker must then be removed."""
from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select

from app.models.card import Card
from app.services import export_policy, ledger_import
from app.services.cards import CardActor
from tests.ledger_import_files import app_id, row, write_csv
from tests.web.test_ledger_import_screen import upload


def reasons(report):
    return [(p.line, p.column, p.value, p.reason) for p in report.problems]


def card(db, n):
    return db.execute(select(Card).where(Card.application_id == app_id(n))).scalar_one_or_none()


# --- F1: a card imported as 交付済 without 交付日 -----------------------------------------

def test_handed_over_without_a_handover_date_is_refused(db, tmp_path):
    path = write_csv(tmp_path / "l.csv", [row(1, 交付状況="交付済", 交付日="", 保管場所="")])
    report = ledger_import.import_ledger(db, path)
    assert not report.ok, "交付済 without 交付日 was accepted"
    assert card(db, 1) is None


# --- F2: birth date after the card's dates -------------------------------------------------

def test_a_birth_date_after_the_notice_date_is_refused(db, tmp_path):
    path = write_csv(tmp_path / "l.csv",
                     [row(1, 生年月日="令和6年5月1日", 通知書発送日="令和6年4月1日")])
    report = ledger_import.import_ledger(db, path)
    assert not report.ok, "birth date after 通知書発送日 was accepted"


# --- F3: --update moves a card back out of a final state ---------------------------------

def test_update_does_not_move_a_handed_over_card_back_to_the_office(db, tmp_path):
    first = write_csv(tmp_path / "a.csv",
                      [row(1, 交付状況="交付済", 交付日="令和6年5月1日", 保管場所="")])
    assert ledger_import.import_ledger(db, first).created == 1
    assert card(db, 1).state == "handed_over"
    again = write_csv(tmp_path / "b.csv", [row(1)])  # 通知済, in 移行-棚01
    ledger_import.import_ledger(db, again, update=True)
    db.expire_all()
    assert card(db, 1).state == "handed_over", "a handed-over card went back to notice_sent"


# --- F4: the rejects file cannot be re-imported as it is -----------------------------------

def test_the_rejects_file_round_trips_a_dash_flag(db, tmp_path):
    rows = [row(1), row(2, 署名用電子証明書="-", 生年月日="S55.2.30")]
    path = write_csv(tmp_path / "l.csv", rows)
    rejects = tmp_path / "rejects.csv"
    report = ledger_import.import_ledger(db, path, skip_invalid=True,
                                         rejects_path=str(rejects))
    assert report.rejected == 1
    text = rejects.read_bytes().decode("utf-8-sig").replace("S55.2.30", "S55.2.28")
    fixed = tmp_path / "fixed.csv"
    fixed.write_text(text, encoding="utf-8-sig")
    report = ledger_import.import_ledger(db, str(fixed))
    assert report.ok, reasons(report)


# --- F5: rejects / report downloads ignore the encryption policy ----------------------------

def _require_encryption(db):
    from app.services.cards import SYSTEM

    current = export_policy.policy(db)
    export_policy.set_policy(db, encryption_required=True, expected_version=current.version,
                             actor=SYSTEM)


def test_the_rejects_download_obeys_the_encryption_policy(login_as, app, db):
    manager = login_as("manager")
    from tests.ledger_import_files import csv_text
    data = csv_text([row(1), row(2, 交付状況="謎")]).encode("utf-8-sig")
    job_url = upload(manager, data).headers["Location"]
    manager.post(job_url + "/import", data={"skip_invalid": "1"})
    _require_encryption(db)
    assert export_policy.policy(db).encryption_required
    rejects = manager.post(job_url + "/download/rejects")
    assert not (rejects.status_code == 200 and "謎".encode() in rejects.data), \
        "plain rejects CSV with personal data handed out despite the policy"


# --- B1: a verify with the wrong key condemns a good backup; prune then removes it --------

@pytest.fixture
def backup_app(make_app, base_config, tmp_path):
    return make_app(BACKUP_DIR=str(tmp_path / "backups"))


def test_a_wrong_key_verify_does_not_let_prune_remove_the_last_good_backup(backup_app,
                                                                            tmp_path):
    import base64
    import json
    import os
    import secrets
    from datetime import datetime, timedelta

    from app import settings
    from app.clock import JST
    from app.services import archive, audit, backups

    app = backup_app
    with app.app_context():
        db = app.appbuilder.session
        audit.act_as(audit.cli_actor())
        made = backups.create(db)
        backups.verify(made.path)  # good, verified
        # make it an old one (outside the daily/monthly windows)
        old = datetime(2026, 9, 1, 3, 0, tzinfo=JST)
        folder = backups.backup_dir()
        old_path = os.path.join(folder, f"mnc-backup-{old:%Y%m%d-%H%M%S}.mncbak")
        os.replace(made.path, old_path)
        side = json.load(open(made.path + ".json", encoding="utf-8"))
        os.remove(made.path + ".json")
        side["created_at"] = old.isoformat()
        backups._write_sidecar(old_path, side)
        # newer backups that were never verified (e.g. the verify step of the timer failed)
        for back in range(2):
            moment = datetime(2026, 12, 1, 3, 0, tzinfo=JST) - timedelta(days=back)
            name = os.path.join(folder, f"mnc-backup-{moment:%Y%m%d-%H%M%S}.mncbak")
            open(name, "wb").write(b"x")
            backups._write_sidecar(name, {"created_at": moment.isoformat(),
                                          "verified_at": None})
        settings.configure(app, BACKUP_KEEP_DAILY=2, BACKUP_KEEP_MONTHLY=1)
        assert old_path not in [i.path for i in backups.prune(dry_run=True)]
        # an operator verifies with the wrong BACKUP_KEY in the environment
        settings.configure(app, BACKUP_KEY=base64.b64encode(secrets.token_bytes(32)).decode())
        with pytest.raises(archive.SealKeyError):
            backups.verify(old_path)
        settings.configure(app, BACKUP_KEY="")
        backups.prune()
        assert os.path.exists(old_path), "the only good backup was pruned"
        app.appbuilder.session.remove()


# --- B2: a sidecar with a time without zone crashes list, prune and the home page ---------

def test_a_sidecar_with_a_naive_time_does_not_crash_the_list(backup_app):
    import os

    from app.services import backups

    with backup_app.app_context():
        folder = backups.backup_dir()
        os.makedirs(folder, exist_ok=True)
        for name, when in (("mnc-backup-20261130-030000.mncbak", None),
                           ("copied.mncbak", "2026-11-29T03:00:00")):
            open(os.path.join(folder, name), "wb").write(b"x")
            if when:
                backups._write_sidecar(os.path.join(folder, name), {"created_at": when})
        assert len(backups.list_backups()) == 2


# --- M1: a migration export with a row violating a CHECK: raw database error ---------------

def test_a_row_violating_a_check_is_refused_with_a_clear_message(app, tmp_path, make_app):
    import hashlib
    import json
    import zipfile

    from flask import g

    from app.cli import init_database
    from app.services import archive, migration_export
    from tests.factories import make_card

    with app.app_context():
        db = app.appbuilder.session
        from sqlalchemy import text

        make_card(db, application_id="00000000000000000000001")
        if not db.execute(text("SELECT count(*) FROM fee_schedule")).scalar():
            db.execute(text("INSERT INTO fee_schedule (id, kind, valid_from, card_amount, "
                            "cert_amount, note) VALUES (1, 'reissue', '2016-01-01', 800, 200, "
                            "'x')"))
        db.commit()
        g.audit_actor = "cli:test"
        good = tmp_path / "good.zip"
        migration_export.export_all(db, str(good))
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(good) as old, zipfile.ZipFile(bad, "w") as new:
        manifest = json.loads(old.read(archive.MANIFEST))
        for info in old.infolist():
            data = old.read(info.filename)
            if info.filename == "tables/fee_schedule.csv":
                lines = data.decode().split("\n")
                header = [h.strip('\r"') for h in lines[0].split(",")]
                values = lines[1].split(",")
                values[header.index("kind")] = "\"bogus\""
                lines[1] = ",".join(values)
                data = "\n".join(lines).encode()
                for entry in manifest["files"]:
                    if entry["path"] == info.filename:
                        entry.update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
            if info.filename == archive.MANIFEST:
                continue
            new.writestr(info, data)
        new.writestr(archive.MANIFEST, json.dumps(manifest))
    target = make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/fresh.db")
    with target.app_context():
        g.audit_actor = "cli:test"
        init_database()
        session = target.appbuilder.session
        with pytest.raises(migration_export.MigrationError) as refused:
            migration_export.import_all(session, str(bad))
        assert "fee_schedule" in str(refused.value.message)
        session.rollback()
        from app.models.card import Card as C
        assert session.query(C).count() == 0  # nothing imported
        session.remove()


# --- M2: the migration export (every resident) ignores the encryption policy ----------------

def test_the_migration_export_obeys_the_encryption_policy(app, tmp_path):
    import os
    import stat
    import zipfile

    from flask import g

    from app.services import migration_export
    from app.services.cards import SYSTEM
    from tests.factories import make_card

    with app.app_context():
        db = app.appbuilder.session
        make_card(db, application_id="00000000000000000000001", name="髙橋　﨑子")
        db.commit()
        current = export_policy.policy(db)
        export_policy.set_policy(db, encryption_required=True,
                                 expected_version=current.version, actor=SYSTEM)
        g.audit_actor = "cli:test"
        path = tmp_path / "all.zip"
        try:
            migration_export.export_all(db, str(path))
        except Exception:  # noqa: BLE001 - refused: the policy holds
            return
        with zipfile.ZipFile(path) as z:
            readable = "髙橋".encode() in z.read("tables/card.csv")
        mode = stat.S_IMODE(os.stat(path).st_mode)
        assert not readable or mode & 0o077 == 0, \
            f"plain export of every resident, mode {oct(mode)}"


# --- B3: the plaintext database is staged on the backup's destination medium ----------------

def test_no_plaintext_database_is_written_to_the_backup_destination(backup_app, tmp_path,
                                                                    monkeypatch):
    import os

    from app.services import archive, audit, backups

    external = tmp_path / "usb"
    seen = []
    real_seal = archive.seal

    def spying_seal(src, dst, key):
        for root, _dirs, files in os.walk(external):
            seen.extend(os.path.join(root, f) for f in files)
        return real_seal(src, dst, key)

    monkeypatch.setattr(archive, "seal", spying_seal)
    with backup_app.app_context():
        audit.act_as(audit.cli_actor())
        backups.create(backup_app.appbuilder.session, to_dir=str(external))
        backup_app.appbuilder.session.remove()
    plaintext = [p for p in seen if p.endswith((".sqlite3", ".dump", ".zip"))]
    assert plaintext == [], f"unencrypted copies on the destination: {plaintext}"


# --- F7: an XLSX bomb is decompressed without any limit ------------------------------------

def test_an_xlsx_bomb_is_refused_before_it_is_read(db, tmp_path, monkeypatch):
    import zipfile

    from tests.ledger_import_files import write_xlsx

    plain = write_xlsx(tmp_path / "p.xlsx", [row(1, 氏名="BOMBMARK")])
    bomb = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b">BOMBMARK<", b">" + b"A" * 8_000_000 + b"<")
            out.writestr(info.filename, data, compress_type=zipfile.ZIP_DEFLATED)
    assert bomb.stat().st_size < 100_000
    # the limit scaled down: 8 MB of cell text from a file of a few KB is 100x the upload cap
    monkeypatch.setattr(ledger_import, "UPLOAD_MAX_BYTES", 80_000)
    with pytest.raises(ledger_import.ImportFileError):
        ledger_import.import_ledger(db, str(bomb), dry_run=True)


# --- B4: the system administrator's home page fails when BACKUP_DIR cannot be listed -------

def test_the_home_page_survives_an_unreadable_backup_dir(login_as, app, tmp_path):
    from app import settings

    not_a_folder = tmp_path / "backups"
    not_a_folder.write_text("a file where the share should be mounted")
    settings.configure(app, BACKUP_DIR=str(not_a_folder))
    client = login_as("sysadmin")
    page = client.get("/")
    assert page.status_code == 200
    assert "バックアップの保存先を読めません" in page.get_data(as_text=True)
