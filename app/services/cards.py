"""The card workflow (F3.3, F3.4, F3.5): one state chart per visit mode, every change an
event, storage places that cards take and free. Each operation checks first, then acts,
each public operation is one unit of work (app/services/unit.py): it commits once or
changes nothing. Steps that are part of a larger operation (``prepare_received``,
``reserve_card``, ``hand_over_card``) join the caller's unit.

The vocabulary (states, visit modes, their labels) is app/models/card_states.py; the
names are re-exported here for the services' callers."""
from __future__ import annotations

import json
from datetime import datetime
from typing import Iterable
from urllib.parse import parse_qs, urlsplit

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, inspect, select, update
from sqlalchemy.orm.attributes import set_committed_value

from app import clock
from app.models.card import VISIT_AT_APPLICATION, VISIT_AT_HANDOVER, Card, CardEvent
from app.models.card_states import (DISCARDED, HANDED_OVER, MAILED, NOTICE_SENT,  # noqa: F401
                                    ON_HOLD, RECEIVED, RENOTIFIED, RESERVED, RETURNED, SETUP,
                                    STATE_LABELS, STATES, VISIT_MODE_LABELS, VISIT_MODES,
                                    state_label, visit_mode_label)
from app.models.storage import StoragePlace
from app.services import actors, audit, fields, intake, ledger, notice_numbers, unit
from app.services.japanese import digits_only
from app.services.errors import (BulkTransitionError, CardNotFoundError, InputError,
                                 InvalidTransitionError, StorageFullError)

# DOMAIN.md "Card lifecycle". 保留 (on hold) returns to the state it came from.
CHARTS: dict[str, dict[str, tuple[str, ...]]] = {
    VISIT_AT_HANDOVER: {
        RECEIVED: (SETUP, ON_HOLD, DISCARDED),
        SETUP: (NOTICE_SENT, ON_HOLD, DISCARDED),
        NOTICE_SENT: (RESERVED, HANDED_OVER, RETURNED, RENOTIFIED, ON_HOLD, DISCARDED),
        # 予約済 → 廃棄 only through a cancelled booking (refusal(): the visit would stay)
        RESERVED: (HANDED_OVER, NOTICE_SENT, RENOTIFIED, ON_HOLD),
        RETURNED: (RENOTIFIED, ON_HOLD, DISCARDED),
        RENOTIFIED: (RESERVED, HANDED_OVER, RETURNED, ON_HOLD, DISCARDED),
        ON_HOLD: (DISCARDED,),
        HANDED_OVER: (),
        DISCARDED: (),
    },
    VISIT_AT_APPLICATION: {
        RECEIVED: (SETUP, ON_HOLD, DISCARDED),
        SETUP: (MAILED, ON_HOLD, DISCARDED),
        MAILED: (HANDED_OVER, RETURNED),
        RETURNED: (ON_HOLD, DISCARDED),
        ON_HOLD: (DISCARDED,),
        HANDED_OVER: (),
        DISCARDED: (),
    },
}
STAMPS = {RECEIVED: "received_at", SETUP: "setup_at", NOTICE_SENT: "notice_sent_at",
          RENOTIFIED: "renotified_at", RETURNED: "returned_at", MAILED: "mailed_at",
          HANDED_OVER: "handed_over_at", DISCARDED: "discarded_at"}
LEAVES_THE_OFFICE = {HANDED_OVER, MAILED, DISCARDED}
RETURNS_FROM = {RESERVED, ON_HOLD}  # a change out of these returns the card where it was
NOT_YET_ISSUED = {RECEIVED, SETUP, NOTICE_SENT, RESERVED, RENOTIFIED, RETURNED, ON_HOLD}

# --- who may do what (docs/roles.md "Card state changes") ------------------------------
# Checked here for every entry point (detail page, bulk actions, discard screens, REST
# API); the screens only hide what the service would refuse anyway. Config keys of the
# role names, so a city renaming a role keeps the rule.
STAFF = ("ROLE_MANAGER", "ROLE_CLERK")
SUPERVISORS = ("ROLE_MANAGER",)
TRANSITION_ROLES: dict[str, tuple[str, ...]] = {
    SETUP: STAFF, NOTICE_SENT: STAFF, RESERVED: STAFF, RENOTIFIED: STAFF, RETURNED: STAFF,
    MAILED: STAFF, ON_HOLD: STAFF,
    HANDED_OVER: STAFF,  # only through hand_over(), with the identity checklist
    DISCARDED: SUPERVISORS,  # with a written reason, never while the discard is held back
}
MOVE, DISCARD_HOLD = "move", "discard_hold"
OPERATION_ROLES: dict[str, tuple[str, ...]] = {MOVE: STAFF, DISCARD_HOLD: SUPERVISORS}
NEEDS_NOTE = {DISCARDED: _l("Write the reason for the discard.")}


