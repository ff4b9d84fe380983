"""The card's vocabulary in one place (issue 11 §5): its states, its visit modes and
their labels, for every screen, the REST API and the services (app/services/cards.py
holds the rules that move a card between these states)."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

from app.models.card import VISIT_AT_APPLICATION, VISIT_AT_HANDOVER

RECEIVED = "received"
SETUP = "setup"
NOTICE_SENT = "notice_sent"
RESERVED = "reserved"
RENOTIFIED = "renotified"
RETURNED = "returned"
MAILED = "mailed"
ON_HOLD = "on_hold"
HANDED_OVER = "handed_over"
DISCARDED = "discarded"

STATE_LABELS = {
    RECEIVED: _l("Received"),
    SETUP: _l("Set up"),
    NOTICE_SENT: _l("Notice sent"),
    RESERVED: _l("Reserved"),
    RENOTIFIED: _l("Re-notified"),
    RETURNED: _l("Returned"),
    MAILED: _l("Mailed"),
    ON_HOLD: _l("On hold"),
    HANDED_OVER: _l("Handed over"),
    DISCARDED: _l("Discarded"),
}
STATES = tuple(STATE_LABELS)

VISIT_MODE_LABELS = {
    VISIT_AT_HANDOVER: _l("Visit to collect"),
    VISIT_AT_APPLICATION: _l("Visited at application"),
}
VISIT_MODES = tuple(VISIT_MODE_LABELS)


def state_label(state: str | None) -> str:
    return str(STATE_LABELS.get(state, state or ""))


# A card_event whose state stays (from_state = to_state) is a move between storage places.
MOVE_LABEL = _l("Storage place moved")


def change_label(from_state: str | None, to_state: str | None) -> str:
    """One event of a card's history in words: 納品, 納品 → 交付前設定済, or 保管場所の移動."""
    if from_state is None:
        return state_label(to_state)
    if from_state == to_state:
        return str(MOVE_LABEL)
    return f"{state_label(from_state)} → {state_label(to_state)}"


def visit_mode_label(mode: str | None) -> str:
    return str(VISIT_MODE_LABELS.get(mode, mode or ""))


def visit_mode_choices() -> list[tuple[str, object]]:
    """(value, label) pairs for a form's select, in the ledger's order."""
    return list(VISIT_MODE_LABELS.items())
