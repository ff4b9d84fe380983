"""The demo fills today's desk whatever the hour it is seeded, and says which account to
try for which role (issue 12, 6)."""
import re
from datetime import datetime

import pytest
from flask import g
from sqlalchemy import select

from app.clock import JST
from app.models.reservation import ARRIVED, BOOKED, COMPLETED, Reservation
from app.models.venue import DateException
from tests.conftest import text_of


def _seed(app, clock, when):
    from app.services import demo

    clock.set(when)
    small_mix = [(min(entry[0], 30) if entry[2] == ["setup", "notice_sent"] else
                  min(entry[0], 1), *entry[1:]) for entry in demo.CARD_MIX]
    with app.app_context(), pytest.MonkeyPatch.context() as patch:
        patch.setattr(demo, "CARD_MIX", small_mix)
        g.audit_actor = "cli:test"
        return demo.seed_demo()


def _today(db, day):
    return [r for r in db.execute(select(Reservation)).scalars()
            if r.starts_at.astimezone(JST).date() == day]


def test_seeding_at_23_00_books_today_in_every_state(app, db, clock, login_as):
    late = datetime(2026, 12, 1, 23, 0, tzinfo=JST)  # a Tuesday, every slot is over
    lines = _seed(app, clock, late)
    today = _today(db, late.date())
    assert len(today) >= 6
    states = {r.state for r in today}
    assert {ARRIVED, COMPLETED, BOOKED} <= states  # booked and past: late, a no-show to mark
    assert all(r.created_at <= late for r in today)
    assert any(r.starts_at.astimezone(JST).date() > late.date()
               for r in db.execute(select(Reservation)).scalars())  # and the next days
    assert any(line.endswith(f"{len(today)} today") for line in lines)
    clock.set(late.replace(hour=22))  # the staff site closes at 23:00
    clerk = login_as("clerk")
    venue = today[0].offer.venue_id
    desk = text_of(clerk.get(f"/desk/{venue}"))
    assert "遅刻" in desk and "来庁済" in desk


def test_seeding_on_a_sunday_opens_the_main_venue_for_the_demo(app, db, clock):
    sunday = datetime(2026, 12, 6, 20, 0, tzinfo=JST)
    _seed(app, clock, sunday)
    assert len(_today(db, sunday.date())) >= 4
    assert db.execute(select(DateException).where(DateException.day == sunday.date())).first()


def test_make_run_again_on_a_later_day_fills_that_days_desk(app, db, clock):
    """`make run` seeds once; run again another day, the seed adds that day's bookings
    (and only once)."""
    first = datetime(2026, 12, 1, 9, 0, tzinfo=JST)
    _seed(app, clock, first)
    later = datetime(2026, 12, 21, 15, 0, tzinfo=JST)  # past the two weeks first booked
    before = len(_today(db, later.date()))
    assert before == 0
    lines = _seed(app, clock, later)
    added = len(_today(db, later.date())) - before
    assert added >= 4 and any(line.endswith(f"{added} added today") for line in lines)
    states = {r.state for r in _today(db, later.date())}
    assert {ARRIVED, BOOKED} <= states
    again = _seed(app, clock, later.replace(hour=16))
    assert any(line.endswith("0 added today") for line in again)


def test_seeding_early_in_the_morning_shows_arrivals_and_waiting_visitors(app, db, clock):
    morning = datetime(2026, 12, 1, 7, 30, tzinfo=JST)
    _seed(app, clock, morning)
    states = {r.state for r in _today(db, morning.date())}
    assert {ARRIVED, COMPLETED, BOOKED} <= states


def test_the_output_says_which_account_to_try_for_which_role(app, clock, monkeypatch):
    monkeypatch.setenv("DEMO_PASSWORD", "Demo-pass-2026")
    lines = _seed(app, clock, datetime(2026, 12, 1, 10, 0, tzinfo=JST))
    table = "\n".join(lines)
    for expected in ("kanri01", "madoguchi01", "etsuran01", "sysadmin02", "管理者 / manager",
                     "窓口職員 / clerk", "閲覧者 / viewer", "業務画面なし", "no business screens",
                     "Demo-pass-2026", "/reserve/"):
        assert expected in table
    result = app.test_cli_runner().invoke(args=["demo", "accounts"])
    assert "madoguchi01" in result.output and "Demo-pass-2026" in result.output


