"""Issue 10 §3: the audit trail names who acted, for every entry point: a staff screen, the
REST API with a JWT, the CLI (cli:<os user>), the residents' site (住民:<number>) and the
cron jobs (system). "anonymous" is never written."""
import csv
import io
import json
import zipfile

import pytest
from sqlalchemy import select

from app.models.audit import AuditLog
from app.models.card import Card, CardEvent
from app.models.reservation import Reservation
from app.services import cards as card_svc
from tests.factories import make_card, make_offer, make_staff_booking, make_storage
from tests.public_flow import book_kofu
from tests.web.test_public_booking import shown, waiting_card


@pytest.fixture
def place(db):
    return make_storage(db, code="金庫A-棚1-箱01", capacity=50)


def _token(client, username, password):
    response = client.post("/api/v1/security/login", json={
        "username": username, "password": password, "provider": "db"})
    assert response.status_code == 200
    return {"Authorization": f"Bearer {response.json['access_token']}"}


def _rows(db, **filters):
    query = select(AuditLog).order_by(AuditLog.id)
    for key, value in filters.items():
        query = query.where(getattr(AuditLog, key) == value)
    return list(db.execute(query).scalars())


def _no_anonymous(db):
    names = {r.username for r in _rows(db)}
    assert "anonymous" not in names and not any(n.startswith("unresolved") for n in names)
    events = {e.username for e in db.execute(select(CardEvent)).scalars()}
    assert "anonymous" not in events


def test_jwt_put_and_transition_are_signed_by_the_jwt_user(app, users, db, place):
    clerk = users.create("clerk", username="api_jwt_clerk")
    card = make_card(db)
    client = app.test_client()
    headers = _token(client, "api_jwt_clerk", users.password)
    changed = client.put(f"/api/v1/card/{card.id}", headers=headers,
                         json={"notes": "API で更新"})
    assert changed.status_code == 200, changed.get_data(as_text=True)
    moved = client.post(f"/api/v1/card/{card.id}/transition", headers=headers,
                        json={"to": "setup"})
    assert moved.status_code == 200
    updates = _rows(db, target_table="card", action="update", target_id=str(card.id))
    notes = [r for r in updates if "notes" in json.loads(r.changes)]
    states = [r for r in updates if "state" in json.loads(r.changes)]
    assert notes and states
    assert {(r.username, r.user_id) for r in notes + states} == {("api_jwt_clerk", clerk.id)}
    event = db.execute(select(CardEvent).where(CardEvent.card_id == card.id,
                                               CardEvent.to_state == "setup")).scalar_one()
    assert event.username == "api_jwt_clerk"
    _no_anonymous(db)


def test_jwt_check_in_names_the_jwt_user(app, users, db):
    users.create("clerk", username="api_desk_clerk")
    reservation = make_staff_booking(app, db)
    client = app.test_client()
    headers = _token(client, "api_desk_clerk", users.password)
    response = client.post(f"/api/v1/reservation/{reservation.id}/check-in", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.json["checked_in_by"] == "api_desk_clerk"
    rows = _rows(db, target_table="reservation", target_id=str(reservation.id),
                 action="update")
    assert rows and {r.username for r in rows} == {"api_desk_clerk"}


def test_a_screen_session_names_the_user(login_as, db, place):
    card = make_card(db)
    client = login_as("clerk", username="madoguchi_actor")
    client.post(f"/cardmodelview/transition/{card.id}", data={"to": "setup"})
    db.expire_all()
    assert db.get(Card, card.id).events[-1].username == "madoguchi_actor"
    assert _rows(db, target_table="card", action="update")[-1].username == "madoguchi_actor"


def test_cli_commands_are_signed_cli_and_the_os_user(app, db, users, monkeypatch):
    import getpass

    monkeypatch.setattr(getpass, "getuser", lambda: "operator7")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "create", "--username", "cli_made", "--role",
                                 app.config["ROLE_CLERK"], "--email", "cli_made@example.jp",
                                 "--password", users.password])
    assert result.exit_code == 0, result.output
    created = _rows(db, target_table="ab_user", action="create")[-1]
    assert created.username == "cli:operator7" and created.user_id is None
    user = app.appbuilder.sm.find_user(username="cli_made")
    user.locked_at = user.created_on
    db.commit()
    assert runner.invoke(args=["users", "unlock", "cli_made"]).exit_code == 0
    unlocked = _rows(db, action="account_unlocked")[-1]
    assert unlocked.username == "cli:operator7"
    _no_anonymous(db)


