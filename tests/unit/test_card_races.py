"""Conflicting changes of the same card at the same moment: every change is a
compare-and-set on the state it read, so exactly one wins, one event is written, and the
other gets the refusal naming the state it found. Threads on SQLite and PostgreSQL,
processes on PostgreSQL."""
import threading

import pytest
from sqlalchemy import func, select

from app.models.audit import AuditLog
from app.models.card import Card, CardEvent
from app.services import cards as svc
from app.services import handover
from app.services.errors import DomainError, StorageFullError
from tests.factories import make_card, make_storage

CHECKLIST = {"identity": handover.ID_ONE_A, "collector": "self", "pin_set": "1"}


def _hand_over(session, card):
    handover.hand_over(session, card, dict(CHECKLIST), actor=svc.SYSTEM)


def _discard(session, card):
    svc.transition_card(session, card, svc.DISCARDED, "期限経過", actor=svc.SYSTEM)


def _renotify(session, card):
    svc.transition_card(session, card, svc.RENOTIFIED, actor=svc.SYSTEM)


def _bulk_discard(session, card):
    svc.discard_cards(session, [card.id], "期限経過", actor=svc.SYSTEM)


def _race(app, card_id, operations):
    """Each operation in its own thread and session; all read the card, then all act."""
    outcomes = {}
    ready = threading.Barrier(len(operations), timeout=30)

    def run(name, operation):
        with app.app_context():
            session = app.appbuilder.session
            try:
                card = session.get(Card, card_id)
                card.state  # loaded before anyone acts
                ready.wait()
                operation(session, card)
                outcomes[name] = "done"
            except DomainError as error:
                session.rollback()
                outcomes[name] = " ".join([str(error.message)] + [
                    why for _who, why in getattr(error, "failures", [])])
            finally:
                session.remove()

    threads = [threading.Thread(target=run, args=(name, op)) for name, op in operations.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def _changes(db, card_id):
    db.expire_all()
    events = db.execute(select(CardEvent).where(CardEvent.card_id == card_id,
                                                CardEvent.from_state.is_not(None))).scalars().all()
    updates = db.execute(select(func.count(AuditLog.id)).where(
        AuditLog.target_table == "card", AuditLog.target_id == str(card_id),
        AuditLog.action == "update")).scalar()
    return events, updates


@pytest.mark.parametrize("first,second", [
    (_hand_over, _discard), (_hand_over, _hand_over), (_discard, _renotify),
    (_bulk_discard, _hand_over)], ids=["handover-discard", "two-handovers",
                                       "discard-renotify", "bulk-discard-handover"])
def test_two_conflicting_changes_one_wins(app, db, first, second):
    make_storage(db)
    card = make_card(db, state=svc.NOTICE_SENT)
    outcomes = _race(app, card.id, {"a": first, "b": second})
    assert sorted(v == "done" for v in outcomes.values()) == [False, True], outcomes
    events, updates = _changes(db, card.id)
    assert len(events) == 1 and updates == 1
    final = db.get(Card, card.id)
    assert final.state == events[0].to_state
    refusal = next(v for v in outcomes.values() if v != "done")
    assert svc.state_label(final.state) in refusal  # names the state it found
    if final.state == svc.HANDED_OVER:
        assert final.discard_reason is None and final.handed_over_by
    else:
        assert final.handed_over_by is None and final.identity_check is None


def test_two_moves_into_the_last_place_fill_it_once(app, db):
    make_storage(db, code="金庫A-棚1-箱01", capacity=10, sort_key=1)
    small = make_storage(db, code="金庫B-棚1-箱01", capacity=1, sort_key=2)
    first, second = make_card(db), make_card(db)
    small_id = small.id
    outcomes = {}
    ready = threading.Barrier(2, timeout=30)

    def move(card_id):
        with app.app_context():
            session = app.appbuilder.session
            try:
                place = session.get(svc.StoragePlace, small_id)
                svc.occupancy(session)
                ready.wait()
                svc.move_cards(session, [card_id], place, actor=svc.SYSTEM)
                outcomes[card_id] = "moved"
            except StorageFullError:
                session.rollback()
                outcomes[card_id] = "full"
            finally:
                session.remove()

    threads = [threading.Thread(target=move, args=(c.id,)) for c in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes.values()) == ["full", "moved"]
    db.expire_all()
    assert svc.occupancy(db).get(small_id) == 1


def _process_race(database_url, instance_dir, card_ids, operation):
    """Runs in a separate process: its own app, engine and connections."""
    from app import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "INSTANCE_DIR": instance_dir,
                      "TESTING": True})
    results = []
    with app.app_context():
        session = app.appbuilder.session
        for card_id in card_ids:
            card = session.get(Card, card_id)
            try:
                if operation == "hand_over":
                    handover.hand_over(session, card, dict(CHECKLIST), actor=svc.SYSTEM)
                else:
                    svc.transition_card(session, card, svc.DISCARDED, "期限経過",
                                        actor=svc.SYSTEM)
                results.append("done")
            except DomainError:
                session.rollback()
                results.append("refused")
            session.expire_all()
    return results


