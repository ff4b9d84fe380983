"""The statistics screen (集計, issue 14 §1): table and SVG chart for each subject, a clear
message for bad input, CSV and XLSX downloads (audited), and who may see them."""
import io
from datetime import date, datetime, timedelta

import pytest

from app.clock import JST
from app.models.audit import AuditLog
from app.models.card import CardEvent
from app.models.reservation import BookingEvent, Reservation, Slot
from tests.conftest import text_of
from tests.factories import make_card, make_intake, make_offer, make_storage


def jst(*parts):
    return datetime(*parts, tzinfo=JST)


@pytest.fixture
def history(app, db):
    """November 2026 (the month before the tests' today): two bookings, two cards."""
    offer = make_offer(db)
    start = jst(2026, 11, 10, 10)
    slot = Slot(offer_id=offer.id, starts_at=start, ends_at=start + timedelta(minutes=30),
                seats=4, taken=0)
    db.add(slot)
    db.commit()
    for n, channel in enumerate(("web", "phone")):
        r = Reservation(number=f"W{n:07d}", slot_id=slot.id, offer_id=offer.id,
                        starts_at=start, seats=1, state="booked", channel=channel,
                        birth_date=date(1980, 3, 1), phone="0312345678",
                        created_at=jst(2026, 11, 1, 9))
        db.add(r)
        db.commit()
        db.add(BookingEvent(reservation_id=r.id, kind="made", at=jst(2026, 11, 1 + n, 9),
                            by_staff=channel != "web", actor="system", channel=channel,
                            offer_id=offer.id, starts_at=start, seats=1))
    db.add(BookingEvent(reservation_id=r.id, kind="arrived", at=start, by_staff=True,
                        actor="system", channel="phone", offer_id=offer.id, starts_at=start,
                        seats=1))
    shelf = make_storage(db)
    for _ in range(2):
        card = make_card(db, storage_place=shelf)
        db.add(CardEvent(card_id=card.id, from_state=None, to_state="received",
                         at=jst(2026, 11, 5, 9), username="system",
                         storage_place_id=shelf.id))
    make_intake(db, taken_at=jst(2026, 11, 6, 9))
    db.commit()
    return offer


NOVEMBER = "start=2026-11-01&end=2026-11-30"


