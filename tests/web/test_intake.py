"""Application intake screens (申請受付): a message at each wrong field with nothing saved,
the checklist, the card's state on the intake and the intake on the card, withdrawal,
the bulk 送付済, outreach sessions and their printed list, the desk leading to a new
intake and back, audit records naming the clerk, GETs that never write."""
import pytest
from sqlalchemy import select

from app.clock import JST
from app.models.audit import AuditLog
from app.models.intake import Intake, OutreachSession
from app.models.venue import Venue
from tests.conftest import text_of
from tests.factories import make_card, make_intake, make_storage

APP_ID = "12345678901234567890123"


@pytest.fixture
def venue(db):
    place = Venue(name="市役所本庁舎 1階 市民課", address="みどり市中央1-1-1")
    db.add(place)
    db.commit()
    return place


def _form(venue, **overrides):
    data = {"application_id": "１２３４５ ６７８９０-１２３４５ ６７８９０ １２３",
            "method": "counter", "venue_id": str(venue.id), "kind": "new",
            "reissue_reason": "", "visit_mode": "K", "name": "山田 花子",
            "name_kana": "やまだ はなこ", "birth_date": "S55.3.1",
            "postal_code": "〒１２３－４５６７", "address": "みどり市中央1-2-3",
            "phone": "０９０-１２３４-５６７８", "wants_sign_cert": "y", "wants_auth_cert": "y",
            "photo": "taken", "identity": "one_a", "collector": "self", "notes": ""}
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def test_add_normalises_input_and_names_the_clerk(login_as, db, venue):
    client = login_as("clerk", username="madoguchi_a")
    response = client.post("/intakemodelview/add", data=_form(venue))
    item = db.execute(select(Intake)).scalar_one()
    assert response.headers["Location"].endswith(f"/intakemodelview/show/{item.id}")
    assert item.application_id == APP_ID and item.name == "山田　花子"
    assert item.name_kana == "ヤマダ　ハナコ" and item.birth_date.isoformat() == "1980-03-01"
    assert item.postal_code == "123-4567" and item.phone == "09012345678"
    assert item.clerk == "madoguchi_a" and item.state == "accepted"
    assert item.venue_id == venue.id and item.photo == "taken"
    assert '"identity": "one_a"' in item.identity_check and "pin_set" not in item.identity_check
    row = db.execute(select(AuditLog).where(AuditLog.target_table == "intake")).scalar_one()
    assert row.action == "create" and row.username == "madoguchi_a"


@pytest.mark.parametrize("field,value,message", [
    ("application_id", "1234", "申請書IDは23桁の数字で入力してください"),
    ("name", "", "氏名を入力してください"),
    ("name_kana", "yamada", "カタカナ"),
    ("birth_date", "2099-01-01", "生年月日が未来の日付です"),
    ("birth_date", "S55.2.30", "存在しない日付です"),
    ("postal_code", "12-34", "7桁で入力してください"),
    ("phone", "12345", "電話番号"),
    ("kind", "reissue", "再交付の理由を選んでください"),
    ("method", "outreach", "出張申請の実施日を選んでください"),
    ("venue_id", "", "受け付けた会場を選んでください"),
    ("identity", "", "本人確認書類"),
    ("collector", "proxy", "代理人"),
    ("method", "bogus", "申請方法を選んでください"),
    ("taken_at", "昨日", "2026-12-01 10:30 のように"),
    ("taken_at", "2026-12-24 10:00", "未来の日時にはできません"),
])
def test_each_wrong_field_gets_its_message_and_nothing_is_saved(
        login_as, db, venue, field, value, message):
    response = login_as("clerk").post("/intakemodelview/add",
                                      data=_form(venue, **{field: value}))
    assert response.status_code == 200  # the form again, the message at its field
    assert message in text_of(response)
    assert db.execute(select(Intake)).first() is None


