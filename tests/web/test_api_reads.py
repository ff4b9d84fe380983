"""Reading through the REST API is audited like opening a page; a list records what it
returned; 閲覧者 get no personal data out of the screens (docs/roles.md)."""
import json
from datetime import date

import pytest
from sqlalchemy import select

from app.models.audit import AuditLog
from tests.conftest import bearer_client, text_of
from tests.factories import make_card, make_offer, make_storage


@pytest.fixture
def reservation(app, db):
    from app.services import booking
    from app.services.calendar import ensure_slots

    offer = make_offer(db, purpose_code="shinsei")
    with app.test_request_context():
        slot = ensure_slots(db, offer, date(2026, 12, 8), date(2026, 12, 8))[0]
        return booking.book(db, slot, None, date(1980, 3, 1),
                            booking.Contact(name="佐藤　花子", phone="0312345678"),
                            seats=1, staff=True)


def _views(db, table):
    db.expire_all()
    return db.execute(select(AuditLog).where(AuditLog.action == "view",
                                             AuditLog.target_table == table)
                      .order_by(AuditLog.id)).scalars().all()


def test_reading_one_card_or_booking_is_audited(app, users, db, reservation):
    make_storage(db)
    card = make_card(db)
    client, headers = bearer_client(app, users, "clerk")
    assert _views(db, "card") == [] and _views(db, "reservation") == []
    assert client.get(f"/api/v1/card/{card.id}", headers=headers).status_code == 200
    assert client.get(f"/api/v1/reservation/{reservation.id}", headers=headers).status_code == 200
    [card_view] = _views(db, "card")
    [booking_view] = _views(db, "reservation")
    assert card_view.target_id == str(card.id)
    assert booking_view.target_id == str(reservation.id)
    assert client.get("/api/v1/card/999999", headers=headers).status_code == 404
    assert len(_views(db, "card")) == 1  # nothing shown, nothing recorded


def test_a_list_records_the_rows_it_returned_and_the_filter(app, users, db, reservation):
    make_storage(db)
    first, second = make_card(db), make_card(db, name="鈴木　一郎", name_kana="スズキ　イチロウ")
    client, headers = bearer_client(app, users, "manager")
    query = "(filters:!((col:name_kana,opr:sw,value:スズキ)))"
    listing = client.get("/api/v1/card/", headers=headers, query_string={"q": query})
    assert listing.status_code == 200 and listing.json["ids"] == [second.id]
    [event] = _views(db, "card")
    detail = json.loads(event.changes)
    assert detail["ids"] == [second.id] and detail["query"] == query and detail["count"] == 1
    assert first.id not in detail["ids"]
    assert client.get("/api/v1/reservation/", headers=headers).status_code == 200
    [booking_list] = _views(db, "reservation")
    assert json.loads(booking_list.changes)["ids"] == [reservation.id]


def test_viewers_have_no_api_and_no_printed_lists(login_as, db):
    make_storage(db)
    card = make_card(db)
    viewer = login_as("viewer")
    assert viewer.get(f"/api/v1/card/{card.id}").status_code in (401, 403)
    assert viewer.get("/api/v1/card/").status_code in (401, 403)
    assert viewer.get("/storage/inventory").status_code == 403
    assert viewer.get("/discard/register").status_code == 403
    # the screens they may read do not offer the prints
    places = viewer.get("/storageplacemodelview/list/").get_data(as_text=True)
    assert "/storage/inventory" not in places
    candidates = viewer.get("/discard/").get_data(as_text=True)
    assert "/discard/register" not in candidates
    assert "山田" in text_of(viewer.get(f"/cardmodelview/show/{card.id}"))  # on screen: yes
    assert _views(db, "card")[-1].target_id == str(card.id)  # and that is audited
