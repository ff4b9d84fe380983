"""Who may change a card (docs/roles.md "Card state changes"): the rule lives in
app/services/cards.py, so every entry point (detail page, bulk action, discard screen,
REST API, hand-over) gives the same answer. Allowed: the state, the event and the audit
record are there; refused: nothing changed."""
from datetime import datetime

import pytest
from sqlalchemy import func, select

from app.clock import JST
from app.models.audit import AuditLog
from app.models.card import Card, CardEvent
from app.services import cards as svc
from app.services import handover
from app.services.errors import InputError, NotPermittedError
from tests.conftest import login, text_of
from tests.factories import make_card, make_storage

ROLES = ["sysadmin", "manager", "clerk", "viewer"]
# (target state, roles allowed) — the documented table, written independently of cards.py
EXPECTED = {svc.SETUP: {"manager", "clerk"}, svc.DISCARDED: {"manager"}}


@pytest.fixture
def place(db):
    return make_storage(db, capacity=50)


def _events(db, card_id):
    return db.execute(select(func.count(CardEvent.id))
                      .where(CardEvent.card_id == card_id)).scalar()


def _card_updates(db, card_id):
    return db.execute(select(func.count(AuditLog.id)).where(
        AuditLog.target_table == "card", AuditLog.target_id == str(card_id),
        AuditLog.action == "update")).scalar()


def _start_state(to_state):
    return svc.RECEIVED if to_state == svc.SETUP else svc.NOTICE_SENT


def _via_detail(app, users, role, card, to_state):
    user = users.create(role)
    client = app.test_client()
    login(client, user.username, users.password)
    return client.post(f"/cardmodelview/transition/{card.id}", follow_redirects=True,
                       data={"to": to_state, "note": "期限経過のため"})


def _via_bulk(app, users, role, card, to_state):
    user = users.create(role)
    client = app.test_client()
    login(client, user.username, users.password)
    if to_state == svc.DISCARDED:  # the bulk discard is the 廃棄候補 screen, of candidates
        return client.post("/discard/execute", follow_redirects=True,
                           data={"ids": [card.id], "reason": "期限経過のため"})
    return client.post("/cardmodelview/action_post", follow_redirects=True,
                       data={"action": "to_setup", "rowid": [card.id]})


def _via_api(app, users, role, card, to_state):
    user = users.create(role)
    client = app.test_client()
    token = client.post("/api/v1/security/login", json={
        "username": user.username, "password": users.password, "provider": "db"}
    ).json["access_token"]
    return client.post(f"/api/v1/card/{card.id}/transition",
                       headers={"Authorization": f"Bearer {token}"},
                       json={"to": to_state, "note": "期限経過のため"})


ENTRY_POINTS = {"detail": _via_detail, "bulk": _via_bulk, "api": _via_api}
CASES = [(role, entry, to_state) for role in ROLES for entry in ENTRY_POINTS
         for to_state in EXPECTED]


@pytest.mark.parametrize("role,entry,to_state", CASES,
                         ids=[f"{r}-{e}-{t}" for r, e, t in CASES])
def test_each_role_at_each_entry_point(app, users, db, place, role, entry, to_state):
    start = _start_state(to_state)
    card = make_card(db, state=start)
    if to_state == svc.DISCARDED:  # a discard candidate: the notice is over a year old
        card.notice_sent_at = datetime(2025, 10, 1, 10, tzinfo=JST)
        db.commit()
    events, updates = _events(db, card.id), _card_updates(db, card.id)
    response = ENTRY_POINTS[entry](app, users, role, card, to_state)
    db.expire_all()
    card = db.get(Card, card.id)
    if role in EXPECTED[to_state]:
        assert card.state == to_state, response.get_data(as_text=True)[:300]
        assert _events(db, card.id) == events + 1
        last = db.execute(select(CardEvent).where(CardEvent.card_id == card.id)
                          .order_by(CardEvent.id.desc())).scalars().first()
        assert (last.from_state, last.to_state) == (start, to_state)
        assert _card_updates(db, card.id) == updates + 1
        if to_state == svc.DISCARDED:
            assert card.discard_reason == "期限経過のため"
    else:
        assert card.state == start
        assert _events(db, card.id) == events
        assert _card_updates(db, card.id) == updates
        if entry == "api":
            assert response.status_code == 403
        if role == "clerk" and entry != "bulk":  # the screen is open to the clerk;
            # the service refuses (the 廃棄候補 screen itself is closed to the clerk)
            assert "管理者のみ" in (response.json["message"] if entry == "api"
                                 else text_of(response))


