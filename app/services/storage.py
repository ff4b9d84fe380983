"""Storage places (保管場所, F3.5) as the screens read them: the places in shelf order,
what each holds, and the stock-taking list (棚卸し), whose printing is audited. Filling and
moving cards between places is the ledger's (app/services/cards.py)."""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select

from app.models.card import Card
from app.models.card_states import VISIT_MODES
from app.models.storage import StoragePlace
from app.services import audit, cards, unit


def places_in_use(session) -> list[StoragePlace]:
    """The places cards may be moved to, in shelf order."""
    return list(session.execute(select(StoragePlace).where(StoragePlace.active.is_(True))
                                .order_by(StoragePlace.sort_key)).scalars())


def get_place(session, place_id: int | None) -> StoragePlace | None:
    return session.get(StoragePlace, place_id) if place_id else None


@dataclass
class Inventory:
    """The stock-taking list: places in shelf order and the cards each holds."""

    places: list[StoragePlace]
    held: dict[int, list[Card]] = field(default_factory=dict)
    visit_mode: str | None = None

    @property
    def card_count(self) -> int:
        return sum(len(self.held.get(p.id, [])) for p in self.places)


@unit.operation
def inventory(session, place_id: int | None = None,
              visit_mode: str | None = None) -> Inventory:
    """Every place (or the one asked for) in shelf order with the cards it holds, in
    application id order; only the cards of ``visit_mode`` when one is given. Printing the
    list is recorded in the audit trail."""
    query = select(StoragePlace).order_by(StoragePlace.sort_key, StoragePlace.code)
    if place_id:
        query = query.where(StoragePlace.id == place_id)
    places = list(session.execute(query).scalars())
    mode = visit_mode if visit_mode in VISIT_MODES else None
    cards_query = select(Card).where(Card.storage_place_id.is_not(None))
    if mode:
        cards_query = cards_query.where(Card.visit_mode == mode)
    result = Inventory(places, visit_mode=mode)
    for card in session.execute(cards_query.order_by(Card.application_id)).scalars():
        result.held.setdefault(card.storage_place_id, []).append(card)
    audit.record_in_transaction(session, audit.ACTION_PRINT, "storage_place", place_id,
                                {"what": "inventory", "places": len(places),
                                 "mode": visit_mode, "cards": result.card_count})
    return result


def move_screen(session, card_ids) -> tuple[list[Card], list[StoragePlace], dict[int, int]]:
    """What the move screen shows: the chosen cards, the places and what each holds."""
    return (cards.cards_by_ids(session, card_ids), places_in_use(session),
            cards.occupancy(session))
