"""The card ledger at scale (issue 14 §3): the per-state tally the triggers keep, the
searches' input as the ledger stores it, and plans that use the indexes (EXPLAIN on SQLite
and on PostgreSQL)."""
from datetime import timedelta

import pytest
from sqlalchemy import delete, insert, select, text, update

from app.models.card import Card, CardTally
from app.services import cards, ledger
from tests.factories import make_card, make_storage


def _tally(db) -> dict[tuple[str, str], int]:
    return {(t.visit_mode, t.state): t.cards for t in db.execute(select(CardTally)).scalars()
            if t.cards}


def test_the_tally_follows_every_way_a_card_changes(app, db):
    make_storage(db, capacity=100)
    first = make_card(db)  # ORM insert, 納品
    second = make_card(db, state=cards.SETUP)  # insert then a change of state
    make_card(db, state=cards.SETUP, visit_mode="S")
    assert _tally(db) == {("K", cards.RECEIVED): 1, ("K", cards.SETUP): 1,
                          ("S", cards.SETUP): 1}
    cards.transition_card(db, second, cards.NOTICE_SENT, actor=cards.SYSTEM)  # a service
    db.execute(update(Card).where(Card.id == first.id).values(visit_mode="S"))  # Core
    db.execute(insert(Card), [dict(application_id=f"9{n:022d}", name="山田　花子",
                                   name_kana="ヤマダ　ハナコ", birth_date=first.birth_date,
                                   has_sign_cert=True, has_auth_cert=True, visit_mode="K",
                                   state=cards.HANDED_OVER, discard_hold=False)
                              for n in (1, 2, 3)])  # a bulk Core insert
    db.commit()
    assert _tally(db) == {("S", cards.RECEIVED): 1, ("K", cards.NOTICE_SENT): 1,
                          ("S", cards.SETUP): 1, ("K", cards.HANDED_OVER): 3}
    db.execute(delete(Card).where(Card.application_id == f"9{1:022d}"))
    db.execute(update(Card).where(Card.state == cards.HANDED_OVER).values(notes="x"))  # no-op
    db.commit()
    assert _tally(db) == {("S", cards.RECEIVED): 1, ("K", cards.NOTICE_SENT): 1,
                          ("S", cards.SETUP): 1, ("K", cards.HANDED_OVER): 2}
    assert _tally(db) == ledger.recount(db)
    assert ledger.tally(db) == 5 and ledger.tally(db, cards.HANDED_OVER) == 2
    assert ledger.tally(db, cards.SETUP, "S") == 1 and ledger.tally(db, visit_mode="K") == 3
    counts = {s: n for s, _label, n in cards.state_counts(db, "S")}
    assert counts[cards.RECEIVED] == 1 and counts[cards.SETUP] == 1
    assert counts[cards.HANDED_OVER] == 0


def test_a_rolled_back_change_leaves_the_tally_alone(app, db):
    make_storage(db)
    card = make_card(db)
    db.execute(update(Card).where(Card.id == card.id).values(state=cards.SETUP))
    db.rollback()
    assert _tally(db) == {("K", cards.RECEIVED): 1}


@pytest.mark.parametrize("typed, stored", [
    ("やまだ", "ヤマダ"), ("ﾔﾏﾀﾞ", "ヤマダ"), ("ヤマダ ハナ", "ヤマダ　ハナ"),
    ("  ヤマダ　 ハナコ ", "ヤマダ　ハナコ")])
def test_kana_is_searched_as_stored(typed, stored):
    assert ledger.kana_query(typed) == stored


def test_application_ids_and_names_are_searched_as_stored():
    assert ledger.application_id_query("１２３４-5678 9012") == "123456789012"
    assert ledger.name_query("山田 花子") == "山田　花子"
    assert ledger.name_query("ﾔﾏﾀﾞ") == "ヤマダ"


def test_prefix_range_is_exactly_the_prefix(app, db):
    make_storage(db, capacity=100)
    for kana in ("ヤマダ　ハナコ", "ヤマダ", "ヤマタ　タロウ", "ヤマヂ", "ヤマ", "ヤマダア"):
        make_card(db, name_kana=kana)
    found = db.execute(select(Card.name_kana).where(ledger.kana_starts_with(db, "やまだ"))
                       .order_by(Card.name_kana)).scalars().all()
    assert found == ["ヤマダ", "ヤマダ　ハナコ", "ヤマダア"]


