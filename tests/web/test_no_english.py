"""No English left on Japanese staff pages (issue 12, 2): the main staff screens rendered
in Japanese, as each role sees them, show none of Flask-AppBuilder's or Werkzeug's
English leftovers; and the words of docs/glossary.md are the ones on the screens
(受付経路 電話, 名称 for things, ログイン, the language menu)."""
import re
from datetime import date
from html.parser import HTMLParser

import pytest

from app.models.reservation import CHANNEL_PHONE
from app.services import booking
from app.services.calendar import ensure_slots
from tests.conftest import login
from tests.factories import make_card, make_notice, make_offer, make_storage
from tests.unit.test_catalogue import glossary_offences

TODAY = date(2026, 12, 1)  # the test clock (tests/conftest.py DEFAULT_NOW), a Tuesday

# Words a Japanese page must not show: Flask-AppBuilder's and Werkzeug's English,
# and Python's None leaking from an empty column or a select's empty choice.
DENYLIST = ["Forbidden", "Not Found", "Method Not Allowed", "Internal Server Error",
            "You don't have the permission", "Search", "Add Filter", "Record Count",
            "Actions", "Sign in", "Sign In", "Is Active", "First Name", "Last Name",
            "User Name", "Username", "Password", "Login", "Logout", "List Users",
            "List Roles", "Refresh", "Save", "Back", "None", "__None", "No records found",
            "Edit record", "Show record", "Delete record", "Add a new record", "Select Value",
            "Contains", "Starts with", "Equal to", "Greater than", "Smaller than",
            "Permissions", "Created on", "Changed on", "Last login", "Login count",
            "Failed login count", "Email", "Role", "Roles", "Active", "Statistics"]

VISIBLE_ATTRIBUTES = ("title", "alt", "placeholder", "aria-label")


