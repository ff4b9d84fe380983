"""The fee screens (issue 13 §2): the intake's fee panel and its forms, the receipt, the
日計表 and its close, the 月計表, the XLSX downloads and the fee table; each refused value
at its field with nothing saved, roles at the route and in the service, audit names the
actor, and a GET never writes."""
import io
import re
from datetime import date, datetime

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from app.clock import JST
from app.models.audit import AuditLog
from app.models.fee import DailyClose, FeeEntry, FeeSchedule
from app.models.intake import Intake
from app.services import fees
from app.services.cards import SYSTEM
from tests.conftest import login, text_of
from tests.factories import make_intake
from tests.unit.test_fees import seed_fees

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=JST)


@pytest.fixture
def reissue(app, db):
    seed_fees(db)
    return make_intake(db, kind="reissue", reissue_reason="lost")


@pytest.fixture
def signed_in(app, users):
    """signed_in(role) -> a client of its own for a new user of that role."""
    def make(role, username=None):
        user = users.create(role, username=username)
        client = app.test_client()
        assert login(client, user.username, users.password).status_code == 302
        return client
    return make


def _count(db, model):
    db.expire_all()
    return db.execute(select(func.count()).select_from(model)).scalar()


def _field_error(html, field):
    match = re.search(rf'data-testid="fee-error-{field}">([^<]*)<', html)
    return match.group(1) if match else None


def _charge(db, intake):
    return fees.charge(db, intake, actor=SYSTEM, venue_id=intake.venue_id, now=NOW)


def _pay(db, intake):
    _charge(db, intake)
    return fees.pay(db, intake, actor=SYSTEM, venue_id=intake.venue_id, now=NOW, tendered=1000)


# --- the panel ------------------------------------------------------------------------------

def test_panel_shows_the_fee_and_the_charge_form(login_as, reissue):
    page = login_as("clerk").get(f"/fees/intake/{reissue.id}")
    assert page.status_code == 200
    text = text_of(page)
    assert "1,000円" in text and "カード 800円 ＋ 電子証明書 200円" in text
    assert 'data-testid="fee-charge"' in page.get_data(as_text=True)


def test_charge_pay_and_print_through_the_screens(login_as, reissue, db):
    client = login_as("clerk", username="c1")
    back = f"/fees/intake/{reissue.id}"
    response = client.post(f"/fees/intake/{reissue.id}/charge",
                           data={"venue_id": reissue.venue_id, "next": back})
    assert response.status_code == 302 and response.headers["Location"].endswith(back)
    response = client.post(f"/fees/intake/{reissue.id}/pay",
                           data={"venue_id": reissue.venue_id, "method": "cash",
                                 "tendered": "１，０００"})
    assert response.status_code == 302
    payment = db.execute(select(FeeEntry).where(FeeEntry.entry_type == "payment")).scalar_one()
    assert (payment.amount, payment.clerk, payment.receipt_number) == (1000, "c1", "2026-000001")
    # audit names the actor
    rows = db.execute(select(AuditLog.username).where(AuditLog.target_table == "fee_entry",
                                                      AuditLog.action == "create")).scalars().all()
    assert rows and set(rows) == {"c1"}
    # the receipt: the original, then 再発行
    first = client.post(f"/fees/receipt/{payment.id}", data={"paper": "A5"})
    html = first.get_data(as_text=True)
    assert first.status_code == 200 and "size: A5" in html
    assert "2026-000001" in html and "1,000円" in html and "再発行" not in html
    assert "令和8年12月1日" in html and "2026-12-01" in html and "佐藤　花子 様" in html
    again = client.post(f"/fees/receipt/{payment.id}", data={"paper": "A4"}).get_data(as_text=True)
    assert "再発行" in again and "size: A4" in again
    prints = db.execute(select(AuditLog).where(AuditLog.action == "print")).scalars().all()
    assert [p.username for p in prints] == ["c1", "c1"]


