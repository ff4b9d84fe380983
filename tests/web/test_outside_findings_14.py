"""Outside review of issue 14 (statistics, extraction, booking history, ledger at scale).

Each test here demonstrates one defect found in the review: it fails on the reviewed commit
and should pass once the defect is fixed. Hand-counted fixtures; SQLite and PostgreSQL."""
from datetime import date

from sqlalchemy import select

from app.clock import JST
from app.models.card import CardEvent
from app.models.reservation import Reservation
from app.services import booking
from app.services import cards as card_svc
from app.services import statistics as stats
from tests.conftest import DEFAULT_NOW
from tests.factories import make_card, make_offer
from tests.web.test_desk import book_card

TODAY = DEFAULT_NOW.astimezone(JST).date()  # 2026-12-01, a Tuesday, 10:00 JST


def _figures(db, subject, day=TODAY):
    rep = stats.report(db, stats.Query(subject, stats.DAY, day, day), DEFAULT_NOW)
    return {m.key: rep.cell(m) for m in rep.measures}


# --- F1: a walk-in is counted as 'late' ------------------------------------------------------

def test_a_walk_in_is_never_late(login_as, app, db, clock):
    """A same-day visitor registered at the counter 12 minutes into the running 10:00 slot
    (desk.walk_in puts them into the slot running now) is checked in at once. They had no
    appointment, so they cannot be late; but 遅刻 counts every 'arrived' event more than
    LATE_GRACE_MINUTES (5) after the slot's start, walk-ins included. A supervisor reporting
    lateness sees every walk-in arriving after hh:05 / hh:35 as late."""
    offer = make_offer(db, purpose_code="shinsei", seats=2)
    clerk = login_as("clerk")
    clock.set(DEFAULT_NOW.replace(minute=12))
    response = clerk.post(f"/desk/{offer.venue.id}/new", data={
        "offer": offer.id, "walk_in": "1", "name": "佐藤 一郎", "name_kana": "さとう いちろう",
        "birth_date": "1970-01-01", "seats": "1", "phone": "0312345678"})
    assert response.status_code in (200, 302)
    reservation = db.execute(select(Reservation)).scalar_one()
    assert reservation.state == "arrived"
    got = _figures(db, "bookings")
    assert got["made"] == 1 and got["arrived"] == 1
    assert got["late"] == 0, "a walk-in has no appointment time to be late for"


# --- F2: releasing a card from a cancelled booking counts as a notice sent ---------------------

def test_a_cancelled_booking_does_not_count_as_another_notice_sent(app, db, clock):
    """One 交付通知書 is sent (setup → notice_sent); the resident books (notice_sent →
    reserved) and cancels (reserved → notice_sent: cards.unreserve_card). The figure
    交付通知書発送 must stay 1: no second notice was sent. The measure counts every
    event that ends in notice_sent unless it comes from notice_sent or 保留, so the
    cancellation (and every no-show the day close releases) is counted as a notice sent."""
    offer = make_offer(db, seats=2)
    card = make_card(db, state=card_svc.SETUP)
    card_svc.transition_card(db, card, card_svc.NOTICE_SENT, actor=card_svc.SYSTEM)
    db.commit()
    sent_at = db.get(type(card), card.id).notice_sent_at
    reservation = book_card(app, db, offer, card, day=date(2026, 12, 8))
    db.commit()
    clock.advance(minutes=30)
    with app.test_request_context():
        booking.cancel(db, reservation, staff=True)
    db.commit()
    db.expire_all()
    assert db.get(type(card), card.id).state == card_svc.NOTICE_SENT
    # 交付通知書発送日 keeps the day the notice was sent, not the day of the cancellation
    assert db.get(type(card), card.id).notice_sent_at == sent_at
    history = [(e.from_state, e.to_state) for e in db.execute(
        select(CardEvent).where(CardEvent.card_id == card.id).order_by(CardEvent.id)).scalars()]
    assert ("reserved", "notice_sent") in history  # the release is in the card's history
    got = _figures(db, "cards")
    assert got["notice_sent"] == 1, "a cancelled booking is not a second notice sent"
    # ... while a card handed over from its booking (予約済 → 交付済) is a hand-over
    reservation = book_card(app, db, offer, card, day=date(2026, 12, 8))
    db.commit()
    card = db.get(type(card), card.id)
    assert card.state == card_svc.RESERVED
    card_svc.hand_over_card(db, card, None, {"identity": "license"}, actor=card_svc.SYSTEM)
    db.commit()
    got = _figures(db, "cards")
    assert (got["notice_sent"], got["handed_over"]) == (1, 1)


# --- F3: a kana prefix ending in U+D7FF makes the ledger answer 500 ----------------------------

def test_a_kana_search_ending_in_the_last_character_before_the_surrogates_is_answered(
        login_as, db):
    """ledger._next_prefix adds one to the last character of the prefix to close the index
    range; for U+D7FF that is U+D800, a lone surrogate that neither SQLite nor psycopg can
    encode: the ledger's list raises UnicodeEncodeError (500) instead of answering "no card".
    Anyone with the ledger (閲覧者 too) can trigger it with one crafted URL."""
    from tests.factories import make_storage

    make_storage(db, capacity=100)
    make_card(db, name="山田　花子", name_kana="ヤマダ　ハナコ")
    client = login_as("viewer")
    response = client.get("/cardmodelview/list/?_flt_0_name_kana=%ED%9F%BF")
    assert response.status_code == 200
