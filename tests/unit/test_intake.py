"""The intake service (申請受付): every field checked once, roles, compare-and-set refusals,
the card ledger's hooks, and the short MNC1 code registering with the intake's data."""
from datetime import date

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm.attributes import set_committed_value

from app.models.intake import Intake
from app.models.venue import Venue
from app.services import cards, handover, identity, intake, scan
from app.services.actors import CardActor
from app.services.errors import (BulkTransitionError, InputError, InvalidTransitionError,
                                 NotPermittedError)
from tests.factories import make_card, make_intake, make_storage

APP_ID = "12345678901234567890123"


@pytest.fixture
def ctx(app, db):
    with app.test_request_context():
        yield db


def _values(venue, **overrides):
    values = {"application_id": "１２３４５-６７８９０-１２３４５-６７８９０-１２３",
              "method": "counter", "kind": "new", "venue_id": venue.id, "visit_mode": "K",
              "name": "山田 花子", "name_kana": "やまだ はなこ", "birth_date": "S55.3.1",
              "identity_check": {"identity": "one_a", "collector": "self"}}
    values.update(overrides)
    return values


@pytest.fixture
def venue(db):
    place = Venue(name="市役所本庁舎 1階 市民課")
    db.add(place)
    db.commit()
    return place


def _clerk(app):
    return CardActor("madoguchi_u", frozenset({app.config["ROLE_CLERK"]}))


def test_create_checks_and_normalises(app, ctx, venue):
    item = intake.create_intake(ctx, _values(venue), actor=_clerk(app))
    assert item.application_id == APP_ID and item.name_kana == "ヤマダ　ハナコ"
    assert item.birth_date == date(1980, 3, 1) and item.clerk == "madoguchi_u"
    assert item.state == intake.ACCEPTED and item.taken_at is not None


@pytest.mark.parametrize("overrides,field", [
    ({"kind": "reissue"}, "reissue_reason"),
    ({"method": "outreach"}, "outreach_session_id"),
    ({"venue_id": None}, "venue_id"),
    ({"identity_check": {"identity": "one_a", "collector": "proxy"}}, "identity"),
    ({"identity_check": {}}, "identity"),
    ({"photo": "selfie"}, "photo"),
    ({"application_id": "123"}, "application_id"),
])
def test_each_rule_names_its_field_and_nothing_is_written(app, ctx, venue, overrides, field):
    with pytest.raises(intake.IntakeInputError) as refused:
        intake.create_intake(ctx, _values(venue, **overrides), actor=_clerk(app))
    assert field in refused.value.problems
    assert ctx.execute(select(Intake)).first() is None


def test_an_application_is_not_asked_for_the_pins():
    check = {"identity": "one_a", "collector": "self"}
    assert identity.checklist_problems(check, at_handover=False) == []
    assert len(identity.checklist_problems(check)) == 1  # the hand-over asks for the PINs
    assert handover.checklist_problems is identity.checklist_problems


def test_a_reason_is_kept_only_for_a_reissue(app, ctx, venue):
    item = intake.create_intake(ctx, _values(venue, reissue_reason="lost"), actor=_clerk(app))
    assert item.reissue_reason is None
    again = intake.create_intake(ctx, _values(venue, application_id="1" * 23, kind="reissue",
                                              reissue_reason="lost"), actor=_clerk(app))
    assert again.reissue_reason == "lost"


def test_the_same_application_id_is_refused(app, ctx, venue):
    make_intake(ctx, venue=venue, application_id=APP_ID)
    with pytest.raises(intake.IntakeInputError) as refused:
        intake.create_intake(ctx, _values(venue), actor=_clerk(app))
    assert "application_id" in refused.value.problems


def test_a_viewer_may_not_take_withdraw_or_send(app, ctx, venue):
    item = make_intake(ctx, venue=venue)
    viewer = CardActor("etsuran", frozenset({app.config["ROLE_VIEWER"]}))
    with pytest.raises(NotPermittedError):
        intake.create_intake(ctx, _values(venue), actor=viewer)
    with pytest.raises(NotPermittedError):
        intake.withdraw(ctx, item, "本人の申し出", actor=viewer)
    with pytest.raises(NotPermittedError):
        intake.mark_sent(ctx, [item.id], actor=viewer)


def test_withdraw_is_a_compare_and_set(app, ctx, venue):
    item = make_intake(ctx, venue=venue)
    with pytest.raises(InputError):
        intake.withdraw(ctx, item, "  ", actor=_clerk(app))
    # someone else handed its card over meanwhile: the state read is stale
    ctx.execute(update(Intake).where(Intake.id == item.id).values(state="handed_over"))
    ctx.commit()
    set_committed_value(item, "state", "accepted")  # what this clerk's screen still read
    with pytest.raises(InvalidTransitionError):
        intake.withdraw(ctx, item, "本人の申し出", actor=_clerk(app))
    ctx.expire_all()
    assert ctx.get(Intake, item.id).state == "handed_over"
    handed = ctx.get(Intake, item.id)
    with pytest.raises(InvalidTransitionError):
        intake.withdraw(ctx, handed, "本人の申し出", actor=_clerk(app))


