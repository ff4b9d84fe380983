"""Issuance fees (issue 13 §2, DOMAIN.md "Fees"): the fee of every case on both sides of a
valid-from date, the fee table's lock, charge/pay/waive/refund as compare-and-sets with
append-only entries, receipt numbers per 年度, and the 日計表's balance and close."""
import io
from datetime import date, datetime

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from app.clock import JST
from app.models.audit import AuditLog
from app.models.fee import DailyClose, FeeEntry, FeeSchedule, ReceiptCounter
from app.models.intake import Intake
from app.services import fees
from app.services.cards import SYSTEM, CardActor
from app.services.errors import DomainError, InputError, NotPermittedError
from tests.factories import make_intake

NOW = datetime(2026, 12, 1, 10, 30, tzinfo=JST)


def seed_fees(db, today=date(2026, 12, 1)):
    """The fee table of DOMAIN.md (the migration's seed; the test database starts empty)."""
    for kind, valid_from, card, cert in (("reissue", date(2016, 1, 1), 800, 200),
                                         ("express", date(2024, 12, 2), 1800, 200)):
        fees.add_row(db, kind=kind, valid_from=valid_from, card_amount=card, cert_amount=cert,
                     actor=SYSTEM, today=today)


@pytest.fixture
def table(app, db):
    seed_fees(db)
    return db


def actor(app, role, name):
    return CardActor(name, frozenset({app.config[f"ROLE_{role.upper()}"]}))


def _quote(db, kind, **kw):
    kw.setdefault("on_day", date(2026, 12, 1))
    return fees.quote(db, kind=kind, **kw)


# --- the fee of every case ------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["new", "renewal", "cert_renewal"])
def test_kinds_that_are_always_free(table, kind):
    q = _quote(table, kind)
    assert (q.amount, q.card_part, q.cert_part) == (0, 0, 0)
    assert q.free_rule == kind and q.free_reason


def test_reissue_with_and_without_certificates(table):
    q = _quote(table, "reissue", reason="lost")
    assert (q.amount, q.card_part, q.cert_part, q.free_rule) == (1000, 800, 200, None)
    assert q.schedule.valid_from == date(2016, 1, 1)
    q = _quote(table, "reissue", reason="lost", wants_cert=False)
    assert (q.amount, q.card_part, q.cert_part) == (800, 800, 0)
    for value in (q.amount, q.card_part, q.cert_part):
        assert type(value) is int  # money is never a float


@pytest.mark.parametrize("reason", ["lost", "damaged", "malfunction", "other"])
def test_reissue_reasons_that_cost_money(table, reason):
    assert _quote(table, "reissue", reason=reason).amount == 1000


@pytest.mark.parametrize("kw,rule", [
    (dict(reason="lost", old_card_expires_on=date(2027, 3, 1)), "expiring"),  # exactly 3 months
    (dict(reason="lost", old_card_expires_on=date(2026, 12, 20)), "expiring"),
    (dict(reason="lost", old_card_expires_on=date(2026, 10, 1)), "expiring"),  # expired
    (dict(reason="disaster"), "disaster"),
    (dict(reason="stolen", holder_not_at_fault=True), "theft"),
    (dict(reason="no_space"), "no_space"),
    (dict(reason="malfunction", official_error=True), "official_error"),
    (dict(reason="lost", official_error=True), "official_error"),
])
def test_free_reissues(table, kw, rule):
    q = _quote(table, "reissue", **kw)
    assert (q.amount, q.free_rule) == (0, rule)
    assert q.free_reason


@pytest.mark.parametrize("kw", [
    dict(reason="lost", old_card_expires_on=date(2027, 3, 2)),  # one day past 3 months
    dict(reason="stolen"),  # stolen, and the holder was at fault
    dict(reason="stolen", holder_not_at_fault=False),
])
def test_reissues_just_outside_the_free_rules(table, kw):
    assert _quote(table, "reissue", **kw).amount == 1000