# Who asks (app/services/actors.py, shared with the intake): re-exported for callers.
CardActor, SYSTEM, name_of, actor_of = (actors.CardActor, actors.SYSTEM, actors.name_of,
                                        actors.actor_of)
_role_names, _check_roles = actors.role_names, actors.check_roles


def may_transition(actor: CardActor, to_state: str) -> bool:
    keys = TRANSITION_ROLES.get(to_state, ())
    return actor.system or bool(actor.roles & set(_role_names(keys)))


def authorize_transition(actor: CardActor, to_state: str) -> None:
    keys = TRANSITION_ROLES.get(to_state, ())
    _check_roles(actor, keys, _("Your role does not allow making a card %(target)s. "
                                "Only %(roles)s may do this.", target=state_label(to_state),
                                roles="、".join(_role_names(keys)) or "-"))


def authorize(actor: CardActor, operation: str) -> None:
    keys = OPERATION_ROLES[operation]
    _check_roles(actor, keys, _("Your role does not allow this operation. Only %(roles)s may "
                                "do this.", roles="、".join(_role_names(keys))))


EVENT_NOTE_MAX = 500  # card_event.note
REASON_MAX = 200  # card.discard_reason, card.discard_hold_reason


def _require_note(to_state: str, note: str | None) -> str | None:
    """The note of a change, checked here for every entry point (page, bulk, API): no
    control characters, at most what its column holds; a discard's is its reason."""
    if to_state == DISCARDED:
        note = fields.clean_text(note, REASON_MAX)
    else:
        note = fields.clean_text(note, EVENT_NOTE_MAX, multiline=True)
    if to_state in NEEDS_NOTE and not note:
        raise InputError(NEEDS_NOTE[to_state])
    return note


def allowed_next(card: Card) -> list[str]:
    chart = CHARTS[card.visit_mode]
    allowed = list(chart.get(card.state, ()))
    if card.state == ON_HOLD and card.held_from:
        allowed.insert(0, card.held_from)
    return allowed


def refusal(card: Card, to_state: str) -> str | None:
    """Why ``card`` cannot move to ``to_state`` (None when it can)."""
    if to_state not in STATE_LABELS:
        return _("Unknown state: %(state)s", state=to_state)
    if to_state == DISCARDED and RESERVED in (card.state, card.held_from):
        return _("%(card)s has a booking to collect it: cancel the booking (the resident is "
                 "told) before the card is discarded.",
                 card=f"{card.name}（{card.application_id}）")
    allowed = allowed_next(card)
    if to_state in allowed:
        return None
    nexts = "、".join(state_label(s) for s in allowed) or _("none (final state)")
    return _("%(card)s is %(current)s and cannot become %(target)s. Allowed next: %(allowed)s.",
             card=f"{card.name}（{card.application_id}）", current=state_label(card.state),
             target=state_label(to_state), allowed=nexts)


def _state_now(session, card: Card) -> str | None:
    """The card's state in the database, without flushing the caller's pending work."""
    return session.execute(select(Card.state).where(Card.id == card.id)
                           .execution_options(autoflush=False)).scalar()


def _changed_meanwhile(session, card: Card, expected: str) -> InvalidTransitionError:
    """The compare-and-set found the card in another state: say which (the unit of work
    the error ends rolls back whatever this operation wrote)."""
    current = _state_now(session, card)
    label = f"{card.name}（{card.application_id}）"
    if current is None:
        return InvalidTransitionError(_("No card matches."))
    return InvalidTransitionError(_(
        "%(card)s was changed by someone else just now and is %(current)s (it was "
        "%(expected)s). Nothing was changed; check the card and try again.", card=label,
        current=state_label(current), expected=state_label(expected)))


