"""Statistics (集計, issue 14 §1): totals against hand-counted fixtures, across day, week,
month, year and 年度 boundaries in Japan time, from the recorded history only."""
from datetime import date, datetime, timedelta, timezone

import pytest

from app.clock import JST
from app.models.card import CardEvent
from app.models.fee import FeeEntry
from app.models.reservation import BookingEvent, Reservation, Slot
from app.services import statistics as stats
from app.services.errors import InputError
from tests.factories import make_card, make_intake, make_offer, make_storage

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=JST)


def jst(*parts) -> datetime:
    return datetime(*parts, tzinfo=JST)


class World:
    """Bookings and their history written straight into the tables (the services that
    write them are tested elsewhere)."""

    def __init__(self, db):
        self.db = db
        self._n = 0

    def slot(self, offer, starts_at, seats=4, closed=False):
        found = self.db.query(Slot).filter_by(offer_id=offer.id, starts_at=starts_at).first()
        if found:
            return found
        slot = Slot(offer_id=offer.id, starts_at=starts_at,
                    ends_at=starts_at + timedelta(minutes=30), seats=seats, taken=0,
                    closed=closed)
        self.db.add(slot)
        self.db.commit()
        return slot

    def booking(self, offer, starts_at, seats=1, channel="web"):
        slot = self.slot(offer, starts_at)
        self._n += 1
        reservation = Reservation(number=f"T{self._n:07d}", slot_id=slot.id, offer_id=offer.id,
                                  starts_at=starts_at, seats=seats, state="booked",
                                  channel="counter" if channel == "walk_in" else channel,
                                  birth_date=date(1980, 3, 1), phone="0312345678",
                                  created_at=starts_at - timedelta(days=3))
        self.db.add(reservation)
        self.db.commit()
        return reservation

    def event(self, reservation, kind, at, by_staff=False, actor="system", channel=None,
              offer=None, starts_at=None, seats=None):
        event = BookingEvent(reservation_id=reservation.id, kind=kind, at=at, by_staff=by_staff,
                             actor=actor, channel=channel or reservation.channel,
                             offer_id=(offer.id if offer else reservation.offer_id),
                             starts_at=starts_at or reservation.starts_at,
                             seats=seats or reservation.seats)
        self.db.add(event)
        self.db.commit()
        return event


@pytest.fixture
def world(app, db):
    return World(db)


def q(subject="bookings", unit="day", start=date(2026, 3, 1), end=date(2026, 3, 31),
      breakdown="none", measure=None, stock_day=None):
    return stats.Query(subject, unit, start, end, breakdown, measure, stock_day)


def figures(db, query, key, breakdown=None):
    """{period start: figure} of one measure (periods with a figure only)."""
    rep = stats.report(db, query, NOW, breakdown=breakdown)
    measure = rep.subject.measure(key)
    return {p.start: rep.cell(measure, p.start) for p in rep.periods
            if rep.cell(measure, p.start)}


def made_at(world, offer, *moments):
    for moment in moments:
        world.event(world.booking(offer, jst(2026, 5, 11, 10)), "made", moment)


# --- periods in Japan time -----------------------------------------------------------

def test_fiscal_year_month_and_day_boundaries_in_japan_time(world, db):
    offer = make_offer(db)
    made_at(world, offer, jst(2026, 3, 31, 23, 59), jst(2026, 4, 1, 0, 0),
            # 2026-03-31 15:30 UTC is already April 1st in Japan
            datetime(2026, 3, 31, 15, 30, tzinfo=timezone.utc),
            jst(2025, 4, 1, 0, 0), jst(2025, 3, 31, 23, 59, 59))
    whole = dict(start=date(2025, 1, 1), end=date(2027, 3, 31))
    assert figures(db, q(unit="fiscal_year", **whole), "made") == {
        date(2024, 4, 1): 1, date(2025, 4, 1): 2, date(2026, 4, 1): 2}
    assert figures(db, q(unit="year", **whole), "made") == {
        date(2025, 1, 1): 2, date(2026, 1, 1): 3}
    assert figures(db, q(unit="month", **whole), "made") == {
        date(2025, 3, 1): 1, date(2025, 4, 1): 1, date(2026, 3, 1): 1, date(2026, 4, 1): 2}
    assert figures(db, q(unit="day", start=date(2026, 3, 30), end=date(2026, 4, 2)),
                   "made") == {date(2026, 3, 31): 1, date(2026, 4, 1): 2}
    # the range itself is cut in Japan time: March 31st 23:59 is in, April 1st 00:00 not
    rep = stats.report(db, q(unit="month", start=date(2026, 3, 1), end=date(2026, 3, 31)), NOW)
    assert rep.cell(rep.subject.measure("made")) == 1


