"""Statistics (集計, F4.1): totals per day, week, month, year and 年度 over any range, broken
down by venue, purpose, channel, 来庁方式, clerk ...; counted from the recorded history
only (booking_event, card_event, dated intake and fee rows), never from today's state, so a
past month's figures do not change when a card or a booking moves later.

A subject is ONE declaration (:data:`SUBJECTS`): its measures, each with its SQL source (a
table, its date column, a filter, what is counted or summed) and the breakdowns it can be
split by. The measures of one source are counted together in ONE query over the rows of
the range (``SUM(CASE WHEN <measure's filter> THEN 1 END)`` per measure), grouped by the
Japan day (and the breakdown) in SQL: SQLite keeps naive UTC text, so the day is the UTC
date and whether the hour is 15:00 or later (two cheap ``substr``); PostgreSQL:
``timezone(interval '+09:00', at)::date``. The days are then added up into the periods in
Python (a year is at most 366 days a breakdown value). Adding a subject is adding a
declaration.

docs/statistics.md says what each figure counts, in Japanese.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Callable

from dateutil.relativedelta import relativedelta
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import Date, String, and_, case, cast, func, literal_column, or_, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.orm import aliased

from app.clock import JST
from app.models import card_states
from app.models.card import Card, CardEvent
from app.models.fee import (ENTRY_CHARGE, ENTRY_PAYMENT, ENTRY_REFUND, ENTRY_WAIVER,
                            FeeEntry)
from app.models.intake import (KIND_LABELS, KINDS, METHOD_LABELS, METHODS, Intake)
from app.models.reservation import (CHANNEL_WALK_IN, EVENT_ARRIVED, EVENT_CANCELLED, EVENT_CHANGED,
                                    EVENT_CHANNEL_LABELS, EVENT_CHANNELS, EVENT_MADE,
                                    EVENT_NO_SHOW, EVENT_UNDONE, BookingEvent, Slot)
from app.models.storage import StoragePlace
from app.models.venue import Purpose, Venue, VenuePurpose
from app.services import audit, audit_text, export_policy, spreadsheet, unit
from app.services.errors import InputError
from app.settings import settings

# --- periods ---------------------------------------------------------------------------

DAY, WEEK, MONTH, YEAR, FISCAL_YEAR = "day", "week", "month", "year", "fiscal_year"
UNIT_LABELS = {DAY: _l("By day"), WEEK: _l("By week (Monday to Sunday)"),
               MONTH: _l("By month"), YEAR: _l("By calendar year"),
               FISCAL_YEAR: _l("By fiscal year (April to March)")}
UNITS = tuple(UNIT_LABELS)
MAX_PERIODS = 400  # rows of one table: a longer range asks for a larger unit

# Cards that left the office: not in the stock.
LEFT_THE_OFFICE = (card_states.HANDED_OVER, card_states.MAILED, card_states.DISCARDED)


def period_start(unit_key: str, day: date) -> date:
    """The first day of the period of ``unit_key`` that holds ``day``."""
    if unit_key == DAY:
        return day
    if unit_key == WEEK:
        return day - timedelta(days=day.weekday())
    if unit_key == MONTH:
        return day.replace(day=1)
    if unit_key == YEAR:
        return date(day.year, 1, 1)
    return date(day.year if day.month >= 4 else day.year - 1, 4, 1)


def _step(unit_key: str) -> relativedelta:
    return {DAY: relativedelta(days=1), WEEK: relativedelta(weeks=1),
            MONTH: relativedelta(months=1), YEAR: relativedelta(years=1),
            FISCAL_YEAR: relativedelta(years=1)}[unit_key]


@dataclass(frozen=True)
class Period:
    start: date  # first day of the period (may lie before the chosen range)
    end: date  # last day of the period (may lie after it)
    label: str


def period_label(unit_key: str, start: date) -> str:
    if unit_key == DAY:
        return start.strftime("%Y/%m/%d")
    if unit_key == WEEK:
        end = start + timedelta(days=6)
        return _("%(start)s to %(end)s", start=start.strftime("%Y/%m/%d"),
                 end=end.strftime("%m/%d"))
    if unit_key == MONTH:
        return _("%(year)s-%(month)s", year=start.year, month=f"{start.month:02d}")
    if unit_key == YEAR:
        return _("Year %(year)s", year=start.year)
    return _("Fiscal year %(year)s", year=start.year)


def periods(unit_key: str, start: date, end: date, limit: int | None = None) -> list[Period]:
    """The periods of ``unit_key`` that cover start..end (at most ``limit`` + 1)."""
    result = []
    current = period_start(unit_key, start)
    step = _step(unit_key)
    while current <= end and (limit is None or len(result) <= limit):
        following = current + step
        result.append(Period(current, following - timedelta(days=1),
                             period_label(unit_key, current)))
        current = following
    return result


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=JST)


class _Sql:
    """The few expressions that differ between SQLite and PostgreSQL, for ONE query.
    Constants are written into the SQL text (never bound), so GROUP BY repeats the very
    same text. A condition that needs a joined set (:meth:`not_undone`) notes it here and
    the query joins it."""

    def __init__(self, session):
        self.pg = session.get_bind().dialect.name == "postgresql"
        self.undone = None  # the takebacks of check-ins, when a condition reads them

    def day(self, column, is_date: bool) -> list:
        """Expressions that give the Japan day of ``column`` (see :func:`_japan_day`)."""
        if is_date:
            return [column]
        if self.pg:
            # Japan keeps no summer time: a fixed offset, half the cost of the zone's name
            return [cast(func.timezone(literal_column("interval '+09:00'"), column), Date)]
        # naive UTC text 'YYYY-MM-DD HH:MM:SS...': from 15:00 UTC on it is the next day
        one, ten, twelve, two = (literal_column(n) for n in ("1", "10", "12", "2"))
        return [func.substr(column, one, ten, type_=String),
                case((func.substr(column, twelve, two, type_=String) >= literal_column("'15'"),
                      literal_column("1")), else_=literal_column("0"))]

    def not_undone(self):
        """A check-in that no later 来庁の取消し of the same booking took back: the latest
        takeback of each booking (few rows, by ix_booking_event_kind_at) joined once
        instead of a lookup per row."""
        if self.undone is None:
            takeback = aliased(BookingEvent, name="takeback")
            booking = takeback.reservation_id
            if not self.pg:
                # SQLite does not know that takebacks are rare: grouping by the bare
                # column, it reads every row in the order of ix_booking_event_reservation_id
                # instead of the few takebacks by ix_booking_event_kind_at.
                booking = booking + literal_column("0")
            self.undone = (select(booking.label("reservation_id"),
                                  func.max(takeback.at).label("last"))
                           .where(takeback.kind == EVENT_UNDONE)
                           .group_by(booking).subquery("undone"))
        return or_(self.undone.c["last"].is_(None), self.undone.c["last"] < BookingEvent.at)

    def later_than(self, moment, base, minutes: int):
        """``moment`` is more than ``minutes`` after ``base``."""
        minutes = int(minutes)
        if self.pg:
            return moment - base > literal_column(f"interval '{minutes} minutes'")
        return ((func.julianday(moment) - func.julianday(base)) * literal_column("86400.0")
                > literal_column(f"{minutes * 60}.0005"))


# --- breakdowns ------------------------------------------------------------------------

NONE = "none"


@dataclass(frozen=True)
class Breakdown:
    key: str
    label: Any
    # {raw value: label} for the values found (one query at most), in display order
    names: Callable[[Any, list], dict]


def _ordered(labels: dict, order) -> Callable:
    def names(session, values):
        known = [v for v in order if v in values]
        rest = sorted((v for v in values if v not in order), key=lambda v: str(v or ""))
        return {v: (str(labels.get(v, v)) if v is not None else str(_("Not recorded")))
                for v in known + rest}
    return names


def _by_name(model) -> Callable:
    def names(session, values):
        ids = [v for v in values if v is not None]
        found = dict(session.execute(select(model.id, model.name).where(model.id.in_(ids)))
                     .all()) if ids else {}
        result = {v: found.get(v, str(v)) for v in ids}
        result = dict(sorted(result.items(), key=lambda item: item[1]))
        if None in values:
            result[None] = str(_("Not recorded"))
        return result
    return names


def _clerk_names(session, values):
    named = audit_text.actor_names(session, [v for v in values if v])
    unknown = str(_("Not recorded (old record)"))  # an account since removed: its user ID
    result = {v: v if named.get(v, unknown) == unknown else named[v] for v in values if v}
    result = dict(sorted(result.items(), key=lambda item: item[1]))
    if None in values or "" in values:
        result[None] = str(_("Not recorded"))
    return result


BREAKDOWNS = {
    NONE: Breakdown(NONE, _l("No breakdown"), lambda session, values: {None: ""}),
    "venue": Breakdown("venue", _l("Venue"), _by_name(Venue)),
    "purpose": Breakdown("purpose", _l("Purpose"), _by_name(Purpose)),
    "channel": Breakdown("channel", _l("Taken by"),
                         _ordered(EVENT_CHANNEL_LABELS, EVENT_CHANNELS)),
    "visit_mode": Breakdown("visit_mode", _l("Visit mode"),
                            _ordered(card_states.VISIT_MODE_LABELS, card_states.VISIT_MODES)),
    "clerk": Breakdown("clerk", _l("Clerk"), _clerk_names),
    "method": Breakdown("method", _l("How it was taken"), _ordered(METHOD_LABELS, METHODS)),
    "kind": Breakdown("kind", _l("Kind of application"), _ordered(KIND_LABELS, KINDS)),
}


# --- sources and measures --------------------------------------------------------------

@dataclass(frozen=True)
class Source:
    """Rows to count: a table, the column that dates each row, and how each breakdown
    reads (a column of the table, or of a table joined for it: (column, table, on))."""
    table: Any
    date_column: Any
    is_date: bool = False  # a DATE column (already a Japan day), else a timestamp
    breakdowns: dict = field(default_factory=dict)


COUNT = "count"
YEN = "yen"
PERCENT = "percent"


@dataclass(frozen=True)
class Measure:
    key: str
    label: Any
    source: Source | None = None
    where: Callable | None = None  # (sql: _Sql) -> list of clauses
    amount: Callable | None = None  # () -> what each row adds; default 1 (a count)
    kind: str = COUNT
    ratio: tuple[str, str] | None = None  # (numerator, denominator) measure keys
    hidden: bool = False  # a part of a ratio, not shown on its own

    def supports(self, subject: "Subject", breakdown: str) -> bool:
        if self.ratio:
            return all(subject.measure(key).supports(subject, breakdown) for key in self.ratio)
        return breakdown == NONE or breakdown in self.source.breakdowns


@dataclass(frozen=True)
class Subject:
    key: str
    label: Any
    measures: tuple[Measure, ...]
    breakdowns: tuple[str, ...]  # in the order offered (NONE first)
    has_stock: bool = False

    def measure(self, key: str) -> Measure:
        return next(m for m in self.measures if m.key == key)

    @property
    def shown(self) -> list[Measure]:
        return [m for m in self.measures if not m.hidden]


def _offer_join(column):
    return (column, VenuePurpose, BookingEvent.offer_id == VenuePurpose.id)


_BOOKING_BREAKDOWNS = {
    "venue": _offer_join(VenuePurpose.venue_id),
    "purpose": _offer_join(VenuePurpose.purpose_id),
    "channel": BookingEvent.channel,
    # Residents are one value (住民), not one per booking number (住民:R…).
    "clerk": case((BookingEvent.actor.like(literal_column("'住民%'")),
                   literal_column("'住民'")), else_=BookingEvent.actor),
}
BOOKING_EVENTS = Source(BookingEvent, BookingEvent.at, breakdowns=_BOOKING_BREAKDOWNS)
# The seats used, dated by the slot's time (the share of seats used of that period).
BOOKED_SLOT_TIMES = Source(BookingEvent, BookingEvent.starts_at, breakdowns={
    "venue": _offer_join(VenuePurpose.venue_id),
    "purpose": _offer_join(VenuePurpose.purpose_id)})
SLOTS = Source(Slot, Slot.starts_at, breakdowns={
    "venue": (VenuePurpose.venue_id, VenuePurpose, Slot.offer_id == VenuePurpose.id),
    "purpose": (VenuePurpose.purpose_id, VenuePurpose, Slot.offer_id == VenuePurpose.id)})


def _kind(kind: str, *more):
    return lambda sql: [BookingEvent.kind == kind, *more]


def _late(sql: _Sql):
    """Checked in past the grace after the slot's start; a walk-in had no appointment to
    be late for (it is put into the slot running when it comes)."""
    return [BookingEvent.kind == EVENT_ARRIVED, sql.not_undone(),
            BookingEvent.channel != CHANNEL_WALK_IN,
            sql.later_than(BookingEvent.at, BookingEvent.starts_at,
                           settings().late_grace_minutes)]


BOOKINGS = Subject("bookings", _l("Bookings"), (
    Measure("made", _l("Bookings made"), BOOKING_EVENTS, _kind(EVENT_MADE)),
    Measure("changed", _l("Bookings changed"), BOOKING_EVENTS, _kind(EVENT_CHANGED)),
    Measure("cancelled_by_resident", _l("Cancelled by the resident"), BOOKING_EVENTS,
            _kind(EVENT_CANCELLED, BookingEvent.by_staff.is_(False))),
    Measure("cancelled_by_staff", _l("Cancelled by staff"), BOOKING_EVENTS,
            _kind(EVENT_CANCELLED, BookingEvent.by_staff.is_(True))),
    Measure("arrived", _l("Checked in"), BOOKING_EVENTS,
            lambda sql: [BookingEvent.kind == EVENT_ARRIVED, sql.not_undone()]),
    Measure("late", _l("Late"), BOOKING_EVENTS, _late),
    Measure("no_show", _l("No-show"), BOOKING_EVENTS, _kind(EVENT_NO_SHOW)),
    Measure("seats_used", _l("Seats used"), BOOKED_SLOT_TIMES,
            lambda sql: [BookingEvent.kind == EVENT_ARRIVED, sql.not_undone()],
            amount=lambda: BookingEvent.seats, hidden=True),
    Measure("seats_offered", _l("Seats offered"), SLOTS,
            lambda sql: [Slot.closed.is_(False)],
            amount=lambda: Slot.seats, hidden=True),
    Measure("seat_share", _l("Share of seats used"), kind=PERCENT,
            ratio=("seats_used", "seats_offered")),
), (NONE, "venue", "purpose", "channel", "clerk"))


def _card_source() -> Source:
    return Source(CardEvent, CardEvent.at, breakdowns={
        "visit_mode": (Card.visit_mode, Card, CardEvent.card_id == Card.id),
        "clerk": CardEvent.username})


CARD_EVENTS = _card_source()


def _arrived_in(state: str):
    """A card that reached ``state``: not a move between places (from = to), nor a return
    to where it was from 保留 or from 予約済 (a booking cancelled or missed: no second
    notice was sent)."""
    returns = (state, card_states.ON_HOLD)
    if state in (card_states.NOTICE_SENT, card_states.RENOTIFIED):
        returns += (card_states.RESERVED,)
    return lambda sql: [CardEvent.to_state == state,
                        or_(CardEvent.from_state.is_(None),
                            CardEvent.from_state.not_in(returns))]


CARDS = Subject("cards", _l("Card figures"), tuple(
    Measure(state, label, CARD_EVENTS, _arrived_in(state)) for state, label in (
        (card_states.RECEIVED, _l("Cards received")),
        (card_states.SETUP, _l("Cards set up")),
        (card_states.NOTICE_SENT, _l("Notices sent")),
        (card_states.RENOTIFIED, _l("Re-notified")),
        (card_states.HANDED_OVER, _l("Handed over")),
        (card_states.RETURNED, _l("Returned")),
        (card_states.MAILED, _l("Mailed")),
        (card_states.DISCARDED, _l("Discarded")))),
    (NONE, "visit_mode", "clerk"), has_stock=True)


_INTAKE_BREAKDOWNS = {"venue": Intake.venue_id, "visit_mode": Intake.visit_mode,
                      "clerk": Intake.clerk, "method": Intake.method, "kind": Intake.kind}
INTAKES_TAKEN = Source(Intake, Intake.taken_at, breakdowns=_INTAKE_BREAKDOWNS)
INTAKES_WITHDRAWN = Source(Intake, Intake.withdrawn_at, breakdowns=_INTAKE_BREAKDOWNS)

APPLICATIONS = Subject("applications", _l("Application figures"), (
    Measure("taken", _l("Applications taken"), INTAKES_TAKEN),
    *(Measure(f"method_{method}", label, INTAKES_TAKEN,
              (lambda m: lambda sql: [Intake.method == m])(method))
      for method, label in METHOD_LABELS.items()),
    Measure("withdrawn", _l("Withdrawn"), INTAKES_WITHDRAWN),
), (NONE, "venue", "method", "kind", "visit_mode", "clerk"))


FEE_ENTRIES = Source(FeeEntry, FeeEntry.business_day, is_date=True, breakdowns={
    "venue": FeeEntry.venue_id, "clerk": FeeEntry.clerk,
    "kind": (Intake.kind, Intake, FeeEntry.intake_id == Intake.id)})


def _entries(entry_type: str):
    return lambda sql: [FeeEntry.entry_type == entry_type]


def _yen(sign: int = 1):
    return lambda: FeeEntry.amount * literal_column(str(int(sign)))


FEES = Subject("fees", _l("Fee figures"), (
    Measure("charged", _l("Charges"), FEE_ENTRIES, _entries(ENTRY_CHARGE)),
    Measure("charged_yen", _l("Charged (yen)"), FEE_ENTRIES, _entries(ENTRY_CHARGE),
            amount=_yen(), kind=YEN),
    Measure("collected", _l("Payments collected"), FEE_ENTRIES, _entries(ENTRY_PAYMENT)),
    Measure("collected_yen", _l("Collected (yen)"), FEE_ENTRIES, _entries(ENTRY_PAYMENT),
            amount=_yen(), kind=YEN),
    Measure("waived", _l("Waivers"), FEE_ENTRIES, _entries(ENTRY_WAIVER)),
    Measure("refunded", _l("Refunds made"), FEE_ENTRIES, _entries(ENTRY_REFUND)),
    Measure("refunded_yen", _l("Refunded (yen)"), FEE_ENTRIES, _entries(ENTRY_REFUND),
            amount=_yen(-1), kind=YEN),
), (NONE, "venue", "kind", "clerk"))

SUBJECTS = {s.key: s for s in (BOOKINGS, APPLICATIONS, CARDS, FEES)}


# --- the query a screen asks for -------------------------------------------------------

@dataclass(frozen=True)
class Query:
    subject: str
    unit: str
    start: date
    end: date  # inclusive
    breakdown: str = NONE
    measure: str | None = None  # the one measure of a breakdown table and of the chart
    stock_day: date | None = None  # cards: the stock at the end of this day

    @property
    def subject_decl(self) -> Subject:
        return SUBJECTS[self.subject]

    def args(self, **overrides) -> dict:
        """The query as URL arguments (for links and downloads)."""
        values = {"subject": self.subject, "unit": self.unit,
                  "start": self.start.isoformat(), "end": self.end.isoformat(),
                  "breakdown": self.breakdown}
        if self.measure:
            values["measure"] = self.measure
        if self.stock_day:
            values["stock_day"] = self.stock_day.isoformat()
        values.update(overrides)
        return values


def this_month(today: date) -> tuple[date, date]:
    first = today.replace(day=1)
    return first, first + relativedelta(months=1) - timedelta(days=1)


def quick_ranges(today: date) -> list[tuple[Any, str, date, date]]:
    """(label, unit, start, end) of the quick links: 今月, 先月 by day, 今年度, 前年度 by
    month."""
    first, last = this_month(today)
    fiscal = period_start(FISCAL_YEAR, today)
    return [(_l("This month"), DAY, first, last),
            (_l("Last month"), DAY, first - relativedelta(months=1), first - timedelta(days=1)),
            (_l("This fiscal year"), MONTH, fiscal,
             fiscal + relativedelta(years=1) - timedelta(days=1)),
            (_l("Last fiscal year"), MONTH, fiscal - relativedelta(years=1),
             fiscal - timedelta(days=1))]


def _day(text, what) -> date:
    from app.services.fields import parse_day

    value = parse_day(str(text).strip())
    if value is None:
        raise InputError(_("%(what)s is not a date (write it like 2026-04-01).", what=what))
    return value


def parse_query(args, today: date) -> Query:
    """The screen's GET arguments as a :class:`Query`; anything missing takes its default
    (this month by day, no breakdown). A wrong value raises InputError saying which."""
    subject = args.get("subject") or BOOKINGS.key
    if subject not in SUBJECTS:
        raise InputError(_("Choose what to count from the list."))
    decl = SUBJECTS[subject]
    unit_key = args.get("unit") or DAY
    if unit_key not in UNITS:
        raise InputError(_("Choose the unit of the periods from the list."))
    first, last = this_month(today)
    start = _day(args["start"], _("The first day")) if args.get("start") else first
    end = _day(args["end"], _("The last day")) if args.get("end") else last
    if start > end:
        raise InputError(_("The first day must not be after the last day."))
    if len(periods(unit_key, start, end, limit=MAX_PERIODS)) > MAX_PERIODS:
        raise InputError(_("The range has more than %(max)s periods: choose a larger unit "
                           "or a shorter range.", max=MAX_PERIODS))
    breakdown = args.get("breakdown") or NONE
    if breakdown not in decl.breakdowns:
        raise InputError(_("%(subject)s cannot be broken down this way: choose a breakdown "
                           "from the list.", subject=decl.label))
    measure = args.get("measure") or None
    shown = [m for m in decl.shown if m.supports(decl, breakdown)]
    if measure is not None and measure not in {m.key for m in decl.shown}:
        raise InputError(_("Choose the figure from the list."))
    if measure is not None and measure not in {m.key for m in shown}:
        raise InputError(_("This figure cannot be broken down this way: choose another "
                           "figure or breakdown."))
    if measure is None:
        measure = shown[0].key
    stock_day = (_day(args["stock_day"], _("The day of the stock")) if args.get("stock_day")
                 else None)
    if decl.has_stock and stock_day is None:
        stock_day = min(end, today)
    return Query(subject, unit_key, start, end, breakdown, measure,
                 stock_day if decl.has_stock else None)


# --- computing a report ----------------------------------------------------------------

ALL = object()  # every value of the breakdown


@dataclass
class Report:
    query: Query
    subject: Subject
    breakdown: Breakdown
    periods: list[Period]
    values: dict  # {raw value: label} of the breakdown, in order ({None: ""} for none)
    data: dict  # {measure key: {(period start, raw value): number}}
    measures: list[Measure]  # the figures shown for this breakdown
    generated_at: datetime

    @property
    def measure(self) -> Measure:
        return self.subject.measure(self.query.measure)

    def _sum(self, key: str, period: date | None, value) -> int:
        cells = self.data.get(key, {})
        if period is not None and value is not ALL:
            return cells.get((period, value), 0)
        return sum(n for (p, v), n in cells.items()
                   if (period is None or p == period) and (value is ALL or v == value))

    def cell(self, measure: Measure, period: date | None = None, value=ALL):
        """The figure of ``measure`` in ``period`` (None: the whole range) for ``value``
        of the breakdown (ALL: every value). A share is None when nothing was offered."""
        if measure.ratio:
            numerator = self._sum(measure.ratio[0], period, value)
            denominator = self._sum(measure.ratio[1], period, value)
            return numerator / denominator if denominator else None
        return self._sum(measure.key, period, value)

    @property
    def period_text(self) -> str:
        return _("%(start)s to %(end)s", start=self.query.start.strftime("%Y/%m/%d"),
                 end=self.query.end.strftime("%Y/%m/%d"))


def _japan_day(parts) -> date:
    """The Japan day from the expressions of :meth:`_Sql.day` as read back."""
    if len(parts) == 2:  # SQLite: the UTC date, and 1 from 15:00 UTC on
        return date.fromisoformat(parts[0]) + timedelta(days=int(parts[1]))
    value = parts[0]
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _query(session, source: Source, measures: list[Measure], query: Query, breakdown: str):
    """ONE query over the rows of ``source`` in the range: per Japan day (and breakdown
    value), each measure's figure, NULL where no row matched its filter."""
    sql = _Sql(session)
    days = sql.day(source.date_column, source.is_date)
    groups = list(days)
    statement_from = source.table.__table__
    if breakdown != NONE:
        how = source.breakdowns[breakdown]
        if isinstance(how, tuple):
            column, joined, onclause = how
            statement_from = statement_from.join(joined.__table__, onclause)
        else:
            column = how
        groups.append(column)
    if source.is_date:
        where = [source.date_column >= query.start, source.date_column <= query.end]
    else:
        where = [source.date_column >= _midnight(query.start),
                 source.date_column < _midnight(query.end + timedelta(days=1))]
    filters = [and_(*m.where(sql)) if m.where else None for m in measures]
    if len(measures) == 1 and filters[0] is not None:
        where.append(filters[0])  # one measure: its filter restricts the rows
        filters = [None]
    figures = []
    for measure, condition in zip(measures, filters):
        amount = measure.amount() if measure.amount else None
        if condition is None:
            figures.append(func.sum(amount) if amount is not None else func.count())
        else:
            figures.append(func.sum(case((condition, amount if amount is not None
                                          else literal_column("1")))))
    if sql.undone is not None:
        statement_from = statement_from.outerjoin(
            sql.undone, sql.undone.c.reservation_id == BookingEvent.reservation_id)
    labels = ([g.label(f"g{i}") for i, g in enumerate(groups)]
              + [f.label(f"m{i}") for i, f in enumerate(figures)])
    statement = (select(*labels).select_from(statement_from).where(and_(*where))
                 .group_by(*groups))
    return len(days), session.execute(statement).all()


