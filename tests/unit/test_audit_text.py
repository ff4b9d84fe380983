"""Issue 12 §4: each kind of audit record reads as a Japanese sentence (who, what, where);
rendering reads only, so the hash chain still verifies afterwards."""
import json
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from app.models.audit import AuditLog
from app.services import audit, audit_text
from tests.factories import make_card, make_storage

WHEN = datetime(2026, 12, 1, 1, 0, tzinfo=timezone.utc)


def _row(action, table=None, target_id=None, changes=None, username="system", user_id=None,
         ip=None, id=1):
    return AuditLog(id=id, created_at=WHEN, user_id=user_id, username=username, ip=ip,
                    action=action, target_table=table, target_id=target_id,
                    changes=None if changes is None else json.dumps(changes, ensure_ascii=False),
                    prev_hash=audit.GENESIS, row_hash="x")


@pytest.fixture
def ja(app):
    with app.test_request_context(headers={"Accept-Language": "ja"}):
        yield


def _line(row, **targets):
    return audit_text.render(row, audit_text.Targets(**targets))


def test_card_state_change_names_the_card_and_both_states(ja):
    row = _row("update", "card", "12", {"state": {"old": "received", "new": "discarded"},
                                        "discarded_at": {"old": None, "new": "x"}})
    line = _line(row, cards={"12": "12345678901234567890123"})
    assert line.what == "カード 申請書ID 12345678901234567890123 を 納品 → 廃棄"
    assert line.kind == "カード"


def test_booking_moved_reads_old_and_new_time_in_japan_time(ja):
    row = _row("update", "reservation", "7", {
        "starts_at": {"old": "2026-12-01T01:00:00+00:00", "new": "2026-12-03T05:00:00+00:00"},
        "slot_id": {"old": 1, "new": 2}})
    line = _line(row, bookings={"7": "J9PRT6H5"})
    assert line.what == "予約 J9PRT6H5 を変更 12/1 10:00 → 12/3 14:00"


def test_booking_state_uses_the_booking_vocabulary(ja):
    row = _row("update", "reservation", "7", {"state": {"old": "booked", "new": "cancelled"}})
    assert _line(row, bookings={"7": "J9PRT6H5"}).what.startswith("予約 J9PRT6H5 を ")
    assert "cancelled" not in _line(row, bookings={"7": "J9PRT6H5"}).what


def test_user_created_and_field_changes(ja):
    created = _row("create", "ab_user", "3", {"username": "tanaka", "password": "********"})
    assert _line(created).what == "ユーザー tanaka を登録"
    changed = _row("update", "card", "5", {"address": {"old": "a", "new": "b"},
                                           "_endpoint": "CardModelView.edit"},
                   username="yamada", user_id=3)
    line = _line(changed, cards={"5": "00000000000000000000005"})
    assert line.what == "カード 申請書ID 00000000000000000000005 を変更（住所）"
    assert line.where == "画面"


def test_card_history_record_reads_its_states(ja):
    row = _row("create", "card_event", "9", {"card_id": 5, "from_state": "received",
                                             "to_state": "setup"})
    line = _line(row, cards={"5": "00000000000000000000005"})
    assert line.what == "カード 申請書ID 00000000000000000000005 の履歴 納品 → 交付前設定済"


@pytest.mark.parametrize("row, who, where", [
    (_row("update", "card", "1", {"notes": {"old": "", "new": "x"}}, username="cli:root"),
     "コマンド操作（root）", "コマンド"),
    (_row("update", "reservation", "1", {"state": {"old": "booked", "new": "no_show"}}),
     "自動処理", "自動処理"),
    (_row("create", "reservation", "1", {"number": "J9PRT6H5"}, username="住民:J9PRT6H5"),
     "住民（Web） 予約番号 J9PRT6H5", "住民向け予約サイト"),
    (_row("login_failed", None, None, {"reason": "rate limited"}, username="system:sign-in"),
     "自動処理（ログイン制限）", "自動処理"),
    (_row("view", "card", None, {"via": "api", "what": "list", "count": 3},
          username="ghost", user_id=4), "ghost", "API"),
])
def test_who_and_where_by_kind_of_actor(ja, row, who, where):
    line = _line(row)
    assert (line.who, line.where) == (who, where)


def test_a_nameless_record_of_an_old_version_is_never_shown_as_its_placeholder(ja):
    placeholder = "anon" + "ymous"  # what old versions wrote
    slot = _row("create", "slot", "4", {"starts_at": "2026-12-01T01:00:00+00:00"},
                username=placeholder)
    line = _line(slot)
    assert line.who == "自動処理（時間枠の作成）" and line.automatic
    assert line.what == "時間枠 12/1 10:00 を登録"
    other = _line(_row("update", "card", "1", {"notes": {"old": "", "new": "x"}},
                       username=placeholder))
    assert other.who == "記録なし（旧記録）" and placeholder not in other.what


