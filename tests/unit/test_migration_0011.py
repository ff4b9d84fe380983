"""Migration 0011: the booking's copies of its slot become NOT NULL, filled from the slot
first; the downgrade makes them nullable again."""
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

SETUP = (
    "INSERT INTO venue (id, name, active) VALUES (1, '本庁舎', 1)",
    "INSERT INTO purpose (id, code, name, needs_postcard, active) "
    "VALUES (1, 'kofu', '受け取り', 1, 1)",
    "INSERT INTO venue_purpose (id, venue_id, purpose_id, opens_days_ahead, "
    "closes_minutes_before, max_party, active) VALUES (1, 1, 1, 30, 0, 4, 1)",
    "INSERT INTO slot (id, offer_id, starts_at, ends_at, seats, taken, closed) "
    "VALUES (1, 1, '2026-12-01 00:00:00', '2026-12-01 00:30:00', 2, 1, 0)",
)


def _reservation(number, offer_id="NULL", starts_at="NULL"):
    return ("INSERT INTO reservation (number, slot_id, offer_id, starts_at, seats, state, "
            "channel, birth_date, phone, created_at, locale) VALUES "
            f"('{number}', 1, {offer_id}, {starts_at}, 1, 'booked', 'web', '1980-03-01', "
            "'0312345678', '2026-11-27 00:00:00', 'ja')")


def test_copies_are_filled_made_not_null_and_the_downgrade_undoes_it(migration_app):
    from flask_migrate import downgrade, upgrade

    session = migration_app.appbuilder.session
    upgrade(revision="0010")
    for statement in (*SETUP, _reservation("AAAAAAA1")):
        session.execute(text(statement))
    session.commit()
    upgrade(revision="0011")
    row = session.execute(text("SELECT offer_id, starts_at FROM reservation "
                               "WHERE number = 'AAAAAAA1'")).one()
    assert row.offer_id == 1 and str(row.starts_at).startswith("2026-12-01 00:00")
    with pytest.raises(IntegrityError):
        session.execute(text(_reservation("AAAAAAA2")))
    session.rollback()
    downgrade(revision="0010")
    session.execute(text(_reservation("AAAAAAA3")))  # nullable again
    session.commit()
    assert session.execute(text("SELECT COUNT(*) FROM reservation WHERE offer_id IS NULL")
                           ).scalar() == 1
    session.execute(text("DELETE FROM reservation WHERE number = 'AAAAAAA3'"))
    session.commit()
    upgrade()
