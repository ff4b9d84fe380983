"""Fees after an outside review (issue 13 §2): no money on a withdrawn application and no
withdrawal while money is open, a wrong charge corrected by new entries, no closing ahead
of the day, a refunded payment's reprint says so, the fee's inputs frozen while money is
open, and only ASCII digits in an application ID."""
from datetime import timedelta

import pytest

from app.models.fee import FeeEntry
from app.services import fees, intake
from app.services.cards import SYSTEM
from app.services.errors import DomainError, InputError
from tests.unit.test_fees import NOW, _reissue, actor, table  # noqa: F401 (fixture)


def _pay(db, application, tendered=1000):
    fees.charge(db, application, actor=SYSTEM, venue_id=application.venue_id, now=NOW)
    return fees.pay(db, application, actor=SYSTEM, venue_id=application.venue_id, now=NOW,
                    tendered=tendered)


def test_no_money_is_charged_or_taken_on_a_withdrawn_application(table, app):
    application = _reissue(table)
    intake.withdraw(table, application, "本人の申出", actor=SYSTEM, now=NOW)
    with pytest.raises(DomainError, match="取下げ"):
        fees.charge(table, application, actor=SYSTEM, venue_id=application.venue_id, now=NOW)
    assert table.query(FeeEntry).count() == 0
    panel = fees.panel(table, application)
    assert not (panel.can_charge or panel.can_pay)


def test_an_application_with_money_open_is_not_withdrawn_until_refunded(table, app):
    application = _reissue(table)
    payment = _pay(table, application)
    with pytest.raises(DomainError, match="還付"):
        intake.withdraw(table, application, "本人の申出", actor=SYSTEM, now=NOW)
    table.refresh(application)
    assert application.state == "accepted"
    fees.refund(table, payment, actor=actor(app, "manager", "m1"),
                venue_id=application.venue_id, now=NOW, reason="申請の取下げ")
    intake.withdraw(table, application, "本人の申出", actor=SYSTEM, now=NOW)
    table.refresh(application)
    assert application.state == "withdrawn"


def test_a_wrong_charge_is_corrected_by_new_entries(table, app):
    application = _reissue(table)
    fees.charge(table, application, actor=SYSTEM, venue_id=application.venue_id, now=NOW,
                amount=1500, override_reason="誤入力")
    first = fees.pay(table, application, actor=SYSTEM, venue_id=application.venue_id, now=NOW,
                     tendered=1500)
    fees.refund(table, first, actor=actor(app, "manager", "m1"),
                venue_id=application.venue_id, now=NOW, reason="金額の誤り")
    fees.charge(table, application, actor=SYSTEM, venue_id=application.venue_id, now=NOW)
    second = fees.pay(table, application, actor=SYSTEM, venue_id=application.venue_id,
                      now=NOW, tendered=1000)
    kinds = [e.entry_type for e in fees.entries_of(table, application.id)]
    assert kinds == ["charge", "payment", "refund", "charge", "payment"]
    assert (first.receipt_seq, second.receipt_seq, second.amount) == (1, 2, 1000)
    receipt = fees.receipt(table, first, 2)
    assert receipt.refund is not None and receipt.refund.amount == -1500


def test_a_day_is_not_closed_ahead_of_it(table, app):
    application = _reissue(table)
    with pytest.raises(DomainError, match="先の日付"):
        fees.close_day(table, venue_id=application.venue_id, clerk="system",
                       day=(NOW + timedelta(days=1)).date(), counted_cash="0",
                       explanation=None, actor=SYSTEM, now=NOW)


def test_the_fee_inputs_do_not_change_while_money_is_open(table, app):
    application = _reissue(table, identity_check='{"identity": "one_a", "collector": "self"}')
    _pay(table, application)
    values = intake.values_of(application)
    values["reissue_reason"] = "disaster"  # would make it free
    _clean, problems = intake.check(table, values, intake_id=application.id)
    assert "還付" in problems["reissue_reason"]
    values = intake.values_of(application)
    values["address"] = "みどり市中央9-9-9"  # anything else may change
    _clean, problems = intake.check(table, values, intake_id=application.id)
    assert problems == {}


@pytest.mark.parametrize("typed", ["١٢٣٤٥٦٧٨٩٠١٢٣٤٥٦٧٨٩٠١٢٣", "１２３４５６７８９０１２３４５６７８９０１２３"])
def test_an_application_id_is_ascii_digits_after_normalising(typed):
    from app.services import japanese

    if typed.startswith("١"):
        with pytest.raises(InputError):
            japanese.parse_application_id(typed)
    else:
        assert japanese.parse_application_id(typed) == "12345678901234567890123"


def test_a_corrected_application_id_follows_its_card(table, app):
    from tests.factories import make_card

    card = make_card(table, state="handed_over")
    application = make_intake_with_check(table)
    values = intake.values_of(application)
    values["application_id"] = card.application_id
    intake.update_intake(table, application, values, actor=SYSTEM)
    table.refresh(application)
    assert application.state == "handed_over" and application.card.id == card.id


def make_intake_with_check(db):
    from tests.factories import make_intake

    return make_intake(db, identity_check='{"identity": "one_a", "collector": "self"}')


def test_a_charge_refuses_an_amount_other_than_the_one_shown(table, app):
    """Another clerk changed the application between the page and the charge: nothing is
    charged at an amount the clerk did not see."""
    application = _reissue(table)
    with pytest.raises(DomainError, match="800円"):
        fees.charge(table, application, actor=SYSTEM, venue_id=application.venue_id, now=NOW,
                    seen_amount="800")
    assert table.query(FeeEntry).count() == 0
    fees.charge(table, application, actor=SYSTEM, venue_id=application.venue_id, now=NOW,
                seen_amount="1000")
    assert table.query(FeeEntry).count() == 1
