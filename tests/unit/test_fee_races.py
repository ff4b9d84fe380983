"""Receipt numbers under load (issue 13 §2): clerks taking money at the same moment get
gapless, unique numbers 1..N of the 年度 (the counter row's lock serialises them, a
rollback gives a number back). Threads, each with its own connection, on PostgreSQL."""
import threading
from datetime import datetime

import pytest
from sqlalchemy import select

from app.clock import JST
from app.models.fee import FeeEntry
from app.models.intake import Intake
from app.services import fees
from app.services.cards import SYSTEM
from app.services.errors import ConcurrentChangeError
from tests.factories import make_intake
from tests.unit.test_fees import seed_fees

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=JST)
CLERKS = 8


def test_concurrent_payments_get_gapless_unique_receipt_numbers(app, db, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("runs on PostgreSQL (make test runs the suite there too)")
    seed_fees(db)
    intakes = [make_intake(db, kind="reissue", reissue_reason="lost") for _ in range(CLERKS * 3)]
    for intake in intakes:
        fees.charge(db, intake, actor=SYSTEM, venue_id=intake.venue_id, now=NOW)
    ids = [i.id for i in intakes]
    venue_id = intakes[0].venue_id
    ready = threading.Barrier(CLERKS, timeout=30)
    failures = []

    def clerk(mine):
        with app.app_context():
            session = app.appbuilder.session
            try:
                ready.wait()
                for intake_id in mine:
                    for _attempt in range(20):
                        try:
                            intake = session.get(Intake, intake_id)
                            fees.pay(session, intake, actor=SYSTEM, venue_id=venue_id,
                                     now=NOW, tendered=1000)
                            break
                        except ConcurrentChangeError:
                            session.rollback()
                    else:
                        failures.append(intake_id)
            except Exception as error:  # noqa: BLE001 - reported by the assertion
                failures.append(repr(error))
            finally:
                session.remove()

    threads = [threading.Thread(target=clerk, args=(ids[n::CLERKS],)) for n in range(CLERKS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    db.expire_all()
    numbers = db.execute(select(FeeEntry.receipt_seq).where(
        FeeEntry.entry_type == "payment").order_by(FeeEntry.receipt_seq)).scalars().all()
    assert numbers == list(range(1, len(ids) + 1))


def test_a_payment_and_the_close_of_its_day_never_both_win(app, db, database_url):
    """Close the day while a payment of that day runs: either the payment is in the
    closed day's count, or it is refused as a closed day; never a payment after the count."""
    if not database_url.startswith("postgresql"):
        pytest.skip("runs on PostgreSQL (make test runs the suite there too)")
    seed_fees(db)
    intake = make_intake(db, kind="reissue", reissue_reason="lost")
    fees.charge(db, intake, actor=SYSTEM, venue_id=intake.venue_id, now=NOW)
    intake_id, venue_id = intake.id, intake.venue_id
    ready = threading.Barrier(2, timeout=30)
    outcome = {}

    def run(name, operation):
        with app.app_context():
            session = app.appbuilder.session
            try:
                ready.wait()
                operation(session)
                outcome[name] = "done"
            except Exception as error:  # noqa: BLE001
                session.rollback()
                outcome[name] = type(error).__name__
            finally:
                session.remove()

    def pay(session):
        fees.pay(session, session.get(Intake, intake_id), actor=SYSTEM, venue_id=venue_id,
                 now=NOW, tendered=1000)

    def close(session):
        fees.close_day(session, venue_id=venue_id, clerk="system", day=NOW.date(),
                       counted_cash=1000, explanation="検証", actor=SYSTEM, now=NOW)

    threads = [threading.Thread(target=run, args=a) for a in (("pay", pay), ("close", close))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    db.expire_all()
    assert outcome["close"] == "done"
    from app.models.fee import DailyClose

    closed = db.execute(select(DailyClose)).scalar_one()
    if outcome["pay"] == "done":
        assert closed.expected_cash == 1000 and closed.difference == 0
    else:
        assert outcome["pay"] == "DayClosedError" and closed.expected_cash == 0
