"""Encrypted exports (issue 15 §4, S2): every export of the product can leave as an AES-256
ZIP that opens with the right password (read back with pyzipper, compared with the plain
export) and not without it; a generated password is shown once; the 管理者's setting makes
encryption mandatory for exports with personal data and the services refuse the plain file
at every entry point, writing nothing; the audit record says encrypted true/false and never
holds the password; a GET writes nothing but its audit record."""
import csv
import io
import json
import os
import re

import openpyxl
import pytest
import pyzipper
from sqlalchemy import select

from app.models.audit import AuditLog
from app.models.setting import SiteSetting
from app.services import export_policy, exports, protected_zip
from app.services.cards import SYSTEM
from app.services.export_policy import EncryptionRequiredError
from tests.conftest import login, text_of
from tests.factories import make_card, make_storage
from tests.web.test_fees import _pay, reissue  # noqa: F401 - fixture
from tests.web.test_statistics import NOVEMBER, history  # noqa: F401 - fixture

TYPED = "kochira-no-himitsu-2026"
REQUIRED_MESSAGE = "暗号化ZIPでのみ出力できます"
EXTRACTION_FORM = {"subject": "cards", "col": ["application_id", "name", "postal_code"],
                   "pos_application_id": "1", "pos_name": "2", "pos_postal_code": "3"}
GENERATE = {"encrypt": "1", "password_mode": "generate"}
TYPE_IT = {"encrypt": "1", "password_mode": "typed", "zip_password": TYPED}


def require_encryption(db, on: bool = True):
    current = export_policy.policy(db)
    export_policy.set_policy(db, encryption_required=on, expected_version=current.version,
                             actor=SYSTEM)


def audits(db, action=None):
    rows = db.execute(select(AuditLog).order_by(AuditLog.id)).scalars().all()
    return [r for r in rows if action is None or r.action == action]


def shown_password(response) -> str:
    found = re.search(r'data-testid="export-password"[^>]*>([^<]+)<', response.get_data(
        as_text=True))
    assert found, text_of(response)[:2000]
    return found.group(1).strip()


def download_url(response) -> str:
    found = re.search(r'action="(/protected-exports/[^"]+/download)"',
                      response.get_data(as_text=True))
    assert found
    return found.group(1)


def fetch(client, ready) -> bytes:
    """The prepared ZIP, by its one-time download."""
    response = client.post(download_url(ready))
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert "attachment" in response.headers["Content-Disposition"]
    data = response.data
    response.close()
    return data


def opened(data: bytes, password: str) -> dict[str, bytes]:
    return protected_zip.read_all(io.BytesIO(data), password)


def assert_locked(data: bytes, name: str):
    with pyzipper.AESZipFile(io.BytesIO(data)) as archive:
        with pytest.raises(RuntimeError):
            archive.read(name)
        archive.setpassword(b"not-the-password-at-all")
        with pytest.raises(RuntimeError):
            archive.read(name)


def assert_no_password_recorded(db, *passwords):
    for row in audits(db):
        for password in passwords:
            assert password not in (row.changes or ""), row.changes


def last_export(db, action="export") -> dict:
    return json.loads(audits(db, action)[-1].changes)


# --- the audit CSV ----------------------------------------------------------------------------

