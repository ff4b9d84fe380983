"""From the check-in desk to a new application and back: a 申請 or 電子証明書 booking's
check-in leads to the intake form prefilled from the booking; a walk-in applicant too."""
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select

from app.models.intake import Intake
from app.models.reservation import Reservation
from tests.factories import make_staff_booking
from tests.web.test_intake import _form


def test_checking_in_an_application_booking_leads_to_the_intake_and_back(login_as, app, db):
    reservation = make_staff_booking(app, db)  # 申請 (shinsei), today 10:30
    venue = reservation.offer.venue
    client = login_as("clerk", username="madoguchi_e")
    response = client.post(f"/desk/{venue.id}/check-in",
                           data={"id": reservation.id, "day": "2026-12-01"})
    target = urlsplit(response.location)
    assert target.path == "/intakemodelview/add"
    query = parse_qs(target.query)
    assert query["reservation"] == [str(reservation.id)]
    assert query["next"][0].startswith(f"/desk/{venue.id}")
    db.expire_all()
    assert db.get(Reservation, reservation.id).state == "arrived"
    form = client.get(response.location).get_data(as_text=True)
    assert 'value="1980-03-01"' in form and 'value="03-1234-5678"' in form
    assert f'name="reservation_id" type="hidden" value="{reservation.id}"' in form
    assert f'<option selected value="{venue.id}">' in form
    saved = client.post("/intakemodelview/add", data=_form(
        venue, reservation_id=str(reservation.id), next=query["next"][0]))
    assert saved.location == query["next"][0]  # back to the desk
    item = db.execute(select(Intake)).scalar_one()
    assert item.reservation_id == reservation.id and item.clerk == "madoguchi_e"


def test_only_a_way_back_to_the_desk_is_followed(login_as, db):
    from tests.web.test_intake import venue as _unused  # noqa: F401
    from app.models.venue import Venue

    place = Venue(name="北部支所")
    db.add(place)
    db.commit()
    client = login_as("clerk")
    saved = client.post("/intakemodelview/add",
                        data=_form(place, next="https://evil.example/desk/"))
    item = db.execute(select(Intake)).scalar_one()
    assert saved.location.endswith(f"/intakemodelview/show/{item.id}")


def test_the_desk_offers_a_walk_in_application(login_as, app, db):
    reservation = make_staff_booking(app, db)
    venue = reservation.offer.venue
    page = login_as("clerk").get(f"/desk/{venue.id}").get_data(as_text=True)
    assert "予約なしの申請を受け付ける" in page
    assert f"/intakemodelview/add?venue={venue.id}&amp;method=counter&amp;next=/desk/{venue.id}" in page


def test_a_viewer_gets_no_application_button(login_as, app, db):
    venue = make_staff_booking(app, db).offer.venue
    viewer = login_as("viewer").get(f"/desk/{venue.id}").get_data(as_text=True)
    assert "予約なしの申請を受け付ける" not in viewer


def test_the_desk_row_leads_to_its_application(login_as, app, db):
    """An arrived 申請 visitor without an application offers to take one; once taken, the
    row links to it (the fee and the scans are done there)."""
    reservation = make_staff_booking(app, db)
    venue = reservation.offer.venue
    client = login_as("clerk", username="madoguchi_r")
    client.post(f"/desk/{venue.id}/check-in", data={"id": reservation.id, "day": "2026-12-01"})
    desk_page = client.get(f"/desk/{venue.id}?day=2026-12-01").get_data(as_text=True)
    assert f'data-testid="take-application-{reservation.number}"' in desk_page
    client.post("/intakemodelview/add", data=_form(venue, reservation_id=str(reservation.id)))
    item = db.execute(select(Intake)).scalar_one()
    desk_page = client.get(f"/desk/{venue.id}?day=2026-12-01").get_data(as_text=True)
    assert f'data-testid="take-application-{reservation.number}"' not in desk_page
    assert f'href="/intakemodelview/show/{item.id}"' in desk_page
