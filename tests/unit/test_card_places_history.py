"""Each card event carries the place the card was kept in after it (issue 14 §1), and a
move between places is an event of its own (state unchanged, 保管場所の移動), so the stock
per place on any past day is read from the history and does not change later."""
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.clock import JST
from app.models.card import Card, CardEvent
from app.services import cards, handover, scan
from app.services.errors import StorageFullError
from tests.conftest import DEFAULT_NOW, login, text_of
from tests.factories import card_fields, make_card, make_storage
from tests.qrpages import payload

CHECKLIST = {"identity": handover.ID_ONE_A, "collector": "self", "pin_set": "1"}


def history(db, card_id):
    db.expire_all()
    return list(db.execute(select(CardEvent).where(CardEvent.card_id == card_id)
                           .order_by(CardEvent.id)).scalars())


def stock_on(db, day_end: datetime) -> dict[int | None, int]:
    """The stock per place as it stood at ``day_end``, read from the history only: each
    card's last event up to then, kept unless it left the office."""
    last = (select(CardEvent.card_id, func.max(CardEvent.id).label("id"))
            .where(CardEvent.at <= day_end).group_by(CardEvent.card_id).subquery())
    rows = db.execute(select(CardEvent.storage_place_id, func.count())
                      .join(last, CardEvent.id == last.c.id)
                      .where(CardEvent.to_state.not_in(cards.LEAVES_THE_OFFICE))
                      .group_by(CardEvent.storage_place_id)).all()
    return dict(rows)


def test_a_received_card_records_its_shelf_chosen_or_allocated(app, db):
    first = make_storage(db, code="金庫A-棚1-箱01", capacity=1, sort_key=1)
    second = make_storage(db, code="金庫A-棚1-箱02", capacity=5, sort_key=2)
    allocated = make_card(db)
    overflow = make_card(db)
    chosen = cards.new_card(db, card_fields(storage_place_id=first.id))
    db.commit()
    assert [(e.to_state, e.storage_place_id) for e in history(db, allocated.id)] == [
        (cards.RECEIVED, first.id)]
    assert history(db, overflow.id)[0].storage_place_id == second.id
    assert history(db, chosen.id)[0].storage_place_id == first.id  # only its id was given


def test_registered_scans_record_their_shelves(app, db):
    place = make_storage(db, capacity=10)
    batch = scan.open_batch(db)
    for n in (1, 2):
        assert scan.add_payload(db, batch, payload(n, seed=14)).status == "ok"
    created = scan.register_batch(db, batch)
    assert len(created) == 2
    for card in created:
        [event] = history(db, card.id)
        assert (event.to_state, event.storage_place_id) == (cards.RECEIVED, place.id)


def test_a_move_is_an_event_with_the_new_place(app, db, clock):
    a = make_storage(db, code="金庫A-棚1-箱01", capacity=5, sort_key=1)
    b = make_storage(db, code="金庫B-棚1-箱01", capacity=5, sort_key=2)
    card = make_card(db)
    cards.transition_card(db, card, cards.SETUP, actor=cards.SYSTEM)
    clerk = cards.CardActor("madoguchi_move", frozenset({app.config["ROLE_CLERK"]}))
    clock.advance(minutes=5)
    cards.move_cards(db, [card.id], b, actor=clerk)
    cards.move_cards(db, [card.id], b, actor=clerk)  # already there: nothing happens
    events = history(db, card.id)
    assert [(e.from_state, e.to_state, e.storage_place_id) for e in events] == [
        (None, cards.RECEIVED, a.id), (cards.RECEIVED, cards.SETUP, a.id),
        (cards.SETUP, cards.SETUP, b.id)]
    move = events[-1]
    assert move.is_move and not events[1].is_move
    assert (move.username, move.at) == ("madoguchi_move", DEFAULT_NOW + timedelta(minutes=5))
    assert move.note == "保管場所を移動: 金庫A-棚1-箱01 → 金庫B-棚1-箱01"
    with app.test_request_context():
        assert move.change() == "保管場所の移動"
        assert events[1].change() == "納品 → 交付前設定済"
    # a later state change keeps the place it moved to
    cards.transition_card(db, card, cards.NOTICE_SENT, actor=clerk)
    assert history(db, card.id)[-1].storage_place_id == b.id


def test_a_card_without_a_place_moves_from_none(app, db):
    full = make_storage(db, code="金庫A-棚1-箱01", capacity=1, sort_key=1)
    make_card(db)  # fills it
    homeless = make_card(db)
    assert homeless.storage_place_id is None and history(db, homeless.id)[0].storage_place_id \
        is None
    roomy = make_storage(db, code="金庫C-棚1-箱01", capacity=3, sort_key=3)
    cards.move_cards(db, [homeless.id], roomy, actor=cards.SYSTEM)
    move = history(db, homeless.id)[-1]
    assert move.note == "保管場所を移動: （なし） → 金庫C-棚1-箱01"
    assert move.storage_place_id == roomy.id and full.id != roomy.id


def test_a_refused_move_writes_no_event(app, db):
    make_storage(db, code="金庫A-棚1-箱01", capacity=5, sort_key=1)
    small = make_storage(db, code="金庫B-棚1-箱01", capacity=1, sort_key=2)
    first, second = make_card(db), make_card(db)
    with pytest.raises(StorageFullError):
        cards.move_cards(db, [first.id, second.id], small, actor=cards.SYSTEM)
    assert len(history(db, first.id)) == len(history(db, second.id)) == 1