def test_audit_csv_encrypted_with_a_generated_password_shown_once(login_as, db, app, users):
    client = login_as("manager", username="kanri_enc")
    plain = client.get("/auditlogmodelview/export/?_flt_0_target_table=notice")
    assert plain.status_code == 200
    assert last_export(db)["encrypted"] is False
    ready = client.post("/auditlogmodelview/export/?_flt_0_target_table=notice",
                        data={"encoding": "utf-8-sig", **GENERATE})
    assert ready.status_code == 200 and ready.headers["Cache-Control"] == "no-store"
    password = shown_password(ready)
    assert re.fullmatch(r"[A-Za-z2-9]{4}(-[A-Za-z2-9]{4}){3}", password)
    record = last_export(db)
    assert record["encrypted"] is True and record["filters"] == {
        "_flt_0_target_table": "notice"}
    # the page again (a second visit): the offer, never the password
    page_url = download_url(ready).rsplit("/download", 1)[0]
    again = client.get(page_url)
    assert again.status_code == 200 and password not in again.get_data(as_text=True)
    assert "一度だけ表示しました" in text_of(again)
    # someone else cannot see or take it
    other = users.create("manager", username="kanri_other")
    stranger = app.test_client()
    login(stranger, other.username, users.password)
    assert stranger.get(page_url).status_code == 404
    assert stranger.post(download_url(ready), follow_redirects=True).status_code == 200
    data = fetch(client, ready)
    names = list(opened(data, password))
    assert len(names) == 1 and names[0].startswith("audit_log_") and names[0].endswith(".csv")
    assert opened(data, password)[names[0]] == plain.data
    assert_locked(data, names[0])
    # one download: the file is gone afterwards
    second = client.post(download_url(ready), follow_redirects=True)
    assert "ダウンロード済みか" in text_of(second)
    assert client.get(page_url).status_code == 404
    assert_no_password_recorded(db, password)


def test_audit_csv_refused_plain_when_required_writing_nothing(login_as, db, no_writes):
    client = login_as("sysadmin")
    require_encryption(db)
    before = len(audits(db))
    with no_writes("plain audit CSV while encryption is required"):
        refused = client.get("/auditlogmodelview/export/", follow_redirects=True)
    assert REQUIRED_MESSAGE in text_of(refused)
    refused = client.post("/auditlogmodelview/export/", data={"encoding": "cp932"},
                          follow_redirects=True)
    assert REQUIRED_MESSAGE in text_of(refused)
    assert len(audits(db)) == before
    ready = client.post("/auditlogmodelview/export/", data={"encoding": "cp932", **TYPE_IT})
    assert 'data-testid="export-password"' not in ready.get_data(as_text=True)
    data = fetch(client, ready)
    (name, content), = opened(data, TYPED).items()
    assert content.decode("cp932").startswith("No.,")
    assert last_export(db)["encrypted"] is True
    assert_no_password_recorded(db, TYPED)


def test_a_short_typed_password_is_refused_with_nothing_exported(login_as, db):
    client = login_as("manager")
    before = len(audits(db, "export"))
    refused = client.post("/auditlogmodelview/export/", follow_redirects=True, data={
        "encrypt": "1", "password_mode": "typed", "zip_password": "short-pass"})
    assert "12文字以上" in text_of(refused)
    assert len(audits(db, "export")) == before


# --- the policy screen -----------------------------------------------------------------------

def test_the_policy_is_changed_on_its_screen_and_audited(login_as, db):
    client = login_as("manager", username="kanri_pol")
    page = client.get("/export-policy/")
    assert page.status_code == 200
    html = text_of(page)
    assert "個人情報を含むファイルの出力に暗号化を必須とする" in html and "集計（CSV、XLSX）" in html
    saved = client.post("/export-policy/", data={"version": "0", "encryption_required": "1"},
                        follow_redirects=True)
    assert "保存しました" in text_of(saved)
    assert export_policy.policy(db).encryption_required
    row = db.execute(select(SiteSetting)).scalar_one()
    assert (row.version, row.updated_by) == (1, "kanri_pol")
    record = audits(db, "update")[-1]
    assert record.username == "kanri_pol" and record.target_table == "site_setting"
    assert json.loads(record.changes)["encryption_required"] == [False, True]
    # a stale form (version 0 again) changes nothing
    stale = client.post("/export-policy/", data={"version": "0"})
    assert stale.status_code == 409 and "同時に別の人" in text_of(stale)
    db.expire_all()
    assert export_policy.policy(db).encryption_required
    client.post("/export-policy/", data={"version": "1"})
    db.expire_all()
    assert not export_policy.policy(db).encryption_required


def test_only_supervisors_change_the_policy_in_the_service(app, db):
    from app.services.actors import CardActor
    from app.services.errors import NotPermittedError

    with pytest.raises(NotPermittedError):
        export_policy.set_policy(db, encryption_required=True, expected_version=0,
                                 actor=CardActor("clerk", frozenset({"窓口職員"})))
    assert db.execute(select(SiteSetting)).first() is None