def test_weeks_run_monday_to_sunday(world, db):
    offer = make_offer(db)
    # 2026-03-29 is a Sunday, 2026-03-30 a Monday
    made_at(world, offer, jst(2026, 3, 29, 23, 59), jst(2026, 3, 30, 0, 0),
            jst(2026, 3, 23, 0, 0), jst(2026, 4, 5, 23, 59))
    got = figures(db, q(unit="week", start=date(2026, 3, 23), end=date(2026, 4, 5)), "made")
    assert got == {date(2026, 3, 23): 2, date(2026, 3, 30): 2}
    rep = stats.report(db, q(unit="week", start=date(2026, 3, 25), end=date(2026, 4, 1)), NOW)
    assert [p.start for p in rep.periods] == [date(2026, 3, 23), date(2026, 3, 30)]
    # only the days of the range count: the 23rd and April 5th lie outside it
    assert rep.cell(rep.subject.measure("made")) == 2


# --- bookings --------------------------------------------------------------------------

@pytest.fixture
def march(world, db, settings_grace):
    """Hand-counted March 2026 at two venues."""
    main = make_offer(db)
    branch = make_offer(db, venue="北支所")
    start = jst(2026, 3, 10, 10, 0)
    for offer in (main, branch):  # 2 slots × 4 seats each = 8 seats per venue
        world.slot(offer, start)
        world.slot(offer, start + timedelta(minutes=30))
    world.slot(main, start + timedelta(hours=1), closed=True)  # closed: offers nothing
    a = world.booking(main, start, seats=2)
    world.event(a, "made", jst(2026, 3, 1, 9))
    world.event(a, "arrived", start + timedelta(minutes=5), by_staff=True, actor="clerk1")
    b = world.booking(main, start, channel="phone")
    world.event(b, "made", jst(2026, 3, 2, 9), by_staff=True, actor="clerk1")
    world.event(b, "arrived", start + timedelta(minutes=6), by_staff=True, actor="clerk2")
    c = world.booking(branch, start, channel="walk_in")
    world.event(c, "made", start, by_staff=True, actor="clerk2", channel="walk_in")
    world.event(c, "arrived", start, by_staff=True, actor="clerk2", channel="walk_in")
    d = world.booking(main, start)  # checked in by mistake, undone
    world.event(d, "made", jst(2026, 3, 3, 9), actor="住民:T0000004")
    world.event(d, "arrived", start + timedelta(minutes=20), by_staff=True, actor="clerk1")
    world.event(d, "undone", start + timedelta(minutes=21), by_staff=True, actor="clerk1")
    world.event(d, "no_show", jst(2026, 3, 10, 20))
    e = world.booking(main, start)
    world.event(e, "made", jst(2026, 3, 4, 9), actor="住民:T0000005")
    world.event(e, "changed", jst(2026, 3, 5, 9), actor="住民:T0000005")
    world.event(e, "cancelled", jst(2026, 3, 6, 9), actor="住民:T0000005")
    f = world.booking(branch, start)
    world.event(f, "made", jst(2026, 3, 4, 9))
    world.event(f, "cancelled", jst(2026, 3, 7, 9), by_staff=True, actor="clerk1")
    return main, branch


@pytest.fixture
def settings_grace(app):
    from app import settings

    settings.configure(app, LATE_GRACE_MINUTES=5)


def test_booking_figures_of_a_month(march, db):
    rep = stats.report(db, q(unit="month"), NOW)
    got = {m.key: rep.cell(m) for m in rep.measures}
    assert got == {"made": 6, "changed": 1, "cancelled_by_resident": 1,
                   "cancelled_by_staff": 1, "arrived": 3, "late": 1, "no_show": 1,
                   # seats used 2 + 1 + 1 of 16 offered (the closed slot offers none)
                   "seat_share": 4 / 16}
    assert [m.key for m in rep.measures][-1] == "seat_share"


