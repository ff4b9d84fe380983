"""The extraction screen and its files (issue 14 §2, §4): CSV that opens in Excel (BOM,
CRLF, quoting read back with the csv module, leading zeros and 23-digit IDs kept), the
CP932 round trip and its rule for characters CP932 cannot hold, XLSX read back with
openpyxl, the audit record of every export, 閲覧者 refused, GETs that write nothing."""
import csv
import io
import json
from datetime import date, datetime

import openpyxl
import pytest

from app.clock import JST
from app.models.audit import AuditLog
from app.models.extraction import SavedQuery
from app.models.fee import FeeEntry
from tests.conftest import text_of
from tests.factories import make_card, make_intake, make_storage
from tests.web.test_no_english import english_leftovers

FORM = {"subject": "cards", "col": ["application_id", "name", "postal_code", "notes"],
        "pos_application_id": "1", "pos_name": "2", "pos_postal_code": "3", "pos_notes": "4"}


@pytest.fixture
def ledger(db):
    make_storage(db)
    first = make_card(db, application_id="00000000000000000000001", name="山田　太郎",
                      name_kana="ヤマダ　タロウ", postal_code="012-3456",
                      notes='注意, "至急"\n二行目')
    second = make_card(db, application_id="00123456789012345678901", name="髙橋　一郎",
                       name_kana="タカハシ　イチロウ", postal_code="001-0001", notes=None)
    return first, second


def yoshida(db):
    return make_card(db, application_id="00000000000000000000009", name="𠮷田　花子",
                     name_kana="ヨシダ　ハナコ", postal_code="100-0001",
                     notes="𠮷と😀")


def exports(db):
    return [r for r in db.query(AuditLog).filter(AuditLog.action == "export")
            .order_by(AuditLog.id)]


def test_csv_utf8_opens_in_excel(login_as, db, ledger):
    client = login_as("clerk")
    response = client.post("/extraction/export/csv", data={**FORM, "encoding": "utf-8-sig"})
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment; filename=extraction_cards_")
    body = response.get_data()
    assert body.startswith(b"\xef\xbb\xbf")  # BOM
    text = body[3:].decode("utf-8")
    assert text.count("\r\n") == 3  # header and two rows end CRLF
    assert '"注意, ""至急""\n二行目"' in text  # comma, quotes and line break quoted
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows == [["申請書ID", "氏名", "郵便番号", "備考"],
                    ["00000000000000000000001", "山田　太郎", "012-3456", '注意, "至急"\n二行目'],
                    ["00123456789012345678901", "髙橋　一郎", "001-0001", ""]]


def test_csv_cp932_round_trip(login_as, db, ledger):
    client = login_as("manager")
    response = client.post("/extraction/export/csv", data={**FORM, "encoding": "cp932"})
    assert response.status_code == 200
    assert "charset=shift_jis" in response.headers["Content-Type"]
    body = response.get_data()
    assert not body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("cp932"), newline="")))
    assert rows[2] == ["00123456789012345678901", "髙橋　一郎", "001-0001", ""]  # 髙: CP932
    assert rows[1][3] == '注意, "至急"\n二行目'
    (record,) = exports(db)
    detail = json.loads(record.changes)
    assert detail["encoding"] == "cp932" and detail["replaced"] == 0 and detail["rows"] == 2


def test_cp932_stops_and_lists_what_it_cannot_hold(login_as, db, ledger):
    yoshida(db)
    client = login_as("clerk")
    response = client.post("/extraction/export/csv",
                           data={**FORM, "encoding": "cp932", "on_unmappable": "stop"})
    assert response.status_code == 200
    assert response.mimetype == "text/html"  # the screen, not a file
    page = text_of(response)
    assert "出力しませんでした" in page
    assert "00000000000000000000009" in page and "𠮷" in page and "😀" in page
    assert "2 件のデータ" not in page and "1 件のデータ" in page  # one row, three characters
    assert "3 文字" in page
    assert exports(db) == []  # nothing left the screen