def test_export_forms_say_when_encryption_is_required(login_as, db):
    client = login_as("manager")
    assert 'data-testid="export-encryption-required"' not in client.get(
        "/extraction/").get_data(as_text=True)
    require_encryption(db)
    assert 'data-testid="export-encryption-required"' in client.get(
        "/extraction/").get_data(as_text=True)


# --- statistics (no personal data) -------------------------------------------------------------

def test_statistics_csv_and_xlsx_encrypted_and_never_refused(login_as, history, db):
    client = login_as("viewer", username="etsuran")
    query = f"subject=bookings&unit=day&{NOVEMBER}&breakdown=channel"
    require_encryption(db)  # figures hold no personal data: plain stays allowed
    plain = client.get(f"/statistics/csv?{query}")
    assert plain.status_code == 200 and plain.data.startswith(b"\xef\xbb\xbf")
    assert last_export(db)["encrypted"] is False
    ready = client.post(f"/statistics/csv?{query}", data=GENERATE)
    password = shown_password(ready)
    data = fetch(client, ready)
    assert list(opened(data, password).values()) == [plain.data]
    assert last_export(db)["encrypted"] is True
    ready = client.post(f"/statistics/xlsx?{query}", data=TYPE_IT)
    (name, content), = opened(fetch(client, ready), TYPED).items()
    assert name.endswith(".xlsx")
    assert openpyxl.load_workbook(io.BytesIO(content)).sheetnames
    assert_locked(data, list(opened(data, password))[0])
    assert_no_password_recorded(db, password, TYPED)


def test_statistics_page_read_writes_nothing(login_as, history, no_writes):
    client = login_as("clerk")
    with no_writes("the statistics page with its encrypted-ZIP form"):
        page = client.get(f"/statistics/?subject=bookings&unit=day&{NOVEMBER}")
    assert "暗号化ZIPで出力する" in text_of(page)


# --- 日計表 / 月計表 ------------------------------------------------------------------------------

def _cells(xlsx: bytes):
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx)).active
    return [[c.value for c in row] for row in sheet.iter_rows()]


def test_fee_sheets_encrypted_and_the_daily_one_refused_plain(login_as, reissue, db,  # noqa: F811
                                                              no_writes):
    _pay(db, reissue)
    client = login_as("clerk", username="c_enc")
    daily = f"/fees/daily.xlsx?venue={reissue.venue_id}&day=2026-12-01"
    monthly = f"/fees/monthly.xlsx?venue={reissue.venue_id}&month=2026-12"
    plain = client.get(daily)
    assert plain.status_code == 200
    ready = client.post(daily, data=GENERATE)
    password = shown_password(ready)
    (name, content), = opened(fetch(client, ready), password).items()
    assert name == f"daily_fees_{reissue.venue_id}_20261201.xlsx"
    assert _cells(content) == _cells(plain.data)
    assert last_export(db)["encrypted"] is True
    require_encryption(db)
    exports_before = len(audits(db, "export"))
    with no_writes("a plain 日計表 while encryption is required"):
        refused = client.get(daily, follow_redirects=True)
    assert REQUIRED_MESSAGE in text_of(refused)
    assert REQUIRED_MESSAGE in text_of(client.post(daily, data={}, follow_redirects=True))
    assert len(audits(db, "export")) == exports_before
    # the 月計表 holds amounts only: plain stays allowed
    assert client.get(monthly).status_code == 200
    ready = client.post(monthly, data=TYPE_IT)
    (name, content), = opened(fetch(client, ready), TYPED).items()
    assert _cells(content) == _cells(client.get(monthly).data)
    assert_no_password_recorded(db, password, TYPED)


# --- postcard print data (card ledger action) ---------------------------------------------------

@pytest.fixture
def noticed(db):
    from app.services import cards as svc

    make_storage(db)
    batch = [make_card(db, state=svc.SETUP) for _ in range(2)]
    return batch