def test_late_is_past_the_grace_of_the_desk(march, app, db):
    from app import settings

    settings.configure(app, LATE_GRACE_MINUTES=10)
    rep = stats.report(db, q(unit="month"), NOW)
    assert rep.cell(rep.subject.measure("late")) == 0


def test_bookings_by_venue_purpose_channel_and_clerk(march, db, users):
    main, branch = march
    users.create("clerk", username="clerk1")  # 試験 太郎: named as the screens name staff
    rep = stats.report(db, q(unit="month", breakdown="venue"), NOW)
    made, share = rep.subject.measure("made"), rep.subject.measure("seat_share")
    assert rep.values == {main.venue_id: main.venue.name, branch.venue_id: "北支所"}
    assert rep.cell(made, value=main.venue_id) == 4
    assert rep.cell(made, value=branch.venue_id) == 2
    assert rep.cell(share, value=main.venue_id) == 3 / 8
    assert rep.cell(share, value=branch.venue_id) == 1 / 8
    assert rep.cell(share) == 4 / 16

    rep = stats.report(db, q(unit="month", breakdown="purpose"), NOW)
    assert list(rep.values) == [main.purpose_id]
    assert rep.cell(made, value=main.purpose_id) == 6

    rep = stats.report(db, q(unit="month", breakdown="channel"), NOW)
    assert [m.key for m in rep.measures][-1] != "seat_share"  # no seats per channel
    assert {label: rep.cell(made, value=v) for v, label in rep.values.items()} == {
        "Web": 4, "電話": 1, "窓口（予約なし）": 1}
    assert list(rep.values) == ["web", "phone", "walk_in"]

    rep = stats.report(db, q(unit="month", breakdown="clerk"), NOW)
    arrived = rep.subject.measure("arrived")
    by_name = {label: (rep.cell(made, value=v), rep.cell(arrived, value=v))
               for v, label in rep.values.items()}
    assert by_name["試験 太郎"] == (1, 1)  # clerk1: one phone booking made, one check-in
    assert by_name["clerk2"] == (1, 2)  # no account: the user ID as recorded
    assert by_name["住民（Web）"] == (2, 0)  # residents are one row, not one per booking


def test_a_change_counts_at_the_new_slot_venue(world, db):
    main = make_offer(db)
    branch = make_offer(db, venue="北支所")
    r = world.booking(main, jst(2026, 3, 10, 10))
    world.event(r, "made", jst(2026, 3, 1, 9))
    world.event(r, "changed", jst(2026, 3, 2, 9), offer=branch,
                starts_at=jst(2026, 3, 11, 10))
    rep = stats.report(db, q(unit="month", breakdown="venue"), NOW)
    changed = rep.subject.measure("changed")
    assert rep.cell(changed, value=branch.venue_id) == 1
    assert rep.cell(changed, value=main.venue_id) == 0


# --- cards -----------------------------------------------------------------------------

def card_event(db, card, from_state, to_state, at, username="clerk1", place=None):
    db.add(CardEvent(card_id=card.id, from_state=from_state, to_state=to_state, at=at,
                     username=username, storage_place_id=place.id if place else None))
    db.commit()


@pytest.fixture
def cards_in_march(app, db):
    shelf_a = make_storage(db, code="金庫A-棚1-箱01", sort_key=1)
    shelf_b = make_storage(db, code="金庫A-棚1-箱02", sort_key=2)
    c1 = make_card(db, storage_place=shelf_a)
    c2 = make_card(db, storage_place=shelf_a, visit_mode="S")
    c3 = make_card(db, storage_place=shelf_b)
    for card in (c1, c2, c3):  # make_card's own 納品 event is dated today: move it
        db.query(CardEvent).filter_by(card_id=card.id).delete()
    card_event(db, c1, None, "received", jst(2026, 3, 2, 9), place=shelf_a)
    card_event(db, c2, None, "received", jst(2026, 3, 2, 9), place=shelf_a)
    card_event(db, c3, None, "received", jst(2026, 3, 3, 9), place=shelf_b)
    card_event(db, c1, "received", "setup", jst(2026, 3, 4, 9), place=shelf_a)
    card_event(db, c2, "received", "setup", jst(2026, 3, 4, 9), place=shelf_a)
    card_event(db, c1, "setup", "notice_sent", jst(2026, 3, 5, 9), place=shelf_a)
    card_event(db, c1, "notice_sent", "notice_sent", jst(2026, 3, 6, 9), place=shelf_b)  # move
    card_event(db, c1, "notice_sent", "on_hold", jst(2026, 3, 7, 9), place=shelf_b)
    card_event(db, c1, "on_hold", "notice_sent", jst(2026, 3, 8, 9), place=shelf_b)  # back
    card_event(db, c2, "setup", "mailed", jst(2026, 3, 31, 23, 59), username="clerk2")
    card_event(db, c3, "received", "setup", jst(2026, 4, 1, 0, 0), place=shelf_b)
    return c1, c2, c3, shelf_a, shelf_b