def _plan(db, query) -> str:
    """The plan of ``query`` as one text (PostgreSQL told to avoid reading the whole
    table, so a handful of test rows shows which index the condition can use)."""
    compiled = query.compile(db.get_bind(), compile_kwargs={"literal_binds": True})
    if db.get_bind().dialect.name == "sqlite":
        rows = db.execute(text(f"EXPLAIN QUERY PLAN {compiled}")).all()
        return "\n".join(row[3] for row in rows)
    db.execute(text("SET LOCAL enable_seqscan = off"))
    try:
        return "\n".join(row[0] for row in db.execute(text(f"EXPLAIN {compiled}")))
    finally:
        db.rollback()


def test_searches_and_the_first_page_use_the_indexes(app, db):
    make_storage(db, capacity=100)
    make_card(db, name_kana="ヤマダ　ハナコ")
    sqlite = db.get_bind().dialect.name == "sqlite"
    page = select(Card).order_by(Card.received_at.desc(), Card.id.desc()).limit(50)
    plan = _plan(db, page)
    assert "ix_card_received_at" in plan and ("TEMP B-TREE" not in plan if sqlite else
                                              "Seq Scan" not in plan), plan
    kana = select(Card.id).where(ledger.kana_starts_with(db, "ヤマダ", counting=True))
    plan = _plan(db, kana)
    assert "ix_card_name_kana" in plan, plan
    assert ("name_kana>? AND name_kana<?" in plan) if sqlite else ("Index Cond" in plan)
    ident = select(Card.id).where(ledger.application_id_is("1000-0000-0000-0000-0000-001"))
    plan = _plan(db, ident)
    assert ("sqlite_autoindex_card" in plan and "application_id=?" in plan) if sqlite else \
        ("card_application_id_key" in plan), plan
    tally = _plan(db, select(CardTally))
    assert "card " not in tally.replace("card_tally", ""), tally  # never the card table


def test_contains_uses_the_trigram_index_on_postgresql(app, db):
    if db.get_bind().dialect.name != "postgresql":
        pytest.skip("SQLite compares every name (docs/cards.md: no FTS5 trigram for names "
                    "of one or two characters)")
    installed = db.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")).first()
    if not installed:
        pytest.skip("pg_trgm is not installed on this server")
    make_storage(db)
    make_card(db, name="山田　花子")
    plan = _plan(db, select(Card.id).where(ledger.name_contains(db, "山田花")))
    assert "ix_card_name_trgm" in plan, plan


def test_a_dense_prefix_is_read_in_delivery_order_on_sqlite(app, db, clock, monkeypatch):
    make_storage(db, capacity=100)
    for n in range(12):
        card = make_card(db, name_kana="ヤマダ　ハナコ" if n < 9 else "サトウ　イチロウ")
        card.received_at = clock() - timedelta(minutes=n)
    db.commit()
    monkeypatch.setattr(ledger, "PAGE", 1)  # pages of one card: dense when 4+ of 12 match
    assert ledger.dense_prefix(db, Card.name_kana, "ヤマダ")
    assert not ledger.dense_prefix(db, Card.name_kana, "サトウ")
    page = select(Card.id).where(ledger.kana_starts_with(db, "ヤマダ")) \
        .order_by(Card.received_at.desc(), Card.id.desc()).limit(1)
    if db.get_bind().dialect.name == "sqlite":  # the page walks the delivery times
        plan = _plan(db, page)
        assert "ix_card_received_at" in plan and "ix_card_name_kana" not in plan, plan
    counted = select(Card.id).where(ledger.kana_starts_with(db, "ヤマダ", counting=True))
    assert len(db.execute(counted).all()) == 9
    newest = db.execute(select(Card.id).where(Card.name_kana.startswith("ヤマダ"))
                        .order_by(Card.received_at.desc()).limit(1)).scalar_one()
    assert db.execute(page).scalar_one() == newest