def test_sign_in_events(ja):
    assert _line(_row("login", "ab_user", "2", None, username="x", user_id=2)).what == "ログイン"
    failed = _row("login_failed", "ab_user", "2", {"username": "tanaka",
                                                    "reason": "wrong password"}, username="tanaka")
    assert _line(failed).what == "tanaka でログイン失敗（パスワード誤り）"
    # the user ID as typed, never read as a command, a job or a resident
    assert _line(failed).who == "入力されたID：tanaka"
    locked = _row("account_locked", "ab_user", "2",
                  {"username": "tanaka", "until": "2026-12-01T01:30:00+00:00"})
    assert _line(locked, users={"2": "tanaka"}).what == "ユーザー tanaka をロック（12/1 10:30 まで）"
    idle = _row("logout", "ab_user", "2", {"reason": "idle timeout"}, username="x", user_id=2)
    assert _line(idle).what == "ログアウト（一定時間操作なし）"


def test_prints_and_exports_name_what_left_the_system(ja):
    printed = _row("print", "reservation", None, {"what": "day list", "rows": 12})
    assert _line(printed).what == "予約 当日の予約一覧 を印刷（12件）"
    exported = _row("export", "audit_log", None, {"rows": 3, "filters": {}})
    assert _line(exported).what == "操作ログ を出力（3件）"


@pytest.mark.parametrize("row, what, kind", [
    (_row(audit.ACTION_IMPORT, "card", None, {
        "file": "台帳.csv", "sha256": "ab" * 32, "rows": 1300, "created": 1234, "updated": 5,
        "unchanged": 61, "rejected": 0}),
     "既存データを取り込みました（台帳.csv、新規 1,234件、更新 5件）", "カード"),
    (_row(audit.ACTION_IMPORT, "migration-export", None, {
        "file": "export.zip", "rows": 45678, "encrypted": True}),
     "移行用データから全データを取り込みました（export.zip、45,678件）（暗号化ZIP）", "移行用データ"),
    (_row(audit.ACTION_EXPORT, "migration-export", None, {
        "file": "export.zip", "rows": 45678, "decrypted": False, "encrypted": False}),
     "全データを移行用に出力しました（45,678件）", "移行用データ"),
    (_row(audit.ACTION_EXPORT, "migration-export", None, {
        "file": "export.zip", "rows": 12, "decrypted": True, "encrypted": True}),
     "全データを移行用に出力しました（12件）（書類は復号済み）（暗号化ZIP）", "移行用データ"),
    (_row(audit.ACTION_EXPORT, "card", None, {
        "what": "postcard print data", "rows": 3, "encrypted": True}),
     "カード 交付通知書の印刷データ を出力（3件）（暗号化ZIP）", "カード"),
    (_row(audit.ACTION_BACKUP, None, None, {"file": "mnc-20261201.mncbak", "bytes": 10}),
     "バックアップを作成しました（mnc-20261201.mncbak）", ""),
    (_row(audit.ACTION_BACKUP_VERIFY, None, None, {"file": "mnc-20261201.mncbak"}),
     "バックアップを検証しました（mnc-20261201.mncbak）", ""),
    (_row(audit.ACTION_RESTORE, None, None, {"file": "mnc-20261201.mncbak"}),
     "バックアップから復元しました（mnc-20261201.mncbak）", ""),
    (_row(audit.ACTION_BACKUP_PRUNE, None, None, {"removed": ["a", "b", "c"], "kept": 9}),
     "古いバックアップを整理しました（3件）", ""),
])
def test_data_in_and_out_read_as_sentences(ja, row, what, kind):
    line = _line(row)
    assert line.what == what
    assert line.kind == kind


def test_the_new_actions_keep_their_stored_words():
    assert (audit.ACTION_IMPORT, audit.ACTION_BACKUP, audit.ACTION_BACKUP_VERIFY,
            audit.ACTION_RESTORE, audit.ACTION_BACKUP_PRUNE) == (
        "import", "backup", "backup_verify", "restore", "backup_prune")


