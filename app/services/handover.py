"""Hand-over (交付) at the counter (F3.4): the identity checklist, then the card leaves the
office and, when it was the last card its booking came for, the booking is completed, all
in one unit of work (app/services/unit.py).

It stands above the card ledger and the desk (cards ← booking ← desk ← handover), so the
ledger never reaches up to the bookings.
"""
from __future__ import annotations

from datetime import datetime

from flask_babel import gettext as _

from app import clock
from app.models.card import Card
from app.services import cards, desk, unit
from app.services.cards import HANDED_OVER, CardActor
from app.services.errors import InputError

ID_ONE_A = "one_a"  # one document with a photo (A)
ID_TWO_B = "two_b"  # two documents without (B)
COLLECTORS = ("self", "legal_representative", "proxy")
PROXY_REASONS = ("hospital", "care_facility", "disability", "age_75", "pregnancy",
                 "small_child", "posted_away")
CHECKLIST_FIELDS = ("identity", "collector", "proxy_reason", "authority_proof", "reason_proof",
                    "proxy_identity", "pin_set", "old_card_returned", "note")


def checklist_of(form) -> dict:
    """The checklist as ticked on the hand-over screen (its filled fields only)."""
    return {key: form.get(key) for key in CHECKLIST_FIELDS if form.get(key)}


def checklist_problems(check: dict) -> list[str]:
    """What the checklist still lacks (DOMAIN.md "Identity at the counter")."""
    problems = []
    if check.get("identity") not in (ID_ONE_A, ID_TWO_B):
        problems.append(_("Choose the identity documents seen (one A-type or two B-type)."))
    who = check.get("collector", "self")
    if who == "legal_representative" and not check.get("authority_proof"):
        problems.append(_("Check the proof of legal representation."))
    if who == "proxy":
        if check.get("proxy_reason") not in PROXY_REASONS:
            problems.append(_("Choose the accepted reason for a proxy."))
        for key, message in (("reason_proof", _("Check the proof of the reason.")),
                             ("authority_proof", _("Check the letter of delegation.")),
                             ("proxy_identity", _("Check the proxy's identity documents."))):
            if not check.get(key):
                problems.append(message)
    if not check.get("pin_set"):
        problems.append(_("Confirm that the resident set the PINs."))
    return problems


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
