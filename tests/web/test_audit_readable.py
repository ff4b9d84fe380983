"""Issue 12 §4 and §2: the audit list reads as Japanese sentences (who, what, where), with
filters by person, kind, record and period and the stored record behind a link; 受付者
and the card history name the person, not the user ID."""
import re

import pytest
from sqlalchemy import select

from app.models.audit import AuditLog
from app.services import audit
from tests.conftest import DEFAULT_NOW, text_of
from tests.factories import make_card, make_staff_booking, make_storage

RAW_TABLES = ["card", "card_event", "reservation", "slot", "ab_user", "notice"]


def _visible(response) -> str:
    """What the list shows before anyone opens a record's <details>."""
    html = response.get_data(as_text=True)
    html = re.sub(r"<details.*?</details>", " ", html, flags=re.S)
    html = re.sub(r"<select.*?</select>", " ", html, flags=re.S)  # the filters' choices
    html = re.sub(r"<(script|style).*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _sentences(response) -> list[str]:
    html = response.get_data(as_text=True)
    return [re.sub(r"\s+", " ", s).strip() for s in
            re.findall(r'data-testid="audit-sentence">(.*?)</span>', html, flags=re.S)]


@pytest.fixture
def card_moved(app, db, users, client):
    """A clerk moved a card on the screen; a manager then reads the list."""
    from tests.conftest import login

    make_storage(db)
    card = make_card(db)
    clerk = users.create("clerk", username="madoguchi_r")
    other = app.test_client()
    login(other, "madoguchi_r", users.password)
    response = other.post(f"/cardmodelview/transition/{card.id}", data={"to": "setup"})
    assert response.status_code == 302
    return card, clerk


def test_the_list_reads_as_sentences_with_names(login_as, card_moved, db):
    card, _clerk = card_moved
    manager = login_as("manager", username="kanri_r")
    page = manager.get("/auditlogmodelview/list/")
    assert page.status_code == 200
    sentences = _sentences(page)
    assert f"カード 申請書ID {card.application_id} を 納品 → 交付前設定済" in sentences
    visible = _visible(page)
    assert "試験 太郎" in visible and "窓口職員" in visible and "画面" in visible
    for word in ["anonymous", "User Id", "received", "setup"]:
        assert word not in visible, word
    for table in RAW_TABLES:
        assert not re.search(rf"(?<![\w/]){table}(?![\w/])", visible), table
    assert "操作者" in visible and "操作内容" in visible and "操作場所" in visible
    assert "User Id" not in text_of(page)


def test_filters_by_person_kind_record_and_period(login_as, card_moved, db, users):
    card, clerk = card_moved
    manager = login_as("manager", username="kanri_f")
    mine = _sentences(manager.get("/auditlogmodelview/list/?person=madoguchi_r"))
    assert mine and all("ログイン" in s or card.application_id in s for s in mine)
    cards_only = db.execute(select(AuditLog).where(AuditLog.target_table == "card")).scalars()
    page = manager.get(f"/auditlogmodelview/list/?kind=card&record_id={card.id}")
    assert len(_sentences(page)) == len([r for r in cards_only if r.target_id == str(card.id)])
    assert all(card.application_id in s for s in _sentences(page))
    today = DEFAULT_NOW.date()  # the tests' clock
    assert _sentences(manager.get(f"/auditlogmodelview/list/?date_from={today.isoformat()}"
                                  f"&date_to={today.isoformat()}"))
    assert not _sentences(manager.get("/auditlogmodelview/list/?date_from=2001-01-01"
                                      "&date_to=2001-01-02"))
    bad = manager.get("/auditlogmodelview/list/?date_from=yesterday")
    assert bad.status_code == 200 and "YYYY-MM-DD" in text_of(bad)
    people = text_of(manager.get("/auditlogmodelview/list/"))
    assert "住民（Web）" in people and "コマンド操作" in people and "自動処理" in people


def test_generated_slots_are_hidden_unless_asked(app, login_as, db):
    with app.app_context():
        audit.act_as(audit.SYSTEM)
        audit.record_event("create", "slot", 4242, {"starts_at": "2026-12-01T01:00:00+00:00"})
    manager = login_as("manager", username="kanri_g")
    assert not any("時間枠" in s for s in _sentences(manager.get("/auditlogmodelview/list/")))
    shown = _sentences(manager.get("/auditlogmodelview/list/?generated=1"))
    assert "時間枠 12/1 10:00 を登録" in shown


def test_the_raw_record_is_behind_each_row_and_on_its_page(login_as, card_moved, db):
    card, _clerk = card_moved
    manager = login_as("manager", username="kanri_d")
    page = manager.get(f"/auditlogmodelview/list/?kind=card&record_id={card.id}")
    html = page.get_data(as_text=True)
    assert 'data-testid="audit-raw"' in html
    assert "&#34;state&#34;" in html or '"state"' in html  # the stored JSON, unopened
    record = db.execute(select(AuditLog).where(AuditLog.target_table == "card",
                                               AuditLog.action == "update")
                        ).scalars().first()
    assert f"/auditlogmodelview/show/{record.id}" in html
    shown = manager.get(f"/auditlogmodelview/show/{record.id}")
    assert shown.status_code == 200
    body = text_of(shown)
    assert "received" in body and "試験 太郎" in body and "User Id" not in body


def test_new_records_keep_where_they_were_made(card_moved, db):
    record = db.execute(select(AuditLog).where(AuditLog.target_table == "card",
                                               AuditLog.action == "update")
                        ).scalars().first()
    assert '"_endpoint": "CardModelView.transition"' in record.changes
    assert audit.verify_chain(db).ok


def test_checked_in_by_and_card_history_show_the_name(app, login_as, card_moved, db):
    card, _clerk = card_moved
    reservation = make_staff_booking(app, db)
    reservation.checked_in_by = "madoguchi_r"  # as the desk records it
    db.commit()
    manager = login_as("manager", username="kanri_h")
    shown = text_of(manager.get(f"/reservationmodelview/show/{reservation.id}"))
    assert "受付者 試験 太郎" in re.sub(r"\s+", " ", shown)
    assert "madoguchi_r" not in shown
    history = text_of(manager.get("/cardeventmodelview/list/"))
    assert "試験 太郎" in history and "madoguchi_r" not in history
    card_page = text_of(manager.get(f"/cardmodelview/show/{card.id}"))
    assert "試験 太郎" in card_page and "madoguchi_r" not in card_page


def test_a_typed_user_id_at_a_failed_sign_in_is_shown_as_typed(app, login_as, client):
    """Someone at the login page cannot pose as a command, a job or a resident: what they
    typed as the user ID is shown as typed, and the person filters leave it out."""
    for typed in ("cli:root", "system", "住民:J9PRT6H5"):
        client.post("/login/", data={"username": typed, "password": "wrong-password-1"})
    manager = login_as("manager", username="kanri_typed")
    page = manager.get("/auditlogmodelview/list/?action=login_failed")
    visible = _visible(page)
    for typed in ("cli:root", "system", "住民:J9PRT6H5"):
        assert f"入力されたID：{typed}" in visible, typed
    assert "コマンド操作" not in visible and "住民（Web）" not in visible
    for person in ("@commands", "@automatic", "@residents"):
        listed = _visible(manager.get(f"/auditlogmodelview/list/?action=login_failed"
                                      f"&person={person}"))
        assert "入力されたID" not in listed and "0件" in listed, person


@pytest.mark.parametrize("extra", ["encoding=x", "endpoint=x", "_method=x", "_anchor=x"])
def test_unknown_query_arguments_do_not_break_the_list(login_as, extra):
    manager = login_as("manager", username="kanri_args")
    page = manager.get(f"/auditlogmodelview/list/?{extra}&kind=card")
    assert page.status_code == 200
    assert "kind=card" in page.get_data(as_text=True)  # the filters still travel


def test_data_in_and_out_records_read_well_and_filter_by_action(app, login_as, db):
    """Issue 15: the ledger import, the migration export and import and the backups, each
    as a sentence, and each action offered by its label in the operation filter."""
    with app.app_context():
        audit.act_as("cli:root")
        audit.record_event(audit.ACTION_IMPORT, "card", None, {
            "file": "台帳.csv", "rows": 1240, "created": 1234, "updated": 0})
        audit.record_event(audit.ACTION_EXPORT, "migration-export", None, {
            "file": "all.zip", "rows": 2000, "decrypted": False, "encrypted": True})
        audit.record_event(audit.ACTION_IMPORT, "migration-export", None, {
            "file": "all.zip", "rows": 2000, "encrypted": True})
        audit.record_event(audit.ACTION_BACKUP, None, None, {"file": "b1.mncbak"})
        audit.record_event(audit.ACTION_BACKUP_VERIFY, None, None, {"file": "b1.mncbak"})
        audit.record_event(audit.ACTION_RESTORE, None, None, {"file": "b1.mncbak"})
        audit.record_event(audit.ACTION_BACKUP_PRUNE, None, None, {"removed": ["a", "b"]})
    manager = login_as("manager", username="kanri_data")
    page = manager.get("/auditlogmodelview/list/")
    sentences = _sentences(page)
    for expected in ["既存データを取り込みました（台帳.csv、新規 1,234件、更新 0件）",
                     "全データを移行用に出力しました（2,000件）（暗号化ZIP）",
                     "移行用データから全データを取り込みました（all.zip、2,000件）（暗号化ZIP）",
                     "バックアップを作成しました（b1.mncbak）",
                     "バックアップを検証しました（b1.mncbak）",
                     "バックアップから復元しました（b1.mncbak）",
                     "古いバックアップを整理しました（2件）"]:
        assert expected in sentences, expected
    html = page.get_data(as_text=True)
    for value, label in [("import", "取込"), ("backup", "バックアップ作成"),
                         ("backup_verify", "バックアップ検証"),
                         ("restore", "バックアップから復元"),
                         ("backup_prune", "古いバックアップの整理")]:
        assert f'<option value="{value}">{label}</option>' in html, value
    only = _sentences(manager.get("/auditlogmodelview/list/?action=backup_prune"))
    assert only == ["古いバックアップを整理しました（2件）"]
