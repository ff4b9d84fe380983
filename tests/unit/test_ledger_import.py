"""The import of an existing card ledger (issue 15 §1): reading what a city's export looks
like, every notation, every message, dry run, all-or-nothing, rerun, update."""
from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from sqlalchemy import func, select

from app.models.audit import AuditLog
from app.models.card import Card, CardEvent, CardTally
from app.models.storage import StoragePlace
from app.services import ledger_import
from app.services.errors import NotPermittedError
from app.services.cards import CardActor
from tests.ledger_import_files import HEADER, app_id, row, write_csv, write_xlsx


def run(db, path, **options):
    return ledger_import.import_ledger(db, str(path), **options)


def cards(db):
    return list(db.execute(select(Card).order_by(Card.application_id)).scalars())


def counts(db):
    return {model.__tablename__: db.execute(select(func.count()).select_from(model)).scalar()
            for model in (Card, CardEvent, StoragePlace, AuditLog)}


def reasons(report):
    return [(p.line, p.column, p.value, p.reason) for p in report.problems]


# --- reading ------------------------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["cp932", "utf-8", "utf-8-sig"])
def test_a_csv_in_any_of_the_three_encodings_is_read_without_asking(db, tmp_path, encoding):
    path = write_csv(tmp_path / "ledger.csv", [row(1), row(2)], encoding=encoding)
    report = run(db, path)
    assert report.ok and report.written, reasons(report)
    assert report.encoding == encoding
    assert report.created == 2 and report.rows == 2
    card = cards(db)[0]
    assert card.name == "髙橋　﨑子"  # NEC/IBM extension characters survive CP932
    assert card.name_kana == "タカハシ　サキコ"  # half-width kana to full-width
    assert card.birth_date == date(1980, 3, 1)
    assert card.state == "notice_sent" and card.visit_mode == "K"
    assert card.storage_place.code == "移行-棚01"
    assert card.notice_sent_at.date() == date(2024, 4, 1)
    assert "" not in report.columns and report.unknown_columns == []


def test_xlsx_is_read_in_read_only_mode_with_dates_and_numbers_as_cells(db, tmp_path):
    first = row(1)
    first[3] = date(1980, 3, 1)  # a real date cell
    first[1] = "佐藤　花子"
    path = write_xlsx(tmp_path / "ledger.xlsx", [first, row(2, 生年月日="H1.1.8")])
    report = run(db, path)
    assert report.ok and report.created == 2, reasons(report)
    assert report.encoding == "xlsx"
    assert [c.birth_date for c in cards(db)] == [date(1980, 3, 1), date(1989, 1, 8)]


def test_quoted_fields_with_commas_and_line_breaks_keep_the_physical_line_numbers(db, tmp_path):
    rows = [row(1, 住所="みどり市中央1-2-3, 101号室", 備考="一行目\n二行目"),
            row(2, 備考="改行\nあり\nです"),
            row(3, 生年月日="S55.2.30")]
    path = write_csv(tmp_path / "ledger.csv", rows)
    report = run(db, path, dry_run=True)
    # header 1, row 1 on lines 2-3, row 2 on lines 4-6, the bad row on line 7
    assert reasons(report) == [(7, "生年月日", "S55.2.30", "存在しない日付です。")]
    report = run(db, path, skip_invalid=True)
    assert report.created == 2
    assert cards(db)[0].address == "みどり市中央1-2-3, 101号室"
    assert cards(db)[0].notes == "一行目\n二行目"


def test_trailing_blank_lines_and_a_trailing_empty_column_are_ignored(db, tmp_path):
    path = write_csv(tmp_path / "ledger.csv", [row(1)], trailing="\r\n,,,,,,,,,,,,,,,\r\n\r\n")
    report = run(db, path)
    assert report.ok and report.rows == 1 and report.created == 1


def test_headers_match_by_synonym_in_any_width_and_with_spaces(db, tmp_path):
    header = ["申請書 ID", "名前", "フリガナ", "生年月日", "状態", "製造番号", "ｶﾅ備考"]
    rows = [[app_id(1), "山田 太郎", "やまだ たろう", "1980/3/1", "交付前設定済",
             "ab12cd34ef56gh78", "x"]]
    path = write_csv(tmp_path / "ledger.csv", rows, header=header, encoding="utf-8")
    report = run(db, path)
    assert report.columns == {"申請書 ID": "application_id", "名前": "name",
                              "フリガナ": "name_kana", "生年月日": "birth_date",
                              "状態": "state", "製造番号": "manufacture_number"}
    assert report.unknown_columns == ["ｶﾅ備考"]  # reported, never guessed
    card = cards(db)[0]
    assert (card.name, card.name_kana, card.state, card.manufacture_number) == (
        "山田　太郎", "ヤマダ　タロウ", "setup", "AB12CD34EF56GH78")


