"""What an outside tester of issue 10 still found on the merged code (each test failed on
it, and passes since the fix in the same session): unchecked notes, 500s from junk JSON,
rison and year-1 dates, slots made for junk dates, a junk Bearer header skipping CSRF."""
import re
from datetime import date

import pytest
from sqlalchemy import func, select

from app.models.card import Card, CardEvent
from app.models.reservation import Slot
from app.services import cards as svc
from tests.conftest import bearer_client, login
from tests.factories import make_card, make_offer, make_storage


def _waiting_card(db):
    card = make_card(db, state=svc.SETUP)
    svc.transition_card(db, card, svc.NOTICE_SENT, actor=svc.SYSTEM)
    return card


def _events(db, card_id):
    db.expire_all()
    return db.execute(select(func.count(CardEvent.id))
                      .where(CardEvent.card_id == card_id)).scalar()


# --- item 4: lengths and control characters on every entry point -----------------------------
@pytest.mark.parametrize("note", ["長" * 5000, "a\x00b"])
def test_api_transition_note_is_checked_like_the_screens(app, users, db, note):
    """POST /api/v1/card/<id>/transition {"to":"on_hold","note":"長"*5000} answers 200 and
    stores 5,000 characters in card_event.note (String(500)); with a NUL byte it is stored
    too. On PostgreSQL both answer 500 ("Fatal error", DataError)."""
    card = make_card(db, state=svc.RECEIVED)
    before = _events(db, card.id)
    client, headers = bearer_client(app, users, "manager")
    response = client.post(f"/api/v1/card/{card.id}/transition", headers=headers,
                           json={"to": svc.ON_HOLD, "note": note})
    assert response.status_code == 400, response.json
    db.expire_all()
    assert db.get(Card, card.id).state == svc.RECEIVED
    assert _events(db, card.id) == before


def test_discard_reason_from_the_detail_page_fits_its_column(login_as, db):
    """The detail page cleans the note to 500 characters, but a discard stores it in
    card.discard_reason (String(200)): a 300-character reason is stored on SQLite and
    answers a bare 404 "Not Found" on PostgreSQL (DataError backstop), no field message."""
    client = login_as("manager")
    card = make_card(db, state=svc.RECEIVED)
    client.post(f"/cardmodelview/transition/{card.id}",
                data={"to": svc.DISCARDED, "note": "理" * 300})
    db.expire_all()
    stored = db.get(Card, card.id)
    assert stored.state == svc.RECEIVED and stored.discard_reason is None


@pytest.mark.parametrize("note", ["n" * 5000, "a\x00b"])
def test_hand_over_note_is_checked(login_as, db, note):
    """POST /handover/<id> passes the checklist's ``note`` unchecked into card_event.note
    (String(500)): 5,000 characters or a NUL byte are stored on SQLite; on PostgreSQL the
    hand-over answers 404 "Not Found" instead of a message at the field."""
    make_storage(db)
    client = login_as("clerk")
    card = _waiting_card(db)
    client.post(f"/handover/{card.id}", data={"identity": "one_a", "collector": "self",
                                              "pin_set": "1", "note": note})
    db.expire_all()
    assert db.get(Card, card.id).state == svc.NOTICE_SENT


# --- item 4: junk reaching a 500 ------------------------------------------------------------
def test_api_write_with_a_json_array_body_is_not_a_500(app, users, db):
    """PUT /api/v1/card/<id> with body [1,2] and POST .../transition with body [1] answer
    500 {"message":"Fatal error"} ('list' object has no attribute 'keys' / 'get')."""
    card = make_card(db, state=svc.RECEIVED)
    client, headers = bearer_client(app, users, "manager")
    put = client.put(f"/api/v1/card/{card.id}", headers=headers, json=[1, 2])
    post = client.post(f"/api/v1/card/{card.id}/transition", headers=headers, json=[1])
    assert put.status_code == 400 and post.status_code == 400, (put.status_code,
                                                                post.status_code)


