"""Migration 0012: optional English texts (purpose, notice, maintenance window) are added
as nullable columns, existing rows keep their Japanese; the downgrade drops them."""
from sqlalchemy import inspect, text

ADDED = {"purpose": {"name_en", "description_en", "what_to_bring_en"},
         "notice": {"title_en", "body_en"},
         "maintenance_window": {"message_en"}}


def _columns(session, table):
    return {c["name"] for c in inspect(session.get_bind()).get_columns(table)}


def test_english_columns_are_added_nullable_and_the_downgrade_drops_them(migration_app):
    from flask_migrate import downgrade, upgrade

    session = migration_app.appbuilder.session
    upgrade(revision="0011")
    session.execute(text("INSERT INTO purpose (id, code, name, needs_postcard, active) "
                         "VALUES (1, 'kofu', 'カードの受け取り', 1, 1)"))
    session.execute(text("INSERT INTO notice (id, title, body, audience, importance, "
                         "starts_at) VALUES (1, '年末年始', '休みます', 'both', 0, "
                         "'2026-12-01 00:00:00')"))
    session.commit()
    for table, added in ADDED.items():
        assert not added & _columns(session, table)
    upgrade(revision="0012_english_texts")
    for table, added in ADDED.items():
        assert added <= _columns(session, table)
    row = session.execute(text("SELECT name, name_en FROM purpose WHERE id = 1")).one()
    assert tuple(row) == ("カードの受け取り", None)
    session.execute(text("UPDATE notice SET title_en = 'Year end' WHERE id = 1"))
    session.execute(text("INSERT INTO maintenance_window (starts_at, message, message_en) "
                         "VALUES ('2026-12-02 00:00:00', '停止します', 'Closed')"))
    session.commit()
    assert session.execute(text("SELECT title, title_en FROM notice")).one() == (
        "年末年始", "Year end")
    session.remove()
    session.get_bind().dispose()
    downgrade(revision="0011")
    for table, added in ADDED.items():
        assert not added & _columns(session, table)
    assert session.execute(text("SELECT title FROM notice")).scalar() == "年末年始"
    upgrade()
    for table, added in ADDED.items():
        assert added <= _columns(session, table)