def report(session, query: Query, now: datetime, breakdown: str | None = None) -> Report:
    """The figures of ``query`` (or of the same query with another ``breakdown``): one
    GROUP BY query per source of the measures needed."""
    subject = query.subject_decl
    breakdown = breakdown or query.breakdown
    measures = [m for m in subject.measures if m.supports(subject, breakdown)]
    needed = {key for m in measures if m.ratio for key in m.ratio}
    by_source: dict = {}  # id(source) -> measures counted from it, in declared order
    for measure in subject.measures:
        if measure.ratio or (measure not in measures and measure.key not in needed):
            continue
        by_source.setdefault(id(measure.source), []).append(measure)
    data: dict = {m.key: {} for group in by_source.values() for m in group}
    raw_values: set = set()
    starts: dict = {}  # Japan day -> first day of its period
    for group in by_source.values():
        width, rows = _query(session, group[0].source, group, query, breakdown)
        for row in rows:
            day = _japan_day(row[:width])
            period = starts.get(day)
            if period is None:
                period = starts[day] = period_start(query.unit, day)
            value = row[width] if breakdown != NONE else None
            if value == "":
                value = None
            figures = row[width + (breakdown != NONE):]
            for measure, n in zip(group, figures):
                if n is None:  # no row of this day and value matched the measure
                    continue
                cells = data[measure.key]
                key = (period, value)
                cells[key] = cells.get(key, 0) + int(n)
                raw_values.add(value)
    decl = BREAKDOWNS[breakdown]
    values = decl.names(session, sorted(raw_values, key=lambda v: str(v or ""))) \
        if breakdown != NONE else {None: ""}
    return Report(query, subject, decl, periods(query.unit, query.start, query.end), values,
                  data, [m for m in measures if not m.hidden], now)