def test_staff_names_come_from_the_accounts_and_render_all_keeps_the_chain(app, db, users,
                                                                          clock):
    user = users.create("clerk", username="madoguchi_t")
    make_storage(db)
    card = make_card(db)
    with app.test_request_context(headers={"Accept-Language": "ja"}):
        audit.act_as("cli:root")
        names = audit_text.actor_names(db, ["madoguchi_t", "cli:root", "住民:J9PRT6H5",
                                            "system", "job:remind"])
        assert names == {"madoguchi_t": "試験 太郎", "cli:root": "コマンド操作（root）",
                         "住民:J9PRT6H5": "住民（Web） 予約番号 J9PRT6H5",
                         "system": "自動処理", "job:remind": "自動処理（remind）"}
        before = db.execute(select(AuditLog.id, AuditLog.row_hash, AuditLog.changes)).all()
        count, rows = audit_text.search(db, audit_text.Criteria(), 0, 50)
        lines = audit_text.render_all(db, rows)
        assert count == len(before) and lines
        card_line = next(x for x in lines if x.target_table == "card" and x.action == "create")
        assert card_line.what == f"カード 申請書ID {card.application_id} を登録"
        user_line = next(x for x in lines if x.target_table == "ab_user")
        assert user_line.what == "ユーザー madoguchi_t を登録"
        after = db.execute(select(AuditLog.id, AuditLog.row_hash, AuditLog.changes)).all()
        assert after == before  # rendering wrote nothing
        assert audit.verify_chain(db).ok
    assert user.id


def test_search_filters_and_hides_generated_slots(app, db, users):
    users.create("clerk", username="kensaku_t")
    with app.app_context():
        audit.act_as("system")
        audit.record_event("create", "slot", 99, {"starts_at": "2026-12-01T01:00:00+00:00"})
        audit.act_as("cli:root")
        audit.record_event("print", "card", None, {"what": "discard register", "rows": 0})
    plain = audit_text.Criteria()
    _count, rows = audit_text.search(db, plain)
    assert not [r for r in rows if r.target_table == "slot"]
    _count, rows = audit_text.search(db, audit_text.Criteria(generated=True))
    assert [r for r in rows if r.target_table == "slot"]
    _count, rows = audit_text.search(db, audit_text.Criteria(person=audit_text.PEOPLE_COMMANDS))
    assert [r.username for r in rows] == ["cli:root"]
    _count, rows = audit_text.search(db, audit_text.Criteria(kind="ab_user"))
    assert rows and {r.target_table for r in rows} == {"ab_user"}
    _count, rows = audit_text.search(db, audit_text.Criteria(person=audit_text.PEOPLE_AUTOMATIC))
    assert rows and {r.username for r in rows} == {"system"}


def test_an_office_setting_change_names_the_setting_not_its_key(ja):
    line = _line(_row(audit.ACTION_UPDATE, "site_setting", None,
                      {"key": "export_policy", "encryption_required": [False, True]}))
    assert "出力の暗号化" in line.what and "key" not in line.what, line.what


def test_the_csv_export_is_the_service_s_rule_at_every_entry_point(app, db, ja):
    """The CSV of the audit list is made and refused in the service: a plain file while
    encryption is required is refused and leaves no record; the file's header is Japanese,
    its rows oldest first with the sentence, and the export is audited with its filters."""
    from app.services import export_policy
    from app.services.actors import SYSTEM
    from app.services.export_policy import EncryptionRequiredError

    audit.act_as("kanri_csv")
    audit.record_event(audit.ACTION_LOGIN, "ab_user", None, {})
    current = export_policy.policy(db)
    export_policy.set_policy(db, encryption_required=True, expected_version=current.version,
                             actor=SYSTEM)
    before = db.execute(select(AuditLog.id)).scalars().all()
    with pytest.raises(EncryptionRequiredError):
        audit_text.export_csv(db, audit_text.Criteria(), encoding="utf-8-sig",
                              encrypted=False, filters={})
    assert db.execute(select(AuditLog.id)).scalars().all() == before
    made = audit_text.export_csv(db, audit_text.Criteria(), encoding="cp932", encrypted=True,
                                 filters={"who": "kanri_csv"}, note={"encrypted": True})
    text = made.data.decode("cp932").splitlines()
    assert text[0] == ("No.,日時,ユーザー,IPアドレス,操作,対象テーブル,対象ID,内容,操作者,ロール,"
                       "操作場所,操作内容")
    assert made.rows == len(before) and made.filename.startswith("audit_log_")
    record = db.execute(select(AuditLog).order_by(AuditLog.id.desc())).scalars().first()
    assert record.action == audit.ACTION_EXPORT and json.loads(record.changes) == {
        "rows": made.rows, "filters": {"who": "kanri_csv"}, "encoding": "cp932",
        "encrypted": True}
