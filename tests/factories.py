"""Small builders for test data: no hand-built rows in tests."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta

ROLE_KEYS = {
    "sysadmin": "ROLE_SYSADMIN",
    "manager": "ROLE_MANAGER",
    "clerk": "ROLE_CLERK",
    "viewer": "ROLE_VIEWER",
}


class FakeClock:
    """An injectable clock: app.config["CLOCK"]."""

    def __init__(self, value: datetime):
        self.value = value

    def __call__(self) -> datetime:
        return self.value

    def set(self, value: datetime) -> None:
        self.value = value

    def advance(self, **delta) -> None:
        self.value = self.value + timedelta(**delta)


class UserFactory:
    password = "Testpass2026ok"
    _seq = itertools.count(1)

    def __init__(self, app):
        self.app = app

    def role_name(self, role: str) -> str:
        return self.app.config[ROLE_KEYS[role]]

    def create(self, role: str, username: str | None = None):
        from app.services.accounts import create_user

        username = username or f"{role}{next(self._seq)}"
        with self.app.app_context():
            user = create_user(username, self.password, [self.role_name(role)], "太郎",
                               "試験", f"{username}@example.jp")
            user_id = user.id
        return _UserRef(user_id, username)


class _UserRef:
    def __init__(self, user_id: int, username: str):
        self.id = user_id
        self.username = username


def make_notice(session, now: datetime, **overrides):
    from app.models.notice import AUDIENCE_BOTH, Notice

    values = {"title": "テストのお知らせ", "body": "本文", "audience": AUDIENCE_BOTH,
              "importance": 0, "starts_at": now - timedelta(hours=1), "ends_at": None}
    values.update(overrides)
    notice = Notice(**values)
    session.add(notice)
    session.commit()
    return notice


_card_seq = itertools.count(1)


def card_fields(**overrides) -> dict:
    """Valid ledger fields for a new card (unique IDs each call)."""
    from datetime import date

    n = next(_card_seq)
    fields = {
        "application_id": f"{n:023d}",
        "shipment_number": "S2026120001",
        "manufacture_number": f"MN{n:014d}",
        "name": "山田　太郎", "name_kana": "ヤマダ　タロウ",
        "postal_code": "123-4567", "address": "みどり市中央1-2-3",
        "birth_date": date(1980, 3, 1), "has_sign_cert": True, "has_auth_cert": True,
        "visit_mode": "K",
    }
    fields.update(overrides)
    return fields


def make_storage(session, code="金庫A-棚1-箱01", capacity=100, sort_key=1):
    from app.models.storage import StoragePlace

    place = StoragePlace(code=code, capacity=capacity, sort_key=sort_key, active=True)
    session.add(place)
    session.commit()
    return place


def make_card(session, state=None, held_from=None, **overrides):
    """A card in the ledger; ``state`` puts it straight into a state (test set-up only)."""
    from app.services.cards import new_card

    card = new_card(session, card_fields(**overrides))
    if state is not None:
        card.state = state
        card.held_from = held_from
    session.commit()
    return card


def make_offer(session, venue="市役所本庁舎 1階 市民課", purpose_code="kofu", weekdays=range(5),
               starts="09:00", ends="17:00", minutes=30, seats=2, opens_days_ahead=45,
               closes_minutes_before=3 * 24 * 60, last_start=None, max_party=4):
    """A venue offering a purpose on a weekly pattern (Mon-Fri by default), with its slots
    made ahead as the settings screens make them (calendar.materialise_slots)."""
    from datetime import time

    from app.models.venue import Purpose, Venue, VenuePurpose, WeeklyRule

    def hhmm(value):
        return time(*map(int, value.split(":")))

    place = session.query(Venue).filter_by(name=venue).first() or Venue(name=venue,
                                                                        address="みどり市中央1-1-1")
    purpose = session.query(Purpose).filter_by(code=purpose_code).first() or Purpose(
        code=purpose_code, name={"kofu": "マイナンバーカードの受け取り"}.get(purpose_code, purpose_code),
        needs_postcard=purpose_code == "kofu")
    offer = VenuePurpose(venue=place, purpose=purpose, opens_days_ahead=opens_days_ahead,
                         closes_minutes_before=closes_minutes_before,
                         last_start=hhmm(last_start) if last_start else None, max_party=max_party)
    for weekday in weekdays:
        offer.rules.append(WeeklyRule(weekday=weekday, starts=hhmm(starts), ends=hhmm(ends),
                                      slot_minutes=minutes, seats=seats))
    session.add(offer)
    session.commit()
    from app.services.calendar import materialise_slots

    materialise_slots(session, offers=[offer])  # as saving the settings screen does
    return offer


def make_staff_booking(app, session, day=None, slot_index=3):
    """A one-seat 申請 booking taken by staff (no postcard) on 2026-12-01 10:30 by default:
    its venue and purpose made by make_offer."""
    from datetime import date

    from app.services import booking
    from app.services.calendar import ensure_slots

    day = day or date(2026, 12, 1)
    offer = make_offer(session, purpose_code="shinsei", seats=2)
    with app.test_request_context():
        slot = ensure_slots(session, offer, day, day)[slot_index]
        session.commit()
        return booking.book(session, slot, None, date(1980, 3, 1),
                            booking.Contact(phone="0312345678"), seats=1, staff=True)


_intake_seq = itertools.count(1)


def make_intake(session, venue=None, **overrides):
    """An application taken at the counter (申請受付), straight into the table (test set-up
    only: the intake service checks what a clerk types). Its 申請書ID starts with 9 so it
    never meets a card_fields() ID unless a test gives both the same one."""
    from datetime import date, datetime

    from app.clock import JST
    from app.models.intake import Intake
    from app.models.venue import Venue

    if venue is None:
        venue = session.query(Venue).filter_by(name="市役所本庁舎 1階 市民課").first() or Venue(
            name="市役所本庁舎 1階 市民課", address="みどり市中央1-1-1")
    n = next(_intake_seq)
    values = dict(application_id=f"9{n:022d}", method="counter", kind="new",
                  visit_mode="K", name="佐藤　花子", name_kana="サトウ　ハナコ",
                  birth_date=date(1985, 6, 15), postal_code="123-4567",
                  address="みどり市中央2-3-4", phone="090-1234-5678", wants_sign_cert=True,
                  wants_auth_cert=True, clerk="clerk", venue=venue,
                  taken_at=datetime(2026, 12, 1, 10, 0, tzinfo=JST), state="accepted",
                  fee_state="none")
    values.update(overrides)
    intake = Intake(**values)
    session.add(intake)
    session.commit()
    return intake