def test_an_application_id_is_taken_once(login_as, db, venue):
    make_intake(db, venue=venue, application_id=APP_ID)
    response = login_as("clerk").post("/intakemodelview/add", data=_form(venue))
    assert "この申請書IDの申請受付は既に登録されています" in text_of(response)
    assert db.query(Intake).count() == 1


def test_the_card_and_the_intake_show_each_other(login_as, db, venue):
    make_storage(db)
    item = make_intake(db, venue=venue, application_id=APP_ID)
    client = login_as("clerk")
    before = text_of(client.get(f"/intakemodelview/show/{item.id}"))
    assert "未納品" in before
    card = make_card(db, application_id=APP_ID)
    db.refresh(item)
    assert item.state == "sent"  # the card's arrival
    page = client.get(f"/intakemodelview/show/{item.id}").get_data(as_text=True)
    assert f"/cardmodelview/show/{card.id}" in page and "納品" in page
    card_page = client.get(f"/cardmodelview/show/{card.id}").get_data(as_text=True)
    assert f"/intakemodelview/show/{item.id}" in card_page and "送付済" in card_page


def test_withdraw_needs_a_reason_and_names_the_clerk(login_as, db, venue):
    item = make_intake(db, venue=venue)
    client = login_as("clerk", username="madoguchi_b")
    refused = client.post(f"/intakemodelview/withdraw/{item.id}", data={"reason": " "},
                          follow_redirects=True)
    assert "取下げの理由を書いてください" in text_of(refused)
    db.refresh(item)
    assert item.state == "accepted"
    client.post(f"/intakemodelview/withdraw/{item.id}", data={"reason": "本人の申し出"})
    db.refresh(item)
    assert item.state == "withdrawn" and item.withdraw_reason == "本人の申し出"
    row = db.execute(select(AuditLog).where(AuditLog.target_table == "intake",
                                            AuditLog.action == "update")
                     .order_by(AuditLog.id)).scalars().all()[-1]
    assert row.username == "madoguchi_b"


def test_mark_sent_is_all_or_nothing(login_as, db, venue):
    first = make_intake(db, venue=venue)
    gone = make_intake(db, venue=venue, state="withdrawn", withdraw_reason="取下げ")
    client = login_as("clerk")
    response = client.post("/intakemodelview/action_post",
                           data={"action": "mark_sent", "rowid": [first.id, gone.id]},
                           follow_redirects=True)
    assert "送付済にできません" in text_of(response)
    db.refresh(first)
    assert first.state == "accepted"
    client.post("/intakemodelview/action_post", data={"action": "mark_sent",
                                                      "rowid": [first.id]})
    db.refresh(first)
    assert first.state == "sent" and first.sent_at is not None


def test_viewer_reads_but_cannot_add_withdraw_or_print(login_as, db, venue):
    item = make_intake(db, venue=venue)
    outreach = OutreachSession(day=item.taken_at.date(), site_kind="school", site_name="第一小学校")
    db.add(outreach)
    db.commit()
    client = login_as("viewer")
    assert client.get("/intakemodelview/list/").status_code == 200
    assert client.get(f"/intakemodelview/show/{item.id}").status_code == 200
    assert client.get("/intakemodelview/add").status_code == 403
    client.post(f"/intakemodelview/withdraw/{item.id}", data={"reason": "x"})
    db.refresh(item)
    assert item.state == "accepted"
    assert client.get(f"/outreachsessionmodelview/print/{outreach.id}").status_code == 403


def test_gets_never_write(login_as, db, venue, no_writes):
    make_intake(db, venue=venue)
    client = login_as("clerk")
    with no_writes("the intake list"):
        assert client.get("/intakemodelview/list/").status_code == 200
    with no_writes("the add form"):
        assert client.get(f"/intakemodelview/add?venue={venue.id}").status_code == 200
    with no_writes("the sessions list"):
        assert client.get("/outreachsessionmodelview/list/").status_code == 200


