"""Issue 11: the reads and operations the card screens moved into services (state counts,
the postcard export, the stock-taking list, the ledger sheet, hand-over as its own
operation), called without a request, with who acts and when passed in."""
import io
import zipfile
from datetime import datetime

import pytest
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from app.clock import JST
from app.models.audit import AuditLog
from app.models.card import VISIT_AT_APPLICATION, VISIT_AT_HANDOVER, Card, CardEvent
from app.models.card_states import STATES, state_label
from app.models.reservation import ARRIVED, Reservation
from app.models.scan import BATCH_REGISTERED, ScanBatch, ScanItem
from app.services import cards, desk, exports, handover, scan, storage, unit
from app.services.errors import CardNotFoundError, InputError, NotPermittedError
from tests.factories import make_card, make_offer, make_storage

CHECKLIST = {"identity": handover.ID_ONE_A, "collector": "self", "pin_set": "1"}


def _audit_rows(db, action):
    return db.execute(select(func.count(AuditLog.id)).where(AuditLog.action == action)).scalar()


def test_state_counts_follow_the_visit_mode(app, db):
    make_storage(db)
    make_card(db, state=cards.SETUP)
    make_card(db, state=cards.SETUP, visit_mode=VISIT_AT_APPLICATION)
    make_card(db, state=cards.NOTICE_SENT)
    every = cards.state_counts(db)
    assert [s for s, _label, _n in every] == list(STATES)
    assert dict((s, n) for s, _label, n in every)[cards.SETUP] == 2
    assert (cards.SETUP, state_label(cards.SETUP), 1) in cards.state_counts(db, VISIT_AT_HANDOVER)
    only_s = dict((s, n) for s, _label, n in cards.state_counts(db, VISIT_AT_APPLICATION))
    assert only_s[cards.SETUP] == 1 and only_s[cards.NOTICE_SENT] == 0


def test_get_card_or_not_found(app, db):
    make_storage(db)
    card = make_card(db)
    assert cards.get_card(db, card.id) is card
    with pytest.raises(CardNotFoundError):
        cards.get_card(db, card.id + 1000)


def test_postcard_print_data_is_refused_without_numbers_and_audited_with_them(app, db):
    make_storage(db)
    sent = make_card(db, state=cards.SETUP)
    cards.transition_card(db, sent, cards.NOTICE_SENT, actor=cards.SYSTEM)
    waiting = make_card(db, state=cards.SETUP)
    before = _audit_rows(db, "export")
    with pytest.raises(InputError) as refused:
        exports.postcard_print_data(db, [sent.id, waiting.id])
    assert waiting.application_id in str(refused.value.message)
    assert _audit_rows(db, "export") == before
    name, data = exports.postcard_print_data(db, [sent.id], "cp932",
                                             now=datetime(2026, 12, 1, 9, 5, tzinfo=JST))
    assert name == "postcards_20261201-0905.zip"
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert f"qr/{sent.application_id}.png" in archive.namelist()
    text = archive.read("postcards.csv").decode("cp932")
    assert exports.booking_url(sent.notice_number) in text
    assert _audit_rows(db, "export") == before + 1


def test_inventory_lists_each_place_in_shelf_order_and_is_audited(app, db):
    second = make_storage(db, code="金庫B", capacity=5, sort_key=2)
    first = make_storage(db, code="金庫A", capacity=5, sort_key=1)
    k = make_card(db, storage_place=first)
    s = make_card(db, storage_place=second, visit_mode=VISIT_AT_APPLICATION)
    before = _audit_rows(db, "print")
    listing = storage.inventory(db)
    assert [p.code for p in listing.places] == ["金庫A", "金庫B"]
    assert listing.held[first.id] == [k] and listing.held[second.id] == [s]
    only_k = storage.inventory(db, visit_mode=VISIT_AT_HANDOVER)
    assert only_k.card_count == 1 and second.id not in only_k.held
    assert [p.code for p in storage.inventory(db, place_id=second.id).places] == ["金庫B"]
    assert _audit_rows(db, "print") == before + 3


