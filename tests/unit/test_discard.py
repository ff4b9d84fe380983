"""Discard candidates as a snapshot (issue 16 §3): the refresh finds what the live rules
found, replaces the snapshot in one audited unit, keeps when a card was first found; the
screen's read leaves out cards that no longer qualify."""
import json
from datetime import date, datetime, timedelta

import pytest
from dateutil.relativedelta import relativedelta
from flask_babel import gettext as _
from sqlalchemy import func, select

from app.clock import JST
from app.models.audit import AuditLog
from app.models.card import Card
from app.models.discard import DiscardCandidate
from app.models.setting import SiteSetting
from app.services import cards as svc
from app.services import discard, handover, unit
from app.services.errors import NotPermittedError
from app.settings import settings
from tests.factories import make_card, make_storage

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=JST)  # the tests' clock
MONTH_END = datetime(2027, 2, 28, 9, 0, tzinfo=JST)  # "+3 months" clamps Nov 30 to Feb 28
CHECKLIST = {"identity": handover.ID_ONE_A, "collector": "self", "pin_set": "1"}


def old_live_rules(session, today):
    """The screen's rules before the snapshot (app/services/cards.py discard_candidates,
    as it was), kept verbatim as the reference: (card id, reason) of every candidate."""
    deadlines = settings()
    after_notice = relativedelta(months=deadlines.discard_after_notice_months)
    after_renotice = relativedelta(months=deadlines.discard_after_renotice_months)
    after_return = relativedelta(months=deadlines.discard_after_return_months)
    cards = session.execute(select(Card).where(Card.state.in_(svc.NOT_YET_ISSUED))
                            .order_by(Card.storage_place_id, Card.application_id)).scalars()
    result = []
    for card in cards:
        reason = None
        if card.card_expires_on and card.card_expires_on < today:
            reason = _("The card expired on %(day)s.", day=card.card_expires_on.isoformat())
        elif card.state == svc.RETURNED and card.returned_at \
                and card.returned_at.date() + after_return <= today:
            reason = _("Returned on %(day)s with no contact since.",
                       day=card.returned_at.date().isoformat())
        elif card.renotified_at and card.state in (svc.RENOTIFIED, svc.RESERVED) \
                and card.renotified_at.date() + after_renotice <= today:
            reason = _("Reminder sent on %(day)s.", day=card.renotified_at.date().isoformat())
        elif card.notice_sent_at and not card.renotified_at \
                and card.state in (svc.NOTICE_SENT, svc.RESERVED) \
                and card.notice_sent_at.date() + after_notice <= today:
            reason = _("Notice sent on %(day)s.", day=card.notice_sent_at.date().isoformat())
        if reason:
            result.append((card.id, reason))
    return result


def _at(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, 0, tzinfo=JST)


def _card(db, state, **stamps):
    card = make_card(db, state=state, held_from=stamps.pop("held_from", None),
                     visit_mode=stamps.pop("visit_mode", "K"))
    for key, value in stamps.items():
        setattr(card, key, value)
    db.commit()
    return card