class _Visible(HTMLParser):
    """The text a person reads (or hears): text nodes outside <script>/<style>, the
    labels in attributes, and the words on buttons."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.hidden = 0
        self.parts: list[str] = []
        self.unlabelled_none = False  # inside <option value="__None"> with no label yet

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "template"):
            self.hidden += 1
        values = dict(attrs)
        for name in VISIBLE_ATTRIBUTES:
            if values.get(name):
                self.parts.append(values[name])
        if tag == "input" and values.get("type") in ("submit", "button") and values.get("value"):
            self.parts.append(values["value"])
        if tag == "option" and values.get("value") == "__None":
            self.unlabelled_none = True  # FAB's select shows "__None" when the label is empty

    def handle_endtag(self, tag):
        if tag == "option" and self.unlabelled_none:
            self.parts.append("__None")
            self.unlabelled_none = False
        if tag in ("script", "style", "template") and self.hidden:
            self.hidden -= 1

    def handle_data(self, data):
        if data.strip():
            self.unlabelled_none = False
        if not self.hidden:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _Visible()
    parser.feed(html)
    return re.sub(r"\s+", " ", " ".join(parser.parts))


def english_leftovers(html: str) -> list[str]:
    text = visible_text(html)
    return [word for word in DENYLIST
            if re.search(r"(?<![A-Za-z_])" + re.escape(word) + r"(?![A-Za-z_])", text)]


def test_the_check_finds_english_in_a_page():
    page = ('<html><script>var s = "Search";</script><body><button title="Actions">x</button>'
            '<td>None</td><p>予約</p></body></html>')
    assert english_leftovers(page) == ["Actions", "None"]
    assert english_leftovers("<p>予約一覧</p><option value='__None'></option>"
                             "<option>Select Value</option>") == ["__None", "Select Value"]


@pytest.fixture
def world(app, db, clock):
    """One of each thing the pages list: a venue offering 交付 and 申請, a phone booking
    today, a storage place with no note, cards, a notice."""
    make_notice(db, clock())
    make_storage(db)  # note: None
    card = make_card(db)
    offer = make_offer(db)
    make_offer(db, purpose_code="shinsei")
    with app.test_request_context():
        slot = ensure_slots(db, offer, TODAY, TODAY)[4]
        db.commit()
        reservation = booking.book(db, slot, None, date(1980, 3, 1),
                                   booking.Contact(phone="0312345678", name="山田　花子",
                                                   name_kana="ヤマダ　ハナコ"),
                                   seats=1, staff=True, channel=CHANNEL_PHONE)
    from datetime import datetime

    from app.clock import JST
    from app.models.intake import OutreachSession
    from app.services import fees
    from app.services.cards import SYSTEM
    from tests.factories import make_intake
    from tests.unit.test_fees import seed_fees

    outreach = OutreachSession(day=TODAY, site_kind="school", site_name="第一小学校",
                               address="みどり市北野1-1", staff="佐藤")
    db.add(outreach)
    db.commit()
    # a paid reissue (the application's page, its fee panel, 日計表, 月計表)
    seed_fees(db)
    application = make_intake(db, venue=offer.venue, kind="reissue", reissue_reason="lost")
    now = datetime(2026, 12, 1, 10, 0, tzinfo=JST)
    fees.charge(db, application, actor=SYSTEM, venue_id=offer.venue_id, now=now)
    fees.pay(db, application, actor=SYSTEM, venue_id=offer.venue_id, now=now, tendered=5000)
    make_intake(db, method="outreach", venue=None, outreach_session_id=outreach.id,
                kind="reissue", reissue_reason="lost",
                identity_check='{"collector": "proxy", "identity": "one_a", '
                               '"proxy_reason": "hospital", "reason_proof": "1"}')
    # scanned documents (issue 13 §3)
    from app.services import documents
    from tests.document_files import make_pdf

    intake = make_intake(db)
    with app.test_request_context():
        document = documents.upload(db, intake.id, "application_form",
                                    [("申請書.pdf", make_pdf(2))])[0]
    return {"card": card.id, "offer": offer.id, "venue": offer.venue_id,
            "reservation": reservation.id, "day": TODAY.isoformat(),
            "intake": application.id, "outreach": outreach.id,
            "doc_intake": intake.id, "document": document.id}


PAGES = [
    # (role, url); role None: signed out
    ("clerk", "/"),
    ("clerk", "/reservationmodelview/list/"),
    ("clerk", "/reservationmodelview/show/{reservation}"),
    ("clerk", "/desk/{venue}?day={day}"),
    ("clerk", "/desk/{venue}/new"),
    ("clerk", "/desk/{venue}/print"),
    ("clerk", "/booking-calendar/"),
    ("clerk", "/venuepurposemodelview/list/"),
    ("clerk", "/venuemodelview/list/"),
    ("clerk", "/purposemodelview/list/"),
    ("clerk", "/weeklyrulemodelview/list/"),
    ("clerk", "/dateexceptionmodelview/list/"),
    ("clerk", "/cardmodelview/list/"),
    ("clerk", "/cardmodelview/show/{card}"),
    ("clerk", "/cardmodelview/add"),  # the storage choice shows __None
    ("clerk", "/cardeventmodelview/list/"),  # the first event's "from" is None
    ("clerk", "/storageplacemodelview/list/"),
    ("clerk", "/storage/inventory"),
    ("clerk", "/discard/"),
    ("clerk", "/discard/register"),
    ("clerk", "/scan/"),
    ("clerk", "/handover/"),
    # Application intake (issue 13, intake helper)
    ("clerk", "/intakemodelview/list/"),
    ("clerk", "/intakemodelview/show/{intake}"),
    ("clerk", "/intakemodelview/add"),
    ("clerk", "/intakemodelview/add?reservation={reservation}&next=/desk/{venue}"),
    ("clerk", "/intakemodelview/edit/{intake}"),
    ("clerk", "/outreachsessionmodelview/list/"),
    ("clerk", "/outreachsessionmodelview/show/{outreach}"),
    ("clerk", "/outreachsessionmodelview/add"),
    ("clerk", "/outreachsessionmodelview/print/{outreach}"),
    ("viewer", "/intakemodelview/show/{intake}"),
    ("clerk", "/noticemodelview/list/"),
    ("clerk", "/users/userinfo/"),
    ("clerk", "/resetmypassword/form"),
    ("clerk", "/logout/"),
    ("clerk", "/auditlogmodelview/list/"),  # a 403 for a clerk
    # fees (issue 13 §2)
    ("clerk", "/fees/intake/{intake}"),
    ("manager", "/fees/intake/{intake}"),
    ("clerk", "/fees/daily?venue={venue}&day={day}"),
    ("viewer", "/fees/daily?venue={venue}&day={day}"),
    ("clerk", "/fees/monthly?venue={venue}&month=2026-12"),
    ("clerk", "/feeschedulemodelview/list/"),
    ("manager", "/feeschedulemodelview/add"),
    # scanned documents (issue 13 §3)
    ("clerk", "/documents/intake/{doc_intake}"),
    ("clerk", "/documents/{document}?page=2"),
    ("manager", "/documents/{document}"),
    ("viewer", "/documents/{document}"),  # a 403
    # statistics (issue 14 §1): each subject, a breakdown, the stock of cards
    ("clerk", "/statistics/"),
    ("viewer", "/statistics/?subject=bookings&breakdown=channel&measure=made"),
    ("manager", "/statistics/?subject=cards&unit=month&start=2026-04-01&end=2027-03-31"),
    ("clerk", "/statistics/?subject=applications&unit=fiscal_year&start=2025-04-01"
              "&end=2027-03-31&breakdown=method"),
    ("clerk", "/statistics/?subject=fees&unit=week&breakdown=clerk"),
    ("manager", "/purposemodelview/add"),
    ("manager", "/venuemodelview/add"),
    ("manager", "/storageplacemodelview/add"),
    ("manager", "/auditlogmodelview/list/"),
    ("sysadmin", "/"),
    ("sysadmin", "/users/list/"),
    ("sysadmin", "/users/add"),
    ("sysadmin", "/roles/list/"),
    ("sysadmin", "/roles/add"),
    ("sysadmin", "/userstatschartview/chart/"),
    ("sysadmin", "/maintenancewindowmodelview/list/"),
    ("sysadmin", "/maintenancewindowmodelview/add"),
    ("sysadmin", "/noticemodelview/list/"),
    ("sysadmin", "/auditlogmodelview/list/"),
    ("sysadmin", "/jobs/"),  # 定期処理 (issue 16 §3)
    ("sysadmin", "/cardmodelview/list/"),  # a 403 for the system administrator
    ("sysadmin", "/no-such-page"),  # 404
    (None, "/login/"),
    (None, "/no-such-page"),
]


@pytest.mark.parametrize("role,url", [
    pytest.param(role, url, id=f"{role}:{url}") for role, url in PAGES])
def test_japanese_staff_pages_show_no_english(role, url, app, users, client, world):
    if role:
        user = users.create(role)
        assert login(client, user.username, users.password).status_code == 302
    response = client.get(url.format(**world))
    assert response.status_code in (200, 403, 404), (url, response.status_code)
    html = response.get_data(as_text=True)
    leftovers = english_leftovers(html)
    assert not leftovers, f"{url} as {role}: English on a Japanese page: {leftovers}"
    words = glossary_offences(visible_text(html))
    assert not words, f"{url} as {role}: words docs/glossary.md says not to use: {words}"


def _cells_of_column(html: str, header: str) -> list[str]:
    """The texts of one column of the first list table that has ``header``."""
    table = html[html.index(header) - 2000 if html.index(header) > 2000 else 0:]
    heads = re.findall(r"<th[^>]*>(.*?)</th>", table, re.S)
    index = next(i for i, h in enumerate(heads) if header in h)
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)
    cells = []
    for row in rows:
        tds = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        if len(tds) == len(heads):
            cells.append(re.sub(r"<[^>]+>|\s+", "", tds[index]))
    return cells


def test_a_phone_booking_is_taken_by_phone_not_phone_number(login_as, world):
    client = login_as("clerk")
    listing = client.get("/reservationmodelview/list/").get_data(as_text=True)
    assert "受付経路" in listing
    assert _cells_of_column(listing, "受付経路") == ["電話"]
    shown = visible_text(client.get(
        "/reservationmodelview/show/{reservation}".format(**world)).get_data(as_text=True))
    assert re.search(r"受付経路 電話(?!番号)", shown), shown
    assert "電話番号 03" in shown or "電話番号 0312345678" in shown  # the field keeps its word
    desk = client.get("/desk/{venue}?day={day}".format(**world)).get_data(as_text=True)
    assert _cells_of_column(desk, "受付経路") == ["電話"]
    form = client.get("/desk/{venue}/new".format(**world)).get_data(as_text=True)
    options = re.search(r'<select id="channel".*?</select>', form, re.S).group(0)
    assert re.findall(r"<option[^>]*>(.*?)</option>", options) == ["電話", "窓口"]
    assert "電話番号" in visible_text(form)  # the phone number field


def test_things_are_named_with_meisho_and_persons_with_shimei(login_as, world):
    client = login_as("clerk")
    purposes = visible_text(client.get("/purposemodelview/list/").get_data(as_text=True))
    assert "名称" in purposes and "氏名" not in purposes
    bookings = visible_text(client.get("/reservationmodelview/list/").get_data(as_text=True))
    assert "氏名" in bookings and "名称" not in bookings


def test_the_role_list_names_roles_with_meisho(login_as):
    client = login_as("sysadmin")
    roles = visible_text(client.get("/roles/list/").get_data(as_text=True))
    assert "名称" in roles and "氏名" not in roles


def test_an_empty_storage_note_is_blank(login_as, world):
    client = login_as("clerk")
    listing = client.get("/storageplacemodelview/list/").get_data(as_text=True)
    assert _cells_of_column(listing, "備考") == [""]
    assert "None" not in visible_text(listing)


def test_the_language_menu_names_each_language_and_marks_the_current_one(login_as, world):
    client = login_as("clerk")
    page = client.get("/").get_data(as_text=True)
    menu = re.search(r'<li class="dropdown language-menu">.*?</ul>', page, re.S).group(0)
    assert "- English" not in visible_text(menu) and "-English" not in visible_text(menu)
    items = re.findall(r"<li([^>]*)><a[^>]*>(.*?)</a></li>", menu, re.S)
    names = [re.sub(r"<[^>]+>|\s+", "", text) for _, text in items]
    assert names == ["日本語", "English"]
    assert ['class="active"' in attrs for attrs, _ in items] == [True, False]
    assert 'aria-current="true"' in menu and 'lang="en"' in menu
    client.get("/lang/en")
    english = client.get("/").get_data(as_text=True)
    menu = re.search(r'<li class="dropdown language-menu">.*?</ul>', english, re.S).group(0)
    items = re.findall(r"<li([^>]*)><a[^>]*>(.*?)</a></li>", menu, re.S)
    assert ['class="active"' in attrs for attrs, _ in items] == [False, True]


def test_the_login_page_says_login_never_sign_in(client):
    page = visible_text(client.get("/login/").get_data(as_text=True))
    assert "ログイン" in page and "ユーザーID" in page
    assert "サインイン" not in page and "ユーザー名" not in page