# --- the stock of cards at the end of a day ----------------------------------------------

@dataclass
class Stock:
    day: date
    by_state: list[tuple[str, str, int]]  # (state, label, cards)
    by_place: list[tuple[str, int]]  # (place code, cards)

    @property
    def total(self) -> int:
        return sum(n for _s, _l, n in self.by_state)


def _latest_events(session, end: datetime):
    """Each card's latest card_event before ``end`` (latest ``at``, then highest id), as
    a subquery of (to_state, storage_place_id)."""
    if session.get_bind().dialect.name == "postgresql":
        # one pass over the events in the order of the card, the first of each card
        return (select(CardEvent.to_state, CardEvent.storage_place_id)
                .where(CardEvent.at < end)
                .order_by(CardEvent.card_id, CardEvent.at.desc(), CardEvent.id.desc())
                .ext(distinct_on(CardEvent.card_id)).subquery())
    # SQLite: per card, one step into ix_card_event_card_at (card_id, at and the rowid in
    # that order, so ORDER BY at DESC, id DESC LIMIT 1 reads one entry of the index)
    latest = (select(CardEvent.id).where(CardEvent.card_id == Card.id, CardEvent.at < end)
              .order_by(CardEvent.at.desc(), CardEvent.id.desc()).limit(1)
              .correlate(Card).scalar_subquery())
    event = aliased(CardEvent, name="latest")
    return (select(event.to_state, event.storage_place_id)
            .select_from(Card).join(event, event.id == latest).subquery())