def _apply(session, card: Card, to_state: str, note: str | None, username: str,
           now: datetime, extra: dict | None = None) -> None:
    """Move ``card`` from the state it was read in to ``to_state`` with one compare-and-set
    (``UPDATE card ... WHERE id = :id AND state = :expected``): exactly one row, or the
    transaction is rolled back and InvalidTransitionError names the state found. Writes
    the CardEvent and the audit record in the caller's unit of work."""
    from_state = card.state
    if not _compare_and_set(session, card, to_state, note, username, now, extra):
        raise _changed_meanwhile(session, card, from_state)


def _compare_and_set(session, card: Card, to_state: str, note: str | None, username: str,
                     now: datetime, extra: dict | None = None) -> bool:
    """The one deciding step of every state change; False (nothing written) when the card
    is no longer in the state it was read in."""
    if card.id is None:
        session.flush()  # a card created in this transaction
    from_state = card.state
    values: dict = {"state": to_state}
    if to_state == ON_HOLD:
        values["held_from"] = from_state
    elif from_state == ON_HOLD:
        values["held_from"] = None
    stamp = STAMPS.get(to_state)
    # A card going back to where it was (a booking cancelled or missed, a hold released)
    # keeps the date it first got there: the notice was sent once.
    if stamp and from_state not in RETURNS_FROM:
        values[stamp] = now
    if to_state == NOTICE_SENT and not card.notice_number:
        values["notice_number"] = notice_numbers.generate(session, Card.notice_number)
    if to_state in LEAVES_THE_OFFICE:
        values["storage_place_id"] = None
    elif card.storage_place_id is None and to_state == RETURNED:
        place = allocate_places(session, 1)[0]  # a mailed card came back: shelve it
        values["storage_place_id"] = place.id if place else None
    values.update(extra or {})
    old = {key: getattr(card, key) for key in values}
    expected = [Card.id == card.id, Card.state == from_state]
    if to_state == DISCARDED:  # a hold put on meanwhile stops the discard too
        expected.append(Card.discard_hold.is_(False))
    row = session.execute(update(Card).where(*expected).values(**values)
                          .returning(Card.storage_place_id)
                          .execution_options(synchronize_session=False, autoflush=False)
                          ).first()
    if row is None:
        return False
    for key, value in values.items():
        set_committed_value(card, key, value)
    if "storage_place_id" in values:
        session.expire(card, ["storage_place"])
    audit.record_in_transaction(session, audit.ACTION_UPDATE, "card", card.id,
                                {key: {"old": old[key], "new": value}
                                 for key, value in values.items() if old[key] != value})
    # the place the card is kept in after the change, as the row holds it now
    session.add(CardEvent(card_id=card.id, from_state=from_state, to_state=to_state, at=now,
                          username=username, note=(note or None),
                          storage_place_id=row.storage_place_id))
    if "events" not in inspect(card).unloaded:
        session.expire(card, ["events"])
    return True


def _check_transition(card: Card, to_state: str, note: str | None) -> None:
    """The chart and the required fields; raises changing nothing."""
    reason = refusal(card, to_state)
    if reason:
        raise InvalidTransitionError(reason)
    if to_state == DISCARDED and card.discard_hold:
        raise InvalidTransitionError(_("Discard is held back: %(why)s",
                                       why=card.discard_hold_reason or ""))
    _require_note(to_state, note)


def _extra(to_state: str, note: str | None) -> dict:
    return {"discard_reason": note} if to_state == DISCARDED else {}


@unit.operation
def transition_card(session, card: Card, to_state: str, note: str | None = None, *,
                    actor: CardActor, now: datetime | None = None) -> Card:
    """Move one card along its chart, or raise a DomainError changing nothing: the role
    (TRANSITION_ROLES), the chart, the required note, then a compare-and-set."""
    if to_state in STATE_LABELS:
        authorize_transition(actor, to_state)
    _check_transition(card, to_state, note)
    if to_state == HANDED_OVER:
        raise InvalidTransitionError(
            _("Hand cards over on the hand-over screen, with the identity check."))
    note = _require_note(to_state, note)
    _apply(session, card, to_state, note, name_of(actor), now or clock.now(),
           _extra(to_state, note))
    return card