def test_leaving_the_office_leaves_no_place(app, db):
    place = make_storage(db, capacity=10)
    handed = make_card(db, state=cards.SETUP)
    cards.transition_card(db, handed, cards.NOTICE_SENT, actor=cards.SYSTEM)
    clerk = cards.CardActor("madoguchi_h", frozenset({app.config["ROLE_CLERK"]}))
    handover.hand_over(db, handed, dict(CHECKLIST), actor=clerk)
    mailed = make_card(db, state=cards.SETUP, visit_mode="S")
    cards.transition_card(db, mailed, cards.MAILED, actor=cards.SYSTEM)
    assert [e.storage_place_id for e in history(db, handed.id)][-2:] == [place.id, None]
    assert history(db, handed.id)[-1].to_state == cards.HANDED_OVER
    assert history(db, mailed.id)[-1].storage_place_id is None
    cards.transition_card(db, mailed, cards.RETURNED, actor=cards.SYSTEM)  # back: shelved
    back = history(db, mailed.id)[-1]
    assert back.to_state == cards.RETURNED and back.storage_place_id == place.id
    discarded = make_card(db)
    cards.discard_cards(db, [discarded.id], "期限経過", actor=cards.SYSTEM)
    assert history(db, discarded.id)[-1].storage_place_id is None


def test_a_state_change_records_the_place_the_row_holds(app, db):
    """A copy loaded before someone moved the card: the event names where it is now."""
    a = make_storage(db, code="金庫A-棚1-箱01", capacity=5, sort_key=1)
    b = make_storage(db, code="金庫B-棚1-箱01", capacity=5, sort_key=2)
    card = make_card(db)
    stale = db.get(Card, card.id)
    assert stale.storage_place_id == a.id
    with Session(bind=db.get_bind()) as other:
        other.execute(update(Card).where(Card.id == card.id).values(storage_place_id=b.id))
        other.commit()
    cards.transition_card(db, stale, cards.SETUP, actor=cards.SYSTEM)
    assert history(db, card.id)[-1].storage_place_id == b.id


def test_a_past_days_stock_does_not_change_when_cards_move_later(app, db, clock):
    a = make_storage(db, code="金庫A-棚1-箱01", capacity=5, sort_key=1)
    b = make_storage(db, code="金庫B-棚1-箱01", capacity=5, sort_key=2)
    first, second, third = make_card(db), make_card(db), make_card(db)
    day_one = datetime(2026, 12, 1, 23, 59, 59, tzinfo=JST)
    assert stock_on(db, day_one) == {a.id: 3}
    clock.set(datetime(2026, 12, 2, 9, 0, tzinfo=JST))
    cards.move_cards(db, [first.id, second.id], b, actor=cards.SYSTEM)
    cards.transition_card(db, third, cards.SETUP, actor=cards.SYSTEM)
    cards.transition_card(db, third, cards.NOTICE_SENT, actor=cards.SYSTEM)
    handover.hand_over(db, third, dict(CHECKLIST), actor=cards.SYSTEM)  # gone from the stock
    assert stock_on(db, day_one) == {a.id: 3}  # the same figure as before the moves
    assert stock_on(db, datetime(2026, 12, 2, 23, 59, 59, tzinfo=JST)) == {b.id: 2}


def test_the_history_screens_name_a_move(app, db, login_as, users):
    make_storage(db, code="金庫A-棚1-箱01", capacity=5, sort_key=1)
    b = make_storage(db, code="金庫B-棚1-箱01", capacity=5, sort_key=2)
    card = make_card(db)
    client = login_as("clerk")
    client.post("/storage/move", data={"ids": f"{card.id}", "place": b.id})
    move = history(db, card.id)[-1]
    assert move.is_move and move.storage_place_id == b.id
    page = text_of(client.get(f"/cardmodelview/show/{card.id}"))
    assert "保管場所の移動" in page and "納品 納品" not in page
    assert "保管場所を移動: 金庫A-棚1-箱01 → 金庫B-棚1-箱01" in page
    listing = text_of(client.get("/cardeventmodelview/list/"))
    assert "保管場所の移動" in listing and "金庫B-棚1-箱01" in listing
    assert "納品 → 納品" not in listing
    users.create("manager", username="kanri_audit")
    manager = app.test_client()
    login(manager, "kanri_audit", users.password)
    trail = text_of(manager.get("/auditlogmodelview/list/"))
    assert "の履歴 保管場所の移動" in trail and "の履歴 納品 → 納品" not in trail


def test_a_place_its_cards_left_is_kept_for_their_history(app, db):
    """Emptied by a move, the place is still named by the history (the stock of the days
    its cards were there): deleting it is refused, as for a place in use."""
    from app.models.storage import StoragePlace
    from app.services.deletion import InUseError

    old = make_storage(db, code="金庫A-棚1-箱01", capacity=5, sort_key=1)
    new = make_storage(db, code="金庫B-棚1-箱01", capacity=5, sort_key=2)
    card = make_card(db)
    cards.move_cards(db, [card.id], new, actor=cards.SYSTEM)
    assert cards.occupancy(db).get(old.id) is None
    db.delete(old)
    with pytest.raises(InUseError) as refused:
        db.commit()
    assert "カード履歴" in str(refused.value) and "（1 件）" in str(refused.value)
    db.rollback()
    assert db.get(StoragePlace, old.id) is not None