def stock(session, day: date) -> Stock:
    """The cards kept in the office at the end of ``day`` (Japan time), by state and by
    storage place: each card's latest card_event at or before that moment (one query)."""
    end = _midnight(day + timedelta(days=1))
    latest = _latest_events(session, end)
    rows = session.execute(
        select(latest.c.to_state, latest.c.storage_place_id, func.count())
        .where(latest.c.to_state.not_in(LEFT_THE_OFFICE))
        .group_by(latest.c.to_state, latest.c.storage_place_id)).all()
    states: dict = {}
    places: dict = {}
    for state, place_id, n in rows:
        states[state] = states.get(state, 0) + n
        places[place_id] = places.get(place_id, 0) + n
    ids = [p for p in places if p is not None]
    known = {row.id: (row.sort_key, row.code) for row in session.execute(
        select(StoragePlace.id, StoragePlace.sort_key, StoragePlace.code)
        .where(StoragePlace.id.in_(ids)))} if ids else {}
    by_place = [(known.get(p, (0, str(p)))[1], places[p])
                for p in sorted(ids, key=lambda p: known.get(p, (0, str(p))))]
    if None in places:
        by_place.append((str(_("No storage place recorded")), places[None]))
    by_state = [(s, card_states.state_label(s), states[s])
                for s in card_states.STATES if s in states]
    by_state += [(s, s, n) for s, n in states.items() if s not in card_states.STATES]
    return Stock(day, by_state, by_place)