def test_processes_hand_over_and_discard_the_same_cards_on_postgresql(app, db, database_url,
                                                                     instance_dir):
    """Two processes go through the same twenty cards, one handing over, one discarding:
    each card ends in exactly one of the two states with exactly one event."""
    import multiprocessing

    if not database_url.startswith("postgresql"):
        pytest.skip("runs on PostgreSQL (make test runs the suite there too)")
    make_storage(db)
    ids = [make_card(db, state=svc.NOTICE_SENT).id for _ in range(20)]
    context = multiprocessing.get_context("spawn")
    with context.Pool(2) as pool:
        runs = pool.starmap(_process_race, [(database_url, instance_dir, ids, "hand_over"),
                                            (database_url, instance_dir, ids, "discard")])
    assert [a == "done" for a in runs[0]] == [b != "done" for b in runs[1]]
    for card_id in ids:
        events, updates = _changes(db, card_id)
        assert len(events) == 1 and updates == 1
        assert db.get(Card, card_id).state in (svc.HANDED_OVER, svc.DISCARDED)


def test_two_bookings_of_one_card_at_once_reserve_it_once(app, db):
    """Two staff members book the same card at the same moment: one booking, the card
    予約済 once (one event), the other told the card is already booked; seats follow."""
    from datetime import date

    from app.models.reservation import Reservation, Slot
    from app.services import booking
    from app.services.calendar import ensure_slots
    from tests.factories import make_offer

    make_storage(db)
    offer = make_offer(db, seats=4)
    slot_id = ensure_slots(db, offer, date(2026, 12, 8), date(2026, 12, 8))[0].id
    db.commit()
    card = make_card(db, state=svc.SETUP)
    svc.transition_card(db, card, svc.NOTICE_SENT, actor=svc.SYSTEM)
    number, birth, card_id = card.notice_number, card.birth_date, card.id
    outcomes = []
    ready = threading.Barrier(2, timeout=30)

    def attempt(n):
        with app.app_context():
            session = app.appbuilder.session
            try:
                people = booking.match_cards(session, [booking.PersonInput(number, birth)])
                slot = session.get(Slot, slot_id)
                ready.wait()
                booking.book(session, slot, None, birth, booking.Contact(f"03123456{n}"),
                             people, staff=True)
                outcomes.append("booked")
            except booking.CardAlreadyBookedError:
                session.rollback()
                outcomes.append("already")
            finally:
                session.remove()

    threads = [threading.Thread(target=attempt, args=(n,)) for n in (10, 11)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["already", "booked"]
    db.expire_all()
    reserved = db.execute(select(CardEvent).where(CardEvent.card_id == card_id,
                                                  CardEvent.to_state == svc.RESERVED)).scalars()
    assert len(reserved.all()) == 1 and db.get(Card, card_id).state == svc.RESERVED
    assert len(db.execute(select(Reservation)).scalars().all()) == 1
    assert db.get(Slot, slot_id).taken == 1