def test_api_list_with_unbalanced_rison_is_not_a_500(app, users, db):
    """GET /api/v1/card/?q=(( answers 500: prison.loads recurses until RecursionError, which
    FAB's rison decorator does not catch (the guard's comment says FAB answers 400)."""
    client, headers = bearer_client(app, users, "manager")
    response = client.get("/api/v1/card/?q=((", headers=headers)
    assert response.status_code == 400


@pytest.mark.parametrize("url", ["/booking-calendar/?month=0001-01",
                                 "/desk/{venue}/print?day=0001-01-01",
                                 "/desk/{venue}/new?day=0001-01-01",
                                 "/reservationmodelview/move/{booking}?day=0001-01-01"])
def test_staff_dates_at_the_edge_of_the_calendar_are_not_a_500(login_as, app, db, url):
    """A date the JST conversion cannot take (year 1) answers 500: OverflowError: date value
    out of range, in ensure_slots/make_missing_slots."""
    from app.services import booking
    from app.services.calendar import ensure_slots

    offer = make_offer(db, purpose_code="shinsei")
    with app.test_request_context():
        slot = ensure_slots(db, offer, date(2026, 12, 8), date(2026, 12, 8))[0]
        db.commit()
        reservation = booking.book(db, slot, None, date(1980, 3, 1),
                                   booking.Contact(name="佐藤　花子", phone="0312345678"),
                                   seats=1, staff=True)
    client = login_as("manager")
    response = client.get(url.format(venue=offer.venue_id, booking=reservation.id))
    assert response.status_code < 500


def test_a_get_with_a_junk_date_writes_no_slot_rows_for_it(app, login_as, db, clock):
    """GET /booking-calendar/?offer=<id>&month=0001-02 (or month=9999-11) answered 200 and
    materialised a month of slot rows dated year 1 / year 9999. A junk month now falls back
    to this month, and no slot is ever made before today or past the horizon. (That a GET
    of this month still makes its slots on demand is issue 11's "reads never write".)"""
    from datetime import timedelta

    offer = make_offer(db, purpose_code="shinsei")
    client = login_as("manager")
    today = clock().date()
    for month in ("0001-02", "9999-11", "2001-02", "2099-11"):
        assert client.get(f"/booking-calendar/?offer={offer.id}&month={month}").status_code \
            < 500
    assert client.get(f"/booking-calendar/day/{offer.id}/2001-02-06").status_code < 500
    db.expire_all()
    starts = [s.starts_at.date() for s in db.execute(select(Slot)).scalars()]
    db_days = app.config["SLOTS_AHEAD_DAYS"]
    assert starts and all(today <= d <= today + timedelta(days=db_days)
                          for d in starts)


# --- item 4: API writes with only the session cookie need the CSRF token --------------------
@pytest.fixture
def csrf_app(app, app_config):
    from app import create_app

    return create_app({**app_config, "WTF_CSRF_ENABLED": True})


def test_a_junk_bearer_header_does_not_let_a_cookie_write_skip_csrf(csrf_app, users, db):
    """guard_api_csrf skips the CSRF check when *any* ``Authorization: Bearer`` header is
    present, but FAB's protect() (allow_browser_login) then authorises by the session
    cookie: PUT /api/v1/card/<id> with the cookie, no token and "Authorization: Bearer junk"
    answers 200 and changes the card."""
    users.create("clerk", username="bearer_junk")
    client = csrf_app.test_client()
    page = client.get("/login/").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    client.post("/login/", data={"username": "bearer_junk", "password": users.password,
                                 "csrf_token": token})
    card = make_card(db, notes="元のメモ")
    response = client.put(f"/api/v1/card/{card.id}", json={"notes": "forged"},
                          headers={"Authorization": "Bearer junk"})
    db.expire_all()
    assert db.get(Card, card.id).notes == "元のメモ", response.status_code


def test_api_info_shows_no_catalogue_header(app, users, db):
    """GET /api/v1/card/_info showed the catalogue's header ("Project-Id-Version ...") as
    the description of every field: FAB translates an empty text with gettext("")."""
    client, headers = bearer_client(app, users, "manager")
    response = client.get("/api/v1/card/_info", headers=headers)
    assert response.status_code == 200
    assert "Project-Id-Version" not in response.get_data(as_text=True)