def _prepare_bulk(session, card_ids: Iterable[int], to_state: str,
                  note: str | None, actor: CardActor, now: datetime | None) -> list[Card]:
    if to_state in STATE_LABELS:
        authorize_transition(actor, to_state)
    if to_state == HANDED_OVER:
        raise InvalidTransitionError(
            _("Hand cards over on the hand-over screen, with the identity check."))
    note = _require_note(to_state, note)
    ids = list(dict.fromkeys(int(i) for i in card_ids))
    if not ids:
        raise InputError(_l("Select at least one card."))
    cards = list(session.execute(select(Card).where(Card.id.in_(ids)).order_by(Card.id))
                 .scalars())
    failures = [(f"#{i}", _("No such card.")) for i in set(ids) - {c.id for c in cards}]
    failures += [(c.application_id, reason) for c in cards
                 if (reason := refusal(c, to_state))]
    if to_state == DISCARDED:
        failures += [(c.application_id, _("Discard is held back: %(why)s",
                                          why=c.discard_hold_reason or ""))
                     for c in cards if c.discard_hold]
    if failures:
        raise BulkTransitionError(failures)
    username, now = name_of(actor), now or clock.now()
    for card in cards:
        _apply_in_bulk(session, card, to_state, note, username, now, _extra(to_state, note))
    return cards


def _apply_in_bulk(session, card: Card, to_state: str, note: str | None, username: str,
                   now: datetime, extra: dict | None = None) -> None:
    """One card of an all-or-nothing action: a lost compare-and-set rolls back them all."""
    label = card.application_id
    try:
        _apply(session, card, to_state, note, username, now, extra)
    except InvalidTransitionError as error:
        raise BulkTransitionError([(label, str(error.message))]) from None


@unit.operation
def bulk_transition(session, card_ids: Iterable[int], to_state: str,
                    note: str | None = None, *, actor: CardActor,
                    now: datetime | None = None) -> list[Card]:
    """All or nothing: if any card cannot move, none moves; the error lists which and why."""
    return _prepare_bulk(session, card_ids, to_state, note, actor, now)


# --- the ledger's own fields ----------------------------------------------------------

def prepare_received(session, card: Card, *, actor: CardActor = SYSTEM,
                     now: datetime | None = None) -> Card:
    """A card received from J-LIS: state 納品, its first event, and the next free shelf
    unless one was chosen. The caller has validated the fields; part of its unit."""
    if card.storage_place_id is None and card.storage_place is None:
        card.storage_place = allocate_places(session, 1)[0]
    now = now or clock.now()
    card.state = RECEIVED
    card.received_at = now
    session.add(card)
    place = card.storage_place  # chosen or allocated (or only its id set by the caller)
    kept = {"storage_place": place} if place is not None else \
        {"storage_place_id": card.storage_place_id}
    session.add(CardEvent(card=card, from_state=None, to_state=RECEIVED, at=now,
                          username=name_of(actor), note=None, **kept))
    intake.card_arrived(session, card.application_id, now)  # its application: 送付済
    return card


def new_card(session, fields: dict, *, actor: CardActor = SYSTEM,
             now: datetime | None = None) -> Card:
    """A new ledger row in state 納品 from validated fields (part of the caller's unit)."""
    return prepare_received(session, Card(**fields), actor=actor, now=now)


@unit.operation
def release_holds(session, card_ids: Iterable[int], *, actor: CardActor,
                  now: datetime | None = None) -> list[Card]:
    """Cards on hold back to where they were, all or nothing."""
    ids = list(dict.fromkeys(int(i) for i in card_ids))
    chosen = list(session.execute(select(Card).where(Card.id.in_(ids))).scalars())
    for state in sorted({c.held_from for c in chosen if c.state == ON_HOLD and c.held_from}):
        authorize_transition(actor, state)
    failures = [(c.application_id, _("It is not on hold.")) for c in chosen
                if c.state != ON_HOLD]
    failures += [(c.application_id, reason) for c in chosen
                 if c.state == ON_HOLD and (reason := refusal(c, c.held_from or ""))]
    if failures:
        raise BulkTransitionError(failures)
    username, now = name_of(actor), now or clock.now()
    for card in chosen:
        _apply_in_bulk(session, card, card.held_from, None, username, now)
    return chosen