def varied_ledger(db, today: date) -> dict[str, Card]:
    """Candidates of every rule, cards just short of a deadline, and cards no longer
    waiting, around ``today`` (default deadlines: 12 months after the notice or a return,
    3 after a reminder)."""
    make_storage(db, capacity=500)
    year, quarter = relativedelta(months=12), relativedelta(months=3)
    return {
        "expired": _card(db, svc.NOTICE_SENT, card_expires_on=today - timedelta(days=1),
                         notice_sent_at=_at(today - timedelta(days=20))),
        "expires today": _card(db, svc.NOTICE_SENT, card_expires_on=today,
                               notice_sent_at=_at(today - timedelta(days=20))),
        "expired, on hold": _card(db, svc.ON_HOLD, held_from=svc.SETUP,
                                  card_expires_on=today - timedelta(days=300)),
        "expired, received": _card(db, svc.RECEIVED, card_expires_on=date(2020, 1, 1)),
        "returned long ago": _card(db, svc.RETURNED, notice_sent_at=_at(today - year * 2),
                                   returned_at=_at(today - year - timedelta(days=30))),
        "returned a year ago today": _card(db, svc.RETURNED, returned_at=_at(today - year, 8)),
        "returned a day short": _card(db, svc.RETURNED,
                                      returned_at=_at(today - year + timedelta(days=1))),
        "returned, expired": _card(db, svc.RETURNED, returned_at=_at(today - year * 2),
                                   card_expires_on=today - timedelta(days=3)),
        "renotified long ago": _card(db, svc.RENOTIFIED, notice_sent_at=_at(today - year),
                                     renotified_at=_at(today - quarter - timedelta(days=5))),
        "renotified, booked": _card(db, svc.RESERVED, notice_sent_at=_at(today - year),
                                    renotified_at=_at(today - quarter)),
        "renotified lately": _card(db, svc.RENOTIFIED, notice_sent_at=_at(today - year * 2),
                                   renotified_at=_at(today - timedelta(days=30))),
        "notice long ago": _card(db, svc.NOTICE_SENT,
                                 notice_sent_at=_at(today - year - timedelta(days=1))),
        "notice long ago, booked": _card(db, svc.RESERVED, notice_sent_at=_at(today - year)),
        "notice a day short": _card(db, svc.NOTICE_SENT,
                                    notice_sent_at=_at(today - year + timedelta(days=1))),
        "notice just sent": _card(db, svc.NOTICE_SENT, notice_sent_at=_at(today)),
        "returned, state notice": _card(db, svc.NOTICE_SENT, notice_sent_at=_at(today),
                                        returned_at=_at(today - year * 3)),
        "handed over": _card(db, svc.HANDED_OVER, notice_sent_at=_at(today - year * 2),
                             card_expires_on=today - timedelta(days=10)),
        "discarded": _card(db, svc.DISCARDED, notice_sent_at=_at(today - year * 2)),
        "mailed, expired": _card(db, svc.MAILED, visit_mode="S",
                                 card_expires_on=today - timedelta(days=10)),
        "set up": _card(db, svc.SETUP),
    }


CANDIDATES = {"expired", "expired, on hold", "expired, received", "returned long ago",
              "returned a year ago today", "returned, expired", "renotified long ago",
              "renotified, booked", "notice long ago", "notice long ago, booked"}


def _stored(db, today):
    rows = db.execute(select(DiscardCandidate.card_id, DiscardCandidate.reason,
                             DiscardCandidate.reason_on)).all()
    return sorted((card_id, discard.reason_text(reason, day)) for card_id, reason, day in rows)


@pytest.mark.parametrize("now", [NOW, MONTH_END], ids=["today", "month-end"])
def test_refresh_finds_the_cards_and_reasons_of_the_old_live_rules(app, db, now):
    today = now.date()
    with app.test_request_context():
        ledger = varied_ledger(db, today)
        expected = old_live_rules(db, today)
        assert discard.refresh(db, now) == len(expected)
        assert _stored(db, today) == sorted(expected)
    named = {ledger[key].id for key in CANDIDATES}
    if now == NOW:  # the fixture is written for the tests' day
        assert {card_id for card_id, _reason in expected} == named


def test_month_end_candidates_the_database_alone_would_miss(app, db):
    """Nov 30 + 3 months is Feb 28: a reminder sent then is past its deadline on Feb 28,
    although Feb 28 - 3 months is Nov 28 (the pre-filter's margin keeps it)."""
    make_storage(db)
    late = _card(db, svc.RENOTIFIED, renotified_at=_at(date(2026, 11, 30)))
    later = _card(db, svc.RENOTIFIED, renotified_at=_at(date(2026, 12, 1)))
    with app.test_request_context():
        assert discard.refresh(db, MONTH_END) == 1
    assert discard.candidate_ids(db) == {late.id}
    assert later.id not in discard.candidate_ids(db)


def test_refresh_replaces_the_snapshot_in_one_audited_record(app, db, clock):
    with app.test_request_context():
        ledger = varied_ledger(db, NOW.date())
        first = discard.refresh(db, NOW)
        kept = ledger["notice long ago"]
        found_first = db.execute(select(DiscardCandidate.found_at).where(
            DiscardCandidate.card_id == kept.id)).scalar_one()
        with unit.transaction(db):
            handover.hand_over(db, ledger["renotified, booked"], dict(CHECKLIST),
                               actor=svc.SYSTEM)
        later = NOW + timedelta(hours=1)  # the same day: the same deadlines
        second = discard.refresh(db, later)
    assert (first, second) == (len(CANDIDATES), len(CANDIDATES) - 1)
    stored = discard.candidate_ids(db)
    assert ledger["renotified, booked"].id not in stored and kept.id in stored
    assert db.execute(select(DiscardCandidate.found_at).where(
        DiscardCandidate.card_id == kept.id)).scalar_one() == found_first == NOW
    records = db.execute(select(AuditLog).where(AuditLog.action == "refresh")
                         .order_by(AuditLog.id)).scalars().all()
    assert [(r.target_table, json.loads(r.changes)["count"], r.username) for r in records] == [
        ("discard_candidate", first, "system"), ("discard_candidate", second, "system")]
    mark = db.execute(select(SiteSetting).where(SiteSetting.key == "discard_candidates")
                      ).scalar_one()
    assert (mark.updated_at, mark.updated_by, json.loads(mark.value)) == (
        later, "system", {"count": second})
    assert mark.version == 2  # made by the first refresh, +1 by each later one


