"""No page links to a screen its role cannot open (issue 12 §1): each role (docs/roles.md)
signs in, and every link of its home page and of its menu is followed; none answers 403,
an error, or the sign-in page with FAB's "access denied"."""
import re
from html import unescape

import pytest

from tests.factories import make_card, make_notice, make_offer, make_storage

ROLES = ["sysadmin", "manager", "clerk", "viewer"]
HREF = re.compile(r"""<a\b[^>]*\bhref\s*=\s*["']([^"']+)["']""", re.I)
# Not screens: the language switch (changes the session's language), static files.
SKIP = re.compile(r"^(/lang/|/static/|/appbuilder/static/|/reserve/static/)")


@pytest.fixture
def business_data(db, clock):
    """A venue taking bookings (the home page's desk buttons), a card, a notice."""
    make_offer(db)
    make_storage(db)
    make_card(db)
    make_notice(db, clock())
    db.commit()


def _links(html: str) -> list[str]:
    found = []
    for href in HREF.findall(html):
        href = unescape(href).strip()
        if href.startswith("http://localhost"):
            href = href[len("http://localhost"):]
        if not href.startswith("/") or href.startswith("//") or SKIP.match(href):
            continue
        if href not in found:
            found.append(href)
    return found


@pytest.mark.parametrize("role", ROLES)
def test_every_link_on_the_home_page_and_in_the_menu_opens(login_as, business_data, role):
    client = login_as(role)
    home = client.get("/")
    assert home.status_code == 200
    links = _links(home.get_data(as_text=True))
    assert "/" in links and len(links) > 3, links  # the menu and the home page's own links
    refused = []
    for href in links:
        response = client.get(href)
        location = response.headers.get("Location", "")
        if (response.status_code == 403 or response.status_code >= 500
                or (response.status_code in (301, 302, 303, 307, 308) and "/login" in location)):
            refused.append((href, response.status_code, location))
        elif response.status_code in (302, 303):  # a screen that redirects to its default
            follow = client.get(location)
            if follow.status_code == 403 or "/login" in follow.request.path:
                refused.append((href, follow.status_code, location))
    assert not refused, f"{role}: links to screens it cannot open: {refused}"


def test_the_system_administrator_home_offers_no_business_screen(login_as, business_data):
    page = login_as("sysadmin").get("/").get_data(as_text=True)
    assert "/handover/" not in page and "/desk/" not in page
    assert 'data-testid="today-figures"' not in page


@pytest.mark.parametrize("role,desk,handover", [("manager", True, True),
                                                ("clerk", True, True),
                                                ("viewer", True, False)])
def test_business_roles_keep_the_links_they_may_use(login_as, business_data, role, desk,
                                                    handover):
    page = login_as(role).get("/").get_data(as_text=True)
    assert ('data-testid="today-figures"' in page) is desk
    assert ('href="/handover/"' in page) is handover
    assert 'data-testid="waiting-cards"' in page