def test_express_issue(table):
    assert _quote(table, "express").amount == 2000
    assert _quote(table, "express", wants_cert=False).amount == 1800
    # free only on a city/J-LIS error; the other free rules of 再交付 do not apply
    assert _quote(table, "express", official_error=True).amount == 0
    assert _quote(table, "express", old_card_expires_on=date(2026, 12, 20)).amount == 2000


def test_express_issue_did_not_exist_before_its_valid_from(table):
    assert _quote(table, "express", on_day=date(2024, 12, 2)).amount == 2000
    with pytest.raises(InputError) as refused:
        _quote(table, "express", on_day=date(2024, 12, 1))
    assert "手数料表" in str(refused.value.message)


def test_both_sides_of_a_valid_from_date(table):
    fees.add_row(table, kind="reissue", valid_from=date(2027, 4, 1), card_amount=900,
                 cert_amount=300, actor=SYSTEM, today=date(2026, 12, 1))
    assert _quote(table, "reissue", reason="lost", on_day=date(2027, 3, 31)).amount == 1000
    later = _quote(table, "reissue", reason="lost", on_day=date(2027, 4, 1))
    assert (later.amount, later.card_part, later.cert_part) == (1200, 900, 300)


def test_quote_for_an_intake_uses_its_application_day_and_certificates(table):
    intake = make_intake(table, kind="reissue", reissue_reason="lost", wants_sign_cert=False,
                         wants_auth_cert=False)
    assert fees.quote_for(table, intake).amount == 800
    free = make_intake(table, kind="reissue", reissue_reason="lost",
                       old_card_expires_on=date(2027, 2, 28))
    assert fees.quote_for(table, free).free_rule == "expiring"


# --- the fee table --------------------------------------------------------------------------

def test_only_a_supervisor_adds_a_row(table, app):
    with pytest.raises(NotPermittedError):
        fees.add_row(table, kind="reissue", valid_from=date(2027, 4, 1), card_amount=900,
                     cert_amount=200, actor=actor(app, "clerk", "c1"), today=date(2026, 12, 1))
    row = fees.add_row(table, kind="reissue", valid_from=date(2027, 4, 1), card_amount="９００円",
                       cert_amount="200", actor=actor(app, "manager", "m1"),
                       today=date(2026, 12, 1))
    assert row.card_amount == 900 and type(row.card_amount) is int


@pytest.mark.parametrize("card,field", [("-1", "card_amount"), ("1.5", "card_amount"),
                                        ("abc", "card_amount"), ("", "card_amount")])
def test_amounts_are_whole_yen_not_negative(table, card, field):
    with pytest.raises(fees.FeeFieldError) as refused:
        fees.add_row(table, kind="reissue", valid_from=date(2027, 4, 1), card_amount=card,
                     cert_amount=200, actor=SYSTEM, today=date(2026, 12, 1))
    assert refused.value.field == field and "円" in str(refused.value.message)
    assert table.execute(select(func.count(FeeSchedule.id))).scalar() == 2


def test_a_used_row_is_never_edited_or_deleted(table, app):
    manager = actor(app, "manager", "m1")
    intake = make_intake(table, kind="reissue", reissue_reason="lost")
    row = fees.schedule_row(table, "reissue", date(2026, 12, 1))
    express = fees.schedule_row(table, "express", date(2026, 12, 1))
    fees.charge(table, intake, actor=SYSTEM, venue_id=intake.venue_id, now=NOW)
    with pytest.raises(fees.FeeTableLockedError):
        fees.change_row(table, row, actor=manager, today=date(2026, 12, 1), card_amount=700)
    table.rollback()
    with pytest.raises(fees.FeeTableLockedError):
        fees.delete_row(table, row, actor=manager, today=date(2026, 12, 1))
    assert table.get(FeeSchedule, row.id).card_amount == 800
    # a row nobody used yet may still be corrected; a past date that would re-price
    # charged applications is refused
    fees.change_row(table, express, actor=manager, today=date(2026, 12, 1), cert_amount=250)
    with pytest.raises(fees.FeeFieldError) as refused:
        fees.add_row(table, kind="reissue", valid_from=date(2026, 11, 1), card_amount=900,
                     cert_amount=200, actor=manager, today=date(2026, 12, 1))
    assert refused.value.field == "valid_from"
    fees.add_row(table, kind="reissue", valid_from=date(2026, 12, 2), card_amount=900,
                 cert_amount=200, actor=manager, today=date(2026, 12, 1))