def test_only_those_who_may_discard_refresh(app, db):
    make_storage(db)
    _card(db, svc.NOTICE_SENT, notice_sent_at=_at(date(2024, 1, 1)))
    clerk = svc.CardActor("madoguchi", frozenset({app.config["ROLE_CLERK"]}))
    manager = svc.CardActor("kanri", frozenset({app.config["ROLE_MANAGER"]}))
    with app.test_request_context():
        with pytest.raises(NotPermittedError):
            discard.refresh(db, NOW, actor=clerk)
        assert db.execute(select(func.count(DiscardCandidate.id))).scalar_one() == 0
        assert db.get(SiteSetting, "discard_candidates") is None
        assert discard.refresh(db, NOW, actor=manager) == 1
        assert db.get(SiteSetting, "discard_candidates").updated_by == "kanri"


def test_the_screens_read_leaves_out_cards_that_no_longer_qualify(app, db):
    with app.test_request_context():
        assert discard.snapshot(db, NOW.date()).refreshed_at is None  # never refreshed
        ledger = varied_ledger(db, NOW.date())
        discard.refresh(db, NOW)
        returned = ledger["returned long ago"]
        svc.transition_card(db, returned, svc.RENOTIFIED, actor=svc.SYSTEM, now=NOW)
        svc.discard_cards(db, [ledger["notice long ago"].id], "期限経過", actor=svc.SYSTEM)
        read = discard.snapshot(db, NOW.date())
        only_s = discard.snapshot(db, NOW.date(), "S")
    listed = {c.card.id for c in read.candidates}
    assert listed == {ledger[k].id for k in CANDIDATES
                      - {"returned long ago", "notice long ago"}}
    assert read.refreshed_at == NOW and read.found == len(CANDIDATES)
    assert discard.candidate_ids(db) >= {returned.id}  # the snapshot itself is unchanged
    assert only_s.candidates == []
    by_id = {c.card.id: c for c in read.candidates}
    assert by_id[ledger["expired"].id].reason == "カードの有効期限（%s）が切れています。" % (
        NOW.date() - timedelta(days=1)).isoformat()


def test_a_deleted_card_takes_its_candidate_row_with_it(app, db):
    make_storage(db)
    card = _card(db, svc.NOTICE_SENT, notice_sent_at=_at(date(2024, 1, 1)))
    with app.test_request_context():
        discard.refresh(db, NOW)
        assert discard.candidate_ids(db) == {card.id}
        with unit.transaction(db):
            db.delete(card)
    assert discard.candidate_ids(db) == set()


@pytest.mark.parametrize("before", [0, 1], ids=["first-ever", "after-a-refresh"])
def test_two_refreshes_at_the_same_moment_take_turns(app, db, before):
    """The nightly job and the button at once: the refreshes run one after the other on
    the refresh's own row, both finish, and the snapshot holds each candidate once."""
    import threading

    from app.services.errors import DomainError

    with app.test_request_context():
        ledger = varied_ledger(db, NOW.date())
        for _ in range(before):
            discard.refresh(db, NOW)
    outcomes = []
    ready = threading.Barrier(2, timeout=30)

    def run():
        with app.app_context():
            session = app.appbuilder.session
            try:
                ready.wait()
                outcomes.append(discard.refresh(session, NOW))
            except DomainError as error:
                outcomes.append(str(error.message))
            finally:
                session.remove()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes == [len(CANDIDATES)] * 2
    db.expire_all()
    assert discard.candidate_ids(db) == {ledger[key].id for key in CANDIDATES}
    assert db.execute(select(func.count(DiscardCandidate.id))).scalar_one() == len(CANDIDATES)
    assert db.get(SiteSetting, "discard_candidates").version == 1 + before + 1
    assert db.execute(select(func.count(AuditLog.id)).where(AuditLog.action == "refresh")
                      ).scalar_one() == before + 2
