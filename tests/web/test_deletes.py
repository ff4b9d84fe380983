"""Deleting a row other rows still point at: refused with a Japanese message on the
screen and in the REST API, on SQLite and PostgreSQL alike, and nothing changes; SQLite
enforces foreign keys on every connection, and the migrations still run with data."""
from datetime import date

import pytest
from sqlalchemy import delete, select, text
from sqlalchemy.exc import IntegrityError

from app.models.card import Card
from app.models.reservation import Slot
from app.models.scan import ScanBatch, ScanItem
from app.models.storage import StoragePlace
from app.models.venue import Purpose, Venue, VenuePurpose, WeeklyRule
from app.services.calendar import ensure_slots
from tests.conftest import text_of
from tests.factories import make_card, make_offer, make_storage


def _delete(client, url):
    response = client.post(url, follow_redirects=True)
    assert response.status_code == 200
    return text_of(response)


def test_sqlite_connections_enforce_foreign_keys(app, db):
    bind = db.get_bind()
    if bind.dialect.name != "sqlite":
        pytest.skip("PostgreSQL always enforces foreign keys")
    bind.dispose()  # a fresh connection, as a new worker gets
    with bind.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    # ... and the database itself refuses a dangling reference, whatever the code does.
    place = make_storage(db)
    make_card(db, storage_place_id=place.id)
    with pytest.raises(IntegrityError):
        db.execute(delete(StoragePlace).where(StoragePlace.id == place.id))
        db.commit()
    db.rollback()


def test_a_storage_place_holding_cards_is_not_deleted(login_as, db):
    place = make_storage(db)
    card = make_card(db, storage_place_id=place.id)
    page = _delete(login_as("manager"), f"/storageplacemodelview/delete/{place.id}")
    assert "カード" in page and "削除できません" in page and "使用中" in page
    db.expire_all()
    assert db.get(StoragePlace, place.id) is not None
    assert db.get(Card, card.id).storage_place_id == place.id


def test_an_empty_storage_place_is_deleted(login_as, db):
    place_id = make_storage(db).id
    _delete(login_as("manager"), f"/storageplacemodelview/delete/{place_id}")
    db.expire_all()
    assert db.get(StoragePlace, place_id) is None


def test_a_venue_or_purpose_with_offers_is_not_deleted(login_as, db):
    offer = make_offer(db)
    venue_id, purpose_id = offer.venue_id, offer.purpose_id
    client = login_as("manager")
    page = _delete(client, f"/venuemodelview/delete/{venue_id}")
    assert "予約受付の設定（会場別）" in page and "削除できません" in page and "使用中" in page
    page = _delete(client, f"/purposemodelview/delete/{purpose_id}")
    assert "削除できません" in page
    db.expire_all()
    assert db.get(Venue, venue_id) is not None and db.get(Purpose, purpose_id) is not None
    assert db.get(VenuePurpose, offer.id) is not None


def test_an_unused_venue_and_purpose_are_deleted(login_as, db):
    venue = Venue(name="北支所", active=True)
    purpose = Purpose(code="other", name="その他", needs_postcard=False, active=True)
    db.add_all([venue, purpose])
    db.commit()
    venue_id, purpose_id = venue.id, purpose.id
    client = login_as("manager")
    _delete(client, f"/venuemodelview/delete/{venue_id}")
    _delete(client, f"/purposemodelview/delete/{purpose_id}")
    db.expire_all()
    assert db.get(Venue, venue_id) is None and db.get(Purpose, purpose_id) is None


def test_an_offer_goes_with_its_pattern_but_not_while_it_has_slots(app, login_as, db):
    from app.services import booking

    offer = make_offer(db)
    client = login_as("manager")
    with app.test_request_context():  # slots are made ahead: one of them in use
        booking.hold_seats(db, ensure_slots(db, offer, date(2026, 12, 2), date(2026, 12, 2))[0],
                           1, staff=True)
    page = _delete(client, f"/venuepurposemodelview/delete/{offer.id}")
    assert "時間枠" in page and "削除できません" in page
    db.expire_all()
    assert db.get(VenuePurpose, offer.id) is not None
    # Another offer with only its weekly pattern: deleted together with the pattern.
    bare = make_offer(db, venue="北支所")
    rules, bare_id = [r.id for r in bare.rules], bare.id
    assert rules
    assert db.execute(select(Slot.id).where(Slot.offer_id == bare_id)).first()
    _delete(client, f"/venuepurposemodelview/delete/{bare_id}")
    db.expire_all()
    assert db.get(VenuePurpose, bare_id) is None
    # the slots made ahead from its pattern went with it
    assert db.execute(select(Slot.id).where(Slot.offer_id == bare_id)).first() is None
    assert all(db.get(WeeklyRule, r) is None for r in rules)