# --- charge, pay, waive, refund -------------------------------------------------------------

def _reissue(db, **kw):
    kw.setdefault("reissue_reason", "lost")
    return make_intake(db, kind="reissue", **kw)


def _entries(db, intake_id):
    db.expire_all()
    return db.execute(select(FeeEntry).where(FeeEntry.intake_id == intake_id)
                      .order_by(FeeEntry.id)).scalars().all()


def test_charge_then_pay_in_cash(table):
    intake = _reissue(table)
    charged = fees.charge(table, intake, actor=SYSTEM, venue_id=intake.venue_id, now=NOW)
    assert (charged.entry_type, charged.amount, charged.standard_amount) == ("charge", 1000, 1000)
    paid = fees.pay(table, intake, actor=SYSTEM, venue_id=intake.venue_id, now=NOW,
                    tendered="５，０００", method="cash")
    assert (paid.amount, paid.tendered, paid.change_due) == (1000, 5000, 4000)
    assert paid.receipt_number == "2026-000001" and paid.fiscal_year == 2026
    for value in (paid.amount, paid.tendered, paid.change_due, paid.receipt_seq):
        assert type(value) is int
    table.expire_all()
    assert table.get(Intake, intake.id).fee_state == "paid"


def test_cashless_takes_exactly_the_amount(table):
    intake = _reissue(table)
    fees.charge(table, intake, actor=SYSTEM, venue_id=intake.venue_id, now=NOW)
    paid = fees.pay(table, intake, actor=SYSTEM, venue_id=intake.venue_id, now=NOW,
                    tendered="9999", method="cashless")
    assert (paid.tendered, paid.change_due, paid.method) == (1000, 0, "cashless")


def test_too_little_money_is_refused_and_nothing_changes(table):
    intake = _reissue(table)
    fees.charge(table, intake, actor=SYSTEM, venue_id=intake.venue_id, now=NOW)
    with pytest.raises(fees.FeeFieldError) as refused:
        fees.pay(table, intake, actor=SYSTEM, venue_id=intake.venue_id, now=NOW,
                 tendered="500", method="cash")
    assert refused.value.field == "tendered"
    assert [e.entry_type for e in _entries(table, intake.id)] == ["charge"]
    assert table.execute(select(func.coalesce(func.max(ReceiptCounter.last), 0))).scalar() == 0


def test_a_different_amount_needs_a_reason_and_keeps_the_table_amount(table):
    intake = _reissue(table)
    with pytest.raises(fees.FeeFieldError) as refused:
        fees.charge(table, intake, actor=SYSTEM, venue_id=intake.venue_id, now=NOW, amount=800)
    assert refused.value.field == "override_reason"
    assert _entries(table, intake.id) == []
    entry = fees.charge(table, intake, actor=SYSTEM, venue_id=intake.venue_id, now=NOW,
                        amount="800", override_reason="電子証明書は不要と申出")
    assert (entry.amount, entry.standard_amount, entry.override_reason) == (
        800, 1000, "電子証明書は不要と申出")


def test_a_free_application_is_waived_with_the_rule_as_reason(table):
    intake = make_intake(table, kind="reissue", reissue_reason="disaster")
    entry = fees.charge(table, intake, actor=SYSTEM, venue_id=intake.venue_id, now=NOW)
    assert (entry.entry_type, entry.amount) == ("waiver", 0)
    assert entry.reason == str(fees.FREE_LABELS["disaster"])
    table.expire_all()
    assert table.get(Intake, intake.id).fee_state == "waived"


