"""The migration export wrapped in an AES-256 ZIP (issue 15 §4, §6): it opens with the right
password only, its archive inside verifies, it imports into a fresh database; the office's
policy refuses the plain export; the audit trail notes the encryption, never the password."""
from __future__ import annotations

import contextvars
import json
import os
import stat
import tempfile
import zipfile

import pyzipper
import pytest
from sqlalchemy import select

from app.models.audit import AuditLog
from app.services import archive, export_policy, migration_export
from app.services.actors import SYSTEM
from app.services.export_policy import EncryptionRequiredError
from app.services.protected_zip import ExportPasswordError
from tests.unit.test_migration_export import (  # noqa: F401  (fixtures)
    _counts, _export, _import, fresh_url, source, target)

PASSWORD = "Kd7p-Wq3z-Hm9x-Rt4v"


def _last(db) -> AuditLog:
    return db.execute(select(AuditLog).order_by(AuditLog.id.desc())).scalars().first()


def _require_encryption(db) -> None:
    """The 管理者 setting on (the source already holds a setting row, version 2)."""
    export_policy.set_policy(db, encryption_required=True, actor=SYSTEM,
                             expected_version=export_policy.policy(db).version)
    assert export_policy.policy(db).encryption_required


def _temp_leftovers() -> set[str]:
    return {name for name in os.listdir(tempfile.gettempdir())
            if name.startswith(("mnc-export-", "mnc-import-"))}


def test_encrypted_export_opens_only_with_its_password(app, source, tmp_path):
    before = _temp_leftovers()
    path = tmp_path / "enc.zip"
    report = _export(app, path, password=PASSWORD)
    assert report.encrypted and os.listdir(tmp_path) == ["enc.zip"]  # no plain copy beside
    assert _temp_leftovers() == before  # the private folder is gone
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with zipfile.ZipFile(path) as plain_view:  # every member encrypted (AES, method 99)
        infos = plain_view.infolist()
        assert [i.filename for i in infos] == [migration_export.INNER_NAME]
        assert all(i.flag_bits & 0x1 and i.compress_type == 99 for i in infos)
    with pyzipper.AESZipFile(path) as outer:
        outer.setpassword(PASSWORD.encode())
        (tmp_path / "inner.zip").write_bytes(outer.read(migration_export.INNER_NAME))
    with archive.ArchiveReader(str(tmp_path / "inner.zip")) as reader:
        assert reader.verified() and reader.kind == migration_export.KIND
        assert reader.manifest == report.manifest
    for wrong in (None, b"Kd7p-Wq3z-Hm9x-Rt4w"):
        with pyzipper.AESZipFile(path) as outer:
            if wrong:
                outer.setpassword(wrong)
            with pytest.raises(RuntimeError):
                outer.read(migration_export.INNER_NAME)


def test_export_audit_notes_encryption_never_the_password(app, source, tmp_path):
    report = _export(app, tmp_path / "enc.zip", password=PASSWORD)
    last = _last(source)
    detail = json.loads(last.changes)
    assert (last.action, last.target_table) == ("export", "migration-export")
    assert detail["encrypted"] is True and detail["sha256"] == report.sha256
    assert detail["sha256"] == archive.sha256_of(str(tmp_path / "enc.zip"))
    assert len(detail["archive_sha256"]) == 64 and detail["archive_sha256"] != report.sha256
    assert PASSWORD not in last.changes
    _export(app, tmp_path / "plain.zip")
    assert json.loads(_last(source).changes)["encrypted"] is False


def test_short_password_refused_and_nothing_written(app, source, tmp_path):
    count = source.execute(select(AuditLog.id)).all()
    with pytest.raises(ExportPasswordError):
        _export(app, tmp_path / "enc.zip", password="short")
    assert not os.listdir(tmp_path)
    assert source.execute(select(AuditLog.id)).all() == count


def test_policy_refuses_the_plain_export_and_writes_nothing(app, source, tmp_path):
    _require_encryption(source)
    count = len(source.execute(select(AuditLog.id)).all())
    before = _temp_leftovers()
    with pytest.raises(EncryptionRequiredError):
        _export(app, tmp_path / "plain.zip")
    assert not os.listdir(tmp_path) and _temp_leftovers() == before
    assert len(source.execute(select(AuditLog.id)).all()) == count
    report = _export(app, tmp_path / "enc.zip", password=PASSWORD)  # encrypted: allowed
    assert report.encrypted


def test_encrypted_export_imports_into_a_fresh_database(app, source, target, tmp_path):
    path = tmp_path / "enc.zip"
    first = _export(app, path, password=PASSWORD)
    empty = _counts(target)
    for password, words in ((None, "password"), ("Kd7p-Wq3z-Hm9x-XXXX", "wrong")):
        with pytest.raises(migration_export.MigrationError) as refused:
            _import(target, path, password=password)
        assert "暗号化" in str(refused.value.message) or "パスワード" in str(
            refused.value.message), words
        assert _counts(target) == empty
    imported = _import(target, path, password=PASSWORD)
    assert imported.rows == first.rows
    with target.app_context():
        last = _last(target.appbuilder.session)
        detail = json.loads(last.changes)
        assert (last.action, detail["encrypted"]) == ("import", True)
        assert detail["sha256"] == first.sha256 and PASSWORD not in last.changes
        target.appbuilder.session.rollback()


def test_command_line_encrypts_and_imports(app, source, target, tmp_path):
    path = str(tmp_path / "cli.zip")
    secret = tmp_path / "password.txt"
    secret.write_text(PASSWORD + "\n", encoding="utf-8")
    result = app.test_cli_runner().invoke(
        args=["data", "export", path, "--encrypt", "--password-file", str(secret)])
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output and "AES-256" in result.output
    assert migration_export.is_encrypted(path)
    # a generated password is shown once, and opens the file
    generated = str(tmp_path / "gen.zip")
    result = app.test_cli_runner().invoke(args=["data", "export", generated, "--encrypt"])
    assert result.exit_code == 0, result.output
    shown = result.output.split("password (shown once, keep it apart from the file): ")[1]
    shown = shown.strip()
    assert len(shown) == 19
    with pyzipper.AESZipFile(generated) as outer:
        outer.setpassword(shown.encode())
        assert outer.read(migration_export.INNER_NAME)[:2] == b"PK"
    # the policy: a plain export refused with exit 2 and a Japanese message
    _require_encryption(source)
    result = app.test_cli_runner().invoke(args=["data", "export", str(tmp_path / "p.zip")])
    assert result.exit_code == 2 and "暗号化" in result.output
    assert not (tmp_path / "p.zip").exists()

    def run(*extra):
        return contextvars.Context().run(lambda: target.test_cli_runner().invoke(
            args=["data", "import", path, *extra]))

    result = run()
    assert result.exit_code == 2 and "パスワード" in result.output
    result = run("--password-file", str(secret))
    assert result.exit_code == 0, result.output
    assert "audit chain intact" in result.output