def test_api_delete_of_a_referenced_card_is_refused_the_same_way(app, users, db):
    users.create("manager", username="api_manager")
    scanned = make_card(db)
    free = make_card(db)
    scanned_id, free_id = scanned.id, free.id
    batch = ScanBatch(created_at=app.config["CLOCK"](), created_by="t", status="open")
    batch.items.append(ScanItem(seq=1, payload="x", status="ok", card_id=scanned.id))
    db.add(batch)
    db.commit()
    client = app.test_client()
    login = client.post("/api/v1/security/login", json={
        "username": "api_manager", "password": users.password, "provider": "db"})
    bearer = {"Authorization": f"Bearer {login.json['access_token']}"}
    refused = client.delete(f"/api/v1/card/{scanned.id}", headers=bearer)
    assert refused.status_code == 409
    assert "削除できません" in refused.json["message"]
    ok = client.delete(f"/api/v1/card/{free.id}", headers=bearer)
    assert ok.status_code == 200
    db.expire_all()
    assert db.get(Card, scanned_id) is not None and db.get(Card, free_id) is None


def test_migrations_run_on_sqlite_with_data_and_foreign_keys_on(tmp_path, base_config):
    """Batch migrations rebuild tables; with foreign keys on they would fail on rows that
    point at a rebuilt table, unless the migration run switches them off."""
    if not base_config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("SQLite only")
    from flask_migrate import upgrade

    from app import create_app

    app = create_app({**base_config, "SQLALCHEMY_DATABASE_URI":
                      f"sqlite:///{tmp_path}/migrate.db", "INSTANCE_DIR": str(tmp_path)})
    with app.app_context():
        upgrade(revision="0006")
        session = app.appbuilder.session
        for statement in (
                "INSERT INTO venue (id, name, active) VALUES (1, '本庁舎', 1)",
                "INSERT INTO purpose (id, code, name, needs_postcard, active) "
                "VALUES (1, 'kofu', '受け取り', 1, 1)",
                "INSERT INTO venue_purpose (id, venue_id, purpose_id, opens_days_ahead, "
                "closes_minutes_before, max_party, active) VALUES (1, 1, 1, 30, 0, 4, 1)",
                "INSERT INTO slot (id, offer_id, starts_at, ends_at, seats, taken, closed) "
                "VALUES (1, 1, '2026-12-01 00:00:00', '2026-12-01 00:30:00', 2, 1, 0)",
                "INSERT INTO hold (id, slot_id, seats, token, expires_at, state) "
                "VALUES (1, 1, 1, 'tok', '2026-12-01 00:00:00', 'held')"):
            session.execute(text(statement))
        session.commit()
        upgrade()
        session.remove()
        bind = session.get_bind()
        with bind.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall() == []
            assert connection.exec_driver_sql(
                "SELECT slot_id FROM hold WHERE id = 1").scalar() == 1
            assert connection.execute(select(text("version_num")).select_from(
                text("alembic_version"))).scalar() is not None
        bind.dispose()


def test_a_user_named_by_the_audit_trail_is_deactivated_not_deleted(app, users, login_as, db):
    from app.models.user import StaffUser

    acted = users.create("clerk", username="acted1")  # signs in below: audited
    never = users.create("clerk", username="never1")  # never signed in
    from tests.conftest import login

    login(app.test_client(), "acted1", users.password)
    client = login_as("sysadmin")
    page = _delete(client, f"/users/delete/{acted.id}")
    assert "操作ログ" in page and "削除できません" in page and "無効" in page
    _delete(client, f"/users/delete/{never.id}")
    db.expire_all()
    assert db.get(StaffUser, acted.id) is not None
    assert db.get(StaffUser, never.id) is None


def test_the_rule_holds_for_code_outside_the_screens(app, db):
    """The CLI and services delete through the same session rule."""
    from app.services.deletion import InUseError

    place = make_storage(db)
    place_id = place.id
    card_id = make_card(db, storage_place_id=place_id).id
    db.delete(place)
    with pytest.raises(InUseError) as refused:
        db.commit()
    # the card, and its history (received into this place: the stock of that day)
    assert "カード、カード履歴" in str(refused.value) and "2 件" in str(refused.value)
    db.rollback()
    db.expire_all()
    assert db.get(StoragePlace, place_id) is not None
    assert db.get(Card, card_id).storage_place_id == place_id