def test_waive_a_charge_needs_a_reason(table):
    intake = _reissue(table)
    fees.charge(table, intake, actor=SYSTEM, venue_id=intake.venue_id, now=NOW)
    with pytest.raises(fees.FeeFieldError):
        fees.waive(table, intake, actor=SYSTEM, venue_id=intake.venue_id, now=NOW, reason=" ")
    fees.waive(table, intake, actor=SYSTEM, venue_id=intake.venue_id, now=NOW,
               reason="生活保護受給")
    assert [e.entry_type for e in _entries(table, intake.id)] == ["charge", "waiver"]


def test_states_are_compare_and_set(table):
    intake = _reissue(table)
    with pytest.raises(DomainError):
        fees.pay(table, intake, actor=SYSTEM, venue_id=intake.venue_id, now=NOW,
                 tendered=1000)
    fees.charge(table, intake, actor=SYSTEM, venue_id=intake.venue_id, now=NOW)
    stale = table.get(Intake, intake.id)
    with pytest.raises(fees.FeeStateError):
        fees.charge(table, stale, actor=SYSTEM, venue_id=intake.venue_id, now=NOW)
    assert [e.entry_type for e in _entries(table, intake.id)] == ["charge"]


def test_refund_is_a_new_negative_entry_by_a_supervisor(table, app):
    intake = _reissue(table)
    fees.charge(table, intake, actor=SYSTEM, venue_id=intake.venue_id, now=NOW)
    payment = fees.pay(table, intake, actor=SYSTEM, venue_id=intake.venue_id, now=NOW,
                       tendered=1000)
    before = {c: getattr(payment, c) for c in ("amount", "receipt_number", "tendered", "method")}
    with pytest.raises(NotPermittedError):
        fees.refund(table, payment, actor=actor(app, "clerk", "c1"), venue_id=intake.venue_id,
                    now=NOW, reason="二重徴収")
    with pytest.raises(fees.FeeFieldError):
        fees.refund(table, payment, actor=actor(app, "manager", "m1"),
                    venue_id=intake.venue_id, now=NOW, reason="")
    back = fees.refund(table, payment, actor=actor(app, "manager", "m1"),
                       venue_id=intake.venue_id, now=NOW, reason="二重徴収")
    assert (back.amount, back.refund_of_id, back.method, back.clerk) == (
        -1000, payment.id, "cash", "m1")
    entries = _entries(table, intake.id)
    assert [e.entry_type for e in entries] == ["charge", "payment", "refund"]
    assert {c: getattr(entries[1], c) for c in before} == before
    assert table.get(Intake, intake.id).fee_state == "refunded"
    # the payment was audited as created, never as updated or deleted
    changed = table.execute(select(func.count(AuditLog.id)).where(
        AuditLog.target_table == "fee_entry", AuditLog.target_id == str(payment.id),
        AuditLog.action.in_(("update", "delete")))).scalar()
    assert changed == 0


def test_clerk_and_viewer_roles(table, app):
    intake = _reissue(table)
    with pytest.raises(NotPermittedError):
        fees.charge(table, intake, actor=actor(app, "viewer", "v1"), venue_id=intake.venue_id,
                    now=NOW)
    entry = fees.charge(table, intake, actor=actor(app, "clerk", "c1"),
                        venue_id=intake.venue_id, now=NOW)
    assert entry.clerk == "c1"


# --- receipt numbers ------------------------------------------------------------------------

def _paid(db, when):
    intake = _reissue(db, taken_at=when)
    fees.charge(db, intake, actor=SYSTEM, venue_id=intake.venue_id, now=when)
    return fees.pay(db, intake, actor=SYSTEM, venue_id=intake.venue_id, now=when, tendered=1000)