def test_cp932_replaces_and_counts(login_as, db, ledger):
    yoshida(db)
    client = login_as("clerk")
    response = client.post("/extraction/export/csv", data={
        **FORM, "encoding": "cp932", "on_unmappable": "replace", "replacement": "〓",
        "download_token": "abc123"})
    assert response.status_code == 200
    assert response.headers["X-Replaced-Characters"] == "3"
    rows = list(csv.reader(io.StringIO(response.get_data().decode("cp932"), newline="")))
    assert rows[3][1:] == ["〓田　花子", "100-0001", "〓と〓"]
    assert "extraction_download=abc123.3.3" in response.headers["Set-Cookie"]
    (record,) = exports(db)
    detail = json.loads(record.changes)
    assert (detail["replaced"], detail["replacement"], detail["rows"]) == (3, "〓", 3)
    # the next page says so too
    assert "3 文字を「〓」に置き換えました" in text_of(client.get("/extraction/"))
    # a replacement CP932 cannot hold is refused, nothing exported
    refused = client.post("/extraction/export/csv", data={
        **FORM, "encoding": "cp932", "on_unmappable": "replace", "replacement": "😀"})
    assert refused.mimetype == "text/html" and "ほかの文字を選んでください" in text_of(refused)
    assert len(exports(db)) == 1


def test_xlsx_keeps_ids_as_text_and_numbers_as_numbers(login_as, db):
    intake = make_intake(db, application_id="00000000000000000000123", name="佐藤　花子",
                         kind="reissue", reissue_reason="lost")
    db.add(FeeEntry(intake_id=intake.id, entry_type="charge", amount=1000,
                    venue_id=intake.venue_id, clerk="clerk", business_day=date(2026, 12, 1),
                    at=datetime(2026, 12, 1, 10, 30, tzinfo=JST)))
    db.commit()
    client = login_as("manager")
    started = client.post("/extraction/export/xlsx", data={
        "subject": "fees", "col": ["application_id", "amount", "business_day", "at", "name"]})
    assert started.status_code == 302 and "/extraction/jobs/" in started.headers["Location"]
    response = client.post(started.headers["Location"] + "/download")  # a background job
    assert response.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(response.get_data())).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("申請書ID", "金額", "日付", "日時", "氏名")
    assert rows[1] == ("00000000000000000000123", 1000, datetime(2026, 12, 1),
                       datetime(2026, 12, 1, 10, 30), "佐藤　花子")
    assert isinstance(rows[1][0], str) and isinstance(rows[1][1], int)
    (record,) = exports(db)
    detail = json.loads(record.changes)
    assert record.target_table == "fee_entry" and detail["format"] == "xlsx"
    assert detail["rows"] == 1 and detail["subject"] == "fees"


def test_the_audit_record_says_what_left_and_who(login_as, db, ledger, users):
    client = login_as("clerk", username="clerk_kato")
    data = {**FORM, "encoding": "utf-8-sig", "g0_rows": "1", "g0_c0_field": "name_kana",
            "g0_c0_op": "starts", "g0_c0_value": "やまだ", "join": "and"}
    response = client.post("/extraction/export/csv", data=data)
    assert response.status_code == 200
    response.get_data()
    (record,) = exports(db)
    assert record.username == "clerk_kato" and record.target_table == "card"
    detail = json.loads(record.changes)
    assert detail["what"] == "extraction" and detail["subject"] == "cards"
    assert detail["conditions"] == {"join": "and", "groups": [{"op": "and", "conditions": [
        {"field": "name_kana", "op": "starts", "value": "ヤマダ"}]}]}
    assert detail["columns"] == ["application_id", "name", "postal_code", "notes"]
    assert (detail["format"], detail["encoding"], detail["rows"], detail["replaced"]) == (
        "csv", "utf-8-sig", 1, 0)


def test_column_order_follows_the_positions(login_as, db, ledger):
    client = login_as("clerk")
    response = client.post("/extraction/export/csv", data={
        "subject": "cards", "col": ["name", "application_id"], "pos_name": "2",
        "pos_application_id": "1", "sort": "application_id", "sort_desc": "1"})
    rows = list(csv.reader(io.StringIO(response.get_data()[3:].decode(), newline="")))
    assert rows == [["申請書ID", "氏名"], ["00123456789012345678901", "髙橋　一郎"],
                    ["00000000000000000000001", "山田　太郎"]]


def test_viewer_previews_but_never_exports(login_as, db, ledger):
    client = login_as("viewer")
    page = client.get("/extraction/")
    assert page.status_code == 200
    assert "/extraction/export/" not in page.get_data(as_text=True)  # no export buttons
    preview = client.post("/extraction/preview", data=FORM)
    assert preview.status_code == 200 and "山田 太郎" in text_of(preview)
    for url in ("/extraction/export/csv", "/extraction/export/xlsx",
                "/extraction/export/csv?encoding=cp932"):
        response = client.post(url, data=FORM)
        assert response.status_code == 403
        assert "山田" not in response.get_data(as_text=True)
    assert exports(db) == []