def test_a_clerk_does_not_see_discard_on_the_detail_page(login_as, db, place):
    card = make_card(db, state=svc.NOTICE_SENT)
    clerk = login_as("clerk").get(f"/cardmodelview/show/{card.id}").get_data(as_text=True)
    assert 'value="setup"' not in clerk and 'value="renotified"' in clerk
    assert 'value="discarded"' not in clerk


def test_a_discard_needs_a_reason_from_every_entry_point(app, users, db, login_as, place):
    card = make_card(db, state=svc.NOTICE_SENT)
    client = login_as("manager")
    page = client.get(f"/cardmodelview/show/{card.id}").get_data(as_text=True)
    assert 'value="discarded"' in page
    response = client.post(f"/cardmodelview/transition/{card.id}", follow_redirects=True,
                           data={"to": "discarded", "note": "  "})
    assert "廃棄の理由を入力してください" in text_of(response)
    db.expire_all()
    assert db.get(Card, card.id).state == svc.NOTICE_SENT
    with app.test_request_context():
        manager = svc.CardActor("m", frozenset({app.config["ROLE_MANAGER"]}))
        with pytest.raises(InputError):
            svc.bulk_transition(db, [card.id], svc.DISCARDED, actor=manager)
        db.rollback()
        with pytest.raises(InputError):
            svc.discard_cards(db, [card.id], "", actor=manager)
    db.expire_all()
    assert db.get(Card, card.id).state == svc.NOTICE_SENT and _events(db, card.id) == 1


def test_a_held_back_discard_is_refused_on_the_detail_page_too(login_as, db, place):
    card = make_card(db, state=svc.NOTICE_SENT, discard_hold=True,
                     discard_hold_reason="本人から連絡あり")
    response = login_as("manager").post(f"/cardmodelview/transition/{card.id}",
                                        data={"to": "discarded", "note": "期限経過"},
                                        follow_redirects=True)
    assert "廃棄保留中です" in text_of(response)
    db.expire_all()
    assert db.get(Card, card.id).state == svc.NOTICE_SENT


SERVICE_ALLOWED = {"manager": {"discard", "hold", "renotify", "move", "hand_over"},
                   "clerk": {"renotify", "move", "hand_over"}, "viewer": set(), "sysadmin": set()}
OPERATIONS = {
    "discard": lambda db, card, place, actor: svc.discard_cards(db, [card.id], "期限経過",
                                                                actor=actor),
    "hold": lambda db, card, place, actor: svc.set_discard_hold(db, [card.id], True, "連絡あり",
                                                                actor=actor),
    "renotify": lambda db, card, place, actor: svc.transition_card(db, card, svc.RENOTIFIED,
                                                                   actor=actor),
    "move": lambda db, card, place, actor: svc.move_cards(db, [card.id], place, actor=actor),
    "hand_over": lambda db, card, place, actor: handover.hand_over(
        db, card, {"identity": "one_a", "pin_set": "1"}, actor=actor),
}
SERVICE_CASES = [(role, name) for role in ROLES for name in OPERATIONS]


@pytest.mark.parametrize("role,name", SERVICE_CASES, ids=[f"{r}-{n}" for r, n in SERVICE_CASES])
def test_the_service_applies_the_table_whatever_the_caller(app, db, place, role, name):
    """Called directly (a new screen, a script), the service gives the same answer."""
    from tests.factories import ROLE_KEYS

    with app.test_request_context():
        actor = svc.CardActor(role, frozenset({app.config[ROLE_KEYS[role]]}))
        card = make_card(db, state=svc.NOTICE_SENT)
        other = make_storage(db, code="金庫B-棚1-箱01", capacity=5, sort_key=2)
        before = (card.state, card.storage_place_id, card.discard_hold, _events(db, card.id))
        if name in SERVICE_ALLOWED[role]:
            OPERATIONS[name](db, card, other, actor)
            db.expire_all()
            card = db.get(Card, card.id)
            assert (card.state, card.storage_place_id, card.discard_hold,
                    _events(db, card.id)) != before
        else:
            with pytest.raises(NotPermittedError) as error:
                OPERATIONS[name](db, card, other, actor)
            assert "のみ" in str(error.value.message)
            db.rollback()
            db.expire_all()
            card = db.get(Card, card.id)
            assert (card.state, card.storage_place_id, card.discard_hold,
                    _events(db, card.id)) == before