def test_card_figures_from_their_history(cards_in_march, db):
    rep = stats.report(db, q("cards", unit="month"), NOW)
    got = {m.key: rep.cell(m) for m in rep.measures}
    assert got == {"received": 3, "setup": 2, "notice_sent": 1, "renotified": 0,
                   "handed_over": 0, "returned": 0, "mailed": 1, "discarded": 0}
    rep = stats.report(db, q("cards", unit="month", breakdown="visit_mode"), NOW)
    received = rep.subject.measure("received")
    assert {label: rep.cell(received, value=v) for v, label in rep.values.items()} == {
        "交付時来庁": 2, "申請時来庁": 1}
    rep = stats.report(db, q("cards", unit="month", breakdown="clerk"), NOW)
    mailed = rep.subject.measure("mailed")
    assert {label: rep.cell(mailed, value=v) for v, label in rep.values.items()} == {
        "clerk1": 0, "clerk2": 1}


def test_a_past_month_does_not_change_when_cards_move_later(cards_in_march, db):
    c1, c2, c3, shelf_a, shelf_b = cards_in_march
    query = q("cards", unit="day", stock_day=date(2026, 3, 31))
    before = stats.long_rows(stats.report(db, query, NOW))
    stock_before = stats.stock(db, date(2026, 3, 31))
    # April: c1 handed over, c3 set up and moved; the ledger rows change too
    card_event(db, c1, "notice_sent", "handed_over", jst(2026, 4, 2, 10))
    card_event(db, c3, "setup", "setup", jst(2026, 4, 3, 10), place=shelf_a)
    c1.state, c1.storage_place_id = "handed_over", None
    c3.state, c3.storage_place_id = "setup", shelf_a.id
    db.commit()
    assert stats.long_rows(stats.report(db, query, NOW)) == before
    assert stats.stock(db, date(2026, 3, 31)) == stock_before
    april = stats.report(db, q("cards", unit="month", start=date(2026, 4, 1),
                               end=date(2026, 4, 30)), NOW)
    assert april.cell(april.subject.measure("handed_over")) == 1
    assert april.cell(april.subject.measure("setup")) == 1  # the move is not a setup


def test_stock_at_the_end_of_a_day_by_state_and_place(cards_in_march, db):
    c1, c2, c3, shelf_a, shelf_b = cards_in_march
    held = stats.stock(db, date(2026, 3, 5))
    assert [(s, n) for s, _label, n in held.by_state] == [("received", 1), ("setup", 1),
                                                          ("notice_sent", 1)]
    assert held.by_place == [("金庫A-棚1-箱01", 2), ("金庫A-棚1-箱02", 1)]
    held = stats.stock(db, date(2026, 3, 31))  # c2 mailed at 23:59: gone; c1 moved to B
    assert [(s, n) for s, _label, n in held.by_state] == [("received", 1), ("notice_sent", 1)]
    assert held.by_place == [("金庫A-棚1-箱02", 2)]
    assert held.total == 2
    assert stats.stock(db, date(2026, 3, 1)).total == 0