def test_preview_shows_count_rows_and_mistakes(login_as, db, ledger):
    client = login_as("clerk")
    response = client.post("/extraction/preview", data={
        **FORM, "g0_rows": "2", "g0_op": "or",
        "g0_c0_field": "name_kana", "g0_c0_op": "starts", "g0_c0_value": "ﾀｶﾊｼ",
        "g0_c1_field": "postal_code", "g0_c1_op": "eq", "g0_c1_value": "〒012-3456"})
    html = response.get_data(as_text=True)
    assert 'data-testid="extraction-count">2<' in html
    assert not english_leftovers(html)
    bad = client.post("/extraction/preview", data={
        **FORM, "g0_rows": "1", "g0_c0_field": "birth_date", "g0_c0_op": "eq",
        "g0_c0_value": "2026-02-30"})
    page = text_of(bad)
    assert "グループ1の条件1（生年月日）: 存在しない日付です。" in page
    assert 'value="2026-02-30"' in bad.get_data(as_text=True)  # kept as typed
    # the form works without a script: a condition row and a group are added by a post
    more = client.post("/extraction/preview", data={**FORM, "add_group": "1"})
    assert 'name="g1_c0_field"' in more.get_data(as_text=True)


def test_saving_and_sharing_through_the_screen(login_as, db, ledger, app, users):
    manager = login_as("manager", username="boss")
    response = manager.post("/extraction/save-shared", data={**FORM, "name": "課の一覧"})
    assert response.status_code == 302
    shared = db.query(SavedQuery).one()
    assert shared.shared and shared.owner == "boss"
    clerk = app.test_client()
    from tests.conftest import login

    user = users.create("clerk", username="clerk_sato")
    login(clerk, user.username, users.password)
    page = clerk.get(f"/extraction/?saved={shared.id}")
    assert page.status_code == 200 and "課の一覧" in text_of(page)
    assert clerk.post(f"/extraction/saved/{shared.id}/delete").status_code == 403
    assert clerk.post("/extraction/save-shared", data={**FORM, "name": "x"}).status_code == 403
    mine = clerk.post("/extraction/save", data={**FORM, "name": "自分の一覧"})
    assert mine.status_code == 302
    own = db.query(SavedQuery).filter_by(owner="clerk_sato").one()
    assert "自分の一覧" in text_of(clerk.get("/extraction/"))
    from app.services.extraction import version_of

    assert clerk.post(f"/extraction/saved/{own.id}/delete",
                      data={"version": version_of(own)}).status_code == 302
    assert db.query(SavedQuery).count() == 1


def test_gets_write_nothing(login_as, db, ledger, no_writes):
    client = login_as("manager")
    client.post("/extraction/save", data={**FORM, "name": "保存"})
    saved = db.query(SavedQuery).one()
    with no_writes("the extraction screen"):
        assert client.get("/extraction/").status_code == 200
        assert client.get(f"/extraction/?saved={saved.id}").status_code == 200
        assert client.get("/extraction/?subject=bookings").status_code == 200
        assert client.post("/extraction/preview", data=FORM).status_code == 200


@pytest.mark.parametrize("subject", ["cards", "bookings", "applications", "fees"])
def test_every_subject_previews_in_japanese(login_as, db, subject):
    client = login_as("manager")
    html = client.get(f"/extraction/?subject={subject}").get_data(as_text=True)
    assert not english_leftovers(html)
    response = client.post("/extraction/preview", data={"subject": subject})
    assert response.status_code == 200
    assert 'data-testid="extraction-count">0<' in response.get_data(as_text=True)


# --- the screen: relative dates, values kept as typed, operators that fit --------------------

@pytest.fixture
def waiting(db):
    """Three cards received 2026-05-20, 2026-06-15 and 2026-08-01 (Japan time), none handed
    over. The clock starts at 2026-12-01: six months back is 2026-06-01."""
    make_storage(db)
    made = []
    for n, day in ((1, date(2026, 5, 20)), (2, date(2026, 6, 15)), (3, date(2026, 8, 1))):
        card = make_card(db, application_id=f"{n:023d}", name=f"待機　{n}郎")
        card.received_at = datetime.combine(day, datetime.min.time(), JST).replace(hour=9)
        made.append(card)
    db.commit()
    return made


