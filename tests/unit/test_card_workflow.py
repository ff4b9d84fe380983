"""Every allowed and every refused transition of both state charts (DOMAIN.md)."""
import pytest

from app.models.card import CardEvent
from app.services import cards as svc
from app.services import handover
from app.services.errors import BulkTransitionError, InvalidTransitionError
from tests.factories import make_card, make_storage

ALL_STATES = list(svc.STATE_LABELS)
CHECKLIST = {"identity": handover.ID_ONE_A, "collector": "self", "pin_set": "1"}
CASES = []
for mode, chart in svc.CHARTS.items():
    for from_state in chart:
        held_from = svc.SETUP if from_state == svc.ON_HOLD else None
        allowed = set(chart[from_state]) | ({held_from} if held_from else set())
        for to_state in ALL_STATES:
            CASES.append((mode, from_state, held_from, to_state, to_state in allowed))


@pytest.mark.parametrize("mode,from_state,held_from,to_state,allowed", CASES,
                         ids=[f"{m}-{f}-{t}" for m, f, _, t, _a in CASES])
def test_transition(app, db, mode, from_state, held_from, to_state, allowed):
    with app.test_request_context():
        make_storage(db)
        card = make_card(db, state=from_state, held_from=held_from, visit_mode=mode)
        events_before = db.query(CardEvent).filter_by(card_id=card.id).count()
        if allowed:
            if to_state == svc.HANDED_OVER:  # only with the identity checklist
                handover.hand_over(db, card, dict(CHECKLIST, note="テスト"), actor=svc.SYSTEM)
            else:
                svc.transition_card(db, card, to_state, note="テスト", actor=svc.SYSTEM)
            assert card.state == to_state
            event = db.query(CardEvent).filter_by(card_id=card.id).order_by(CardEvent.id.desc()).first()
            assert (event.from_state, event.to_state, event.note) == (from_state, to_state, "テスト")
        else:
            with pytest.raises(InvalidTransitionError) as error:
                svc.transition_card(db, card, to_state, actor=svc.SYSTEM)
            db.rollback()
            db.refresh(card)
            assert card.state == from_state
            assert db.query(CardEvent).filter_by(card_id=card.id).count() == events_before
            message = str(error.value.message)
            if (from_state, to_state) == (svc.RESERVED, svc.DISCARDED):  # booked: cancel first
                assert "予約を取り消してください" in message
                return
            assert svc.state_label(from_state) in message  # names the current state
            assert "次にできる状態" in message


def test_refusal_names_the_allowed_next_states(app, db):
    with app.test_request_context():
        card = make_card(db)
        message = svc.refusal(card, svc.HANDED_OVER)
    assert "納品" in message and "交付前設定済" in message and "保留" in message and "廃棄" in message


def test_notice_number_is_given_once_and_checks(app, db):
    from app.services import notice_numbers

    with app.test_request_context():
        make_storage(db)
        card = make_card(db, state=svc.SETUP)
        svc.transition_card(db, card, svc.NOTICE_SENT, actor=svc.SYSTEM)
        number = card.notice_number
        assert notice_numbers.parse(number) == number
        assert notice_numbers.parse(notice_numbers.display(number).lower()) == number
        svc.transition_card(db, card, svc.RENOTIFIED, actor=svc.SYSTEM)
        assert card.notice_number == number


def test_hold_returns_to_where_it_came_from(app, db):
    with app.test_request_context():
        card = make_card(db, state=svc.NOTICE_SENT)
        svc.transition_card(db, card, svc.ON_HOLD, note="入院中", actor=svc.SYSTEM)
        assert svc.allowed_next(card) == [svc.NOTICE_SENT, svc.DISCARDED]
        svc.transition_card(db, card, svc.NOTICE_SENT, actor=svc.SYSTEM)
        assert card.held_from is None


def test_leaving_the_office_frees_the_place(app, db):
    with app.test_request_context():
        place = make_storage(db, capacity=1)
        card = make_card(db, state=svc.SETUP, visit_mode="S")
        assert card.storage_place_id == place.id
        assert svc.allocate_places(db, 1) == [None]  # full
        svc.transition_card(db, card, svc.MAILED, actor=svc.SYSTEM)
        assert card.storage_place_id is None
        assert svc.allocate_places(db, 1) == [place]
        svc.transition_card(db, card, svc.RETURNED, actor=svc.SYSTEM)  # back from the post office
        assert card.storage_place_id == place.id


def test_bulk_is_all_or_nothing(app, db):
    with app.test_request_context():
        good = [make_card(db) for _ in range(3)]
        bad = make_card(db, state=svc.HANDED_OVER)
        with pytest.raises(BulkTransitionError) as error:
            svc.bulk_transition(db, [c.id for c in good] + [bad.id], svc.SETUP, actor=svc.SYSTEM)
        db.rollback()
        assert [c.application_id for c, in [(bad,)]] == [error.value.failures[0][0]]
        assert all(db.get(type(c), c.id).state == svc.RECEIVED for c in good)
        moved = svc.bulk_transition(db, [c.id for c in good], svc.SETUP, note="一括", actor=svc.SYSTEM)
        assert {c.state for c in moved} == {svc.SETUP}


def test_places_fill_in_shelf_order(app, db):
    with app.test_request_context():
        second = make_storage(db, code="金庫A-棚1-箱02", capacity=2, sort_key=2)
        first = make_storage(db, code="金庫A-棚1-箱01", capacity=2, sort_key=1)
        cards = [make_card(db) for _ in range(3)]
        assert [c.storage_place_id for c in cards] == [first.id, first.id, second.id]