def test_mark_sent_is_all_or_nothing_and_a_lost_race_writes_nothing(app, ctx, venue):
    first, second = make_intake(ctx, venue=venue), make_intake(ctx, venue=venue)
    ctx.execute(update(Intake).where(Intake.id == second.id).values(state="sent"))
    ctx.commit()
    set_committed_value(second, "state", "accepted")  # stale: the compare-and-set notices
    with pytest.raises(BulkTransitionError):
        intake.mark_sent(ctx, [first.id, second.id], actor=_clerk(app))
    ctx.expire_all()
    assert ctx.get(Intake, first.id).state == "accepted"
    done = intake.mark_sent(ctx, [first.id], actor=_clerk(app))
    assert [i.state for i in done] == ["sent"]


def test_the_ledger_moves_the_intake(app, ctx, venue):
    make_storage(ctx)
    item = make_intake(ctx, venue=venue, application_id=APP_ID)
    card = make_card(ctx, application_id=APP_ID, state=cards.SETUP)
    ctx.expire_all()
    assert ctx.get(Intake, item.id).state == "sent"  # the card arrived
    cards.transition_card(ctx, card, cards.NOTICE_SENT, actor=cards.SYSTEM)
    handover.hand_over(ctx, card, {"identity": "one_a", "pin_set": "1"}, actor=cards.SYSTEM)
    ctx.expire_all()
    assert ctx.get(Intake, item.id).state == "handed_over"
    with pytest.raises(InvalidTransitionError):
        intake.withdraw(ctx, ctx.get(Intake, item.id), "本人の申し出", actor=_clerk(app))


def test_a_card_without_an_intake_changes_nothing_and_a_withdrawn_one_stays(app, ctx, venue):
    make_storage(ctx)
    gone = make_intake(ctx, venue=venue, application_id=APP_ID, state="withdrawn",
                       withdraw_reason="取下げ")
    make_card(ctx)  # another 申請書ID
    make_card(ctx, application_id=APP_ID)
    ctx.expire_all()
    assert ctx.get(Intake, gone.id).state == "withdrawn"


def test_an_intake_taken_after_its_card_starts_as_sent(app, ctx, venue):
    make_storage(ctx)
    make_card(ctx, application_id=APP_ID)
    item = intake.create_intake(ctx, _values(venue), actor=_clerk(app))
    assert item.state == "sent"


def test_a_short_code_registers_with_the_intakes_data(app, ctx, venue):
    make_storage(ctx)
    short = f"MNC1|{APP_ID}|JL1|AB12CD34EF56GH78|S"
    batch = scan.open_batch(ctx)
    assert scan.add_payload(ctx, batch, short).status == "incomplete"  # no application yet
    make_intake(ctx, venue=venue, application_id=APP_ID, wants_sign_cert=False)
    scan.recheck(ctx, batch)
    assert batch.items[0].status == "ok"
    [card] = scan.register_batch(ctx, batch)
    assert (card.name, card.name_kana, card.birth_date) == ("佐藤　花子", "サトウ　ハナコ",
                                                            date(1985, 6, 15))
    assert card.has_sign_cert is False and card.has_auth_cert is True
    assert card.postal_code == "123-4567" and card.visit_mode == "S"
    ctx.expire_all()
    assert ctx.execute(select(Intake.state)).scalar() == "sent"


def test_a_withdrawn_intake_gives_no_personal_data(ctx, venue):
    make_intake(ctx, venue=venue, application_id=APP_ID, state="withdrawn",
                withdraw_reason="取下げ")
    assert intake.personal_data_for(ctx, APP_ID) is None


def test_prefill_from_a_booking(app, ctx):
    from tests.factories import make_staff_booking

    reservation = make_staff_booking(app, ctx)
    values = intake.prefill_from_reservation(reservation)
    assert values["kind"] == "new" and values["birth_date"] == "1980-03-01"
    assert values["venue_id"] == reservation.offer.venue_id
    assert values["reservation_id"] == reservation.id
    assert intake.leads_to_intake(reservation)


def test_intakes_today_per_venue(ctx, venue):
    from datetime import datetime

    from app.clock import JST

    make_intake(ctx, venue=venue)
    make_intake(ctx, venue=venue)
    make_intake(ctx, venue=venue, taken_at=datetime(2026, 11, 30, 16, 0, tzinfo=JST))
    assert intake.intakes_today(ctx, date(2026, 12, 1)) == {venue.name: 2}
