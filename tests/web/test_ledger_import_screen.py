"""既存データ取込 screen: upload, check (preview and report), options, import, downloads;
管理者 only (tests/web/test_roles.py has the matrix)."""
from __future__ import annotations

import io
import os
import time

import pytest

from sqlalchemy import func, select

from app.models.audit import AuditLog
from app.models.card import Card
from app.models.stored_file import StoredFile
from tests.ledger_import_files import csv_text, row, write_xlsx


def upload(client, data: bytes, name="ledger.csv", mapping: bytes | None = None):
    form = {"file": (io.BytesIO(data), name)}
    if mapping is not None:
        form["mapping"] = (io.BytesIO(mapping), "mapping.toml")
    return client.post("/ledger-import/upload", data=form, content_type="multipart/form-data")


def card_count(db):
    return db.execute(select(func.count()).select_from(Card)).scalar()


def test_upload_check_preview_then_import(login_as, app, db):
    manager = login_as("manager")
    page = manager.get("/ledger-import/")
    assert page.status_code == 200
    assert "既存データ取込" in page.get_data(as_text=True)
    assert "製造管理番号" in page.get_data(as_text=True)  # the synonyms table
    data = csv_text([row(1), row(2), row(3, 生年月日="H31.5.1")]).encode("cp932")
    response = upload(manager, data)
    assert response.status_code == 302
    job_url = response.headers["Location"]
    page = manager.get(job_url).get_data(as_text=True)
    assert "確認しました" in page
    assert "髙橋　﨑子" in page and "タカハシ　サキコ" in page  # preview as mapped
    assert "その日付には平成は終わっています。" in page and "H31.5.1" in page
    assert card_count(db) == 0  # the check wrote nothing
    status = manager.get(job_url + "/status").get_json()
    assert status["finished"] and status["state"] == "checked"
    # without skipping bad rows: nothing imported
    done = manager.post(job_url + "/import", data={})
    assert done.status_code == 302
    page = manager.get(job_url).get_data(as_text=True)
    assert "何も取り込んでいません。" in page
    assert card_count(db) == 0


def test_skip_invalid_imports_the_good_rows_with_the_manager_as_actor(login_as, app, db,
                                                                      instance_dir):
    manager = login_as("manager", username="kanri")
    data = csv_text([row(1), row(2, 交付状況="謎")]).encode("utf-8-sig")
    job_url = upload(manager, data).headers["Location"]
    manager.post(job_url + "/import", data={"skip_invalid": "1"})
    page = manager.get(job_url).get_data(as_text=True)
    assert "取り込みました: 新しいカード 1 件、更新 0 件。" in page
    assert card_count(db) == 1
    record = db.execute(select(AuditLog).where(AuditLog.action == "import")).scalar_one()
    assert record.username == "kanri"
    token = job_url.rstrip("/").split("/")[-1]
    db.rollback()  # a fresh read
    files = sorted(db.execute(select(StoredFile.token).where(
        StoredFile.kind == "ledger_import")).scalars())
    assert files == [f"{token}.problems", f"{token}.rejects"]  # the upload removed
    rejects = manager.post(job_url + "/download/rejects")
    assert rejects.status_code == 200
    assert rejects.data.startswith(b"\xef\xbb\xbf") and "謎".encode() in rejects.data
    report = manager.post(job_url + "/download/problems")
    assert "状態の言葉がわかりません" in report.data.decode("utf-8-sig")
    # chosen as an encrypted ZIP: the page that shows the password once
    zipped = manager.post(job_url + "/download/rejects", data={"encrypt": "1"})
    assert zipped.status_code == 200 and zipped.headers["Cache-Control"] == "no-store"
    assert "謎".encode() not in zipped.data
    # a second click on import starts nothing
    again = manager.post(job_url + "/import", data={"skip_invalid": "1"}, follow_redirects=True)
    assert "取込済み" in again.get_data(as_text=True)
    assert card_count(db) == 1


def test_xlsx_and_a_mapping_file_through_the_screen(login_as, app, db, tmp_path):
    manager = login_as("manager")
    path = write_xlsx(tmp_path / "l.xlsx", [["A", "1", "山田太郎", "ヤマダタロウ", "S55.3.1"]],
                      header=["Kubun", "ID", "Kanji", "Kana", "Birth"])
    with open(path, "rb") as handle:
        data = handle.read()
    mapping = ('[columns]\n"Kubun" = ""\n"ID" = "application_id"\n"Kanji" = "name"\n'
               '"Kana" = "name_kana"\n"Birth" = "birth_date"\n[defaults]\nstate = "received"\n')
    job_url = upload(manager, data, name="l.xlsx", mapping=mapping.encode()).headers["Location"]
    page = manager.get(job_url).get_data(as_text=True)
    assert "申請書IDは23桁の数字で入力してください。" in page