def test_receipt_numbers_restart_on_the_first_of_april(table):
    first = _paid(table, datetime(2027, 3, 31, 16, 0, tzinfo=JST))
    second = _paid(table, datetime(2027, 3, 31, 16, 30, tzinfo=JST))
    april = _paid(table, datetime(2027, 4, 1, 9, 0, tzinfo=JST))
    assert [first.receipt_number, second.receipt_number, april.receipt_number] == [
        "2026-000001", "2026-000002", "2027-000001"]
    assert fees.fiscal_year(date(2027, 3, 31)) == 2026
    assert fees.fiscal_year(date(2027, 4, 1)) == 2027


def test_a_refused_payment_gives_its_number_back(table):
    intake = _reissue(table)
    fees.charge(table, intake, actor=SYSTEM, venue_id=intake.venue_id, now=NOW)
    fees.close_day(table, venue_id=intake.venue_id, clerk="system", day=NOW.date(),
                   counted_cash=0, explanation=None, actor=SYSTEM, now=NOW)
    with pytest.raises(fees.DayClosedError):
        fees.pay(table, intake, actor=SYSTEM, venue_id=intake.venue_id, now=NOW, tendered=1000)
    later = datetime(2026, 12, 2, 9, 0, tzinfo=JST)
    assert fees.pay(table, intake, actor=SYSTEM, venue_id=intake.venue_id, now=later,
                    tendered=1000).receipt_seq == 1


def test_print_counts_the_original_and_reprints(table):
    payment = _paid(table, NOW)
    assert fees.record_receipt_print(table, payment, actor=SYSTEM, paper="A5") == 1
    assert fees.record_receipt_print(table, payment, actor=SYSTEM, paper="A4") == 2
    prints = table.execute(select(AuditLog).where(AuditLog.action == "print",
                                                  AuditLog.target_table == "fee_entry")
                           .order_by(AuditLog.id)).scalars().all()
    assert len(prints) == 2 and '"reissue": true' in prints[1].changes


# --- 日計表 and 月計表 -----------------------------------------------------------------------

def test_daily_sheet_balances_and_an_unbalanced_day_needs_an_explanation(table, app):
    clerk = actor(app, "clerk", "c1")
    manager = actor(app, "manager", "m1")
    a, b, c = _reissue(table), _reissue(table), make_intake(table, kind="express")
    venue = a.venue_id
    for intake in (a, b, c):
        fees.charge(table, intake, actor=clerk, venue_id=venue, now=NOW)
    pa = fees.pay(table, a, actor=clerk, venue_id=venue, now=NOW, tendered=1000)
    fees.pay(table, b, actor=clerk, venue_id=venue, now=NOW, tendered=2000)
    fees.pay(table, c, actor=clerk, venue_id=venue, now=NOW, method="cashless")
    fees.refund(table, pa, actor=manager, venue_id=venue, now=NOW, reason="取下げ")
    sheet = fees.daily_sheet(table, fees.get_venue(table, venue), NOW.date())
    c1 = next(x for x in sheet.clerks if x.clerk == "c1")
    m1 = next(x for x in sheet.clerks if x.clerk == "m1")
    assert (c1.cash_in, c1.cashless_in, c1.expected_cash, c1.cashless) == (2000, 2000, 2000, 2000)
    assert (m1.cash_out, m1.expected_cash) == (1000, -1000)
    assert sheet.total == 3000 and type(sheet.total) is int
    with pytest.raises(fees.FeeFieldError) as refused:
        fees.close_day(table, venue_id=venue, clerk="c1", day=NOW.date(), counted_cash="1,900",
                       explanation="", actor=clerk, now=NOW)
    assert refused.value.field == "explanation" and "100円" in str(refused.value.message)
    assert table.execute(select(func.count(DailyClose.id))).scalar() == 0
    with pytest.raises(NotPermittedError):  # a clerk closes only their own day
        fees.close_day(table, venue_id=venue, clerk="m1", day=NOW.date(), counted_cash=0,
                       explanation="x", actor=clerk, now=NOW)
    close = fees.close_day(table, venue_id=venue, clerk="c1", day=NOW.date(),
                           counted_cash="1,900", explanation="釣銭の渡し過ぎ", actor=clerk, now=NOW)
    assert (close.expected_cash, close.counted_cash, close.difference) == (2000, 1900, -100)
    # the manager's refund came out of their drawer: expected cash is -1,000
    with pytest.raises(fees.FeeFieldError):
        fees.close_day(table, venue_id=venue, clerk="m1", day=NOW.date(), counted_cash=0,
                       explanation=None, actor=manager, now=NOW)
    refunded = fees.close_day(table, venue_id=venue, clerk="m1", day=NOW.date(),
                              counted_cash=0, explanation="還付金は釣銭準備金から支払",
                              actor=manager, now=NOW)
    assert refunded.difference == 1000