def _send_notices(client, batch):
    client.post("/cardmodelview/action_post",
                data={"action": "to_notice_sent", "rowid": [c.id for c in batch]})


def test_postcard_print_data_encrypted_matches_the_plain_zip(login_as, noticed, db, no_writes):
    client = login_as("clerk", username="mado_enc")
    _send_notices(client, noticed)
    ids = [c.id for c in noticed]
    plain = client.post("/cardmodelview/action_post", data={"action": "print_data",
                                                            "rowid": ids})
    members = dict(exports.zip_members(plain.data))
    assert "postcards.csv" in members and len(members) == 3
    with no_writes("the form of the encrypted print data"):
        form = client.post("/cardmodelview/action_post",
                           data={"action": "print_data_encrypted", "rowid": ids})
    assert form.status_code == 200 and "ファイルを準備する" in text_of(form)
    ready = client.post("/cardmodelview/action_post", data={
        "action": "print_data_encrypted", "rowid": ids, "step": "export",
        "encoding": "utf-8-sig", **GENERATE})
    password = shown_password(ready)
    data = fetch(client, ready)
    inner = opened(data, password)
    assert set(inner) == set(members)
    assert inner["postcards.csv"] == members["postcards.csv"]
    assert_locked(data, "postcards.csv")
    records = audits(db, "export")
    assert [json.loads(r.changes)["encrypted"] for r in records] == [False, True]
    assert_no_password_recorded(db, password)


def test_postcard_print_data_refused_plain_when_required(login_as, noticed, db, app):
    client = login_as("manager")
    _send_notices(client, noticed)
    require_encryption(db)
    ids = [c.id for c in noticed]
    before = len(audits(db, "export"))
    for action in ("print_data", "print_data_sjis"):
        refused = client.post("/cardmodelview/action_post", follow_redirects=True,
                              data={"action": action, "rowid": ids})
        assert REQUIRED_MESSAGE in text_of(refused)
    unticked = client.post("/cardmodelview/action_post", follow_redirects=True, data={
        "action": "print_data_encrypted", "rowid": ids, "step": "export"})
    assert REQUIRED_MESSAGE in text_of(unticked)
    # the service itself refuses (any other entry point)
    with app.test_request_context(), pytest.raises(EncryptionRequiredError):
        exports.postcard_print_data(db, ids, "utf-8-sig")
    assert len(audits(db, "export")) == before
    ready = client.post("/cardmodelview/action_post", data={
        "action": "print_data_encrypted", "rowid": ids, "step": "export",
        "encoding": "cp932", **TYPE_IT})
    inner = opened(fetch(client, ready), TYPED)
    assert "山田" in inner["postcards.csv"].decode("cp932")


# --- extraction: direct CSV and background files ----------------------------------------------

@pytest.fixture
def ledger(db):
    make_storage(db)
    return [make_card(db, application_id=f"{n:023d}", name=f"山田　{n}郎",
                      postal_code="012-3456") for n in (1, 2, 3)]


def test_extraction_csv_encrypted_matches_the_plain_csv(login_as, ledger, db):
    client = login_as("clerk", username="chushutsu")
    plain = client.post("/extraction/export/csv", data={**EXTRACTION_FORM,
                                                        "encoding": "cp932"})
    assert plain.status_code == 200
    ready = client.post("/extraction/export/csv", data={**EXTRACTION_FORM,
                                                        "encoding": "cp932", **TYPE_IT})
    assert ready.status_code == 200
    (name, content), = opened(fetch(client, ready), TYPED).items()
    assert name.startswith("extraction_cards_") and name.endswith("_sjis.csv")
    assert content == plain.data
    rows = list(csv.reader(io.StringIO(content.decode("cp932"))))
    assert rows[1][1] == "山田　1郎"
    assert [json.loads(r.changes)["encrypted"] for r in audits(db, "export")] == [False, True]
    assert_no_password_recorded(db, TYPED)