def find_card(session, text: str) -> Card:
    """By 申請書ID (23 digits) or postcard number, as typed or scanned; a scan of the
    postcard's QR code types the booking URL, whose ``n`` parameter is the number."""
    if "n=" in (text or ""):
        text = (parse_qs(urlsplit(text.strip()).query).get("n") or [text])[0]
    raw = digits_only(text)
    if len(raw) == 23 and raw.isdigit():
        card = session.execute(select(Card).where(Card.application_id == raw)).scalar()
    else:
        try:
            number = notice_numbers.parse(text)
        except InputError:
            raise CardNotFoundError(
                _l("Enter a 23-digit application ID or a postcard number.")) from None
        card = session.execute(select(Card).where(Card.notice_number == number)).scalar()
    if card is None:
        raise CardNotFoundError()
    return card


# --- storage places (F3.5) -----------------------------------------------------------

def occupancy(session) -> dict[int, int]:
    rows = session.execute(select(Card.storage_place_id, func.count(Card.id))
                           .where(Card.storage_place_id.is_not(None))
                           .group_by(Card.storage_place_id))
    return {place_id: count for place_id, count in rows}


def _lock_places(session, place_ids=None) -> None:
    """On PostgreSQL, lock the storage place rows before counting what they hold, so two
    transactions filling the same place wait for each other (SQLite has one writer)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    query = select(StoragePlace.id).where(StoragePlace.active.is_(True))
    if place_ids is not None:
        query = select(StoragePlace.id).where(StoragePlace.id.in_(list(place_ids)))
    session.execute(query.order_by(StoragePlace.id).with_for_update()).all()


def allocate_places(session, count: int) -> list[StoragePlace | None]:
    """Places for ``count`` new cards, filling shelves in order; None where all are full."""
    _lock_places(session)
    places = session.execute(select(StoragePlace).where(StoragePlace.active.is_(True))
                             .order_by(StoragePlace.sort_key, StoragePlace.code)).scalars()
    used = occupancy(session)
    result: list[StoragePlace | None] = []
    for place in places:
        free = place.capacity - used.get(place.id, 0)
        while free > 0 and len(result) < count:
            result.append(place)
            free -= 1
        if len(result) == count:
            return result
    return result + [None] * (count - len(result))


def _room_message(session, place: StoragePlace):
    free = max(place.capacity - occupancy(session).get(place.id, 0), 0)
    return _l("%(place)s has room for %(free)d more cards.", place=place.code, free=free)


@unit.operation
def move_cards(session, card_ids: Iterable[int], place: StoragePlace, *,
               actor: CardActor, now: datetime | None = None) -> list[Card]:
    """Move cards to ``place`` (all or nothing): only cards still in the office, and only
    while the place has room. One conditional UPDATE decides, counting the place's cards
    at that moment (the place row is locked first on PostgreSQL), so two moves at once
    never fill a place beyond its capacity. Each card moved gets an event in its history
    (state unchanged, the new place: 保管場所の移動), so the stock per place on any past
    day can be read from the history."""
    authorize(actor, MOVE)
    ids = list(dict.fromkeys(int(i) for i in card_ids))
    cards = list(session.execute(select(Card).where(Card.id.in_(ids))).scalars())
    gone = [c for c in cards if c.state in LEAVES_THE_OFFICE]
    if gone:
        raise InputError(_l("%(n)d of the cards are no longer in the office.", n=len(gone)))
    arriving = [c for c in cards if c.storage_place_id != place.id]
    if not arriving:
        return cards
    _lock_places(session, [place.id])
    if occupancy(session).get(place.id, 0) + len(arriving) > place.capacity:
        raise StorageFullError(_room_message(session, place))
    held = (select(func.count(Card.id)).where(Card.storage_place_id == place.id)
            .scalar_subquery())
    capacity = select(StoragePlace.capacity).where(StoragePlace.id == place.id).scalar_subquery()
    old = {c.id: c.storage_place_id for c in arriving}
    moved = dict(session.execute(  # each moved card's state, as the row holds it now
        update(Card).where(Card.id.in_(list(old)), Card.state.not_in(LEAVES_THE_OFFICE),
                           held + len(arriving) <= capacity)
        .values(storage_place_id=place.id).returning(Card.id, Card.state)
        .execution_options(synchronize_session=False)).all())
    if len(moved) != len(arriving):  # filled or changed meanwhile: nothing moves
        # (the unit rolls back the rows that did move); the place without them says which
        held_before = session.execute(select(func.count(Card.id)).where(
            Card.storage_place_id == place.id, Card.id.not_in(list(old)))).scalar()
        if held_before + len(arriving) > place.capacity:
            free = max(place.capacity - held_before, 0)
            raise StorageFullError(_l("%(place)s has room for %(free)d more cards.",
                                      place=place.code, free=free))
        raise InputError(_l("Some of the cards were changed by someone else just now. "
                            "Nothing was moved; check the cards and try again."))
    username, now = name_of(actor), now or clock.now()
    codes = dict(session.execute(select(StoragePlace.id, StoragePlace.code).where(
        StoragePlace.id.in_({p for p in old.values() if p is not None}))).all())
    for card in arriving:
        set_committed_value(card, "storage_place_id", place.id)
        session.expire(card, ["storage_place"])
        audit.record_in_transaction(session, audit.ACTION_UPDATE, "card", card.id,
                                    {"storage_place_id": {"old": old[card.id],
                                                          "new": place.id}})
        state = moved[card.id]
        session.add(CardEvent(card_id=card.id, from_state=state, to_state=state, at=now,
                              username=username, storage_place_id=place.id,
                              note=move_note(codes.get(old[card.id]), place.code)))
        if "events" not in inspect(card).unloaded:
            session.expire(card, ["events"])
    return cards


def move_note(old_code: str | None, new_code: str) -> str:
    """The note of a move in the card's history: 保管場所を移動: A → B."""
    return _("Storage place changed: %(old)s → %(new)s", old=old_code or _("(none)"),
             new=new_code)[:EVENT_NOTE_MAX]