def test_ledger_sheet_puts_cards_without_a_place_last(app, db, clock):
    place = make_storage(db, code="金庫A", capacity=1)
    shelved = make_card(db, application_id="9" * 23)  # takes the only place
    loose = make_card(db, application_id="1" * 23)  # none left: no place
    assert shelved.storage_place_id == place.id and loose.storage_place_id is None
    batch = ScanBatch(created_at=clock(), created_by="t", status=BATCH_REGISTERED)
    db.add(batch)
    db.flush()
    for seq, card in enumerate((loose, shelved), 1):
        db.add(ScanItem(batch=batch, seq=seq, payload="x", status="ok", card_id=card.id))
    db.commit()
    (k_label, k_cards), (s_label, s_cards) = scan.ledger_sheet(db, batch)
    assert k_cards == [shelved, loose] and s_cards == []


def test_hand_over_is_one_operation_with_who_and_when_passed_in(app, db):
    make_storage(db)
    card = make_card(db, state=cards.SETUP)
    cards.transition_card(db, card, cards.NOTICE_SENT, actor=cards.SYSTEM)
    clerk = cards.CardActor("madoguchi_x", frozenset({app.config["ROLE_CLERK"]}))
    viewer = cards.CardActor("etsuran_x", frozenset({app.config["ROLE_VIEWER"]}))
    with pytest.raises(NotPermittedError):
        handover.hand_over(db, card, dict(CHECKLIST), actor=viewer)
    with pytest.raises(InputError):
        handover.hand_over(db, card, {"identity": "one_a"}, actor=clerk)  # PINs not set
    db.expire_all()
    assert db.get(Card, card.id).state == cards.NOTICE_SENT
    at = datetime(2026, 12, 1, 11, 0, tzinfo=JST)
    handover.hand_over(db, card, dict(CHECKLIST), actor=clerk, now=at)
    assert not unit.in_transaction(db)
    db.expire_all()
    done = db.get(Card, card.id)
    assert done.state == cards.HANDED_OVER and done.handed_over_by == "madoguchi_x"
    assert done.handed_over_at == at
    event = db.execute(select(CardEvent).where(CardEvent.card_id == card.id)
                       .order_by(CardEvent.id.desc())).scalars().first()
    assert event.username == "madoguchi_x" and event.to_state == cards.HANDED_OVER


def test_checklist_problems_name_each_missing_tick():
    assert handover.checklist_problems(dict(CHECKLIST)) == []
    proxy = handover.checklist_problems({"identity": "one_a", "collector": "proxy"})
    assert len(proxy) == 5  # reason, its proof, delegation, proxy's identity, PINs


def test_book_at_counter_checks_the_form_then_books_and_checks_in_a_walk_in(app, db):
    offer = make_offer(db, purpose_code="shinsei", seats=1)
    clerk = cards.CardActor("madoguchi_w", frozenset({app.config["ROLE_CLERK"]}))
    wrong = desk.book_at_counter(db, offer, MultiDict({"name": "", "phone": "03"}),
                                 same_day=True, actor=clerk)
    assert wrong.reservation is None and {"name", "phone"} <= set(wrong.errors)
    no_slot = desk.book_at_counter(db, offer, MultiDict({
        "name": "佐藤 一郎", "name_kana": "さとう いちろう", "birth_date": "1970-01-01",
        "seats": "1", "phone": "0312345678", "slot": "999999"}), actor=clerk)
    assert no_slot.reservation is None and "slot" in no_slot.errors
    assert db.execute(select(func.count(Reservation.id))).scalar() == 0
    done = desk.book_at_counter(db, offer, MultiDict({
        "name": "佐藤 一郎", "name_kana": "さとう いちろう", "birth_date": "1970-01-01",
        "seats": "1", "phone": "0312345678"}), same_day=True, actor=clerk)
    assert done.refusal is None and not unit.in_transaction(db)
    db.expire_all()
    reservation = db.get(Reservation, done.reservation.id)
    assert reservation.state == ARRIVED and reservation.checked_in_by == "madoguchi_w"
    assert reservation.channel == "counter"
