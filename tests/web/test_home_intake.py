"""The staff home adds today's applications and fees per venue (issue 13 §4), for the roles
that may open those screens."""
from datetime import datetime

import pytest

from app.clock import JST
from app.services import fees
from app.services.cards import SYSTEM
from tests.factories import make_intake
from tests.unit.test_fees import seed_fees


@pytest.fixture
def counter_day(db, clock):
    """Two applications taken today at the main venue (one a paid reissue), one yesterday."""
    seed_fees(db)
    now = clock()
    paid = make_intake(db, kind="reissue", reissue_reason="lost", taken_at=now)
    make_intake(db, taken_at=now, venue=paid.venue)
    make_intake(db, taken_at=datetime(2020, 1, 6, 10, 0, tzinfo=JST), venue=paid.venue)
    fees.charge(db, paid, actor=SYSTEM, venue_id=paid.venue_id, now=now)
    fees.pay(db, paid, actor=SYSTEM, venue_id=paid.venue_id, now=now, tendered=1000)
    return paid


def _row(page: str) -> str:
    start = page.index('data-testid="today-intake"')
    return page[start:page.index("</table>", start)]


def test_a_clerk_sees_todays_applications_and_fees_per_venue(login_as, counter_day):
    page = login_as("clerk").get("/").get_data(as_text=True)
    table = _row(page)
    assert counter_day.venue.name in table
    assert "<td>2</td>" in table  # today's two applications, not yesterday's
    assert "<td>1</td>" in table  # one payment
    assert "1,000円" in table
    assert "/fees/daily?venue=" in table


def test_a_viewer_sees_the_figures(login_as, counter_day):
    viewer = login_as("viewer").get("/").get_data(as_text=True)
    assert "1,000円" in _row(viewer)


def test_the_system_administrator_has_no_business_figures(login_as, counter_day):
    admin = login_as("sysadmin").get("/").get_data(as_text=True)
    assert 'data-testid="today-intake"' not in admin


def test_the_home_page_writes_nothing(login_as, counter_day, no_writes):
    client = login_as("clerk")
    with no_writes():
        assert client.get("/").status_code == 200