# --- tables, CSV and XLSX ----------------------------------------------------------------

@dataclass
class Grid:
    """The table of the screen: rows are periods; columns are the figures (no breakdown),
    or the values of the breakdown for one figure and their total."""
    headers: list[str]
    columns: list[Measure]  # the figure of each column (how it is written)
    rows: list[tuple[Period, list]]
    totals: list


def grid(rep: Report) -> Grid:
    if rep.breakdown.key == NONE:
        columns = list(rep.measures)
        return Grid([str(m.label) for m in columns], columns,
                    [(p, [rep.cell(m, p.start) for m in columns]) for p in rep.periods],
                    [rep.cell(m) for m in columns])
    measure = rep.measure
    values = list(rep.values)
    columns = [measure] * (len(values) + 1)
    return Grid(list(rep.values.values()) + [str(_("Total"))], columns,
                [(p, [rep.cell(measure, p.start, v) for v in values]
                  + [rep.cell(measure, p.start)]) for p in rep.periods],
                [rep.cell(measure, None, v) for v in values] + [rep.cell(measure)])


def chart_series(rep: Report) -> tuple[list[str], list[tuple[str, list]], bool]:
    """(period labels, [(series label, one value per period)], is a share) of the chosen
    figure: one series, or one per value of the breakdown."""
    measure = rep.measure
    categories = [p.label for p in rep.periods]
    if rep.breakdown.key == NONE:
        series = [(str(measure.label), [rep.cell(measure, p.start) for p in rep.periods])]
    else:
        series = [(label, [rep.cell(measure, p.start, v) for p in rep.periods])
                  for v, label in rep.values.items()]
    return categories, series, measure.kind == PERCENT


