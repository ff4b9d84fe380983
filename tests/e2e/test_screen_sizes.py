"""Every staff screen at a staff PC's size (issue 12, section 5): each role opens every item
of its own menu at 1366×768 (the city's laptops) and 1280×720 (the projector and the older
desks) over the demo data, a screenshot of each (size-role-screen.png), and the layout facts
a clerk trips over: no sideways scrolling, one card per line in the ledger, no 403/500, no
English left over from Flask-AppBuilder."""
from __future__ import annotations

import os
import re
import time
from unittest.mock import patch
from urllib.parse import urlsplit

import pytest
from flask import g

from tests.e2e.conftest import SCREENSHOTS, body_text, shot
from tests.e2e.pages import LoginPage

pytestmark = pytest.mark.layout  # how pages look: on SQLite only (pytest.ini)

SIZES = {"1366": (1366, 768), "1280": (1280, 720)}
# The role with the most screens at both sizes, the others at the laptops' size (time).
ROLE_SIZES = {"manager": ("1366", "1280"), "clerk": ("1366",), "viewer": ("1366",),
              "sysadmin": ("1366", "1280")}
# Screens a menu item leads to that are the real work: the desk's menu item opens the venue
# choice, the day's desk is one link further.
FOLLOW_JS = """() => [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href'))
  .filter(h => /^\\/desk\\/\\d+(\\?.*)?$/.test(h)).slice(0, 1)"""

# English a Japanese clerk should never read: Flask-AppBuilder's own words and Werkzeug's
# error pages. Whole words, case as FAB writes them.
ENGLISH = ["Add Filter", "Search", "Record Count", "Actions", "Back", "Save", "Refresh",
           "No records found", "Forbidden", "Not Found", "Internal Server Error",
           "Method Not Allowed", "Service Unavailable", "List", "Show", "Edit", "Delete",
           "Starts with", "Ends with", "Contains", "Equal to", "Not Equal to", "Greater than",
           "Smaller than", "Relation", "Chart", "User Statistics", "Select All", "Clear",
           "Active", "First Name", "Last Name", "User Name", "User Id", "Password",
           "Profile", "Logout", "Login", "Home", "Security", "Please", "None", "__None"]
ENGLISH_RE = re.compile(r"(?<![A-Za-z_])(" + "|".join(re.escape(w) for w in ENGLISH)
                        + r")(?![A-Za-z])")

MENU_LINKS_JS = """() => [...document.querySelectorAll('.navbar-nav:not(.navbar-right) a[href]')]
  .map(a => a.getAttribute('href'))
  .filter(h => h && h !== '#' && !h.startsWith('javascript'))"""

LAYOUT_JS = """() => {
  const d = document.documentElement;
  return {scrollWidth: d.scrollWidth, clientWidth: d.clientWidth};
}"""

# Rows of a list table whose text wraps: a row's content (its height less the cells' padding)
# is two lines or more of its own line height.
WRAPPED_ROWS_JS = """(selector) => {
  const rows = [...document.querySelectorAll(selector)];
  const wrapped = [];
  for (const row of rows) {
    const cell = row.querySelector('td');
    if (!cell) continue;
    const style = getComputedStyle(cell);
    let line = parseFloat(style.lineHeight);
    if (isNaN(line)) line = parseFloat(style.fontSize) * 1.2;
    const content = row.getBoundingClientRect().height
      - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom);
    if (content >= 2 * line) wrapped.push(row.innerText.replace(/\\s+/g, ' ').slice(0, 80));
  }
  return {rows: rows.length, wrapped: wrapped};
}"""


