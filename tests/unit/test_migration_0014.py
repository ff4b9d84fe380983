"""Migration 0014: the booking history is rebuilt from the bookings' own dates (made,
arrived, completed, cancelled by the resident or by staff, no-show; a counter booking
checked in at once is a walk-in), each card event gets the card's place (none once the
card left the office); the downgrade removes both."""
from datetime import datetime, timezone

from sqlalchemy import inspect, select, text

from app.models.card import CardEvent
from app.models.reservation import BookingEvent

UTC = timezone.utc


def _columns(session, table):
    return {c["name"] for c in inspect(session.get_bind()).get_columns(table)}


def _tables(session):
    return set(inspect(session.get_bind()).get_table_names())


def _at(hour, minute=0, second=0, day=1):
    """A stored timestamp (SQLite: naive UTC) of 2026-11-<day>."""
    return f"2026-11-{day:02d} {hour:02d}:{minute:02d}:{second:02d}.000000"


def _seed(session):
    run = session.execute
    run(text("INSERT INTO venue (id, name, active) VALUES (1, '本庁舎', 1)"))
    run(text("INSERT INTO purpose (id, code, name, needs_postcard, active) "
             "VALUES (1, 'kofu', 'カードの受け取り', 1, 1)"))
    run(text("INSERT INTO venue_purpose (id, venue_id, purpose_id, opens_days_ahead, "
             "closes_minutes_before, max_party, active) VALUES (1, 1, 1, 45, 60, 4, 1)"))
    run(text("INSERT INTO slot (id, offer_id, starts_at, ends_at, seats, taken, closed) "
             "VALUES (1, 1, :s, :e, 10, 6, 0)"), {"s": _at(1, day=10), "e": _at(1, 30, day=10)})
    rows = [
        # number, state, channel, seats, created, checked in (by), completed, cancelled, reason
        ("WEB00001", "booked", "web", 1, _at(0), None, None, None, None, None),
        ("PHN00002", "completed", "phone", 2, _at(1), _at(1, day=10), "madoguchi01",
         _at(2, day=10), None, None),
        ("WEB00003", "cancelled", "web", 1, _at(2), None, None, None, _at(3),
         "resident (web)"),
        ("CTR00004", "cancelled", "counter", 1, _at(3), None, None, None, _at(4), "本人から電話"),
        ("WEB00005", "no_show", "web", 1, _at(4), None, None, None, None, None),
        ("CTR00006", "arrived", "counter", 1, _at(5, 0, 0, day=10), _at(5, 1, 30, day=10),
         "madoguchi02", None, None, None),
    ]
    for index, (number, state, channel, seats, created, arrived, by, completed, cancelled,
                reason) in enumerate(rows, start=1):
        run(text("INSERT INTO reservation (id, number, slot_id, offer_id, starts_at, seats, "
                 "state, channel, birth_date, phone, created_at, checked_in_at, "
                 "checked_in_by, completed_at, cancelled_at, cancel_reason, locale) VALUES "
                 "(:id, :number, 1, 1, :starts, :seats, :state, :channel, '1980-03-01', "
                 "'0312345678', :created, :arrived, :by, :completed, :cancelled, :reason, "
                 "'ja')"),
            {"id": index, "number": number, "starts": _at(1, day=10), "seats": seats,
             "state": state, "channel": channel, "created": created, "arrived": arrived,
             "by": by, "completed": completed, "cancelled": cancelled, "reason": reason})
    run(text("INSERT INTO storage_place (id, code, capacity, sort_key, active) VALUES "
             "(1, '金庫A', 10, 1, 1), (2, '金庫B', 10, 2, 1)"))
    cards = [(1, "setup", 1), (2, "handed_over", None), (3, "received", 2)]
    for card_id, state, place in cards:
        run(text("INSERT INTO card (id, application_id, name, name_kana, birth_date, "
                 "has_sign_cert, has_auth_cert, visit_mode, state, discard_hold, "
                 "storage_place_id) VALUES (:id, :app, '山田　太郎', 'ヤマダ　タロウ', "
                 "'1980-03-01', 1, 1, 'K', :state, 0, :place)"),
            {"id": card_id, "app": f"{card_id:023d}", "state": state, "place": place})
    events = [(1, None, "received"), (1, "received", "setup"), (2, None, "received"),
              (2, "received", "notice_sent"), (2, "notice_sent", "handed_over"),
              (3, None, "received")]
    for card_id, old, new in events:
        run(text("INSERT INTO card_event (card_id, from_state, to_state, at, username) "
                 "VALUES (:card, :old, :new, :at, 'system')"),
            {"card": card_id, "old": old, "new": new, "at": _at(6)})
    session.commit()


def test_the_history_is_backfilled_and_the_downgrade_removes_it(migration_app):
    from flask_migrate import downgrade, upgrade

    session = migration_app.appbuilder.session
    upgrade(revision="0013_intake_fees_documents")
    assert "booking_event" not in _tables(session)
    assert "storage_place_id" not in _columns(session, "card_event")
    _seed(session)
    upgrade(revision="0014_history_and_queries")

    got = [(e.reservation_id, e.kind, e.channel, e.by_staff, e.actor, e.seats,
            e.at.astimezone(UTC).replace(tzinfo=None))
           for e in session.execute(select(BookingEvent).order_by(
               BookingEvent.reservation_id, BookingEvent.id)).scalars()]

    def at(hour, minute=0, second=0, day=1):
        return datetime(2026, 11, day, hour, minute, second)

    assert got == [
        (1, "made", "web", False, "system", 1, at(0)),
        (2, "made", "phone", True, "system", 2, at(1)),
        (2, "arrived", "phone", True, "madoguchi01", 2, at(1, day=10)),
        (2, "completed", "phone", True, "system", 2, at(2, day=10)),
        (3, "made", "web", False, "system", 1, at(2)),
        (3, "cancelled", "web", False, "住民", 1, at(3)),  # the residents' page
        (4, "made", "counter", True, "system", 1, at(3)),
        (4, "cancelled", "counter", True, "system", 1, at(4)),  # by staff
        (5, "made", "web", False, "system", 1, at(4)),
        (5, "no_show", "web", True, "system", 1, at(1, day=10)),  # at the slot's start
        (6, "made", "walk_in", True, "system", 1, at(5, day=10)),  # checked in at once
        (6, "arrived", "walk_in", True, "madoguchi02", 1, at(5, 1, 30, day=10)),
    ]
    events = session.execute(select(BookingEvent)).scalars().all()
    assert {(e.offer_id, e.starts_at.astimezone(UTC).replace(tzinfo=None)) for e in events} \
        == {(1, at(1, day=10))}

    places = [(e.card_id, e.to_state, e.storage_place_id) for e in session.execute(
        select(CardEvent).order_by(CardEvent.id)).scalars()]
    assert places == [(1, "received", 1), (1, "setup", 1), (2, "received", None),
                      (2, "notice_sent", None), (2, "handed_over", None),
                      (3, "received", 2)]
    assert "saved_query" in _tables(session)

    session.remove()
    session.get_bind().dispose()
    downgrade(revision="0013_intake_fees_documents")
    assert "booking_event" not in _tables(session)
    assert "saved_query" not in _tables(session)
    assert "storage_place_id" not in _columns(session, "card_event")
    assert session.execute(text("SELECT count(*) FROM card_event")).scalar() == 6
    assert session.execute(text("SELECT count(*) FROM reservation")).scalar() == 6
    session.remove()
    session.get_bind().dispose()
    upgrade()
    assert session.execute(text("SELECT count(*) FROM booking_event")).scalar() == 12