def format_value(measure: Measure, value) -> str:
    """A figure as the screen shows it: 1,234 / ¥1,234 / 85.7%."""
    if value is None:
        return "—"
    if measure.kind == PERCENT:
        return f"{value * 100:.1f}%"
    if measure.kind == YEN:
        return _("%(amount)s yen", amount=f"{value:,}")
    return f"{value:,}"


def _header(measure: Measure) -> str:
    return f"{measure.label} (%)" if measure.kind == PERCENT else str(measure.label)


def _number(measure: Measure, value):
    """A figure as a file holds it: a number (a share in percent, one decimal)."""
    if value is None:
        return ""
    if measure.kind == PERCENT:
        return round(value * 100, 1)
    return value


def long_rows(rep: Report) -> tuple[list[str], list[list]]:
    """Headers and rows of a report in long form: one row per period (and breakdown
    value), one column per figure; a total row (per value) at the end."""
    with_value = rep.breakdown.key != NONE
    headers = [str(_("Period")), str(_("First day")), str(_("Last day"))]
    if with_value:
        headers.append(str(rep.breakdown.label))
    headers += [_header(m) for m in rep.measures]
    rows = []
    for period in rep.periods:
        for value, label in rep.values.items():
            row = [period.label, period.start, period.end]
            if with_value:
                row.append(label)
            rows.append(row + [_number(m, rep.cell(m, period.start, value if with_value
                                                      else ALL)) for m in rep.measures])
    for value, label in rep.values.items():
        row = [str(_("Total")), rep.query.start, rep.query.end]
        if with_value:
            row.append(label)
        rows.append(row + [_number(m, rep.cell(m, None, value if with_value else ALL))
                           for m in rep.measures])
    return headers, rows


