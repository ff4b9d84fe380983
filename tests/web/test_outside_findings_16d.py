"""Outside review of the issue-16 fixes (fourth pass). The test showed a defect the review
found (a strict xfail that failed); it is fixed and the test now guards the fix."""
from __future__ import annotations

from datetime import date

import pytest

from app.services import booking, cards as card_svc
from app.services.calendar import ensure_slots
from tests.factories import make_card, make_offer


def test_a_held_card_whose_booking_was_cancelled_can_be_discarded(app, db):
    """予約済 → 保留 (held_from=予約済); the booking is then cancelled: release_cards only
    unreserves a card that is 予約済, so the held card keeps held_from=予約済.
    cards.refusal then refuses 廃棄 with 「予約を取り消してください」 although the booking is
    already cancelled; the clerk's only way is to release the hold (back to 予約済 with no
    booking), move it to 交付通知書発送 and then discard."""
    offer = make_offer(db, seats=2)
    card = make_card(db, state=card_svc.SETUP, birth_date=date(1980, 3, 1))
    card_svc.transition_card(db, card, card_svc.NOTICE_SENT, actor=card_svc.SYSTEM)
    with app.test_request_context():
        slot = ensure_slots(db, offer, date(2026, 12, 8), date(2026, 12, 8))[3]
        db.commit()
        reservation = booking.book(
            db, slot, None, card.birth_date,
            booking.Contact(phone="09012345678", name=card.name, name_kana=card.name_kana),
            cards_to_collect=[card], staff=True)
        db.refresh(card)
        assert card.state == card_svc.RESERVED
        card_svc.transition_card(db, card, card_svc.ON_HOLD, note="本人確認書類を確認中",
                                 actor=card_svc.SYSTEM)
        booking.cancel(db, reservation, "都合が悪くなった", staff=True)
        db.refresh(card)
        assert card.state == card_svc.ON_HOLD
        # no booking collects the card any more: the discard is a legitimate action
        assert card_svc.refusal(card, card_svc.DISCARDED) is None, \
            card_svc.refusal(card, card_svc.DISCARDED)
