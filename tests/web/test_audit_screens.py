"""The audit list: search, CSV export (itself audited), integrity check, detail views."""
import csv
import io

from sqlalchemy import select, text

from app.models.audit import AuditLog
from tests.conftest import text_of
from tests.factories import make_notice


def test_list_searches_by_user_and_action(login_as, users):
    other = users.app.test_client()
    users.create("clerk", username="kensaku1")
    from tests.conftest import login

    login(other, "kensaku1", "Wrongpass2026x")
    manager = login_as("manager", username="kanri_a")
    page = manager.get("/auditlogmodelview/list/?_flt_0_username=kensaku1")
    body = text_of(page)
    assert "ログイン失敗 (login_failed)" in body
    assert "kensaku1" in body
    assert "kanri_a" not in body  # the manager's own sign-in is filtered out (the menu shows
    # the name, not the user ID)
    filtered = text_of(manager.get("/auditlogmodelview/list/?_flt_0_action=login_failed"))
    assert "kensaku1" in filtered


def test_export_is_excel_csv_and_is_itself_audited(login_as, db, clock):
    make_notice(db, clock(), title="出力対象")
    manager = login_as("manager", username="kanri_b")
    response = manager.get("/auditlogmodelview/export/?_flt_0_target_table=notice")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    raw = response.data
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads UTF-8
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][0] == "No." and rows[0][1] == "日時"
    assert len(rows) == 2 and "出力対象" in rows[1][7]
    export = db.execute(select(AuditLog).where(AuditLog.action == "export")).scalar_one()
    assert export.username == "kanri_b" and '"rows": 1' in export.changes


def test_export_in_shift_jis(login_as, db, clock):
    make_notice(db, clock(), title="漢字の件名")
    response = login_as("manager").get("/auditlogmodelview/export/?encoding=cp932")
    assert "漢字の件名" in response.data.decode("cp932")


def test_detail_page_of_a_person_is_audited(login_as, users, db):
    target = users.create("viewer", username="mirareru")
    admin = login_as("sysadmin", username="root_v")
    assert admin.get(f"/users/show/{target.id}").status_code == 200
    row = db.execute(select(AuditLog).where(AuditLog.action == "view")).scalar_one()
    assert row.username == "root_v" and row.target_table == "ab_user"
    assert row.target_id == str(target.id)


def test_integrity_page_reports_tampering(login_as, db, clock):
    make_notice(db, clock())
    admin = login_as("sysadmin")
    assert "改ざんされていません" in text_of(admin.get("/auditlogmodelview/verify/"))
    first = db.execute(select(AuditLog.id).order_by(AuditLog.id)).scalars().first()
    db.execute(text("UPDATE audit_log SET action = 'view' WHERE id = :id"), {"id": first})
    db.commit()
    page = text_of(admin.get("/auditlogmodelview/verify/"))
    assert f"No. {first} で改ざんを検出しました" in page


def test_no_screen_changes_audit_records(login_as, db):
    admin = login_as("sysadmin")
    before = db.execute(select(AuditLog.id, AuditLog.row_hash)).all()
    record = before[-1][0]
    admin.post(f"/auditlogmodelview/delete/{record}")
    admin.post(f"/auditlogmodelview/edit/{record}", data={"action": "x"})
    admin.post("/auditlogmodelview/add", data={"action": "x", "username": "x"})
    after = db.execute(select(AuditLog.id, AuditLog.row_hash)).all()
    assert after[: len(before)] == before
