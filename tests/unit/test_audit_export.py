"""`flask audit export` (issue 16 §4): the records after --since in id order as JSON lines,
every field and hash, so a receiver holding the key recomputes the chain (docs/audit.md);
read in pages; the export itself is recorded."""
import hashlib
import hmac
import json
import os

from sqlalchemy import select

from app.models.audit import AuditLog
from app.services import audit
from tests.factories import make_notice

FIELDS = ["id", "created_at", "user_id", "username", "ip", "action", "target_table",
          "target_id", "changes", "prev_hash", "row_hash"]


def _ids(db):
    db.expire_all()
    return list(db.execute(select(AuditLog.id).order_by(AuditLog.id)).scalars())


def _export(app, *args):
    result = app.test_cli_runner().invoke(args=["audit", "export", *args])
    assert result.exit_code == 0, result.output
    return result


def verify_as_a_receiver(lines: list[dict], key: bytes, prev_hash: str) -> None:
    """What docs/audit.md tells a SIEM to do, written here from the documentation."""
    for line in lines:
        assert line["prev_hash"] == prev_hash, line["id"]
        content = json.dumps([line["prev_hash"], line["created_at"], line["user_id"],
                              line["username"], line["ip"], line["action"],
                              line["target_table"], line["target_id"], line["changes"]],
                             ensure_ascii=False, separators=(",", ":"))
        assert hmac.new(key, content.encode("utf-8"), hashlib.sha256).hexdigest() == \
            line["row_hash"], line["id"]
        prev_hash = line["row_hash"]


def test_export_gives_exactly_the_records_after_the_id_each_verifiable(app, db, clock):
    for index in range(5):
        make_notice(db, clock(), title=f"お知らせ{index}「引用」\n改行")
    ids = _ids(db)
    since = ids[1]
    result = _export(app, "--since", str(since))
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["id"] for line in lines] == [i for i in ids if i > since]
    assert all(list(line) == FIELDS for line in lines)
    stored = db.execute(select(AuditLog).where(AuditLog.id == since)).scalar_one()
    verify_as_a_receiver(lines, app.config["AUDIT_HMAC_KEY"].encode("ascii"), stored.row_hash)
    assert "お知らせ" in lines[0]["changes"]  # the stored JSON text, as hashed


def test_a_changed_line_fails_the_receivers_check(app, db, clock):
    make_notice(db, clock(), title="元の件名")
    lines = [json.loads(line) for line in _export(app).stdout.splitlines()]
    lines[0]["changes"] = lines[0]["changes"].replace("元の件名", "偽の件名")
    try:
        verify_as_a_receiver(lines, app.config["AUDIT_HMAC_KEY"].encode("ascii"),
                             audit.GENESIS)
    except AssertionError:
        return
    raise AssertionError("a changed record passed the check")


def test_the_export_is_recorded_and_not_part_of_its_own_range(app, db, clock):
    make_notice(db, clock(), title="n")
    before = _ids(db)
    lines = _export(app, "--since", "0").stdout.splitlines()
    assert [json.loads(line)["id"] for line in lines] == before
    db.expire_all()
    record = db.execute(select(AuditLog).order_by(AuditLog.id.desc()).limit(1)).scalar_one()
    assert record.id not in before
    assert record.action == audit.ACTION_EXPORT and record.target_table == "audit_log"
    assert record.username.startswith("cli:")
    detail = json.loads(record.changes)
    assert detail["since_id"] == 0 and detail["last_id"] == before[-1]
    assert detail["records"] == len(before) and detail["to"] == "stdout"
    assert audit.verify_chain(db).ok


def test_export_to_a_file_is_private(app, db, clock, tmp_path):
    make_notice(db, clock(), title="n")
    target = tmp_path / "audit.jsonl"
    result = _export(app, "--to", str(target))
    assert result.stdout == ""
    assert os.stat(target).st_mode & 0o777 == 0o600
    assert len(target.read_text(encoding="utf-8").splitlines()) == len(_ids(db)) - 1


def test_nothing_after_the_last_id_is_an_empty_export(app, db, clock):
    make_notice(db, clock(), title="n")
    last = _ids(db)[-1]
    assert _export(app, "--since", str(last)).stdout == ""


def test_a_negative_since_is_refused(app):
    result = app.test_cli_runner().invoke(args=["audit", "export", "--since", "-1"])
    assert result.exit_code != 0


def test_pages_give_the_same_records_as_one_read(app, db, clock):
    for index in range(7):
        make_notice(db, clock(), title=f"n{index}")
    whole = list(audit.export_records(db, 0))
    paged = list(audit.export_records(db, 0, page=2))
    assert paged == whole and len(whole) == len(_ids(db))
    upto = whole[3]["id"]
    assert [r["id"] for r in audit.export_records(db, whole[0]["id"], upto, page=2)] == \
        [r["id"] for r in whole[1:4]]
