"""Accessibility of the residents' site (JIS X 8341-3:2016 AA = WCAG 2.x AA, issue 12 §7).

axe-core (bundled by the axe-playwright-python package: nothing is fetched at run time)
checks every resident page against the WCAG 2.1 A/AA rules, at phone and desktop size, in
Japanese and in English; any violation fails with its rule, element and summary. A second
test books a visit with the keyboard alone: Tab order, Enter moves forward, the error
summary takes focus and leads to its fields."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from axe_playwright_python.sync_playwright import Axe  # its bundled axe.min.js, read locally
from sqlalchemy import select

from app.clock import JST
from app.models.maintenance import MaintenanceWindow
from app.models.notice import AUDIENCE_RESIDENTS
from app.models.reservation import BOOKED, CANCELLED, Reservation, Slot
from app.services import cards as card_svc, notice_numbers
from tests.e2e.conftest import shot
from tests.factories import make_card, make_notice, make_offer

WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
SIZES = {"phone": (390, 844), "desktop": (1366, 768)}
AXE_OPTIONS = {"runOnly": {"type": "tag", "values": WCAG_TAGS}, "resultTypes": ["violations"],
               "iframes": False}


def waiting_card(db, birth=date(1980, 3, 1)):
    card = make_card(db, state=card_svc.SETUP, birth_date=birth)
    card_svc.transition_card(db, card, card_svc.NOTICE_SENT, actor=card_svc.SYSTEM)
    return notice_numbers.display(card.notice_number)


@pytest.fixture
def offers(db, clock):
    """交付 for up to 4 people and 申請 at the same hall; every 09:00 time of 交付 is full
    (満席 on the times page), one whole day is full and one nearly (×, △ in the calendar),
    weekends are closed (－); a notice and a planned maintenance show on the top page."""
    kofu = make_offer(db, seats=2)
    kofu.purpose.what_to_bring = "交付通知書（はがき）\n本人確認書類（運転免許証など）"
    make_offer(db, purpose_code="shinsei", seats=2)
    slots = db.execute(select(Slot).where(Slot.offer_id == kofu.id)).scalars().all()
    full_day, few_day = date(2026, 12, 7), date(2026, 12, 8)
    for slot in slots:
        local = slot.starts_at.astimezone(clock().tzinfo)
        if local.hour == 9 or local.date() == full_day or \
                (local.date() == few_day and local.hour < 16):
            slot.taken = slot.seats
    db.commit()
    make_notice(db, clock(), title="年末年始の窓口について", body="12月29日から1月3日は休みです。",
                audience=AUDIENCE_RESIDENTS, importance=1)
    db.add(MaintenanceWindow(starts_at=clock() + timedelta(days=2),
                             ends_at=clock() + timedelta(days=2, hours=2),
                             message="システムの点検のため"))
    db.commit()
    return kofu


class Audit:
    """axe over each page a walk visits; the violations of all of them, to fail at once."""

    def __init__(self):
        self.found: list[str] = []
        self.pages = 0

    def check(self, page, label: str) -> None:
        page.wait_for_load_state("load")
        response = page.evaluate("options => axe.run(document, options)", AXE_OPTIONS)
        self.pages += 1
        for rule in response["violations"]:
            for node in rule["nodes"]:
                self.found.append(f"{label} [{page.url}]: {rule['id']} ({rule['impact']}) "
                                  f"{node['target']}: {node.get('failureSummary', '')}"
                                  .replace("\n", " "))


def open_context(page_factory, live_server, size: str, lang: str):
    width, height = SIZES[size]
    page = page_factory(width=width, height=height,
                        locale="ja-JP" if lang == "ja" else "en-GB")
    page.context.add_init_script(Axe().axe_script)  # axe-core in every page of the context
    page.goto(f"{live_server}/reserve/lang/{'ja_JP' if lang == 'ja' else 'en'}?next=/reserve/")
    return page


def walk(page, base: str, db, audit: Audit, tag: str, screenshots: bool) -> None:
    """Every resident page once, axe on each."""
    def check(name):
        audit.check(page, f"{tag} {name}")
        if screenshots:
            shot(page, f"a11y-{tag}-{name}")

    mother, child = waiting_card(db), waiting_card(db, birth=date(2015, 6, 1))
    check("01-top")
    page.click("[data-testid=purpose-shinsei]")
    check("02-applicant")
    page.goto(base + "/reserve/")
    page.click("[data-testid=purpose-kofu]")
    check("03-postcard")
    page.click("button.primary")
    page.wait_for_selector("[data-testid=error-summary]")
    check("04-postcard-errors")
    page.fill("#notice_number-0", mother)
    page.fill("#birth_date-0", "S55.3.1")
    page.click("button[name=add_person]")
    page.wait_for_selector("#notice_number-1")
    check("05-family-rows")
    page.fill("#notice_number-1", child)
    page.fill("#birth_date-1", "2015-06-01")
    page.click("button.primary")
    page.wait_for_url("**/venue")
    check("06-venue")
    page.click("button.primary")
    page.wait_for_selector("[data-testid=calendar]")
    check("07-calendar")
    page.click("[data-testid=calendar] a[data-day='2026-12-09']")
    page.wait_for_selector("[data-testid=times] .time.full")
    check("08-times")
    page.locator("[data-testid=times] button.time").first.click()
    page.wait_for_selector("[data-testid=held-until]")
    check("09-contact")
    page.click("button.primary")
    page.wait_for_selector("[data-testid=error-summary]")
    check("10-contact-errors")
    page.fill("#phone", "090-1234-5678")
    page.fill("#email", "hanako@example.jp")
    page.fill("#email_confirm", "hanako@example.jp")
    page.click("button.primary")
    page.wait_for_selector("button[data-once]")
    check("11-confirm")
    page.click("button[data-once]")
    page.wait_for_url("**/reserve/done")
    check("12-done")
    number = page.inner_text("[data-testid=reservation-number]").strip()
    page.goto(base + "/reserve/lookup")
    check("13-lookup")
    page.click("button.primary")
    page.wait_for_selector("[data-testid=error-summary]")
    check("14-lookup-errors")
    page.fill("#reservation_number", number)
    page.fill("#birth_date", "1980-03-01")
    page.click("button.primary")
    page.wait_for_selector("[data-testid=reservation-number]")
    check("15-booking")
    page.click("a[href$='/change']")
    page.wait_for_selector("[data-testid=calendar]")
    check("16-change-calendar")
    page.click("[data-testid=calendar] a[data-day='2026-12-10']")
    page.wait_for_selector("[data-testid=times]")
    check("17-change-times")
    page.locator("[data-testid=times] button.time").nth(1).click()
    page.wait_for_selector("[data-testid=new-time]")
    check("18-change-confirm")
    page.click("button[data-once]")
    page.wait_for_selector("[data-testid=changed]")
    check("19-changed")
    page.click("a[href$='/cancel']")
    page.wait_for_selector("button[data-once]")
    check("20-cancel-confirm")
    page.click("button[data-once]")
    page.wait_for_selector("[data-testid=cancelled]")
    check("21-cancelled")
    reservation = db.execute(select(Reservation).where(Reservation.number == number)).scalar()
    db.refresh(reservation)
    assert reservation.state == CANCELLED and reservation.seats == 2
    assert page.goto(base + "/reserve/no-such-page").status == 404
    check("22-not-found")


def test_no_wcag_violation_on_any_resident_page(db, offers, clock, live_server, page_factory):
    audit = Audit()
    pages = []
    for size in SIZES:
        for lang in ("ja", "en"):
            page = open_context(page_factory, live_server, size, lang)
            pages.append((page, f"{size}-{lang}"))
            walk(page, live_server, db, audit, f"{size}-{lang}",
                 screenshots=(size, lang) in (("phone", "ja"), ("desktop", "en")))
    db.add(MaintenanceWindow(starts_at=clock() - timedelta(minutes=5),
                             ends_at=clock() + timedelta(hours=1), message="システムの点検のため"))
    db.commit()
    for page, tag in pages:  # the whole site answers 503 with the maintenance page
        assert page.goto(live_server + "/reserve/").status == 503
        audit.check(page, f"{tag} 23-maintenance")
    assert audit.pages == 4 * 22 + 4
    assert not audit.found, "axe found WCAG 2.1 A/AA violations:\n" + "\n".join(audit.found)
    assert all(p.requests.outside() == [] for p, _ in pages)


# --- keyboard only ----------------------------------------------------------------------------

def focused(page) -> dict:
    return page.evaluate("""() => { const e = document.activeElement;
        return {tag: e.tagName.toLowerCase(), id: e.id, name: e.getAttribute('name') || '',
                testid: e.dataset.testid || '', text: (e.innerText || '').trim(),
                cls: e.className || '', day: e.dataset.day || ''}; }""")


def tab_to(page, selector: str, limit: int = 80) -> list[dict]:
    """Press Tab until the focused element matches ``selector``; the elements passed."""
    passed = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            return passed
        passed.append(focused(page))
    raise AssertionError(f"Tab never reached {selector}; passed {passed}")


def test_a_resident_books_with_the_keyboard_alone(db, offers, live_server, page_factory):
    mother = waiting_card(db)
    page = page_factory(width=1366, height=768)
    page.goto(live_server + "/reserve/")
    page.keyboard.press("Tab")
    assert focused(page)["cls"] == "skip"  # the first stop skips the header
    tab_to(page, "[data-testid=purpose-kofu]")
    page.keyboard.press("Enter")
    page.wait_for_selector("#notice_number-0")

    # the fields in reading order, then 次へ, then the separate 家族を追加する
    tab_to(page, "#notice_number-0")
    page.keyboard.press("Tab")
    assert focused(page)["id"] == "birth_date-0"
    page.keyboard.press("Tab")
    assert focused(page)["text"] == "次へ"
    page.keyboard.press("Tab")
    assert focused(page)["name"] == "add_person"

    # Enter in an empty form: both required fields flagged at once, the summary has focus
    page.focus("#notice_number-0")
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-testid=error-summary]")
    assert focused(page)["testid"] == "error-summary"
    assert page.get_attribute("#notice_number-0", "aria-invalid") == "true"
    assert page.get_attribute("#birth_date-0", "aria-invalid") == "true"
    links = page.locator("[data-testid=error-summary] a")
    assert [links.nth(i).get_attribute("href") for i in range(links.count())] == \
        ["#notice_number-0", "#birth_date-0"]
    assert page.locator("#notice_number-1").count() == 0  # Enter added no second row
    shot(page, "a11y-keyboard-errors")

    # the summary's link leads into its field; Enter in the birth date moves forward
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.getAttribute('href')") == "#notice_number-0"
    page.keyboard.press("Enter")
    assert focused(page)["id"] == "notice_number-0"
    page.keyboard.type(mother)
    page.keyboard.press("Tab")
    assert focused(page)["id"] == "birth_date-0"
    page.keyboard.type("S55.3.1")
    page.keyboard.press("Enter")
    page.wait_for_url("**/venue")

    # venue: Tab to the chosen venue, Enter submits the form
    tab_to(page, "input[name=venue]")
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-testid=calendar]")

    # calendar: Tab goes through the bookable days only (closed and full days are no stops)
    passed = tab_to(page, "[data-testid=calendar] a[data-day='2026-12-09']")
    assert [p["day"] for p in passed if p["day"]] == ["2026-12-04", "2026-12-08"]
    shot(page, "a11y-keyboard-calendar-focus")
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-testid=times]")

    # times: 満席 is no stop; the first free time is
    tab_to(page, "[data-testid=times] button.time")
    assert focused(page)["text"].startswith("10:00")  # 09:00 and 09:30 are 満席
    shot(page, "a11y-keyboard-times-focus")
    page.keyboard.press("Enter")
    page.wait_for_selector("#phone")

    tab_to(page, "#phone")
    page.keyboard.type("0312345678")
    page.keyboard.press("Enter")
    page.wait_for_selector("button[data-once]")

    tab_to(page, "button[data-once]")
    page.keyboard.press("Enter")
    page.wait_for_url("**/reserve/done")
    number = page.inner_text("[data-testid=reservation-number]").strip()
    reservation = db.execute(select(Reservation).where(Reservation.number == number)).scalar()
    assert reservation.state == BOOKED and reservation.seats == 1
    assert reservation.slot.starts_at.astimezone(JST).strftime("%m-%d %H:%M") == \
        "12-09 10:00"


@pytest.mark.parametrize("width,height", [(390, 844), (1366, 768)], ids=["phone", "desktop"])
def test_focus_is_visible_and_strong(db, offers, live_server, page_factory, width, height):
    """The focus indicator: a dark outline (≥3:1 against white and the page) with a yellow
    ring (≥3:1 against the blue header), on links, buttons and fields."""
    page = page_factory(width=width, height=height)
    page.goto(live_server + "/reserve/book/kofu/")
    for selector in ("#notice_number-0", "button.primary", ".site-name a"):
        page.focus(selector)
        style = page.evaluate("""s => { const c = getComputedStyle(document.querySelector(s));
            return {outline: c.outlineStyle, width: c.outlineWidth, color: c.outlineColor,
                    shadow: c.boxShadow, bg: c.backgroundColor}; }""", selector)
        assert style["outline"] == "solid" and style["width"] == "3px", (selector, style)
        assert style["color"] == "rgb(11, 12, 12)", (selector, style)
        assert "rgb(255, 221, 0)" in style["shadow"] or style["bg"] == "rgb(255, 221, 0)", \
            (selector, style)
