"""Booking races (issue 10): the same bookings changed from two processes at once.

Two app processes (as two gunicorn workers, or two servers on one database) load the same
bookings, wait for a common start, then fire their side of each pair at the same moment:
two moves of one booking to different times, a move and a cancel, a resident's move and a
clerk's. Printed: the pairs fired, how many operations went through or were refused, the
overbooked seats (bookings beyond a slot's seats; must be 0) and the drift of ``taken``
(slots whose counter differs from their bookings plus live holds; must be 0).

Run on DATABASE_URL (``make bench`` runs it on PostgreSQL) or a throwaway SQLite file.
"""
from __future__ import annotations

import multiprocessing
import os
import random
import tempfile
import time
from datetime import date, timedelta

PAIR_KINDS = ("double_change", "change_cancel", "resident_staff")


def make_pairs(reservations, slot_ids, seed: int) -> list:
    """For each booking, the two operations fired at once: (reservation id, ((op, slot), (op,
    slot))); ``op`` is move (resident), staff_move or cancel."""
    rng = random.Random(seed)
    pairs = []
    for index, (reservation_id, slot_id) in enumerate(reservations):
        a, b = rng.sample([s for s in slot_ids if s != slot_id], 2)
        kind = PAIR_KINDS[index % len(PAIR_KINDS)]
        second = {"double_change": ("move", b), "change_cancel": ("cancel", None),
                  "resident_staff": ("staff_move", b)}[kind]
        pairs.append((reservation_id, (("move", a), second)))
    return pairs


def one_side(database_url: str, instance_dir: str, pairs: list, side: int,
             ready) -> list[str]:
    """Runs in its own process: its own app, engine and connections."""
    from app import create_app
    from app.models.reservation import Reservation, Slot
    from app.services import booking
    from app.services.errors import ConcurrentChangeError, ReservationStateError

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "INSTANCE_DIR": instance_dir,
                      "TESTING": True})
    results = []
    with app.app_context():
        session = app.appbuilder.session
        # Each booking as a page shows it when loaded: kept detached, so that the commits of
        # earlier operations do not refresh it (a stale page stays stale).
        loaded = [(session.get(Reservation, rid), ops[side]) for rid, ops in pairs]
        session.expunge_all()
        session.rollback()
        # Both processes have loaded their (stale) pages before either changes anything,
        # however long one took to start on a loaded machine.
        ready.wait(timeout=300)
        for stale, (operation, target_id) in loaded:
            reservation = session.merge(stale, load=False)
            try:
                if operation == "cancel":
                    booking.cancel(session, reservation, reason="race", staff=True)
                else:
                    booking.change_slot(session, reservation, session.get(Slot, target_id),
                                        staff=operation == "staff_move")
                results.append("ok")
            except (ReservationStateError, booking.SlotFullError, ConcurrentChangeError):
                results.append("refused")
            except Exception as error:  # noqa: BLE001 - counted and shown, never hidden
                session.rollback()
                results.append(f"error {type(error).__name__}")
    return results


def race_in_processes(database_url: str, instance_dir: str, pairs: list) -> list[list[str]]:
    """Both sides of every pair from two processes; returns each side's outcomes."""
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, context.Pool(2) as pool:
        ready = manager.Barrier(2)
        return pool.starmap(one_side, [(database_url, instance_dir, pairs, side, ready)
                                       for side in (0, 1)])


def overbooked_seats(session) -> int:
    from sqlalchemy import func, select

    from app.models.reservation import HOLDING_SEATS, Reservation, Slot

    rows = session.execute(select(Slot.seats, func.sum(Reservation.seats))
                           .join(Reservation, Reservation.slot_id == Slot.id)
                           .where(Reservation.state.in_(HOLDING_SEATS))
                           .group_by(Slot.id, Slot.seats)).all()
    return sum(max(0, booked - seats) for seats, booked in rows)


def bench_races(rows, bookings: int = 60) -> None:
    from app import create_app
    from app.cli import init_database
    from app.models.venue import Purpose, Venue, VenuePurpose, WeeklyRule
    from app.services import booking
    from app.services.calendar import ensure_slots

    instance = tempfile.mkdtemp(prefix="mnc-bench-races-")
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{instance}/races.db"
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "INSTANCE_DIR": instance})
    with app.app_context():
        init_database()
        session = app.appbuilder.session
        venue = Venue(name="ベンチ会場", address="みどり市中央1-1-1")
        purpose = session.query(Purpose).filter_by(code="bench").first() or Purpose(
            code="bench", name="ベンチ", needs_postcard=False)
        offer = VenuePurpose(venue=venue, purpose=purpose, opens_days_ahead=60,
                             closes_minutes_before=0, max_party=4)
        from datetime import time as clock_time

        for weekday in range(7):
            offer.rules.append(WeeklyRule(weekday=weekday, starts=clock_time(9, 0),
                                          ends=clock_time(17, 0), slot_minutes=30, seats=5))
        session.add(offer)
        session.commit()
        day = date.today() + timedelta(days=7)
        while not (slots := ensure_slots(session, offer, day, day)):
            day += timedelta(days=1)  # past a holiday
        session.commit()
        made = []
        for n in range(bookings):
            slot = slots[n % len(slots)]
            reservation = booking.book(session, slot, None, date(1980, 1, 1),
                                       booking.Contact(f"090{n:08d}"), seats=1, staff=True)
            made.append((reservation.id, slot.id))
        pairs = make_pairs(made, [s.id for s in slots], seed=10)
        session.remove()
    started = time.perf_counter()
    sides = race_in_processes(url, instance, pairs)
    elapsed = time.perf_counter() - started  # with the two processes' start
    outcomes = [o for side in sides for o in side]
    with app.app_context():
        session = app.appbuilder.session
        drift = booking.seat_drift(session)
        over = overbooked_seats(session)
    database = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    errors = [o for o in outcomes if o.startswith("error")]
    rows.append((f"booking races, {database}",
                 f"{len(pairs)} pairs from 2 processes (double changes, change+cancel, "
                 f"resident+staff)",
                 f"{elapsed:.2f} s (with 2 process starts)",
                 f"ok {outcomes.count('ok')}, refused {outcomes.count('refused')}, "
                 f"errors {len(errors)}; overbooked seats {over}, taken drift {len(drift)}"))


if __name__ == "__main__":
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    result = []
    bench_races(result)
    for row in result:
        print(" | ".join(row))
