"""Notices: staff write them, the home page and /reserve/ show the current ones."""
import json

from sqlalchemy import select

from app.models.audit import AuditLog
from app.models.notice import Notice
from tests.conftest import text_of


def _form(**overrides):
    data = {"title": "窓口混雑のお知らせ", "body": "月曜午前は混み合います。", "audience": "both",
            "importance": "1", "starts_at": "2026-12-01 09:00:00", "ends_at": "2026-12-31 17:00:00"}
    data.update(overrides)
    return data


def test_manager_creates_a_notice_shown_to_staff_and_residents(login_as, client, db):
    staff = login_as("manager", username="kanri_t")
    response = staff.post("/noticemodelview/add", data=_form(), follow_redirects=True)
    assert response.status_code == 200
    notice = db.execute(select(Notice)).scalar_one()
    assert notice.importance == 1 and notice.audience == "both"
    assert "窓口混雑のお知らせ" in text_of(staff.get("/"))
    assert "窓口混雑のお知らせ" in text_of(staff.application.test_client().get("/reserve/"))
    row = db.execute(select(AuditLog).where(AuditLog.target_table == "notice")).scalar_one()
    assert row.action == "create" and row.username == "kanri_t"
    assert json.loads(row.changes)["title"] == "窓口混雑のお知らせ"


def test_end_before_start_is_refused_in_japanese_and_saves_nothing(login_as, db):
    staff = login_as("manager")
    response = staff.post("/noticemodelview/add",
                          data=_form(ends_at="2026-11-30 09:00:00"), follow_redirects=True)
    assert "終了は開始より後の日時にしてください" in text_of(response)
    assert db.execute(select(Notice)).first() is None


def test_title_is_required(login_as, db):
    staff = login_as("manager")
    response = staff.post("/noticemodelview/add", data=_form(title=""), follow_redirects=True)
    assert "必須" in text_of(response) and "This field is required" not in text_of(response)
    assert db.execute(select(Notice)).first() is None


def test_edit_records_old_and_new(login_as, db):
    staff = login_as("manager")
    staff.post("/noticemodelview/add", data=_form())
    notice = db.execute(select(Notice)).scalar_one()
    staff.post(f"/noticemodelview/edit/{notice.id}", data=_form(title="件名を変更"))
    row = db.execute(select(AuditLog).where(AuditLog.action == "update",
                                            AuditLog.target_table == "notice")).scalar_one()
    assert json.loads(row.changes)["title"] == {"old": "窓口混雑のお知らせ", "new": "件名を変更"}


def test_staff_only_notice_is_not_public(login_as, client):
    staff = login_as("manager")
    staff.post("/noticemodelview/add", data=_form(title="職員のみ", audience="staff"))
    assert "職員のみ" in text_of(staff.get("/"))
    assert "職員のみ" not in text_of(client.get("/reserve/"))


def test_list_is_japanese(login_as):
    page = text_of(login_as("viewer").get("/noticemodelview/list/"))
    assert "お知らせ" in page and "掲載開始" in page