def test_a_mapping_file_reads_any_other_layout(db, tmp_path):
    header = ["No", "Shinsei", "Kanji", "Kana", "Birth", "Progress", "Memo", "Done"]
    rows = [["1", app_id(1), "山田太郎", "ヤマダタロウ", "1980-03-01", "できた", "x",
             "2024-05-01"]]
    path = write_csv(tmp_path / "other.csv", rows, header=header, encoding="utf-8")
    mapping = tmp_path / "mapping.toml"
    mapping.write_text("""
[columns]
"No" = ""
"Shinsei" = "application_id"
"Kanji" = "name"
"Kana" = "name_kana"
"Birth" = "birth_date"
"Progress" = "state"
"Done" = "handed_over_on"

[states]
"できた" = "handed_over"

[defaults]
storage_place = "移行分"
""", encoding="utf-8")
    report = run(db, path, mapping=ledger_import.load_mapping(str(mapping)))
    assert report.ok and report.created == 1, reasons(report)
    assert report.unknown_columns == ["Memo"]
    card = cards(db)[0]
    assert card.state == "handed_over" and card.storage_place_id is None  # left the office


def test_a_default_storage_place_from_the_mapping_file_is_created(db, tmp_path):
    header = ["申請書ID", "氏名", "フリガナ", "生年月日", "状態"]
    rows = [[app_id(i), "山田太郎", "ヤマダタロウ", "1980-03-01", "納品"] for i in range(1, 4)]
    path = write_csv(tmp_path / "l.csv", rows, header=header)
    report = run(db, path, mapping=ledger_import.load_mapping(
        text='[defaults]\nstorage_place = "移行分-01"\n'))
    assert report.places_created == ["移行分-01"]
    assert {c.storage_place.code for c in cards(db)} == {"移行分-01"}


@pytest.mark.parametrize("text, expected", [
    ("S55.3.1", date(1980, 3, 1)), ("昭55.03.01", date(1980, 3, 1)),
    ("昭和55年3月1日", date(1980, 3, 1)), ("平成元年1月8日", date(1989, 1, 8)),
    ("H31.4.30", date(2019, 4, 30)), ("令和元年5月1日", date(2019, 5, 1)),
    ("R1.5.1", date(2019, 5, 1)), ("1980/3/1", date(1980, 3, 1)),
    ("1980-03-01", date(1980, 3, 1)), ("１９８０年３月１日", date(1980, 3, 1)),
    ("s55.3.1", date(1980, 3, 1)), ("19800301", date(1980, 3, 1)),
])
def test_every_date_notation(db, tmp_path, text, expected):
    path = write_csv(tmp_path / "l.csv", [row(1, 生年月日=text)])
    report = run(db, path)
    assert report.ok, reasons(report)
    assert cards(db)[0].birth_date == expected


@pytest.mark.parametrize("text, reason", [
    ("H31.5.1", "その日付には平成は終わっています。"),
    ("令和元年4月30日", "令和1年4月30日 は元号の始まりより前の日付です。"),
    ("S55.2.30", "存在しない日付です。"),
    ("2030-01-01", "生年月日が未来の日付です。"),
    ("80.3.1", "日付は 1980-03-01 や S55.3.1、昭和55年3月1日 のように入力してください。"),
])
def test_impossible_dates_are_refused_with_the_reason(db, tmp_path, text, reason):
    path = write_csv(tmp_path / "l.csv", [row(1, 生年月日=text)])
    report = run(db, path)
    assert reasons(report) == [(2, "生年月日", text, reason)]
    assert not report.written and cards(db) == []


@pytest.mark.parametrize("sign, auth, expected", [
    ("有", "無", (True, False)), ("○", "×", (True, False)), ("1", "0", (True, False)),
    ("あり", "なし", (True, False)), ("", "", (True, True)), ("ｱﾘ", "ﾅｼ", (True, False)),
])
def test_flag_words(db, tmp_path, sign, auth, expected):
    path = write_csv(tmp_path / "l.csv", [row(1, 署名用電子証明書=sign,
                                             利用者証明用電子証明書=auth)])
    report = run(db, path)
    assert report.ok, reasons(report)
    card = cards(db)[0]
    assert (card.has_sign_cert, card.has_auth_cert) == expected


