"""The card ledger's searches and counts at 300,000 cards (issue 14 §3).

Each search of the ledger's list is a condition built here, shaped so the database can
answer it from an index (docs/cards.md "台帳の規模と速さ"):

- フリガナ starts with: the input as the ledger stores it (katakana, full-width space),
  then the range ``name_kana >= 'ヤマダ' AND name_kana < 'ヤマヂ'`` on its index (code-point
  order on both engines; ``card.name_kana`` is in the "C" collation on PostgreSQL);
- 申請書ID equal / starts with: digits only (full-width, spaces and hyphens dropped), on
  the unique index;
- 氏名 / フリガナ contains: plain ``LIKE '%花%'`` (no ``lower()``) that PostgreSQL answers
  from its trigram index when the search has three characters or more; SQLite compares
  every name (``instr``), which is what "contains" costs there.
- the counts of the unfiltered list and of a state / visit mode come from ``card_tally``
  (kept by triggers), not from counting cards.

SQLite plans without statistics: for a prefix that matches many cards it would read them
all through the kana index and sort them to show the newest 50. ``dense_prefix`` probes
(at most a few thousand index entries) whether the matches are that many; then the list's
page query walks the delivery-time index instead and stops after 50 matches.
"""
from __future__ import annotations

import math
import unicodedata

from sqlalchemy import and_, func, literal, select
from sqlalchemy.sql.elements import ColumnElement

from app.models.card import Card, CardTally
from app.services import japanese

PAGE = 50


def _dialect(session) -> str:
    return session.get_bind().dialect.name


# --- counts ----------------------------------------------------------------------------
def tally(session, state: str | None = None, visit_mode: str | None = None) -> int:
    """How many cards (in ``state``, of ``visit_mode`` when given), from ``card_tally``."""
    query = select(func.coalesce(func.sum(CardTally.cards), 0))
    if state is not None:
        query = query.where(CardTally.state == state)
    if visit_mode is not None:
        query = query.where(CardTally.visit_mode == visit_mode)
    return int(session.execute(query).scalar_one())


def tally_by_state(session, visit_mode: str | None = None) -> dict[str, int]:
    query = select(CardTally.state, func.sum(CardTally.cards)).group_by(CardTally.state)
    if visit_mode is not None:
        query = query.where(CardTally.visit_mode == visit_mode)
    return {state: int(n) for state, n in session.execute(query).all()}


def recount(session) -> dict[tuple[str, str], int]:
    """The cards per (visit mode, state) counted the slow way, to check the tally."""
    query = select(Card.visit_mode, Card.state, func.count()).group_by(Card.visit_mode,
                                                                       Card.state)
    return {(mode, state): n for mode, state, n in session.execute(query).all()}


# --- input as the ledger stores it ---------------------------------------------------
def kana_query(text: str | None) -> str:
    """やまだ, ﾔﾏﾀﾞ, ヤマダ  ハナコ → ヤマダ / ヤマダ　ハナコ (no validation: a search)."""
    return japanese.to_katakana(text or "")


def name_query(text: str | None) -> str:
    """NFKC, spaces folded to one full-width space, as names are stored."""
    return "　".join(unicodedata.normalize("NFKC", text or "").split())


def application_id_query(text: str | None) -> str:
    return japanese.digits_only(text or "")


# --- conditions --------------------------------------------------------------------------
def _next_prefix(prefix: str) -> str | None:
    """The smallest string above every string starting with ``prefix``."""
    last = ord(prefix[-1]) + 1
    if 0xD800 <= last <= 0xDFFF:  # surrogates are no characters: step past them
        last = 0xE000
    return prefix[:-1] + chr(last) if last <= 0x10FFFF else None


def prefix_range(column, prefix: str) -> ColumnElement:
    upper = _next_prefix(prefix)
    low = column >= prefix
    return and_(low, column < upper) if upper is not None else low


def _unindexed(column):
    """The column in a form SQLite will not look up by index (``name_kana || ''``)."""
    return column.concat("")


def dense_prefix(session, column, prefix: str) -> bool:
    """True when ``prefix`` matches so many cards that reading the newest ones by delivery
    time (about PAGE × all ÷ matches rows) is cheaper than reading every match through the
    index and sorting them (matches rows): matches² > PAGE × all. Probes at most
    √(PAGE × all) index entries."""
    total = tally(session)
    limit = int(math.sqrt(PAGE * max(total, 1))) + 1
    probe = select(literal(1)).where(prefix_range(column, prefix)).limit(limit).subquery()
    found = session.execute(select(func.count()).select_from(probe)).scalar_one()
    return found >= limit


def starts_with(session, column, text: str, *, counting: bool) -> ColumnElement:
    """``column`` starts with ``text`` (already normalised): a range on its index; for the
    page of a dense prefix on SQLite, the same range the index cannot serve."""
    if not text:
        return literal(True)
    if not counting and _dialect(session) == "sqlite" and dense_prefix(session, column, text):
        return prefix_range(_unindexed(column), text)
    return prefix_range(column, text)


def contains(session, column, text: str) -> ColumnElement:
    """``column`` contains ``text`` (already normalised)."""
    if not text:
        return literal(True)
    if _dialect(session) == "sqlite":
        return func.instr(column, text) > 0
    return column.contains(text, autoescape=True)  # LIKE: the trigram index serves it


def kana_starts_with(session, text, *, counting: bool = False) -> ColumnElement:
    return starts_with(session, Card.name_kana, kana_query(text), counting=counting)


def application_id_starts_with(session, text, *, counting: bool = False) -> ColumnElement:
    return starts_with(session, Card.application_id, application_id_query(text),
                       counting=counting)


def application_id_is(text) -> ColumnElement:
    return Card.application_id == application_id_query(text)


def kana_is(text) -> ColumnElement:
    return Card.name_kana == kana_query(text)


def name_contains(session, text) -> ColumnElement:
    return contains(session, Card.name, name_query(text))


def kana_contains(session, text) -> ColumnElement:
    return contains(session, Card.name_kana, kana_query(text))
