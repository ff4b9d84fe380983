"""A supervisor (管理者) pulls a list and reports the month (issue 14 §4): on 抽出 she builds
two groups of conditions (フリガナ starts with やまだ AND 状態 = 交付通知書発送, OR 生年月日
in a range), previews the hand-counted four cards, chooses and orders the columns, saves the
conditions by name, reruns them from the saved list and exports XLSX (read back with
openpyxl). Then 集計 for the month: bookings and cards, table and SVG chart, the figures
against the history made below through the services, and the A4 landscape print."""
from __future__ import annotations

import io
import os
from datetime import date, datetime

import openpyxl
import pypdfium2
from sqlalchemy import select

from app.clock import JST
from app.models.reservation import CHANNEL_PHONE, CHANNEL_WEB, Slot
from app.services import booking, cards, desk, unit
from tests.e2e.conftest import SCREENSHOTS, shot
from tests.e2e.pages import LoginPage
from tests.factories import card_fields, make_offer, make_storage


def jst(*parts):
    return datetime(*parts, tzinfo=JST)


# name, kana, birth date, the states the card goes through in December 2026
CARDS = [
    ("山田　太郎", "ヤマダ　タロウ", date(1980, 3, 1), ("setup", "notice_sent")),
    ("山田　花子", "ヤマダ　ハナコ", date(1975, 5, 5), ("setup", "notice_sent")),
    ("山田　次郎", "ヤマダ　ジロウ", date(1990, 1, 1), ()),  # 納品 only: not in group 1
    ("鈴木　一郎", "スズキ　イチロウ", date(1960, 7, 7), ("setup", "notice_sent")),
    ("佐藤　花子", "サトウ　ハナコ", date(1963, 2, 2), ("setup",)),
    ("田中　実", "タナカ　ミノル", date(2001, 9, 9), ()),
]
# Group 1 (ヤマダ… and 交付通知書発送): 太郎, 花子. Group 2 (born 1960-01-01..1965-12-31):
# 一郎, 佐藤花子. Either: these four, in the order of registration.
EXPECTED = ["ヤマダ　タロウ", "ヤマダ　ハナコ", "スズキ　イチロウ", "サトウ　ハナコ"]


def _history(app, db, users):
    """December 2026: six cards received on the 2nd, four set up on the 3rd, three notices
    sent on the 4th; four bookings made (2nd: 2, 3rd: 2), one cancelled by staff on the 4th,
    two checked in on the 7th."""
    make_storage(db)
    users.create("clerk", username="kakari_e2e")
    staff = cards.CardActor("kakari_e2e", frozenset({users.role_name("clerk")}))
    made = []
    with unit.transaction(db):
        for name, kana, birth, _steps in CARDS:
            made.append(cards.new_card(db, card_fields(name=name, name_kana=kana,
                                                       birth_date=birth),
                                       now=jst(2026, 12, 2, 9, 30)))
    for state, day in (("setup", 3), ("notice_sent", 4)):
        ids = [c.id for c, row in zip(made, CARDS) if state in row[3]]
        cards.bulk_transition(db, ids, state, actor=staff, now=jst(2026, 12, day, 14))

    offer = make_offer(db)  # Mon-Fri 9:00-17:00, 30 minutes, 2 seats; slots from Dec 1

    def slot(day, hour, minute=0):
        return db.execute(select(Slot).where(Slot.offer_id == offer.id,
                                             Slot.starts_at == jst(2026, 12, day, hour,
                                                                   minute))).scalar_one()

    def book(the_slot, channel, at):
        with app.test_request_context():
            return booking.book(db, the_slot, None, date(1980, 3, 1),
                                booking.Contact(phone="0312345678"), seats=1, staff=True,
                                channel=channel, now=at)

    first = book(slot(7, 10), CHANNEL_PHONE, jst(2026, 12, 2, 9))
    second = book(slot(7, 10, 30), CHANNEL_WEB, jst(2026, 12, 2, 11))
    third = book(slot(8, 10), CHANNEL_PHONE, jst(2026, 12, 3, 9))
    book(slot(9, 11), CHANNEL_WEB, jst(2026, 12, 3, 15))
    booking.cancel(db, third, staff=True, now=jst(2026, 12, 4, 10))
    desk.check_in(db, first, now=jst(2026, 12, 7, 9, 55))
    desk.check_in(db, second, now=jst(2026, 12, 7, 10, 25))
    db.commit()


def _cells(page, testid):
    return page.eval_on_selector_all(
        f"[data-testid={testid}] tr",
        "rows => rows.map(r => Array.from(r.children).map(c => c.innerText.trim()))")


def _labels_apart(page):
    """No two texts of the chart overlap (axis labels, ticks, legend, unit)."""
    boxes = page.eval_on_selector_all(
        "[data-testid=stats-chart] svg > text",
        "ts => ts.map(t => { const r = t.getBoundingClientRect();"
        " return [t.textContent, r.left, r.top, r.right, r.bottom]; })")
    assert boxes
    for i, (a, *ra) in enumerate(boxes):
        for b, *rb in boxes[i + 1:]:
            apart = ra[2] <= rb[0] or rb[2] <= ra[0] or ra[3] <= rb[1] or rb[3] <= ra[1]
            assert apart, (a, ra, b, rb)