def test_resident_booking_and_cancel_are_signed_with_the_booking_number(client, db):
    offer = make_offer(db, seats=2)
    card = waiting_card(db)
    number = book_kofu(client, offer.venue.id, [(shown(card), "1980-03-01")],
                       day="2026-12-08")
    reservation = db.execute(select(Reservation).where(Reservation.number == number)
                             ).scalar_one()
    created = _rows(db, target_table="reservation", action="create",
                    target_id=str(reservation.id))
    assert [r.username for r in created] == [f"住民:{number}"]
    reserved = db.execute(select(CardEvent).where(CardEvent.card_id == card.id,
                                                  CardEvent.to_state == card_svc.RESERVED)
                          ).scalar_one()
    assert reserved.username == f"住民:{number}"
    client.post("/reserve/booking/close")
    client.post("/reserve/lookup", data={"reservation_number": number,
                                         "birth_date": "1980-03-01"})
    assert client.post("/reserve/booking/cancel").status_code == 302
    db.expire_all()
    cancelled = [r for r in _rows(db, target_table="reservation", target_id=str(reservation.id))
                 if "cancel" in (r.changes or "")]
    assert cancelled and {r.username for r in cancelled} == {f"住民:{number}"}
    back = db.execute(select(CardEvent).where(CardEvent.card_id == card.id)
                      .order_by(CardEvent.id.desc())).scalars().first()
    assert back.from_state == card_svc.RESERVED and back.username == f"住民:{number}"
    _no_anonymous(db)


def test_a_resident_booking_without_a_postcard_names_its_number(client, db):
    from tests.public_flow import choose_time, form_key, reservation_number

    offer = make_offer(db, purpose_code="shinsei", seats=2)
    code = offer.purpose.code
    assert client.post(f"/reserve/book/{code}/", data={
        "name": "申請 花子", "name_kana": "シンセイ ハナコ", "birth_date": "1985-04-01",
        "seats": "1"}).status_code == 302
    assert choose_time(client, code, offer.venue.id).status_code == 302
    client.post(f"/reserve/book/{code}/contact", data={"phone": "090-1234-5678"})
    page = client.get(f"/reserve/book/{code}/confirm").get_data(as_text=True)
    client.post(f"/reserve/book/{code}/confirm", data={"key": form_key(page)})
    number = reservation_number(client.get("/reserve/done").get_data(as_text=True))
    rows = _rows(db, target_table="reservation", action="create")
    assert [r.username for r in rows] == [f"住民:{number}"]


def test_the_close_day_job_is_signed_system(app, db, clock):
    reservation = make_staff_booking(app, db)
    clock.set(clock().replace(hour=17, minute=10))
    result = app.test_cli_runner().invoke(args=["reservations", "close-day"])
    assert "1 no-show" in result.output
    rows = [r for r in _rows(db, target_table="reservation", target_id=str(reservation.id),
                             action="update") if "no_show" in (r.changes or "")]
    assert rows and {r.username for r in rows} == {"system"}


# --- formula injection in the files we write ------------------------------------------------

HYPERLINK = '=HYPERLINK("http://x","y")'


def test_audit_export_neutralises_a_formula_typed_as_user_id(client, login_as, db):
    from tests.conftest import login

    login(client, HYPERLINK, "Wrongpass2026x")
    assert _rows(db, action="login_failed")[-1].username == HYPERLINK  # stored as typed
    manager = login_as("manager", username="kanri_csv")
    response = manager.get("/auditlogmodelview/export/?_flt_0_action=login_failed")
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
    cells = [row[2] for row in rows[1:]]
    assert cells == ["'" + HYPERLINK]
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)


def test_postcard_print_data_neutralises_a_formula_in_a_name(login_as, db, place):
    card = make_card(db, state=card_svc.SETUP, name="=1+2", address="@SUM(A1)")
    client = login_as("manager")
    client.post("/cardmodelview/action_post",
                data={"action": "to_notice_sent", "rowid": [card.id]})
    response = client.post("/cardmodelview/action_post",
                           data={"action": "print_data", "rowid": [card.id]})
    raw = zipfile.ZipFile(io.BytesIO(response.data)).read("postcards.csv")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[1][1] == "'=1+2" and rows[1][3] == "'@SUM(A1)"
