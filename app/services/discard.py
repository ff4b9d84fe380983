"""Discard candidates (廃棄候補, issue 16 §3): not-yet-issued cards past the deadlines of
the settings (DOMAIN.md "Discard").

Judging every not-yet-issued card of a city's ledger (300,000 rows) on each page view is
slow, so the candidates are found by :func:`refresh` (nightly by the job runner as
``system``, by the screen's 「今すぐ更新」 button, by ``flask cards refresh-discard``) and kept
in ``discard_candidate``; the screen reads that snapshot (:func:`snapshot`) and shows only
the cards that still qualify now: a card handed over, discarded or re-notified since the
refresh drops out at once; a card that became a candidate since waits for the next
refresh. The holds and the discard itself stay in app/services/cards.py.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from dateutil.relativedelta import relativedelta
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from app import clock
from app.clock import JST
from app.models.card import Card
from app.models.card_states import (DISCARDED, NOTICE_SENT, RENOTIFIED, RESERVED, RETURNED,
                                    VISIT_MODES)
from app.models.discard import (EXPIRED, NOTICED_LONG_AGO, RENOTIFIED_LONG_AGO,
                                RETURNED_LONG_AGO, DiscardCandidate)
from app.models.setting import SiteSetting
from app.services import actors, audit, cards, unit
from app.services.errors import BulkTransitionError, ConcurrentChangeError
from app.settings import settings

REFRESHED_KEY = "discard_candidates"  # the site_setting row: when, by whom, how many
# Who may refresh from a screen: whoever may discard (docs/roles.md); jobs act as system.
REFRESH_ROLES = cards.TRANSITION_ROLES[cards.DISCARDED]
# The SQL pre-filter's margin: "a day plus N months" clamps month ends (Jan 31 + 1 month is
# Feb 28), so the database is asked a little wider and each row is judged exactly below.
_MARGIN = timedelta(days=7)
_BATCH = 1000


@dataclass
class Deadlines:
    after_notice: relativedelta
    after_renotice: relativedelta
    after_return: relativedelta

    @classmethod
    def from_settings(cls) -> "Deadlines":
        values = settings()
        return cls(relativedelta(months=values.discard_after_notice_months),
                   relativedelta(months=values.discard_after_renotice_months),
                   relativedelta(months=values.discard_after_return_months))


def judge(card, today: date, deadlines: Deadlines) -> tuple[str, date] | None:
    """The rule (DOMAIN.md): why ``card`` (a not-yet-issued card, or a row with its
    columns) is a discard candidate today, as (reason code, day), or None. The first rule
    that holds wins."""
    if card.card_expires_on and card.card_expires_on < today:
        return EXPIRED, card.card_expires_on
    if card.state == RETURNED and card.returned_at \
            and card.returned_at.date() + deadlines.after_return <= today:
        return RETURNED_LONG_AGO, card.returned_at.date()
    if card.renotified_at and card.state in (RENOTIFIED, RESERVED) \
            and card.renotified_at.date() + deadlines.after_renotice <= today:
        return RENOTIFIED_LONG_AGO, card.renotified_at.date()
    if card.notice_sent_at and not card.renotified_at \
            and card.state in (NOTICE_SENT, RESERVED) \
            and card.notice_sent_at.date() + deadlines.after_notice <= today:
        return NOTICED_LONG_AGO, card.notice_sent_at.date()
    return None


def reason_text(reason: str, day: date) -> str:
    """The reason as the screen says it (「2025-11-01 に交付通知書を発送」...)."""
    day_text = day.isoformat()
    if reason == EXPIRED:
        return _("The card expired on %(day)s.", day=day_text)
    if reason == RETURNED_LONG_AGO:
        return _("Returned on %(day)s with no contact since.", day=day_text)
    if reason == RENOTIFIED_LONG_AGO:
        return _("Reminder sent on %(day)s.", day=day_text)
    return _("Notice sent on %(day)s.", day=day_text)


def _might_qualify(today: date, deadlines: Deadlines):
    """A SQL condition every candidate meets (and a few more near a month's end): the
    indexes on state and the stamps narrow 300,000 cards to these before any is judged."""
    def stamped_before(months: relativedelta):
        return datetime.combine(today - months + _MARGIN, time.min, JST)

    return and_(Card.state.in_(cards.NOT_YET_ISSUED), or_(
        Card.card_expires_on < today,
        and_(Card.state == RETURNED,
             Card.returned_at < stamped_before(deadlines.after_return)),
        and_(Card.state.in_((RENOTIFIED, RESERVED)),
             Card.renotified_at < stamped_before(deadlines.after_renotice)),
        and_(Card.state.in_((NOTICE_SENT, RESERVED)), Card.renotified_at.is_(None),
             Card.notice_sent_at < stamped_before(deadlines.after_notice)),
    ))


def find(session, today: date) -> list[tuple[int, str, date]]:
    """(card id, reason code, day) of every candidate today, judged now (what a refresh
    stores), in the screen's order."""
    deadlines = Deadlines.from_settings()
    rows = session.execute(
        select(Card.id, Card.state, Card.card_expires_on, Card.returned_at,
               Card.renotified_at, Card.notice_sent_at)
        .where(_might_qualify(today, deadlines))
        .order_by(Card.storage_place_id, Card.application_id))
    found = []
    for row in rows:
        verdict = judge(row, today, deadlines)
        if verdict:
            found.append((row.id, *verdict))
    return found


def _take_turn(session, now: datetime, who: str) -> int:
    """Lock the refresh's own ``site_setting`` row (made by the first refresh), so two
    refreshes at the same moment run one after the other; returns the version now held."""
    bump = (update(SiteSetting).where(SiteSetting.key == REFRESHED_KEY)
            .values(version=SiteSetting.version + 1))
    if session.execute(bump).rowcount == 0:
        try:
            with session.begin_nested():
                session.execute(insert(SiteSetting).values(
                    key=REFRESHED_KEY, value=json.dumps({"count": 0}), version=1,
                    updated_at=now, updated_by=who))
        except IntegrityError:  # another refresh made the row first: wait for it
            session.execute(bump)
    return session.execute(select(SiteSetting.version)
                           .where(SiteSetting.key == REFRESHED_KEY)).scalar_one()


@unit.operation
def refresh(session, now: datetime, *, actor: actors.CardActor = cards.SYSTEM) -> int:
    """Find the candidates again and replace the snapshot with them (one unit of work,
    one audit record with the count); returns how many were found. A card the last
    refresh found keeps the time it was first found."""
    actors.check_roles(actor, REFRESH_ROLES, _l(
        "Your role does not allow refreshing the discard candidates. Only %(roles)s may "
        "do this.", roles="、".join(actors.role_names(REFRESH_ROLES))))
    who = actors.name_of(actor)
    held = _take_turn(session, now, who)
    today = now.astimezone(JST).date()
    found = find(session, today)
    first_found = dict(session.execute(select(DiscardCandidate.card_id,
                                              DiscardCandidate.found_at)).all())
    session.execute(delete(DiscardCandidate))
    rows = [{"card_id": card_id, "reason": reason, "reason_on": day,
             "found_at": first_found.get(card_id, now)} for card_id, reason, day in found]
    for start in range(0, len(rows), _BATCH):
        session.execute(insert(DiscardCandidate), rows[start:start + _BATCH])
    stamped = session.execute(
        update(SiteSetting).where(SiteSetting.key == REFRESHED_KEY, SiteSetting.version == held)
        .values(value=json.dumps({"count": len(rows)}), updated_at=now, updated_by=who))
    if stamped.rowcount != 1:  # cannot happen while the row is locked: refuse, never guess
        raise ConcurrentChangeError()
    audit.record_in_transaction(session, audit.ACTION_REFRESH, "discard_candidate", None,
                                {"count": len(rows), "day": today.isoformat()})
    return len(rows)


@dataclass
class Candidate:
    card: Card
    reason: str  # as the screen says it
    code: str
    day: date


@dataclass
class Snapshot:
    """The candidates of the last refresh that still qualify, and when it ran (None:
    never)."""

    refreshed_at: datetime | None = None
    refreshed_by: str = ""
    found: int = 0  # how many the refresh found
    candidates: list[Candidate] = field(default_factory=list)
    total: int = 0  # candidates that still qualify (all pages)
    page: int = 1
    pages: int = 1
    first: int = 0  # the number of the page's first candidate (1-based; 0: none)


PAGE_SIZE = 100  # candidates on one page of the screen


def snapshot(session, today: date, visit_mode: str | None = None, page: int = 1,
             page_size: int = PAGE_SIZE) -> Snapshot:
    """What the screen lists (reads only): the cards of the last refresh that are still
    not yet issued and still past a deadline today, judged again from their columns now
    (only these few rows are read), optionally of one visit mode; one page of them, in the
    order of storage place and application ID (a page past the end shows the last)."""
    row = session.execute(select(SiteSetting).where(SiteSetting.key == REFRESHED_KEY)
                          ).scalar_one_or_none()
    if row is None:
        return Snapshot()
    query = (select(Card).join(DiscardCandidate, DiscardCandidate.card_id == Card.id)
             .where(Card.state.in_(cards.NOT_YET_ISSUED))
             .options(selectinload(Card.storage_place))
             .order_by(Card.storage_place_id, Card.application_id))
    if visit_mode in VISIT_MODES:
        query = query.where(Card.visit_mode == visit_mode)
    deadlines = Deadlines.from_settings()
    listed = []
    for card in session.execute(query).scalars():
        verdict = judge(card, today, deadlines)
        if verdict:
            listed.append(Candidate(card, reason_text(*verdict), *verdict))
    pages = max(1, -(-len(listed) // page_size))
    page = min(max(1, page), pages)
    start = (page - 1) * page_size
    return Snapshot(row.updated_at, row.updated_by,
                    int(json.loads(row.value or "{}").get("count", 0)),
                    listed[start:start + page_size], len(listed), page, pages,
                    start + 1 if listed else 0)


def candidate_ids(session) -> set[int]:
    """The card ids of the stored snapshot (for tests and checks)."""
    return set(session.execute(select(DiscardCandidate.card_id)).scalars())


@unit.operation
def discard_candidates(session, card_ids, reason: str, *, actor: actors.CardActor,
                       now: datetime | None = None) -> list[Card]:
    """「選択したカードを廃棄」 on the candidates screen: every card sent must still be a
    candidate now, judged again from its row as the screen judged it. A page read before a
    clerk sent a 再通知 (or a card handed over or changed since) refuses the whole action
    and names the card; nothing is discarded. The discard itself is
    :func:`cards.discard_cards` (role, reason, holds, a compare-and-set per card on the
    state read here), which refuses a card with a booking to collect it (cards.refusal:
    the booking is cancelled first, and the resident told)."""
    cards.authorize_transition(actor, DISCARDED)
    now = now or clock.now()
    today = now.astimezone(JST).date()
    deadlines = Deadlines.from_settings()
    ids = {int(i) for i in card_ids}
    stale = [(card.application_id,
              _("No longer a discard candidate (changed after the page was opened): "
                "open the list again."))
             for card in session.execute(select(Card).where(Card.id.in_(ids))
                                         .order_by(Card.id)).scalars()
             if card.state not in cards.NOT_YET_ISSUED or judge(card, today, deadlines) is None]
    if stale:
        raise BulkTransitionError(stale)
    return cards.discard_cards(session, card_ids, reason, actor=actor, now=now)