def _choose(page, g, c, field, op, value, to=None):
    page.select_option(f"select[name=g{g}_c{c}_field]", field)
    page.select_option(f"select[name=g{g}_c{c}_op]", op)
    page.fill(f"input[name=g{g}_c{c}_value]", value)
    if to is not None:
        page.fill(f"input[name=g{g}_c{c}_to]", to)


def _preview(page):
    page.click("[data-testid=extraction-preview]")
    page.wait_for_selector("[data-testid=extraction-count]")


def _download_xlsx(page, tmp_path):
    """The export: a download straight away, or (a background job) a link that appears
    when the file is ready."""
    button = "[data-testid=extraction-export] button[formaction$='/export/xlsx']"
    try:
        with page.expect_download(timeout=15000) as started:
            page.click(button)
        download = started.value
    except Exception:  # the file is made in the background: its page offers the file
        link = page.wait_for_selector("[data-testid=extraction-job-download] button, "
                                      "[data-testid=extraction-export] a[href], "
                                      "[data-testid=extraction-download] a[href], "
                                      "a[data-testid=extraction-download]", timeout=60000)
        shot(page, "70b-extraction-job-done")
        with page.expect_download(timeout=30000) as started:
            link.click()
        download = started.value
    path = tmp_path / (download.suggested_filename or "extraction.xlsx")
    download.save_as(str(path))
    return path