RELATIVE_FORM = {**FORM, "g0_rows": "1", "g0_c0_field": "received_at",
                 "g0_c0_op": "older_than:months", "g0_c0_value": "６"}


def test_older_than_previews_saves_and_reruns_next_month(login_as, db, waiting, clock):
    client = login_as("manager", username="boss")
    page = client.post("/extraction/preview", data=RELATIVE_FORM)
    html = page.get_data(as_text=True)
    assert 'data-testid="extraction-count">1<' in html
    assert "結果：" in text_of(page)
    assert "本日基準で 2026-06-01 より前" in text_of(page)
    assert "「より前」「直近」は本日（2026-12-01）から数えました。" in text_of(page)
    assert '<option value="older_than:months" selected>Nか月より前</option>' in html
    assert not english_leftovers(html)
    saved = client.post("/extraction/save-shared", data={**RELATIVE_FORM,
                                                         "name": "受取待ち6か月以上"})
    assert saved.status_code == 302
    query = db.query(SavedQuery).one()
    assert json.loads(query.definition)["groups"][0]["conditions"] == [
        {"field": "received_at", "op": "older_than", "n": 6, "unit": "months"}]
    shown = client.get(f"/extraction/?saved={query.id}").get_data(as_text=True)
    assert 'name="g0_c0_value" value="6"' in shown
    clock.advance(days=40)  # 2027-01-10: six months back is 2026-07-10
    client = login_as("manager", username="boss2")  # a session of 40 days ago is gone
    rerun = client.post("/extraction/preview", data={**RELATIVE_FORM, "saved_id": query.id})
    assert 'data-testid="extraction-count">2<' in rerun.get_data(as_text=True)
    assert "本日基準で 2026-07-10 より前" in text_of(rerun)
    # the export job (XLSX) resolves it the same way, and the audit says both
    started = client.post("/extraction/export/xlsx", data=RELATIVE_FORM)
    assert started.status_code == 302
    (record,) = exports(db)
    detail = json.loads(record.changes)
    assert detail["rows"] == 2 and detail["today"] == "2027-01-10"
    assert detail["conditions"]["groups"][0]["conditions"] == [
        {"field": "received_at", "op": "older_than", "n": 6, "unit": "months",
         "cutoff": "2026-07-10", "means": "< 2026-07-10"}]


def test_within_the_last_and_a_bad_n_on_the_screen(login_as, db, waiting):
    client = login_as("clerk")
    page = client.post("/extraction/preview", data={**RELATIVE_FORM,
                                                    "g0_c0_op": "within_last:days",
                                                    "g0_c0_value": "200"})
    # 200 days before 2026-12-01 is 2026-05-15: all three
    assert 'data-testid="extraction-count">3<' in page.get_data(as_text=True)
    bad = client.post("/extraction/preview", data={**RELATIVE_FORM, "g0_c0_value": "0"})
    assert ("グループ1の条件1（納品日時）: N は1から9999までの整数で入力してください（入力：0）。"
            in text_of(bad))
    assert 'data-testid="extraction-count"' not in bad.get_data(as_text=True)


def test_the_typed_value_stays_as_typed_with_a_note(login_as, db, ledger):
    client = login_as("clerk")
    page = client.post("/extraction/preview", data={
        **FORM, "g0_rows": "2", "g0_op": "and",
        "g0_c0_field": "name_kana", "g0_c0_op": "starts", "g0_c0_value": "やまだ",
        "g0_c1_field": "birth_date", "g0_c1_op": "range", "g0_c1_value": "S40.12.31"})
    html = page.get_data(as_text=True)
    assert 'name="g0_c0_value" value="やまだ"' in html
    assert 'name="g0_c1_value" value="S40.12.31"' in html
    assert "「ヤマダ」として検索しました" in text_of(page)
    assert "「1965-12-31〜」として検索しました" in text_of(page)
    # an empty row offers no operator before a field is chosen (only 「（項目を選択）」 first)
    assert '<option value="">（項目を選択）</option>' in html
    # the end of a range is shown for a range only
    assert html.count("data-to-wrap hidden") == html.count("data-to-wrap") - 1