def _title_rows(rep: Report) -> list[list]:
    q = rep.query
    return [[str(_("Statistics")), str(rep.subject.label)],
            [str(_("Period")), rep.period_text, str(_("Unit")), str(UNIT_LABELS[q.unit]),
             str(_("Breakdown")), str(rep.breakdown.label)],
            [str(_("Output at")), rep.generated_at.astimezone(JST).strftime("%Y/%m/%d %H:%M")]]


def csv_bytes(rep: Report) -> bytes:
    """The report as CSV for Excel: UTF-8 with BOM, CRLF, Japanese headers; the subject,
    period and time of output in the first rows."""
    stream = io.StringIO()
    writer = spreadsheet.csv_writer(stream)
    for row in _title_rows(rep):
        writer.writerow(row)
    writer.writerow([])
    headers, rows = long_rows(rep)
    writer.writerow(headers)
    for row in rows:
        writer.writerow([v.isoformat() if isinstance(v, date) else v for v in row])
    return ("\ufeff" + stream.getvalue()).encode("utf-8")


def xlsx_bytes(session, query: Query, now: datetime) -> tuple[bytes, int]:
    """The report as XLSX: one sheet per breakdown the subject offers (and the stock of
    cards), each with the subject, period and time of output in its first rows; figures
    as numbers. Returns the file and the number of data rows."""
    import xlsxwriter

    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    bold = book.add_format({"bold": True})
    day_format = book.add_format({"num_format": "yyyy/mm/dd"})
    formats = {YEN: book.add_format({"num_format": "#,##0"}),
               PERCENT: book.add_format({"num_format": "0.0"}), COUNT: None}
    write = spreadsheet.xlsx_write_row
    total_rows = 0
    subject = query.subject_decl
    for key in subject.breakdowns:
        rep = report(session, query, now, breakdown=key)
        name = (str(_("Totals")) if key == NONE
                else _("By %(breakdown)s", breakdown=BREAKDOWNS[key].label))
        sheet = book.add_worksheet(name[:31])
        for i, row in enumerate(_title_rows(rep)):
            write(sheet, i, row, cell_format=bold if i == 0 else None)
        headers, rows = long_rows(rep)
        write(sheet, 4, headers, cell_format=bold)
        first_figure = len(headers) - len(rep.measures)
        for i, row in enumerate(rows, start=5):
            write(sheet, i, row[:first_figure], date_format=day_format)
            for col, (measure, value) in enumerate(zip(rep.measures, row[first_figure:]),
                                                   start=first_figure):
                if value == "":
                    sheet.write_blank(i, col, None)
                else:
                    sheet.write_number(i, col, value, formats[measure.kind])
        total_rows += len(rows)
        sheet.set_column(0, 0, 22)
        sheet.set_column(1, 2, 11)
        sheet.set_column(3, len(headers), 14)
    if subject.has_stock and query.stock_day:
        held = stock(session, query.stock_day)
        sheet = book.add_worksheet(str(_("Stock"))[:31])
        write(sheet, 0, [str(_("Stock of cards at the end of %(day)s",
                               day=held.day.strftime("%Y/%m/%d")))], cell_format=bold)
        write(sheet, 1, [str(_("Output at")), now.astimezone(JST).strftime("%Y/%m/%d %H:%M")])
        write(sheet, 3, [str(_("State")), str(_("Number of cards"))], cell_format=bold)
        row = 4
        for _state, label, n in held.by_state:
            write(sheet, row, [label, n])
            row += 1
        write(sheet, row, [str(_("Total")), held.total], cell_format=bold)
        row += 2
        write(sheet, row, [str(_("Storage place")), str(_("Number of cards"))], cell_format=bold)
        for code, n in held.by_place:
            row += 1
            write(sheet, row, [code, n])
        sheet.set_column(0, 0, 24)
    book.close()
    return buffer.getvalue(), total_rows


def record_download(session, query: Query, file_format: str, rows: int, *,
                    encrypted: bool = False) -> None:
    """Every download of figures is in the audit trail with its subject, period and
    breakdown, and whether it left as an encrypted ZIP (figures hold no personal data:
    the office's encryption policy never refuses them, export_policy.EXPORTS)."""
    with unit.transaction(session):
        export_policy.require(session, "statistics", encrypted)
        audit.record_in_transaction(session, audit.ACTION_EXPORT, None, None, {
            "what": "statistics", "subject": query.subject, "unit": query.unit,
            "start": query.start.isoformat(), "end": query.end.isoformat(),
            "breakdown": query.breakdown, "format": file_format, "rows": rows,
            "encrypted": encrypted})