def test_supervisor_extracts_saves_exports_and_reports_the_month(
        app, db, users, clock, live_server, page_factory, tmp_path):
    _history(app, db, users)
    clock.set(jst(2026, 12, 21, 9))  # the report is made later in the month
    users.create("manager", username="kanri_e2e")
    page = page_factory()
    LoginPage(page, live_server).open().sign_in("kanri_e2e", users.password)

    # --- 抽出: two groups ----------------------------------------------------------------
    page.goto(f"{live_server}/extraction/")
    page.select_option("#subject", "cards")
    _choose(page, 0, 0, "name_kana", "starts", "やまだ")  # hiragana finds katakana
    page.click("fieldset[data-group='0'] [data-add-row]")
    _choose(page, 0, 1, "state", "eq", "交付通知書発送")
    page.select_option("select[name=g0_op]", "and")
    page.click("button[name=add_group]")
    page.wait_for_selector("fieldset[data-group='1']")
    assert page.input_value("input[name=g0_c0_value]") == "やまだ"  # kept across the post
    _choose(page, 1, 0, "birth_date", "range", "1960-01-01", "S40.12.31")
    page.check("input[name=join][value=or]")
    # the columns: フリガナ first, then 生年月日, 状態; the rest off
    for box in page.query_selector_all("input[name=col]"):
        box.uncheck()
    for position, name in enumerate(("name_kana", "birth_date", "state"), start=1):
        page.check(f"#col-{name}")
        page.fill(f"input[name=pos_{name}]", str(position))
    _preview(page)
    assert page.inner_text("[data-testid=extraction-count]") == "4"
    rows = _cells(page, "extraction-rows")
    assert rows[0] == ["フリガナ", "生年月日", "状態"]
    assert [r[0] for r in rows[1:]] == EXPECTED
    assert rows[1][1:] == ["1980-03-01", "交付通知書発送"]
    assert rows[4][1:] == ["1963-02-02", "交付前設定済"]
    assert page.is_checked("input[name=join][value=or]")
    shot(page, "70-extraction-two-groups-preview")
    # what a clerk sees at 1366x768 right after プレビュー (scrolled to the result)
    page.screenshot(path=os.path.join(SCREENSHOTS, "70a-extraction-preview-first-screen.png"))

    # --- save by name, rerun from the saved list -----------------------------------------
    page.fill("#query-name", "ヤマダ通知済と昭和35〜40年生まれ")
    page.click("button[formaction$='/extraction/save-shared']")
    page.wait_for_load_state("networkidle")
    assert "ヤマダ通知済と昭和35〜40年生まれ" in page.inner_text("[data-testid=extraction-saved]")
    page.goto(f"{live_server}/extraction/")
    assert page.query_selector("[data-testid=extraction-count]") is None
    page.click("[data-testid=extraction-saved] a:has-text('ヤマダ通知済と昭和35〜40年生まれ')")
    page.wait_for_selector("fieldset[data-group='1']")
    assert page.input_value("select[name=g1_c0_field]") == "birth_date"
    _preview(page)
    assert page.inner_text("[data-testid=extraction-count]") == "4"
    assert [r[0] for r in _cells(page, "extraction-rows")[1:]] == EXPECTED

    # --- XLSX --------------------------------------------------------------------------
    path = _download_xlsx(page, tmp_path)
    book = openpyxl.load_workbook(io.BytesIO(path.read_bytes()), read_only=True)
    values = [list(r) for r in book.worksheets[0].iter_rows(values_only=True)]
    header = next(i for i, r in enumerate(values) if r[:3] == ["フリガナ", "生年月日", "状態"])
    data = [r[:3] for r in values[header + 1:] if any(v is not None for v in r)]
    assert [r[0] for r in data] == EXPECTED
    assert data[0][2] == "交付通知書発送" and data[3][2] == "交付前設定済"
    born = data[0][1]
    assert (born.date() if isinstance(born, datetime) else born) in (date(1980, 3, 1),
                                                                     "1980-03-01")
    page.goto(f"{live_server}/extraction/")
    page.wait_for_selector("[data-testid=extraction-jobs]")
    shot(page, "70c-extraction-your-exports")

    # --- 集計: the month's bookings ------------------------------------------------------
    page.goto(f"{live_server}/statistics/?subject=bookings")
    page.click(".stats-quick a:has-text('今月')")
    page.wait_for_selector("[data-testid=stats-chart] svg")
    table = {r[0]: r[1:] for r in _cells(page, "stats-table")}
    head = table["期間"]
    assert head[:7] == ["予約", "変更", "取消（住民）", "取消（職員）", "来庁", "遅刻",
                        "不来庁"], head

    def figures(label):
        return [int(v.replace(",", "")) for v in table[label][:7]]

    assert figures("2026/12/02") == [2, 0, 0, 0, 0, 0, 0]
    assert figures("2026/12/03") == [2, 0, 0, 0, 0, 0, 0]
    assert figures("2026/12/04") == [0, 0, 0, 1, 0, 0, 0]
    assert figures("2026/12/07") == [0, 0, 0, 0, 2, 0, 0]
    assert figures("合計") == [4, 0, 0, 1, 2, 0, 0]
    assert figures("2026/12/15") == [0] * 7
    bars = page.eval_on_selector_all("[data-testid=stats-chart] svg rect title",
                                     "ts => ts.map(t => t.textContent)")
    assert sorted(bars) == ["12/02 予約 2", "12/03 予約 2"], bars
    assert page.inner_text("[data-testid=stats-chart] figcaption") == \
        "予約（2026/12/01〜2026/12/31）"
    _labels_apart(page)
    shot(page, "71-statistics-bookings-month")
    page.select_option("#breakdown", "channel")
    page.click(".stats-form button[type=submit]")
    page.wait_for_selector("[data-testid=stats-chart] svg")
    table = {r[0]: r[1:] for r in _cells(page, "stats-table")}
    assert table["期間"] == ["Web", "電話", "合計"]
    assert table["2026/12/02"] == ["1", "1", "2"] and table["2026/12/03"] == ["1", "1", "2"]
    assert table["合計"] == ["2", "2", "4"]
    _labels_apart(page)
    shot(page, "71b-statistics-bookings-by-channel")

    # --- 集計: the month's cards, by day, with the stock -----------------------------------
    page.click(".nav-tabs a:has-text('カード')")
    page.wait_for_selector("[data-testid=stats-chart] svg")
    page.fill("#stock_day", "2026-12-04")
    page.click(".stats-form button[type=submit]")
    page.wait_for_selector("[data-testid=stats-stock-state]")
    table = {r[0]: r[1:] for r in _cells(page, "stats-table")}
    assert table["期間"][:3] == ["納品", "交付前設定", "交付通知書発送"]
    assert [int(v) for v in table["2026/12/02"][:3]] == [6, 0, 0]
    assert [int(v) for v in table["2026/12/03"][:3]] == [0, 4, 0]
    assert [int(v) for v in table["2026/12/04"][:3]] == [0, 0, 3]
    assert [int(v) for v in table["合計"][:3]] == [6, 4, 3]
    stock = {r[0]: r[1] for r in _cells(page, "stats-stock-state")}
    assert stock["納品"] == "2" and stock["交付前設定済"] == "1" and stock["交付通知書発送"] == "3"
    assert stock["合計"] == "6"
    legend = page.text_content("[data-testid=stats-chart] svg")
    assert "納品" in legend and "（件）" in legend
    _labels_apart(page)
    shot(page, "72-statistics-cards-month")

    # --- the print: A4 landscape ----------------------------------------------------------
    page.emulate_media(media="print")
    shot(page, "73-statistics-cards-print")
    pdf = os.path.join(SCREENSHOTS, "73-statistics-cards-print.pdf")
    page.pdf(path=pdf, prefer_css_page_size=True, print_background=True)
    document = pypdfium2.PdfDocument(pdf)
    width, height = document[0].get_size()
    assert abs(width - 841.9) < 3 and abs(height - 595.3) < 3  # A4 landscape in points
    text = "".join(document[i].get_textpage().get_text_range()
                   for i in range(len(document))).replace(" ", "")
    assert "2026/12/02" in text and "集計" in text and "出力日時2026/12/2109:00" in text
    assert text.count("合計") == 2  # the month's total once, and the stock's
    assert page.requests.outside() == []