def test_wrong_files_are_refused_with_a_message(login_as, app, db):
    manager = login_as("manager")
    response = upload(manager, b"x", name="ledger.pdf")
    assert response.status_code == 302
    page = manager.get("/ledger-import/").get_data(as_text=True)
    assert "CSV か XLSX のファイルを選んでください。" in page
    upload(manager, b"a", name="ledger.csv", mapping=b'[columns]\n"X" = "nope"\n')
    page = manager.get("/ledger-import/").get_data(as_text=True)
    assert "対応表ファイルで列 X に指定された項目 nope はありません" in page


def test_another_persons_job_is_not_found(login_as, app, db, users):
    from tests.conftest import login

    manager = login_as("manager", username="first")
    job_url = upload(manager, csv_text([row(1)]).encode()).headers["Location"]
    other = app.test_client()
    user = users.create("manager", username="second")
    login(other, user.username, users.password)
    assert other.get(job_url).status_code == 404
    assert other.post(job_url + "/import").status_code == 404


@pytest.mark.own_app
def test_check_and_import_in_a_real_thread_with_progress(app, db, users):
    from app import settings
    from tests.conftest import login

    settings.configure(app, EXPORT_JOBS_INLINE=False)
    client = app.test_client()
    user = users.create("manager", username="kanri_thread")
    login(client, user.username, users.password)
    data = csv_text([row(i) for i in range(1, 3001)]).encode("cp932")
    job_url = upload(client, data).headers["Location"]

    def wait(expected):
        deadline = time.monotonic() + 60
        states = []
        while time.monotonic() < deadline:
            status = client.get(job_url + "/status").get_json()
            states.append(status["state"])
            assert 0 <= status["percent"] <= 100
            if status["finished"]:
                break
            time.sleep(0.05)
        assert states[-1] == expected, states
        return states

    wait("checked")
    assert card_count(db) == 0
    client.post(job_url + "/import", data={})
    wait("done")
    db.expire_all()
    assert card_count(db) == 3000
    record = db.execute(select(AuditLog).where(AuditLog.action == "import")).scalar_one()
    assert record.username == "kanri_thread"


def test_any_server_shows_imports_and_serves_the_reports(login_as, app, db, users,
                                                          make_app, tmp_path):
    """Issue 16 §1: the job and its files are in the database: uploaded and checked on
    server A, seen and imported on server B (its own instance folder), the rejected rows
    downloaded on A; no file is left in either instance folder."""
    from tests.conftest import login

    other = make_app(INSTANCE_DIR=str(tmp_path / "server_b"),
                     SECRET_KEY=app.config["SECRET_KEY"],
                     AUDIT_HMAC_KEY=app.config["AUDIT_HMAC_KEY"])
    server_a = login_as("manager", username="kanri_ab")
    server_b = other.test_client()
    login(server_b, "kanri_ab", users.password)
    data = csv_text([row(1), row(2, 交付状況="謎")]).encode("utf-8-sig")
    job_url = upload(server_a, data).headers["Location"]
    assert server_b.get(job_url + "/status").get_json()["state"] == "checked"
    assert "ledger.csv" in server_b.get("/ledger-import/").get_data(as_text=True)
    server_b.post(job_url + "/import", data={"skip_invalid": "1"})
    assert server_a.get(job_url + "/status").get_json()["state"] == "done"
    again = server_a.post(job_url + "/import", data={"skip_invalid": "1"},
                          follow_redirects=True)
    assert "取込済み" in again.get_data(as_text=True)
    assert card_count(db) == 1
    rejects = server_a.post(job_url + "/download/rejects")
    assert rejects.status_code == 200 and "謎".encode() in rejects.data
    for folder in (app.instance_path, other.instance_path):
        path = os.path.join(folder, "ledger-imports")
        assert not os.path.exists(path) or os.listdir(path) == []
    server_a.post(job_url + "/discard")
    assert server_b.get(job_url + "/status").status_code == 404
    db.rollback()
    assert db.execute(select(func.count()).select_from(StoredFile)).scalar() == 0