def test_stock_takes_the_latest_event_by_time_then_by_id(app, db):
    """Two events of a card at the same moment: the one written last counts. An event
    written later but dated earlier (a correction) does not replace a later one."""
    shelf = make_storage(db, code="金庫B-棚1-箱01", sort_key=1)
    same, backdated, later = (make_card(db, storage_place=shelf) for _ in range(3))
    for card in (same, backdated, later):
        db.query(CardEvent).filter_by(card_id=card.id).delete()
    moment = jst(2026, 3, 10, 9)
    card_event(db, same, None, "received", moment, place=shelf)
    card_event(db, same, "received", "setup", moment, place=shelf)  # same at, higher id
    card_event(db, backdated, None, "received", moment, place=shelf)
    card_event(db, backdated, "received", "handed_over", jst(2026, 3, 11, 9))
    card_event(db, backdated, None, "setup", jst(2026, 3, 9, 9), place=shelf)  # written late
    card_event(db, later, None, "received", jst(2026, 3, 12, 9), place=shelf)  # after the day
    held = stats.stock(db, date(2026, 3, 11))
    assert [(s, n) for s, _label, n in held.by_state] == [("setup", 1)]
    assert held.by_place == [("金庫B-棚1-箱01", 1)]
    held = stats.stock(db, date(2026, 3, 10))
    assert [(s, n) for s, _label, n in held.by_state] == [("received", 1), ("setup", 1)]


def test_a_takeback_only_cancels_the_check_ins_before_it(world, db):
    """Checked in, taken back, checked in again: one check-in, and its seats are used."""
    offer = make_offer(db)
    start = jst(2026, 3, 10, 10, 0)
    world.slot(offer, start)
    booking = world.booking(offer, start, seats=2)
    world.event(booking, "made", jst(2026, 3, 1, 9))
    world.event(booking, "arrived", start, by_staff=True, actor="clerk1")
    world.event(booking, "undone", start + timedelta(minutes=1), by_staff=True, actor="clerk1")
    world.event(booking, "arrived", start + timedelta(minutes=2), by_staff=True, actor="clerk2")
    # a clerk whose only event counts in no figure is no column of the breakdown
    world.event(booking, "completed", start + timedelta(minutes=30), by_staff=True,
                actor="clerk3")
    rep = stats.report(db, q(unit="month"), NOW)
    assert rep.cell(rep.subject.measure("arrived")) == 1
    assert rep.cell(rep.subject.measure("seat_share")) == 2 / 4
    rep = stats.report(db, q(unit="month", breakdown="clerk", measure="arrived"), NOW)
    arrived = rep.subject.measure("arrived")
    assert {label: rep.cell(arrived, value=v) for v, label in rep.values.items()} == {
        "clerk2": 1, "自動処理": 0}


# --- applications and fees ------------------------------------------------------------

def test_applications_by_method_kind_and_withdrawn(app, db):
    make_intake(db, taken_at=jst(2026, 3, 31, 23, 59))
    make_intake(db, taken_at=jst(2026, 3, 2, 9), method="support", kind="renewal")
    make_intake(db, taken_at=jst(2026, 3, 3, 9), kind="reissue", reissue_reason="lost",
                state="withdrawn", withdrawn_at=jst(2026, 4, 2, 9), withdraw_reason="本人の申出")
    make_intake(db, taken_at=jst(2026, 4, 1, 0, 0))
    rep = stats.report(db, q("applications", unit="month", start=date(2026, 3, 1),
                             end=date(2026, 4, 30)), NOW)
    march, april = date(2026, 3, 1), date(2026, 4, 1)
    cell = lambda key, period: rep.cell(rep.subject.measure(key), period)  # noqa: E731
    assert (cell("taken", march), cell("taken", april)) == (3, 1)
    assert (cell("method_counter", march), cell("method_support", march)) == (2, 1)
    assert (cell("withdrawn", march), cell("withdrawn", april)) == (0, 1)
    rep = stats.report(db, q("applications", unit="month"), NOW, breakdown="kind")
    taken = rep.subject.measure("taken")
    assert {label: rep.cell(taken, value=v) for v, label in rep.values.items()} == {
        "新規": 1, "有効期限による更新": 1, "再交付": 1}


