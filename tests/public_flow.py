"""Walking the residents' booking pages with the Flask test client (web tests and bench)."""
from __future__ import annotations

import re


def reservation_number(html: str) -> str:
    match = re.search(r'data-testid="reservation-number">([A-Z0-9]{8})<', html)
    assert match, "no booking number on the page"
    return match.group(1)


def first_day_link(html: str) -> str:
    match = re.search(r'href="([^"]+/day/\d{4}-\d\d-\d\d)"', html)
    assert match, "no bookable day in the calendar"
    return match.group(1)


def first_change_day_link(html: str) -> str:
    match = re.search(r'href="(/reserve/booking/change/\d{4}-\d\d-\d\d)"', html)
    assert match, "no bookable day in the calendar"
    return match.group(1)


def slot_buttons(html: str) -> list[str]:
    return re.findall(r'name="slot" value="(\d+)"', html)


def form_key(html: str) -> str:
    return re.search(r'name="key" value="([^"]+)"', html).group(1)


def choose_time(client, code: str, venue_id: int, slot_id: str | None = None,
                day: str | None = None):
    """Venue, calendar, day and a time; returns the response of holding it."""
    assert client.post(f"/reserve/book/{code}/venue", data={"venue": venue_id}).status_code == 302
    calendar = client.get(f"/reserve/book/{code}/calendar").get_data(as_text=True)
    day_url = f"/reserve/book/{code}/day/{day}" if day else first_day_link(calendar)
    page = client.get(day_url).get_data(as_text=True)
    slot_id = slot_id or slot_buttons(page)[0]
    return client.post(day_url, data={"slot": slot_id})


def book_kofu(client, venue_id: int, people: list[tuple[str, str]], phone="090-1234-5678",
              email="", day: str | None = None) -> str:
    """The whole 交付 flow; returns the booking number from the done page."""
    response = client.post("/reserve/book/kofu/", data={
        "notice_number": [p[0] for p in people], "birth_date": [p[1] for p in people]})
    assert response.status_code == 302, response.get_data(as_text=True)
    assert choose_time(client, "kofu", venue_id, day=day).status_code == 302
    response = client.post("/reserve/book/kofu/contact", data={
        "phone": phone, "email": email, "email_confirm": email})
    assert response.status_code == 302, response.get_data(as_text=True)
    page = client.get("/reserve/book/kofu/confirm").get_data(as_text=True)
    done = client.post("/reserve/book/kofu/confirm", data={"key": form_key(page)})
    assert done.status_code == 302 and done.location.endswith("/reserve/done")
    return reservation_number(client.get("/reserve/done").get_data(as_text=True))