def test_extraction_refuses_plain_when_required(login_as, ledger, db, app):
    from app.services import extraction
    from app.services.actors import CardActor

    client = login_as("manager")
    require_encryption(db)
    before = len(audits(db, "export"))
    refused = client.post("/extraction/export/csv", data={**EXTRACTION_FORM,
                                                          "encoding": "utf-8-sig"})
    assert REQUIRED_MESSAGE in text_of(refused)
    assert len(audits(db, "export")) == before
    with app.test_request_context(), pytest.raises(EncryptionRequiredError):
        extraction.plan_csv(db, EXTRACTION_FORM, actor=CardActor("m", frozenset({"管理者"})))
    ready = client.post("/extraction/export/csv", data={**EXTRACTION_FORM,
                                                        "encoding": "utf-8-sig", **GENERATE})
    password = shown_password(ready)
    (name, content), = opened(fetch(client, ready), password).items()
    assert content.startswith(b"\xef\xbb\xbf") and "山田　3郎" in content.decode("utf-8-sig")


def test_extraction_job_download_encrypted_or_refused_plain(login_as, ledger, db):
    client = login_as("clerk", username="job_enc")
    started = client.post("/extraction/export/xlsx", data={**EXTRACTION_FORM, **GENERATE})
    assert started.status_code == 302 and "encrypt=1" in started.headers["Location"]
    page = client.get(started.headers["Location"])
    assert 'name="encrypt" value="1" id="job-zip-encrypt" checked' in page.get_data(
        as_text=True)
    token = started.headers["Location"].split("/jobs/")[1].split("?")[0]
    require_encryption(db)
    refused = client.post(f"/extraction/jobs/{token}/download", follow_redirects=True)
    assert REQUIRED_MESSAGE in text_of(refused)
    assert not audits(db, "download")
    ready = client.post(f"/extraction/jobs/{token}/download", data=GENERATE)
    password = shown_password(ready)
    data = fetch(client, ready)
    (name, content), = opened(data, password).items()
    assert name.endswith(".xlsx")
    values = [[c.value for c in row] for row in
              openpyxl.load_workbook(io.BytesIO(content)).active.iter_rows()]
    assert any("山田　2郎" in [str(v) for v in row] for row in values)
    assert json.loads(audits(db, "download")[-1].changes)["encrypted"] is True
    assert_locked(data, name)
    assert_no_password_recorded(db, password)


def test_prepared_files_are_purged_after_their_time(login_as, db, app):
    from sqlalchemy import func, select

    from app.models.stored_file import StoredFile

    def prepared_files():
        db.expire_all()
        return db.execute(select(func.count()).select_from(StoredFile).where(
            StoredFile.kind == "protected_export")).scalar()

    client = login_as("manager")
    with app.app_context():
        export_policy.purge(max_age_seconds=-1)  # what other tests left
    ready = client.post("/auditlogmodelview/export/", data=GENERATE)
    assert ready.status_code == 200
    assert prepared_files() == 1
    with app.app_context():
        export_policy.purge()  # younger than EXPORT_KEEP_MINUTES: kept
    assert prepared_files() == 1
    with app.app_context():
        assert export_policy.purge(max_age_seconds=-1) == 1
    assert prepared_files() == 0
    assert "ダウンロード済みか" in text_of(client.post(download_url(ready),
                                                     follow_redirects=True))


# --- scanned documents: the original file ------------------------------------------------------

def test_document_original_encrypted_or_refused_plain(login_as, db, no_writes):
    from tests import document_files as files
    from tests.factories import make_intake
    from tests.web.test_documents import _stored

    intake = make_intake(db)
    clerk = login_as("clerk", username="mado_doc")
    content = files.make_pdf(2)
    document = _stored(db, clerk, intake, "申請書 原本.pdf", content)
    url = f"/documents/{document.id}/download"
    viewer = clerk.get(f"/documents/{document.id}")
    assert 'data-testid="download"' in viewer.get_data(as_text=True)
    ready = clerk.post(url, data=GENERATE)
    password = shown_password(ready)
    data = fetch(clerk, ready)
    assert opened(data, password) == {"申請書 原本.pdf": content}
    assert_locked(data, "申請書 原本.pdf")
    assert last_export(db, "download")["encrypted"] is True
    require_encryption(db)
    viewer = clerk.get(f"/documents/{document.id}").get_data(as_text=True)
    assert 'data-testid="download"' not in viewer  # the plain link is not offered
    downloads = len(audits(db, "download"))
    with no_writes("a plain original while encryption is required"):
        refused = clerk.get(url)
    assert refused.status_code == 400 and REQUIRED_MESSAGE in text_of(refused)
    assert clerk.post(url, data={}).status_code == 400
    assert len(audits(db, "download")) == downloads
    ready = clerk.post(url, data=TYPE_IT)
    assert opened(fetch(clerk, ready), TYPED) == {"申請書 原本.pdf": content}
    assert_no_password_recorded(db, password, TYPED)