def test_fees_counts_and_yen(app, db):
    from app.models.venue import Venue

    intake = make_intake(db, kind="reissue", reissue_reason="lost")
    venue = db.query(Venue).first()

    def entry(entry_type, amount, day, **values):
        db.add(FeeEntry(intake_id=intake.id, entry_type=entry_type, amount=amount,
                        venue_id=venue.id, clerk="clerk1", business_day=day,
                        at=jst(day.year, day.month, day.day, 10), **values))
        db.commit()

    entry("charge", 1000, date(2026, 3, 31))
    entry("payment", 1000, date(2026, 3, 31), method="cash", fiscal_year=2025,
          receipt_seq=1, receipt_number="2025-000001")
    entry("refund", -1000, date(2026, 4, 1), reason="誤り")
    entry("charge", 0, date(2026, 4, 1))
    entry("waiver", 0, date(2026, 4, 1), reason="災害")
    rep = stats.report(db, q("fees", unit="fiscal_year", start=date(2025, 4, 1),
                             end=date(2027, 3, 31)), NOW)
    got = {p.start: {m.key: rep.cell(m, p.start) for m in rep.measures} for p in rep.periods}
    assert got[date(2025, 4, 1)] == {"charged": 1, "charged_yen": 1000, "collected": 1,
                                     "collected_yen": 1000, "waived": 0, "refunded": 0,
                                     "refunded_yen": 0}
    assert got[date(2026, 4, 1)] == {"charged": 1, "charged_yen": 0, "collected": 0,
                                     "collected_yen": 0, "waived": 1, "refunded": 1,
                                     "refunded_yen": 1000}
    rep = stats.report(db, q("fees", unit="month", start=date(2026, 3, 1),
                             end=date(2026, 4, 30)), NOW, breakdown="venue")
    assert rep.values == {venue.id: venue.name}


# --- the query and the files ------------------------------------------------------------

@pytest.mark.parametrize("args,message", [
    ({"subject": "people"}, "集計の対象"),
    ({"unit": "hour"}, "単位"),
    ({"start": "2026-13-01"}, "開始日"),
    ({"start": "2026-04-02", "end": "2026-04-01"}, "開始日"),
    ({"start": "2020-01-01", "end": "2026-12-31"}, "期間"),
    ({"breakdown": "visit_mode"}, "内訳"),
    ({"measure": "nothing"}, "項目"),
    ({"breakdown": "channel", "measure": "seat_share"}, "内訳"),
])
def test_wrong_parameters_say_what_is_wrong(app, args, message):
    with app.test_request_context():
        with pytest.raises(InputError) as caught:
            stats.parse_query(args, date(2026, 12, 1))
        assert message in str(caught.value.message)


def test_defaults_are_this_month_by_day(app):
    query = stats.parse_query({}, date(2026, 12, 1))
    assert (query.subject, query.unit, query.start, query.end, query.breakdown) == (
        "bookings", "day", date(2026, 12, 1), date(2026, 12, 31), "none")
    ranges = stats.quick_ranges(date(2026, 12, 1))
    assert [(u, s, e) for _l, u, s, e in ranges] == [
        ("day", date(2026, 12, 1), date(2026, 12, 31)),
        ("day", date(2026, 11, 1), date(2026, 11, 30)),
        ("month", date(2026, 4, 1), date(2027, 3, 31)),
        ("month", date(2025, 4, 1), date(2026, 3, 31))]


def test_csv_for_excel(march, app, db):
    with app.test_request_context():
        rep = stats.report(db, q(unit="day", breakdown="venue"), NOW)
        data = stats.csv_bytes(rep)
    assert data.startswith("\ufeff".encode())
    text = data.decode("utf-8-sig")
    assert "\r\n" in text and "\n" not in text.replace("\r\n", "")
    lines = text.split("\r\n")
    assert lines[0].startswith("集計,予約")
    assert "2026/03/01" in lines[1] and "2026/03/31" in lines[1]
    assert lines[2].startswith("出力日時,2026/12/01 10:00")
    header = lines[4].split(",")
    assert header[:4] == ["期間", "初日", "末日", "会場"]
    assert "予約" in header and "時間枠の利用率 (%)" in header
    row = next(line for line in lines if line.startswith("2026/03/10,") and "北支所" in line)
    assert row.split(",")[4] == "1"  # the walk-in, made on the 10th at the branch
    row = next(line for line in lines if line.startswith("2026/03/01,") and "北支所" in line)
    assert row.split(",")[1:5] == ["2026-03-01", "2026-03-01", "北支所", "0"]
    total = next(line for line in lines if line.startswith("合計,") and "北支所" in line)
    assert total.split(",")[4] == "2"