def test_a_closed_day_refuses_new_entries(table, app):
    clerk = actor(app, "clerk", "c1")
    a, b = _reissue(table), _reissue(table)
    fees.charge(table, a, actor=clerk, venue_id=a.venue_id, now=NOW)
    fees.charge(table, b, actor=clerk, venue_id=a.venue_id, now=NOW)
    fees.pay(table, a, actor=clerk, venue_id=a.venue_id, now=NOW, tendered=1000)
    fees.close_day(table, venue_id=a.venue_id, clerk="c1", day=NOW.date(), counted_cash=1000,
                   explanation=None, actor=clerk, now=NOW)
    with pytest.raises(fees.DayClosedError):
        fees.pay(table, b, actor=clerk, venue_id=a.venue_id, now=NOW, tendered=1000)
    with pytest.raises(fees.DayClosedError):
        fees.close_day(table, venue_id=a.venue_id, clerk="c1", day=NOW.date(),
                       counted_cash=1000, explanation=None, actor=clerk, now=NOW)
    tomorrow = datetime(2026, 12, 2, 9, 0, tzinfo=JST)
    assert fees.pay(table, b, actor=clerk, venue_id=a.venue_id, now=tomorrow,
                    tendered=1000).business_day == date(2026, 12, 2)


def test_monthly_sheet_and_workbooks(table, app):
    clerk = actor(app, "clerk", "c1")
    for day in (1, 1, 3):
        when = datetime(2026, 12, day, 11, 0, tzinfo=JST)
        intake = _reissue(table, taken_at=when)
        fees.charge(table, intake, actor=clerk, venue_id=intake.venue_id, now=when)
        fees.pay(table, intake, actor=clerk, venue_id=intake.venue_id, now=when, tendered=1000)
    venue = fees.get_venue(table, intake.venue_id)
    month = fees.monthly_sheet(table, venue, date(2026, 12, 1))
    assert [(r.day.day, r.payments, r.cash) for r in month.rows] == [(1, 2, 2000), (3, 1, 1000)]
    assert month.by_kind == {"reissue": [3, 3000]} and month.total == 3000
    book = load_workbook(io.BytesIO(fees.monthly_xlsx(month)))
    sheet = book.active
    assert sheet["A3"].value == "日付" and sheet["D4"].value == 2000
    daily = load_workbook(io.BytesIO(fees.daily_xlsx(
        fees.daily_sheet(table, venue, date(2026, 12, 1))))).active
    assert daily["A3"].value == "担当職員" and daily["C4"].value == "2026-000001"
    assert daily["C4"].data_type == "s" and daily["D4"].data_type == "s"
    assert daily["H4"].value == 1000 and daily["H4"].data_type == "n"
    assert "佐藤" not in str([[c.value for c in row] for row in daily.iter_rows()])
    today = fees.fees_today(table, date(2026, 12, 1))
    assert [(v.payments, v.amount) for v in today] == [(2, 2000)]