# --- hand-over (交付): the card's part; app/services/handover.py is the operation -------

def hand_over_card(session, card: Card, note: str | None, identity_check: dict, *,
                   actor: CardActor, now: datetime | None = None) -> Card:
    """The card leaves the office with the checklist seen at the counter (part of the
    hand-over's unit; the checklist itself is checked by app/services/handover.py)."""
    authorize_transition(actor, HANDED_OVER)
    reason = refusal(card, HANDED_OVER)
    if reason:
        raise InvalidTransitionError(reason)
    username = name_of(actor)
    _apply(session, card, HANDED_OVER, note, username, now or clock.now(),
           {"handed_over_by": username,
            "identity_check": json.dumps(identity_check, ensure_ascii=False,
                                         sort_keys=True)})
    intake.card_handed_over(session, card.application_id, card.handed_over_at)  # 交付済
    return card


def hand_over_note(note: str | None) -> str | None:
    """The hand-over's note, checked as every note is."""
    return _require_note(HANDED_OVER, note)


# --- discard (廃棄): the candidates are app/services/discard.py -----------------------------

@unit.operation
def set_discard_hold(session, card_ids: Iterable[int], hold: bool, reason: str | None, *,
                     actor: CardActor) -> int:
    """Hold back (or allow again) the discard of not-yet-issued cards. Only cards not yet
    discarded change, each with a compare-and-set on its state."""
    authorize(actor, DISCARD_HOLD)
    reason = fields.clean_text(reason, REASON_MAX)
    if hold and not reason:
        raise InputError(_l("Write why the discard is held back."))
    cards = list(session.execute(select(Card).where(Card.id.in_(list(card_ids)))).scalars())
    gone = [c for c in cards if c.state not in NOT_YET_ISSUED]
    if gone:
        raise BulkTransitionError([(c.application_id, _("It is already %(state)s.",
                                                        state=state_label(c.state)))
                                   for c in gone])
    values = {"discard_hold": hold, "discard_hold_reason": reason if hold else None}
    for card in cards:
        old = {key: getattr(card, key) for key in values}
        result = session.execute(update(Card).where(Card.id == card.id,
                                                    Card.state.in_(NOT_YET_ISSUED))
                                 .values(**values).execution_options(synchronize_session=False))
        if result.rowcount != 1:
            label = card.application_id
            raise BulkTransitionError([(label, str(_changed_meanwhile(session, card,
                                                                      card.state).message))])
        for key, value in values.items():
            set_committed_value(card, key, value)
        audit.record_in_transaction(session, audit.ACTION_UPDATE, "card", card.id,
                                    {key: {"old": old[key], "new": value}
                                     for key, value in values.items() if old[key] != value})
    return len(cards)