def test_the_first_calendar_of_a_resident_on_the_demo_writes_nothing(app, db, clock, client,
                                                                      no_writes):
    lines = _seed(app, clock, datetime(2026, 12, 1, 10, 0, tzinfo=JST))
    tryout = next(line for line in lines if line.startswith("try /reserve/ with: "))
    number, birth = re.search(r"postcard (\S+) / birth date (\S+);", tryout).groups()
    assert client.post("/reserve/book/kofu/", data={
        "notice_number": number, "birth_date": birth}).status_code == 302
    venue = client.get("/reserve/book/kofu/venue")
    if venue.status_code == 200:  # two venues offer 交付: choose the main office
        venue_id = re.search(r'name="venue" value="(\d+)"', venue.get_data(as_text=True))[1]
        assert client.post("/reserve/book/kofu/venue",
                           data={"venue": venue_id}).status_code == 302
    with no_writes("the demo's first month calendar"):
        month = client.get("/reserve/book/kofu/calendar")
        january = client.get("/reserve/book/kofu/calendar?month=2027-01")
    assert month.status_code == 200 and january.status_code == 200
    assert "/reserve/book/kofu/day/2026-12-" in month.get_data(as_text=True)


def test_the_demo_has_applications_fees_and_a_scanned_form(app, db, clock, login_as):
    from app.models.document import IntakeDocument
    from app.models.fee import FeeEntry
    from app.models.intake import Intake
    from app.services import documents

    when = datetime(2026, 12, 1, 14, 0, tzinfo=JST)
    lines = _seed(app, clock, when)
    assert any(line.startswith("demo applications: 8") for line in lines)
    intakes = db.execute(select(Intake)).scalars().all()
    assert {i.fee_state for i in intakes} >= {"paid", "charged", "waived", "none"}
    assert any(i.card is not None for i in intakes)  # typed in after its card arrived
    assert any(e.receipt_number for e in db.execute(select(FeeEntry)).scalars())
    form = db.execute(select(IntakeDocument)).scalars().one()
    assert form.pages == 2
    with app.test_request_context():
        assert documents.plaintext_of(db, form)[:5] == b"%PDF-"
    home = login_as("clerk").get("/").get_data(as_text=True)
    assert 'data-testid="today-intake"' in home and "1,000円" in home
    assert "demo applications exist" in _seed(app, clock, when)  # nothing added twice
    assert len(db.execute(select(Intake)).scalars().all()) == 8


def test_the_demo_shares_the_query_of_cards_waiting_six_months(app, db, clock, login_as):
    """「受取待ち6か月以上のカード」: shared by a demo 管理者, relative (rerun any day), and
    it finds the twelve cards received 400 days ago that still wait (the five received 420
    days ago are discarded; every other card arrived within two months). Seeded once."""
    from app.models.extraction import SavedQuery
    from app.services import extraction

    when = datetime(2026, 12, 1, 14, 0, tzinfo=JST)
    lines = _seed(app, clock, when)
    assert "demo saved queries: 1 added" in lines
    (saved,) = db.execute(select(SavedQuery)).scalars().all()
    assert (saved.name, saved.shared, saved.owner, saved.subject) == (
        "受取待ち6か月以上のカード", True, "kanri01", "cards")
    with app.test_request_context():
        result = extraction.preview(db, extraction.definition_of(saved))
    assert result.count == 12
    # notices sent; the demo bookings reserve some of them
    assert {row[4] for row in result.rows} <= {"交付通知書発送", "予約済"}
    assert "交付通知書発送" in {row[4] for row in result.rows}
    page = login_as("clerk").get(f"/extraction/?saved={saved.id}")
    assert page.status_code == 200 and "受取待ち6か月以上のカード" in text_of(page)
    assert "demo saved queries exist" in _seed(app, clock, when)  # nothing added twice
    assert len(db.execute(select(SavedQuery)).scalars().all()) == 1