def test_too_little_money_is_shown_at_its_field_and_nothing_is_saved(login_as, reissue, db):
    _charge(db, reissue)
    client = login_as("clerk")
    response = client.post(f"/fees/intake/{reissue.id}/pay",
                           data={"venue_id": reissue.venue_id, "method": "cash",
                                 "tendered": "500"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "預り金（500円）が手数料（1,000円）より少なく" in _field_error(html, "tendered")
    assert 'value="500"' in html  # what was typed stays
    assert _count(db, FeeEntry) == 1 and db.get(Intake, reissue.id).fee_state == "charged"


@pytest.mark.parametrize("data,field,words", [
    ({"amount": "800"}, "override_reason", "違う理由"),
    ({"amount": "12.5"}, "amount", "整数"),
    ({"amount": "-1"}, "amount", "整数"),
])
def test_charge_form_messages_at_their_fields(login_as, reissue, db, data, field, words):
    response = login_as("clerk").post(f"/fees/intake/{reissue.id}/charge",
                                      data={"venue_id": reissue.venue_id, **data})
    assert response.status_code == 200
    assert words in (_field_error(response.get_data(as_text=True), field) or "")
    assert _count(db, FeeEntry) == 0 and db.get(Intake, reissue.id).fee_state == "none"


def test_waive_and_refund_reasons_at_their_fields(login_as, signed_in, reissue, db):
    _charge(db, reissue)
    response = login_as("clerk").post(f"/fees/intake/{reissue.id}/waive",
                                      data={"venue_id": reissue.venue_id, "reason": ""})
    assert "免除の理由" in _field_error(response.get_data(as_text=True), "reason")
    fees.pay(db, reissue, actor=SYSTEM, venue_id=reissue.venue_id, now=NOW, tendered=1000)
    payment = db.execute(select(FeeEntry).where(FeeEntry.entry_type == "payment")).scalar_one()
    response = signed_in("manager").post(f"/fees/refund/{payment.id}",
                                         data={"venue_id": reissue.venue_id,
                                               "refund_reason": ""})
    assert "還付の理由" in _field_error(response.get_data(as_text=True), "refund_reason")
    assert _count(db, FeeEntry) == 2


def test_a_clerk_cannot_refund_at_the_route_or_in_the_service(signed_in, reissue, db, app):
    payment = _pay(db, reissue)
    clerk = signed_in("clerk")
    response = clerk.post(f"/fees/refund/{payment.id}",
                          data={"venue_id": reissue.venue_id,
                                "refund_reason": "誤収納"})
    assert response.status_code in (302, 403)
    assert _count(db, FeeEntry) == 2
    page = clerk.get(f"/fees/intake/{reissue.id}").get_data(as_text=True)
    assert 'data-testid="fee-refund"' not in page and 'data-testid="fee-print"' in page
    manager = signed_in("manager", username="m1")
    assert 'data-testid="fee-refund"' in manager.get(f"/fees/intake/{reissue.id}").get_data(
        as_text=True)
    response = manager.post(f"/fees/refund/{payment.id}",
                            data={"venue_id": reissue.venue_id,
                                  "refund_reason": "誤収納"})
    assert response.status_code == 302
    refund = db.execute(select(FeeEntry).where(FeeEntry.entry_type == "refund")).scalar_one()
    assert (refund.amount, refund.clerk, refund.refund_of_id) == (-1000, "m1", payment.id)


def test_a_viewer_cannot_pay_or_see_the_panel(login_as, reissue, db):
    _charge(db, reissue)
    viewer = login_as("viewer")
    assert viewer.get(f"/fees/intake/{reissue.id}").status_code in (302, 403)
    response = viewer.post(f"/fees/intake/{reissue.id}/pay",
                           data={"venue_id": reissue.venue_id, "method": "cashless"})
    assert response.status_code in (302, 403)
    assert _count(db, FeeEntry) == 1


def test_gets_never_write(login_as, reissue, db, no_writes):
    payment = _pay(db, reissue)
    client = login_as("manager")
    with no_writes("fee screens"):
        for url in (f"/fees/intake/{reissue.id}", "/fees/daily", "/fees/monthly",
                    "/feeschedulemodelview/list/", f"/fees/receipt/{payment.id}"):
            assert client.get(url).status_code in (200, 405), url
    assert db.get(FeeEntry, payment.id).printed_count == 0


# --- 日計表 and 月計表 -----------------------------------------------------------------------

def test_daily_sheet_difference_in_red_and_explanation_required(login_as, reissue, db):
    client = login_as("clerk", username="c1")
    client.post(f"/fees/intake/{reissue.id}/charge", data={"venue_id": reissue.venue_id})
    client.post(f"/fees/intake/{reissue.id}/pay", data={"venue_id": reissue.venue_id,
                                                        "method": "cash", "tendered": "1000"})
    page = client.get(f"/fees/daily?venue={reissue.venue_id}&day=2026-12-01")
    assert "2026-000001" in page.get_data(as_text=True)
    assert "佐藤" not in page.get_data(as_text=True)  # no resident's name on the sheet
    form = {"venue": reissue.venue_id, "day": "2026-12-01", "clerk": "c1",
            "counted_cash": "900", "explanation": ""}
    refused = client.post("/fees/daily/close", data=form)
    html = refused.get_data(as_text=True)
    assert refused.status_code == 200
    assert "差額の理由を入力" in _field_error(html, "explanation")
    assert re.search(r'class="fee-difference"[^>]*>[^<]*-100円', html)
    assert _count(db, DailyClose) == 0
    form["explanation"] = "釣銭誤り"
    assert client.post("/fees/daily/close", data=form).status_code == 302
    closed = client.get(f"/fees/daily?venue={reissue.venue_id}&day=2026-12-01")
    assert re.search(r'class="fee-difference"[^>]*>-100円', closed.get_data(as_text=True))
    # a closed day refuses a payment at the screen too
    other = make_intake(db, kind="reissue", reissue_reason="lost")
    client.post(f"/fees/intake/{other.id}/charge", data={"venue_id": reissue.venue_id})
    assert _count(db, FeeEntry) == 2  # the charge, too, is refused on a closed day


def test_counted_cash_message_at_its_field(login_as, reissue, db):
    client = login_as("clerk", username="c1")
    response = client.post("/fees/daily/close", data={
        "venue": reissue.venue_id, "day": "2026-12-01", "clerk": "c1", "counted_cash": "abc"})
    assert response.status_code == 200
    assert "整数" in _field_error(response.get_data(as_text=True), "counted_cash")
    assert _count(db, DailyClose) == 0


def test_viewer_reads_the_sheets_but_cannot_download_or_close(login_as, reissue, db):
    _pay(db, reissue)
    viewer = login_as("viewer")
    daily = viewer.get(f"/fees/daily?venue={reissue.venue_id}&day=2026-12-01")
    assert daily.status_code == 200
    html = daily.get_data(as_text=True)
    assert "fee-daily-xlsx" not in html and "fee-close-form" not in html
    assert viewer.get(f"/fees/daily.xlsx?venue={reissue.venue_id}").status_code in (302, 403)
    assert viewer.get("/fees/monthly").status_code == 200
    assert viewer.get(f"/fees/monthly.xlsx?venue={reissue.venue_id}").status_code in (302, 403)


def test_downloads_are_xlsx_and_audited_as_exports(login_as, reissue, db):
    _pay(db, reissue)
    client = login_as("clerk", username="c1")
    response = client.get(f"/fees/daily.xlsx?venue={reissue.venue_id}&day=2026-12-01")
    assert response.status_code == 200 and response.mimetype.endswith("spreadsheetml.sheet")
    sheet = load_workbook(io.BytesIO(response.data)).active
    assert sheet["C4"].value == "2026-000001" and sheet["H4"].value == 1000
    response = client.get(f"/fees/monthly.xlsx?venue={reissue.venue_id}&month=2026-12")
    assert load_workbook(io.BytesIO(response.data)).active["F4"].value == 1000
    exports = db.execute(select(AuditLog.username).where(AuditLog.action == "export")).scalars().all()
    assert exports == ["c1", "c1"]


def test_monthly_sheet_on_screen(login_as, reissue, db):
    _pay(db, reissue)
    page = login_as("manager").get(f"/fees/monthly?venue={reissue.venue_id}&month=2026-12")
    text = text_of(page)
    assert "2026-12-01" in text and "再交付" in text and "1,000円" in text


# --- the fee table --------------------------------------------------------------------------

def test_fee_table_add_with_messages_at_fields(login_as, app, db):
    seed_fees(db)
    client = login_as("manager")
    response = client.post("/feeschedulemodelview/add", data={
        "kind": "reissue", "valid_from": "2027-04-01", "card_amount": "八百",
        "cert_amount": "", "note": ""})
    html = response.get_data(as_text=True)
    assert "金額は円単位の整数で入力してください。" in html
    assert "金額（円）を入力してください。" in html
    assert _count(db, FeeSchedule) == 2
    response = client.post("/feeschedulemodelview/add", data={
        "kind": "reissue", "valid_from": "R9.4.1", "card_amount": "900", "cert_amount": "200",
        "note": ""})
    assert response.status_code == 302
    assert fees.schedule_row(db, "reissue", date(2027, 4, 1)).card_amount == 900


def test_a_used_fee_row_cannot_be_edited_or_deleted_on_screen(login_as, reissue, db):
    _charge(db, reissue)
    row = fees.schedule_row(db, "reissue", date(2026, 12, 1))
    client = login_as("manager")
    edit = client.post(f"/feeschedulemodelview/edit/{row.id}", data={
        "kind": "reissue", "valid_from": "2016-01-01", "card_amount": "700",
        "cert_amount": "200", "note": ""}, follow_redirects=True)
    assert "すでに適用されているため" in edit.get_data(as_text=True)
    db.expire_all()
    assert db.get(FeeSchedule, row.id).card_amount == 800
    page = client.post(f"/feeschedulemodelview/delete/{row.id}", follow_redirects=True)
    assert "すでに適用されているため" in page.get_data(as_text=True)
    assert db.get(FeeSchedule, row.id) is not None


def test_clerk_reads_the_fee_table_but_cannot_add(login_as, app, db):
    seed_fees(db)
    client = login_as("clerk")
    assert client.get("/feeschedulemodelview/list/").status_code == 200
    assert client.get("/feeschedulemodelview/add").status_code in (302, 403)


def test_the_receipt_and_panel_forms_are_all_japanese(login_as, reissue, db):
    from tests.unit.test_catalogue import glossary_offences
    from tests.web.test_no_english import english_leftovers, visible_text

    payment = _pay(db, reissue)
    client = login_as("clerk")
    for _n in range(2):  # the original and a reprint
        html = client.post(f"/fees/receipt/{payment.id}", data={"paper": "A5"}).get_data(
            as_text=True)
        assert not english_leftovers(html)
        assert not glossary_offences(visible_text(html))
    other = make_intake(db, kind="reissue", reissue_reason="lost")
    _charge(db, other)
    html = client.get(f"/fees/intake/{other.id}").get_data(as_text=True)
    assert 'data-testid="fee-pay"' in html and 'data-testid="fee-waive"' in html
    assert not english_leftovers(html) and not glossary_offences(visible_text(html))