@unit.operation
def discard_cards(session, card_ids: Iterable[int], reason: str, *,
                  actor: CardActor, now: datetime | None = None) -> list[Card]:
    """Bulk discard with a reason; held cards and cards that cannot be discarded stop the
    whole action."""
    authorize_transition(actor, DISCARDED)
    reason = (reason or "").strip()
    if not reason:
        raise InputError(_l("Write the reason for the discard."))
    return _prepare_bulk(session, list(card_ids), DISCARDED, reason, actor,
                         now)  # refuses held cards


def reserve_card(session, card: Card, reservation_number: str, *,
                 actor: CardActor = SYSTEM, now: datetime | None = None) -> None:
    """A booking to collect the card was made (part of the booking's unit). When
    another booking took the card meanwhile, nothing is written here and the booking's
    commit is refused by the one-active-booking-per-card index; any other change of the
    card meanwhile rolls the booking back."""
    from_state = card.state
    if _compare_and_set(session, card, RESERVED, _("Booking %(n)s", n=reservation_number),
                        name_of(actor), now or clock.now()):
        return
    if _state_now(session, card) == RESERVED:
        return
    raise _changed_meanwhile(session, card, from_state)


def unreserve_card(session, card: Card, reservation_number: str, *,
                   actor: CardActor = SYSTEM, now: datetime | None = None) -> None:
    """The booking was cancelled: back to waiting (part of the cancellation's unit). A card
    on hold (保留) from 予約済 stays on hold, and returns to waiting when the hold ends."""
    back = RENOTIFIED if card.renotified_at else NOTICE_SENT
    if card.state == ON_HOLD and card.held_from == RESERVED:
        changed = session.execute(
            update(Card).where(Card.id == card.id, Card.state == ON_HOLD,
                               Card.held_from == RESERVED)
            .values(held_from=back).execution_options(synchronize_session=False)).rowcount
        if changed != 1:
            raise _changed_meanwhile(session, card, ON_HOLD)
        set_committed_value(card, "held_from", back)
        audit.record_in_transaction(session, audit.ACTION_UPDATE, "card", card.id, {
            "held_from": {"old": RESERVED, "new": back},
            "why": _("Booking %(n)s cancelled", n=reservation_number)})
        return
    _apply(session, card, back, _("Booking %(n)s cancelled", n=reservation_number),
           name_of(actor), now or clock.now())


# --- reads for the screens and the API ----------------------------------------------------

def card_by_id(session, card_id: int | None) -> Card | None:
    return session.get(Card, card_id) if card_id else None


def get_card(session, card_id: int | None) -> Card:
    """One card by id, or CardNotFoundError ("No card matches.")."""
    card = session.get(Card, card_id) if card_id else None
    if card is None:
        raise CardNotFoundError(_l("No card matches."))
    return card


def cards_by_ids(session, card_ids: Iterable[int]) -> list[Card]:
    """The cards chosen on a screen, in application id order (unknown ids left out)."""
    ids = list(dict.fromkeys(int(i) for i in card_ids))
    if not ids:
        return []
    return list(session.execute(select(Card).where(Card.id.in_(ids))
                                .order_by(Card.application_id)).scalars())


def state_counts(session, visit_mode: str | None = None) -> list[tuple[str, str, int]]:
    """The ledger's summary bar: (state, label, how many cards) for every state, in the
    chart's order; only the cards of ``visit_mode`` when one is given. Read from the tally
    the database keeps (``card_tally``), not by counting every card on each page view."""
    counts = ledger.tally_by_state(session, visit_mode if visit_mode in VISIT_MODES else None)
    return [(state, state_label(state), counts.get(state, 0)) for state in STATES]


def discarded_between(session, start: datetime, end: datetime,
                      visit_mode: str | None = None) -> list[Card]:
    """The discard register (廃棄簿): cards discarded in [start, end], in that order."""
    query = select(Card).where(Card.state == DISCARDED, Card.discarded_at >= start,
                               Card.discarded_at <= end)
    if visit_mode in VISIT_MODES:
        query = query.where(Card.visit_mode == visit_mode)
    return list(session.execute(query.order_by(Card.discarded_at, Card.application_id))
                .scalars())
