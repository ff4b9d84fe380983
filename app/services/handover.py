"""Hand-over (交付) at the counter (F3.4): the identity checklist, then the card leaves the
office and, when it was the last card its booking came for, the booking is completed, all
in one unit of work (app/services/unit.py).

It stands above the card ledger and the desk (cards ← booking ← desk ← handover), so the
ledger never reaches up to the bookings.
"""
from __future__ import annotations

from datetime import datetime

from app import clock
from app.models.card import Card
from app.services import cards, desk, identity, unit
from app.services.cards import HANDED_OVER, CardActor
from app.services.errors import InputError

# The checklist lives in app/services/identity.py (the intake ticks it too); its names
# stay importable from here.
ID_ONE_A, ID_TWO_B = identity.ID_ONE_A, identity.ID_TWO_B
COLLECTORS, PROXY_REASONS = identity.COLLECTORS, identity.PROXY_REASONS
CHECKLIST_FIELDS = identity.CHECKLIST_FIELDS
checklist_of = identity.checklist_of
checklist_problems = identity.checklist_problems


def may_hand_over(card: Card | None) -> bool:
    """Whether the screen offers the hand-over for this card (the chart allows it)."""
    return card is not None and HANDED_OVER in cards.allowed_next(card)


@unit.operation
def hand_over(session, card: Card, check: dict, *, actor: CardActor,
              now: datetime | None = None) -> Card:
    """Hand the card over after the identity checklist; an incomplete checklist, a role
    that may not, or a card no longer waiting is refused and nothing changes. The card's
    booking, if any, is completed in the same unit."""
    cards.authorize_transition(actor, HANDED_OVER)
    note = cards.hand_over_note(check.get("note"))
    problems = checklist_problems(check)
    if problems:
        raise InputError(" ".join(problems))
    now = now or clock.now()
    cards.hand_over_card(session, card, note, check, actor=actor, now=now)
    desk.card_collected(session, card, actor=actor, now=now)
    return card