@pytest.fixture
def demo(app, db):
    """The demo data of `make run` (venues, bookings today, cards in every state), with a
    third of its ~330 cards: more than a page of the ledger, and quicker to seed."""
    from app.services import demo as seed

    mix = [(max(entry[0] // 3, 1), *entry[1:]) for entry in seed.CARD_MIX]
    with app.app_context(), patch.object(seed, "CARD_MIX", mix):
        g.audit_actor = "cli:test"
        seed.seed_demo()


def screen(page, name: str) -> None:
    """What the clerk sees without scrolling (the screen's first view, quicker than the
    whole page)."""
    os.makedirs(SCREENSHOTS, exist_ok=True)
    page.screenshot(path=os.path.join(SCREENSHOTS, f"{name}.png"))


def _screen_name(path: str) -> str:
    parts = [p for p in urlsplit(path).path.split("/") if p]
    return "-".join(parts) or "home"


def _visit_all(page, base, size, role) -> tuple[list[str], list[str]]:
    """Open every menu item; return (screens, problems)."""
    page.goto(base + "/")
    links = list(dict.fromkeys(page.evaluate(MENU_LINKS_JS)))
    assert links, f"{role}: no menu"
    problems, screens = [], []
    queue = ["/", *links]
    while queue:
        href = queue.pop(0)
        started = time.monotonic()
        url = href if href.startswith("http") else base + href
        response = page.goto(url)
        page.wait_for_load_state("load")
        name = _screen_name(href)
        screens.append(name)
        if href.rstrip("/").endswith("/desk"):
            queue[:0] = page.evaluate(FOLLOW_JS)
        screen(page, f"{size}-{role}-{name}")
        where = f"{size} {role} {href}"
        if response is None or response.status >= 400:
            problems.append(f"{where}: HTTP {response and response.status}")
            continue
        layout = page.evaluate(LAYOUT_JS)
        if layout["scrollWidth"] > layout["clientWidth"]:
            problems.append(f"{where}: scrolls sideways ({layout['scrollWidth']} > "
                            f"{layout['clientWidth']} px)")
        english = sorted(set(ENGLISH_RE.findall(body_text(page))))
        if english:
            problems.append(f"{where}: English {english}")
        if "/cardmodelview/list" in href:
            rows = page.evaluate(WRAPPED_ROWS_JS, "table.table tbody tr")
            if rows["rows"] < 10:
                problems.append(f"{where}: only {rows['rows']} rows listed")
            if rows["wrapped"]:
                problems.append(f"{where}: {len(rows['wrapped'])} rows wrap, e.g. "
                                f"{rows['wrapped'][0]!r}")
            visible = page.evaluate("""() => [...document.querySelectorAll('table.table tbody tr')]
                .filter(r => r.getBoundingClientRect().bottom <= window.innerHeight).length""")
            if visible < 10:
                problems.append(f"{where}: only {visible} card rows on the first screen")
        print(f"{where}: {time.monotonic() - started:.1f}s")
    return screens, problems


def test_every_staff_screen_fits_a_staff_pc(demo, users, live_server, page_factory):
    problems, seen = [], {}
    for role, sizes in ROLE_SIZES.items():
        users.create(role, username=f"size_{role}")
        for size in sizes:
            width, height = SIZES[size]
            page = page_factory(width=width, height=height)
            LoginPage(page, live_server).open().sign_in(f"size_{role}", users.password)
            screens, found = _visit_all(page, live_server, size, role)
            seen[(role, size)] = screens
            problems += found
            problems += [f"{size} {role}: loads {url} from outside"
                         for url in page.requests.outside()]
    # Each business role reaches the ledger; the administrator does not (docs/roles.md).
    for role in ("manager", "clerk", "viewer"):
        assert "cardmodelview-list" in seen[(role, "1366")], seen[(role, "1366")]
    assert "cardmodelview-list" not in seen[("sysadmin", "1366")]
    # The desk's day view (one link beyond the menu) is seen by the roles that work it.
    for role in ("manager", "clerk"):
        assert any(s.startswith("desk-") for s in seen[(role, "1366")]), seen[(role, "1366")]
    assert not problems, "\n".join(problems)


def test_ledger_row_actions_and_filters_are_labelled(demo, users, live_server, page_factory):
    """The icon buttons of a row say what they do (tooltip and accessible name, in
    Japanese); the state and 来庁方式 filters are choices; the counts lead to the list."""
    users.create("manager", username="size_ledger")
    page = page_factory()
    LoginPage(page, live_server).open().sign_in("size_ledger", users.password)
    page.goto(live_server + "/cardmodelview/list/")
    icons = page.evaluate("""() => [...document.querySelectorAll('table.table tbody tr:first-child a')]
        .filter(a => !a.innerText.trim())
        .map(a => [a.getAttribute('title') || a.getAttribute('data-original-title'),
                   a.getAttribute('aria-label')])""")  # FAB's ab.js makes titles Bootstrap tooltips
    assert icons and all(title and label == title for title, label in icons), icons
    assert {t for t, _ in icons} >= {"詳細", "編集"}, icons

    state = page.locator("[data-testid=ledger-filters] select[name=_flt_3_state]")
    options = state.locator("option").all_inner_texts()
    assert "交付通知書発送" in options and "〜から開始" not in body_text(page)
    with page.expect_navigation():
        state.select_option(label="交付通知書発送")  # picking a state sends the form
    assert "_flt_3_state=notice_sent" in page.url and "_flt_3_visit_mode" not in page.url
    states = set(page.eval_on_selector_all(
        "table.table tbody tr td.col-state", "cells => cells.map(c => c.innerText.trim())"))
    assert states == {"交付通知書発送"}, states
    shot(page, "ledger-filtered-notice-sent")

    page.goto(live_server + "/cardmodelview/list/")
    with page.expect_navigation():
        page.click("[data-testid=state-summary] a:has-text('郵送済')")
    states = set(page.eval_on_selector_all(
        "table.table tbody tr td.col-state", "cells => cells.map(c => c.innerText.trim())"))
    assert states == {"郵送済"}, states

    # The labelled delete button still deletes, after a Japanese confirmation.
    count = page.locator("table.table tbody tr").count()
    page.click("table.table tbody tr:first-child a[aria-label=削除]")
    assert "削除しますか" in page.inner_text("#modal-confirm")
    with page.expect_navigation():
        page.click("#modal-confirm-ok")
    page.goto(page.url)
    assert page.locator("table.table tbody tr").count() == count - 1


def test_card_form_and_detail_at_1280(demo, users, live_server, page_factory):
    """The add form's storage place offers the next free place in Japanese, not FAB's
    "__None"; a card's page (with its history) fits the narrower screen."""
    users.create("clerk", username="size_form")
    page = page_factory(*SIZES["1280"])
    LoginPage(page, live_server).open().sign_in("size_form", users.password)
    page.goto(live_server + "/cardmodelview/add")
    first = page.locator("select[name=storage_place] option").first
    assert first.get_attribute("value") == "__None"
    assert first.inner_text() == "（空いている保管場所に自動で割り当て）"
    assert "__None" not in body_text(page)
    screen(page, "1280-clerk-card-add")

    page.goto(live_server + "/cardmodelview/list/")
    with page.expect_navigation():
        page.click("table.table tbody tr:first-child a[aria-label=詳細]")
    assert "/cardmodelview/show/" in page.url
    layout = page.evaluate(LAYOUT_JS)
    assert layout["scrollWidth"] <= layout["clientWidth"], layout
    assert not ENGLISH_RE.findall(body_text(page))
    shot(page, "1280-clerk-card-show")