@pytest.mark.parametrize("subject", ["bookings", "applications", "cards", "fees"])
def test_each_subject_has_a_table_and_a_chart(login_as, history, subject):
    client = login_as("viewer")
    response = client.get(f"/statistics/?subject={subject}&unit=day&{NOVEMBER}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'data-testid="stats-table"' in html
    assert '<svg class="stats-chart"' in html and "<title id=" in html and "<desc id=" in html
    assert "2026/11/30" in html and "合計" in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_bookings_of_a_month_on_screen(login_as, history):
    client = login_as("manager")
    text = text_of(client.get(f"/statistics/?subject=bookings&unit=month&{NOVEMBER}"))
    assert "2026年11月 2 0 0 0 1 0 0 25.0%" in text  # made, ..., checked in 1, 1 of 4 seats
    text = text_of(client.get(f"/statistics/?subject=bookings&unit=month&{NOVEMBER}"
                              "&breakdown=channel&measure=made"))
    assert "Web 電話 合計" in text and "2026年11月 1 1 2" in text


def test_cards_show_the_stock_at_the_end_of_a_day(login_as, history):
    client = login_as("clerk")
    html = client.get(f"/statistics/?subject=cards&{NOVEMBER}&stock_day=2026-11-05")
    text = text_of(html)
    assert "2026/11/05 終了時点のカード在庫" in text
    assert "納品 2" in text and "金庫A-棚1-箱01 2" in text
    text = text_of(client.get(f"/statistics/?subject=cards&{NOVEMBER}&stock_day=2026-11-04"))
    assert "その時点で保管中のカードはありません。" in text


@pytest.mark.parametrize("query,message", [
    ("start=2026-02-30", "開始日が日付ではありません"),
    ("start=2026-11-30&end=2026-11-01", "開始日は終了日より前の日にしてください。"),
    ("subject=people", "集計の対象を一覧から選んでください。"),
    ("subject=fees&breakdown=channel", "内訳を一覧から選んでください。"),
    ("unit=day&start=2000-01-01&end=2026-11-30", "期間が 400 行を超えます"),
])
def test_bad_input_gets_a_japanese_message_and_nothing_else(login_as, query, message):
    client = login_as("manager")
    response = client.get(f"/statistics/?{query}")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in text_of(response)
    assert 'data-testid="stats-table"' not in html and "<svg" not in html
    assert client.get(f"/statistics/csv?{query}").status_code == 400


def _export_records(db):
    return [r for r in db.query(AuditLog).order_by(AuditLog.id) if r.action == "export"]


def test_csv_download_for_excel_is_audited(login_as, history, db):
    client = login_as("clerk", username="kakari1")
    response = client.get(f"/statistics/csv?subject=bookings&unit=day&{NOVEMBER}"
                          "&breakdown=channel")
    assert response.status_code == 200
    data = response.data
    assert data.startswith(b"\xef\xbb\xbf")
    text = data.decode("utf-8-sig")
    assert "\r\n" in text and "\n" not in text.replace("\r\n", "")
    lines = text.split("\r\n")
    assert lines[0] == "集計,予約"
    assert lines[1].startswith("期間,2026/11/01〜2026/11/30,単位,日別,内訳,受付経路")
    assert lines[2] == "出力日時,2026/12/01 10:00"
    assert lines[4].split(",")[:5] == ["期間", "初日", "末日", "受付経路", "予約"]
    assert "2026/11/01,2026-11-01,2026-11-01,Web,1," in text
    assert "2026/11/02,2026-11-02,2026-11-02,電話,1," in text
    record = _export_records(db)[-1]
    assert record.username == "kakari1"
    assert '"statistics"' in record.changes and '"bookings"' in record.changes
    assert "2026-11-01" in record.changes and '"channel"' in record.changes


def test_xlsx_has_a_sheet_per_breakdown_with_numbers(login_as, history, db):
    from openpyxl import load_workbook

    client = login_as("manager", username="kakari2")
    response = client.get(f"/statistics/xlsx?subject=bookings&unit=month&{NOVEMBER}")
    assert response.status_code == 200
    book = load_workbook(io.BytesIO(response.data))
    assert book.sheetnames == ["合計", "会場別", "用件別", "受付経路別", "担当職員別"]
    sheet = book["合計"]
    assert sheet["A1"].value == "集計" and sheet["B1"].value == "予約"
    assert sheet["B2"].value == "2026/11/01〜2026/11/30"
    assert sheet["A3"].value == "出力日時"
    headers = [c.value for c in sheet[5]]
    assert headers[:4] == ["期間", "初日", "末日", "予約"]
    row = [c.value for c in sheet[6]]
    assert row[0] == "2026年11月" and row[3] == 2 and isinstance(row[3], (int, float))
    assert row[headers.index("時間枠の利用率 (%)")] == 25.0
    channel = book["受付経路別"]
    assert [c.value for c in channel[5]][3] == "受付経路"
    assert {(r[3], r[4]) for r in channel.iter_rows(min_row=6, values_only=True)} >= {
        ("Web", 1), ("電話", 1)}
    record = _export_records(db)[-1]
    assert record.username == "kakari2" and '"xlsx"' in record.changes


def test_xlsx_of_cards_has_the_stock(login_as, history):
    from openpyxl import load_workbook

    client = login_as("viewer")
    response = client.get(f"/statistics/xlsx?subject=cards&{NOVEMBER}&stock_day=2026-11-30")
    book = load_workbook(io.BytesIO(response.data))
    assert book.sheetnames[-1] == "在庫"
    values = [row for row in book["在庫"].iter_rows(values_only=True)]
    assert ("納品", 2) in values and ("金庫A-棚1-箱01", 2) in values


@pytest.mark.parametrize("role,allowed", [("sysadmin", False), ("manager", True),
                                          ("clerk", True), ("viewer", True)])
def test_who_may_see_and_download(login_as, role, allowed):
    client = login_as(role)
    for url in ("/statistics/", "/statistics/csv", "/statistics/xlsx"):
        response = client.get(url)
        assert (response.status_code == 200) == allowed, (url, response.status_code)
    menu = client.get("/").get_data(as_text=True)
    assert ("集計・抽出" in menu) == allowed


def test_the_screen_only_reads(login_as, history, no_writes):
    client = login_as("manager")
    with no_writes("the statistics screen"):
        for subject in ("bookings", "applications", "cards", "fees"):
            assert client.get(f"/statistics/?subject={subject}&{NOVEMBER}").status_code == 200