def test_full_width_digits_and_spaces_inside_ids_are_normalised(db, tmp_path):
    raw = "１２３４ ５６７８　" + "0" * 15
    path = write_csv(tmp_path / "l.csv", [row(1, **{"申請書ＩＤ": raw, "製造管理番号": "ｍｎ１２-３４５６７８９０１２３４"})])
    report = run(db, path)
    assert report.ok, reasons(report)
    card = cards(db)[0]
    assert card.application_id == "12345678" + "0" * 15
    assert card.manufacture_number == "MN12345678901234"


@pytest.mark.parametrize("column, value, reason", [
    ("申請書ＩＤ", "12345", "申請書IDは23桁の数字で入力してください。"),
    ("氏名", "", "この欄は必ず入力してください。"),
    ("カナ氏名", "Yamada", "フリガナはカタカナ（またはひらがな）で入力してください。"),
    ("郵便番号", "12-34", "郵便番号は 123-4567 のように7桁で入力してください。"),
    ("製造管理番号", "ABC", "製造管理番号は英数字16桁で入力してください。"),
    ("署名用電子証明書", "たぶん", "有/無、○/×、1/0、あり/なし のいずれかで書いてください。"),
    ("交付状況", "謎の状態", "状態の言葉がわかりません。対応表ファイルの [states] に、この言葉と"
                           "それが表す状態を書いてください。"),
    ("交付状況", "予約済", "予約中のカードは予約済としては取り込めません。通知済として取り込み、"
                          "予約は予約の画面で登録してください。"),
    ("交付状況", "郵送済", "交付時来庁のカードは郵送済にはなりません。"),
    ("通知書発送日", "2027-01-01", "未来の日付です。"),
])
def test_each_row_message_names_line_column_value_and_reason(db, tmp_path, column, value,
                                                             reason):
    path = write_csv(tmp_path / "l.csv", [row(1), row(2, **{column: value})])
    report = run(db, path)
    assert reasons(report) == [(3, column, value, reason)]
    assert not report.written and cards(db) == []


def test_duplicate_ids_within_the_file_are_reported_on_the_later_line(db, tmp_path):
    path = write_csv(tmp_path / "l.csv", [row(1), row(2), row(1, 製造管理番号="")])
    report = run(db, path)
    assert reasons(report) == [(4, "申請書ＩＤ", app_id(1),
                                "同じ値がこのファイルの2行目にもあります。")]


def test_a_number_of_another_card_in_the_ledger_is_a_conflict(db, tmp_path):
    run(db, write_csv(tmp_path / "a.csv", [row(1)]))
    path = write_csv(tmp_path / "b.csv", [row(2, 製造管理番号=f"MN{1:014d}")])
    report = run(db, path)
    assert reasons(report) == [(2, "製造管理番号", f"MN{1:014d}",
                                f"この番号は台帳の別のカード（申請書ID {app_id(1)}）のものです。")]


# --- file-level errors --------------------------------------------------------------------------