def test_prepared_on_one_server_downloaded_once_on_another(login_as, db, app, users,
                                                           make_app, tmp_path):
    """Issue 16 §1: the encrypted file is in the shared store: made on server A, shown and
    downloaded once on server B (its own instance folder); a second download, on either
    server, finds it gone; nothing is left."""
    from sqlalchemy import func

    from app.models.stored_file import StoredFile, StoredFileChunk

    other = make_app(INSTANCE_DIR=str(tmp_path / "server_b"),
                     SECRET_KEY=app.config["SECRET_KEY"],
                     AUDIT_HMAC_KEY=app.config["AUDIT_HMAC_KEY"])
    assert other.instance_path != app.instance_path
    server_a = login_as("manager", username="kanri_two")
    server_b = other.test_client()
    login(server_b, "kanri_two", users.password)
    ready = server_a.post("/auditlogmodelview/export/?_flt_0_target_table=notice",
                          data={"encoding": "utf-8-sig", **GENERATE})
    assert ready.status_code == 200
    password = shown_password(ready)
    page_url = download_url(ready).rsplit("/download", 1)[0]
    assert server_b.get(page_url).status_code == 200
    data = fetch(server_b, ready)
    (name,) = opened(data, password)
    assert name.startswith("audit_log_")
    for client in (server_b, server_a):
        gone = client.post(download_url(ready), follow_redirects=True)
        assert "ダウンロード済みか" in text_of(gone)
        assert client.get(page_url).status_code == 404
    db.rollback()  # a fresh read
    assert db.execute(select(func.count()).select_from(StoredFile)).scalar() == 0
    assert db.execute(select(func.count()).select_from(StoredFileChunk)).scalar() == 0


def test_two_takes_of_one_file_give_it_once(app, db):
    """The claim is one compare-and-set: of two requests that both found the file free,
    the second's UPDATE changes no row and it finds the file gone."""
    from sqlalchemy import update

    from app.models.stored_file import StoredFile
    from app.services import file_store, unit

    with app.test_request_context():
        chosen = export_policy.choice_from({"encrypt": "1"})
        made = export_policy.prepare([protected_zip.Part("a.csv", b"1")], chosen,
                                     owner="kanri", filename="a.csv")
        assert export_policy.prepared(made.token, "kanri").size == made.size
        assert not [n for n in os.listdir(export_policy.scratch_folder())
                    if n.startswith(made.token)]  # the local copy went into the store
        seen = file_store.find(db, made.token, "protected_export")  # both saw it free
        assert seen.claimed_at is None
        first = export_policy.take(made.token, "kanri")
        with unit.transaction(db):  # the second request's UPDATE, as claim() sends it
            changed = db.execute(
                update(StoredFile).where(StoredFile.id == seen.id,
                                         StoredFile.claimed_at.is_(None))
                .values(claimed_at=None)
                .execution_options(synchronize_session=False)).rowcount
        assert changed == 0
        with pytest.raises(export_policy.PreparedFileGoneError):
            export_policy.take(made.token, "kanri")
        assert protected_zip.read_all(io.BytesIO(file_store.read_all(first.stored)),
                                      chosen.password) == {"a.csv": b"1"}
        export_policy.discard(first)
        with pytest.raises(export_policy.PreparedFileGoneError):
            export_policy.prepared(made.token, "kanri")