def test_outreach_session_lists_its_intakes_and_prints(login_as, db, venue):
    client = login_as("clerk", username="madoguchi_c")
    refused = client.post("/outreachsessionmodelview/add",
                          data={"day": "2026-12-40", "site_kind": "school", "site_name": ""})
    assert "存在しない日付です" in text_of(refused) and "この欄は必ず入力してください" in text_of(refused)
    assert db.query(OutreachSession).count() == 0
    client.post("/outreachsessionmodelview/add",
                data={"day": "R8.12.3", "site_kind": "school", "site_name": "第一小学校",
                      "address": "みどり市北野1-1", "staff": "佐藤、鈴木"})
    outreach = db.execute(select(OutreachSession)).scalar_one()
    assert outreach.day.isoformat() == "2026-12-03"
    form = client.get(f"/intakemodelview/add?outreach_session={outreach.id}")
    assert f'<option selected value="{outreach.id}">' in form.get_data(as_text=True)
    client.post("/intakemodelview/add", data=_form(venue, method="outreach", venue_id="",
                                                   outreach_session_id=str(outreach.id)))
    item = db.execute(select(Intake)).scalar_one()
    assert item.outreach_session_id == outreach.id
    page = text_of(client.get(f"/outreachsessionmodelview/show/{outreach.id}"))
    assert item.application_id in page
    printed = client.get(f"/outreachsessionmodelview/print/{outreach.id}")
    body = printed.get_data(as_text=True)
    assert printed.status_code == 200 and item.application_id in body and "@page" in \
        client.get("/static/print.css").get_data(as_text=True)
    row = db.execute(select(AuditLog).where(AuditLog.action == "print",
                                            AuditLog.target_table == "outreach_session")
                     ).scalar_one()
    assert row.username == "madoguchi_c"


def test_edit_keeps_the_checklist_and_refuses_a_withdrawn_application(login_as, db, venue):
    client = login_as("clerk", username="madoguchi_d")
    client.post("/intakemodelview/add", data=_form(venue))
    item = db.execute(select(Intake)).scalar_one()
    form = client.get(f"/intakemodelview/edit/{item.id}").get_data(as_text=True)
    assert '<input checked id="identity-0" name="identity" type="radio" value="one_a">' in form
    client.post(f"/intakemodelview/edit/{item.id}", data=_form(venue, address="みどり市本町9-9"))
    db.refresh(item)
    assert item.address == "みどり市本町9-9" and item.clerk == "madoguchi_d"
    client.post(f"/intakemodelview/withdraw/{item.id}", data={"reason": "本人の申し出"})
    client.post(f"/intakemodelview/edit/{item.id}", data=_form(venue, address="別の住所"))
    db.refresh(item)
    assert item.address == "みどり市本町9-9"


def test_an_application_typed_in_later_keeps_when_it_was_taken(login_as, db, venue):
    """An outreach application typed in the next day: the time it was taken, not the time
    it was saved; an edit that leaves the field empty keeps it."""
    client = login_as("clerk", username="madoguchi_t")
    form = _form(venue)
    form["taken_at"] = "２０２６-１１-３０ １４:１５"  # full-width, as typed
    response = client.post("/intakemodelview/add", data=form)
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    saved = db.query(Intake).filter_by(application_id=APP_ID).one()
    assert saved.taken_at.astimezone(JST).strftime("%Y-%m-%d %H:%M") == "2026-11-30 14:15"
    edit = client.get(f"/intakemodelview/edit/{saved.id}").get_data(as_text=True)
    assert 'value="2026-11-30 14:15"' in edit
    form["taken_at"] = ""
    form["notes"] = "後日入力"
    assert client.post(f"/intakemodelview/edit/{saved.id}", data=form).status_code == 302
    db.expire_all()
    saved = db.get(Intake, saved.id)
    assert saved.notes == "後日入力"
    assert saved.taken_at.astimezone(JST).strftime("%Y-%m-%d %H:%M") == "2026-11-30 14:15"