def test_a_file_that_is_no_text_is_refused(db, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(b"\x81\x00\xff\xfe" * 10)
    with pytest.raises(ledger_import.ImportFileError) as caught:
        run(db, path)
    assert "UTF-8" in str(caught.value.message) and "Shift_JIS" in str(caught.value.message)


def test_a_file_without_the_required_columns_is_refused(db, tmp_path):
    path = write_csv(tmp_path / "l.csv", [["1", "x"]], header=["番号", "氏名"])
    with pytest.raises(ledger_import.ImportFileError) as caught:
        run(db, path)
    assert "申請書ID" in str(caught.value.message)


def test_a_mapping_file_naming_an_unknown_field_is_refused(db):
    with pytest.raises(ledger_import.ImportFileError):
        ledger_import.load_mapping(text='[columns]\n"X" = "nonsense"\n')
    with pytest.raises(ledger_import.ImportFileError):
        ledger_import.load_mapping(text='[states]\n"X" = "reserved"\n')
    with pytest.raises(ledger_import.ImportFileError):
        ledger_import.load_mapping(text='[columns\n')


def test_only_a_manager_may_import(db, tmp_path):
    path = write_csv(tmp_path / "l.csv", [row(1)])
    with pytest.raises(NotPermittedError):
        run(db, path, actor=CardActor("clerk", frozenset({"窓口職員"})))
    assert cards(db) == []


# --- writing ------------------------------------------------------------------------------------

def test_a_dry_run_writes_nothing(db, tmp_path):
    path = write_csv(tmp_path / "l.csv", [row(1), row(2)])
    before = counts(db)
    report = run(db, path, dry_run=True)
    assert report.ok and not report.written and report.rows == 2
    assert counts(db) == before


def test_one_bad_row_means_nothing_is_imported(db, tmp_path):
    rows = [row(i) for i in range(1, 4500)] + [row(9999, 生年月日="S55.2.30")]
    path = write_csv(tmp_path / "l.csv", rows)
    before = counts(db)
    report = run(db, path)
    assert report.rejected == 1 and not report.written
    assert counts(db) == before


def test_skip_invalid_imports_the_good_rows_and_writes_the_rejects_file(db, tmp_path):
    rows = [row(1), row(2, 生年月日="S55.2.30"), row(3), row(4, 交付状況="謎")]
    path = write_csv(tmp_path / "l.csv", rows)
    rejects = tmp_path / "rejects.csv"
    report = run(db, path, skip_invalid=True, rejects_path=str(rejects))
    assert report.created == 2 and report.rejected == 2 and report.written
    assert [c.application_id for c in cards(db)] == [app_id(1), app_id(3)]
    raw = rejects.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    back = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert back[0] == HEADER + ["理由"]
    assert [r[0] for r in back[1:]] == [app_id(2), app_id(4)]
    assert back[1][-1] == "生年月日: 存在しない日付です。"
    # the clerk fixes the file and imports it again
    fixed = tmp_path / "fixed.csv"
    # 交付済 needs its 交付日: without it the row is refused, naming the column
    text = raw.decode("utf-8-sig").replace("S55.2.30", "S55.2.28").replace("謎", "交付済")
    fixed.write_text(text, encoding="utf-8-sig")
    report = run(db, fixed)
    assert [(p.line, p.column, p.reason) for p in report.problems] == [
        (3, "交付日", "交付済には交付日が必要です。")]
    text = text.replace(",交付済,移行-棚01,令和6年4月1日,,", ",交付済,,令和6年4月1日,R6.5.1,")
    fixed.write_text(text, encoding="utf-8-sig")
    report = run(db, fixed)
    assert report.ok and report.created == 2, reasons(report)
    assert report.unknown_columns == ["理由"]


def test_each_card_gets_its_event_and_the_import_one_audit_record(db, tmp_path):
    path = write_csv(tmp_path / "移行.csv", [row(1), row(2, 交付状況="交付済",
                                                    交付日="R6.5.10")])
    before = db.execute(select(func.count()).select_from(AuditLog)).scalar()
    report = run(db, path)
    sha = ledger_import.file_sha256(path)
    events = list(db.execute(select(CardEvent).order_by(CardEvent.id)).scalars())
    assert [(e.from_state, e.to_state) for e in events] == [(None, "notice_sent"),
                                                             (None, "handed_over")]
    assert {e.note for e in events} == {f"既存データ取込 移行.csv sha256:{sha}"}
    assert events[1].at.date() == date(2024, 5, 10)  # the day it was handed over
    assert events[1].storage_place_id is None
    records = list(db.execute(select(AuditLog).order_by(AuditLog.id)).scalars())[before:]
    assert [(r.action, r.target_table) for r in records] == [("import", "card")]
    import json
    detail = json.loads(records[0].changes)
    assert (detail["created"], detail["rows"], detail["sha256"], detail["file"]) == (
        2, 2, sha, "移行.csv")
    assert report.places_created == ["移行-棚01"]
    tally = {(t.state): t.cards for t in db.execute(select(CardTally)).scalars() if t.cards}
    assert tally == {"notice_sent": 1, "handed_over": 1}


def test_reimporting_the_same_file_changes_nothing(db, tmp_path):
    path = write_csv(tmp_path / "l.csv", [row(1), row(2)])
    run(db, path)
    before = counts(db)
    report = run(db, path)
    assert report.ok and report.unchanged == 2 and report.created == 0
    assert not report.written
    assert counts(db) == before


def test_differences_are_reported_and_applied_only_with_update(db, tmp_path):
    run(db, write_csv(tmp_path / "a.csv", [row(1), row(2)]))
    changed = write_csv(tmp_path / "b.csv", [row(1, 住所="みどり市東町5-6"),
                                             row(2, 交付状況="交付済", 交付日="R6.6.1")])
    before = counts(db)
    report = run(db, changed)
    assert [p.line for p in report.problems] == [2, 3]
    assert "住所: みどり市中央1-2-3 → みどり市東町5-6" in report.problems[0].reason
    assert "交付状況: 交付通知書発送 → 交付済、交付日: （空欄） → 2024-06-01" in report.problems[1].reason
    assert counts(db) == before
    report = run(db, changed, update=True)
    assert report.ok and report.updated == 2 and report.written, reasons(report)
    first, second = cards(db)
    assert first.address == "みどり市東町5-6" and first.state == "notice_sent"
    assert second.state == "handed_over" and second.storage_place_id is None
    assert second.handed_over_at.date() == date(2024, 6, 1)
    events = [(e.from_state, e.to_state) for e in second.events]
    assert events == [(None, "notice_sent"), ("notice_sent", "handed_over")]
    assert run(db, changed).unchanged == 2  # and now the same again


def test_places_created_hold_every_card_put_there(db, tmp_path):
    rows = [row(i) for i in range(1, 151)]
    run(db, write_csv(tmp_path / "l.csv", rows))
    place = db.execute(select(StoragePlace)).scalar_one()
    assert place.capacity == 150


def test_the_example_mapping_file_in_docs_is_valid(db, tmp_path):
    import os

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    mapping = ledger_import.load_mapping(
        os.path.join(root, "docs", "ledger-import-mapping.example.toml"))
    header = ["申請書番号（23桁）", "漢字氏名", "カナ", "生年月日（和暦）", "処理状況", "受取方法",
              "管理番号"]
    path = write_csv(tmp_path / "l.csv", [[app_id(1), "山田太郎", "ﾔﾏﾀﾞﾀﾛｳ", "昭和55年3月1日",
                                          "受取済", "郵送", "A-1", "R6.5.1"]],
                      header=header + ["交付年月日"])
    report = run(db, path, mapping=mapping)
    assert report.ok and report.created == 1 and report.unknown_columns == [], reasons(report)
    card = cards(db)[0]
    assert (card.state, card.visit_mode) == ("handed_over", "S")


def test_a_booked_cards_state_is_never_changed_by_an_import(db, tmp_path):
    from tests.factories import make_card

    make_card(db, state="reserved", application_id=app_id(1), name="髙橋　﨑子",
              name_kana="タカハシ　サキコ")
    path = write_csv(tmp_path / "l.csv", [row(1, 交付状況="交付済", 交付日="R6.5.1")])
    report = run(db, path, update=True)
    assert [p.reason for p in report.problems] == [
        "このカードは予約中のため、取込では状態を変えません。先に予約を取り消すか、交付を済ませてください。"]
    assert cards(db)[0].state == "reserved"


def test_an_update_never_moves_a_card_against_its_steps(db, tmp_path):
    run(db, write_csv(tmp_path / "a.csv", [row(1, 交付状況="交付済", 交付日="R6.5.1",
                                               保管場所="")]))
    report = run(db, write_csv(tmp_path / "b.csv", [row(1)]), update=True)
    assert [p.reason for p in report.problems] == [
        "交付済のカードは交付通知書発送にできません。取込では、カードの通常の手順で進められる"
        "状態にだけ変えます。"]
    assert not report.written and cards(db)[0].state == "handed_over"


def test_dates_out_of_order_are_refused_naming_both_columns(db, tmp_path):
    path = write_csv(tmp_path / "l.csv", [
        row(1, 生年月日="令和6年5月1日"),
        row(2, 交付状況="交付済", 交付日="R6.3.1", 保管場所="")])
    report = run(db, path)
    assert [(p.line, p.column, p.reason) for p in report.problems] == [
        (2, "通知書発送日",
         "通知書発送日（令和6年4月1日）が生年月日（令和6年5月1日）より前になっています。"),
        (3, "交付日", "交付日（R6.3.1）が通知書発送日（令和6年4月1日）より前になっています。")]
    assert not report.written


def test_a_card_on_hold_from_its_booking_is_not_discarded_by_an_import(db, tmp_path):
    """保留 from 予約済 keeps the booking: an import may not move the card (outside review
    16d: it could be imported as 廃棄 while the resident's booking stayed active)."""
    from tests.factories import make_card

    make_card(db, state="on_hold", held_from="reserved", application_id=app_id(1),
              name="髙橋　﨑子", name_kana="タカハシ　サキコ")
    path = write_csv(tmp_path / "l.csv", [row(1, 交付状況="廃棄")])
    report = run(db, path, update=True)
    assert [p.reason for p in report.problems] == [
        "このカードは予約中のため、取込では状態を変えません。先に予約を取り消すか、交付を済ませてください。"]
    assert (cards(db)[0].state, cards(db)[0].held_from) == ("on_hold", "reserved")
