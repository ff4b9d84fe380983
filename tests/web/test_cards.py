"""The card ledger screens: validation at each field, bulk all-or-nothing, print data,
hand-over with the identity checklist, discard, storage, audit."""
import csv
import io
import json
import zipfile
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.models.audit import AuditLog
from app.models.card import Card, CardEvent
from app.services import cards as svc
from tests.conftest import text_of
from tests.factories import make_card, make_storage


def _form(**overrides):
    data = {"application_id": "１２３４５ ６７８９０-１２３４５ ６７８９０ １２３",
            "visit_mode": "K", "name": "山田 花子", "name_kana": "やまだ はなこ",
            "birth_date": "S55.3.1", "postal_code": "〒１２３－４５６７",
            "address": "みどり市中央1-2-3", "shipment_number": "jl2026-0001",
            "manufacture_number": "ab12cd34ef56gh78", "has_sign_cert": "y",
            "has_auth_cert": "y", "card_expires_on": "", "notes": ""}
    data.update(overrides)
    return data


@pytest.fixture
def place(db):
    return make_storage(db, code="金庫A-棚1-箱01", capacity=50)


def test_add_normalises_japanese_input_and_shelves_the_card(login_as, db, place):
    client = login_as("clerk", username="madoguchi_w")
    response = client.post("/cardmodelview/add", data=_form(), follow_redirects=True)
    assert response.status_code == 200
    card = db.execute(select(Card)).scalar_one()
    assert card.application_id == "12345678901234567890123"
    assert card.name_kana == "ヤマダ　ハナコ" and card.name == "山田　花子"
    assert card.birth_date.isoformat() == "1980-03-01"
    assert card.postal_code == "123-4567" and card.manufacture_number == "AB12CD34EF56GH78"
    assert card.shipment_number == "JL20260001"
    assert card.state == svc.RECEIVED and card.storage_place_id == place.id
    assert [e.to_state for e in card.events] == [svc.RECEIVED]
    row = db.execute(select(AuditLog).where(AuditLog.target_table == "card")).scalar_one()
    assert row.action == "create" and row.username == "madoguchi_w"


@pytest.mark.parametrize("field,value,message", [
    ("application_id", "1234", "申請書IDは23桁の数字で入力してください"),
    ("name_kana", "山田花子", "フリガナはカタカナ"),
    ("birth_date", "1980-02-30", "存在しない日付です"),
    ("birth_date", "2030-01-01", "生年月日が未来の日付です"),
    ("birth_date", "H31.5.1", "平成は終わっています"),
    ("postal_code", "12-34", "郵便番号は 123-4567 のように7桁"),
    ("manufacture_number", "ABC", "製造管理番号は英数字16桁"),
    ("name", "", "氏名を入力してください"),
])
def test_each_invalid_field_gets_a_japanese_message_and_nothing_is_saved(
        login_as, db, place, field, value, message):
    client = login_as("clerk")
    response = client.post("/cardmodelview/add", data=_form(**{field: value}))
    assert response.status_code == 200  # the form again, with the message at the field
    assert message in text_of(response)
    assert db.execute(select(Card)).first() is None


def test_duplicate_application_id_is_refused(login_as, db, place):
    make_card(db, application_id="12345678901234567890123")
    response = login_as("clerk").post("/cardmodelview/add", data=_form())
    assert "この申請書IDのカードは既にカード管理簿にあります" in text_of(response)
    assert db.query(Card).count() == 1


def test_edit_keeps_the_state_and_records_old_and_new(login_as, db, place):
    card = make_card(db, state=svc.SETUP)
    client = login_as("clerk")
    client.post(f"/cardmodelview/edit/{card.id}",
                data=_form(application_id=card.application_id,
                           manufacture_number=card.manufacture_number,
                           address="みどり市本町9-9"))
    db.refresh(card)
    assert card.address == "みどり市本町9-9" and card.state == svc.SETUP
    row = db.execute(select(AuditLog).where(AuditLog.action == "update",
                                            AuditLog.target_table == "card")).scalars().all()[-1]
    assert json.loads(row.changes)["address"]["new"] == "みどり市本町9-9"


def test_bulk_action_is_all_or_nothing_and_lists_the_refusals(login_as, db, place):
    ready = [make_card(db) for _ in range(2)]
    done = make_card(db, state=svc.HANDED_OVER)
    client = login_as("clerk")
    response = client.post("/cardmodelview/action_post", follow_redirects=True, data={
        "action": "to_setup", "rowid": [c.id for c in ready] + [done.id]})
    page = text_of(response)
    assert "変更できないカードがあるため、どのカードも変更していません" in page
    assert done.application_id in page and "交付済" in page
    assert {db.get(Card, c.id).state for c in ready} == {svc.RECEIVED}
    client.post("/cardmodelview/action_post",
                data={"action": "to_setup", "rowid": [c.id for c in ready]})
    db.expire_all()
    assert {db.get(Card, c.id).state for c in ready} == {svc.SETUP}


def test_notices_give_numbers_and_print_data_has_csv_and_readable_qr(login_as, db, place):
    from PIL import Image
    from pyzbar.pyzbar import decode

    batch = [make_card(db, state=svc.SETUP) for _ in range(3)]
    client = login_as("manager", username="kanri_p")
    client.post("/cardmodelview/action_post",
                data={"action": "to_notice_sent", "rowid": [c.id for c in batch]})
    db.expire_all()
    numbers = [db.get(Card, c.id).notice_number for c in batch]
    assert all(numbers) and len(set(numbers)) == 3
    response = client.post("/cardmodelview/action_post",
                           data={"action": "print_data", "rowid": [c.id for c in batch]})
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    raw = archive.read("postcards.csv")
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][:5] == ["申請書ID", "氏名", "郵便番号", "住所", "交付通知書番号"]
    first = rows[1]
    assert first[4][3] == "-" and first[5].endswith(f"/reserve/?n={first[4]}")
    payload = decode(Image.open(io.BytesIO(archive.read(first[6]))))[0].data.decode()
    assert payload == first[5]
    export = db.execute(select(AuditLog).where(AuditLog.action == "export")).scalar_one()
    assert export.username == "kanri_p" and '"rows": 3' in export.changes
    sjis = client.post("/cardmodelview/action_post",
                       data={"action": "print_data_sjis", "rowid": [batch[0].id]})
    assert "山田" in zipfile.ZipFile(io.BytesIO(sjis.data)).read("postcards.csv").decode("cp932")


def test_print_data_needs_postcard_numbers(login_as, db, place):
    card = make_card(db, state=svc.SETUP)
    response = login_as("manager").post("/cardmodelview/action_post", follow_redirects=True,
                                        data={"action": "print_data", "rowid": [card.id]})
    assert "交付通知書番号がまだありません" in text_of(response)


def test_detail_page_shows_history_is_audited_and_changes_state(login_as, db, place):
    card = make_card(db)
    client = login_as("clerk", username="madoguchi_d")
    page = client.get(f"/cardmodelview/show/{card.id}")
    assert 'data-testid="card-history"' in page.get_data(as_text=True)
    assert "納品" in text_of(page) and "1980-03-01（昭和55年3月1日）" in text_of(page)
    view = db.execute(select(AuditLog).where(AuditLog.action == "view")).scalar_one()
    assert view.target_table == "card" and view.target_id == str(card.id)
    client.post(f"/cardmodelview/transition/{card.id}", data={"to": "setup", "note": "確認済"})
    db.refresh(card)
    assert card.state == svc.SETUP and card.events[-1].note == "確認済"
    response = client.post(f"/cardmodelview/transition/{card.id}", data={"to": "mailed"},
                           follow_redirects=True)
    assert "次にできる状態" in text_of(response)
    db.refresh(card)
    assert card.state == svc.SETUP


def test_hand_over_requires_the_checklist(login_as, db, place):
    from app.services import notice_numbers

    card = make_card(db, state=svc.SETUP)
    client = login_as("clerk", username="madoguchi_h")
    client.post(f"/cardmodelview/transition/{card.id}", data={"to": "notice_sent"})
    db.refresh(card)
    typed = notice_numbers.display(card.notice_number).lower()
    found = client.get(f"/handover/?q={typed}")
    assert "山田" in text_of(found) and 'data-testid="handover-form"' in found.get_data(as_text=True)
    response = client.post(f"/handover/{card.id}", data={"collector": "proxy"},
                           follow_redirects=True)
    page = text_of(response)
    assert "本人確認書類" in page and "代理人による受け取りの理由を選んでください" in page
    db.refresh(card)
    assert card.state == svc.NOTICE_SENT
    client.post(f"/handover/{card.id}", data={"identity": "one_a", "collector": "self",
                                               "pin_set": "1"})
    db.refresh(card)
    assert card.state == svc.HANDED_OVER and card.handed_over_by == "madoguchi_h"
    assert card.storage_place_id is None
    assert json.loads(card.identity_check)["identity"] == "one_a"


def test_hand_over_search_says_when_nothing_matches(login_as):
    page = text_of(login_as("clerk").get("/handover/?q=12345678901234567890123"))
    assert "該当するカードが見つかりません" in page


def test_discard_candidates_hold_and_discard(login_as, db, place, clock):
    old = make_card(db, state=svc.NOTICE_SENT)
    old.notice_sent_at = clock() - timedelta(days=400)
    kept = make_card(db, state=svc.NOTICE_SENT)
    kept.notice_sent_at = clock() - timedelta(days=400)
    fresh = make_card(db, state=svc.NOTICE_SENT)
    fresh.notice_sent_at = clock() - timedelta(days=30)
    db.commit()
    client = login_as("manager", username="kanri_d")
    client.post("/discard/refresh")  # the screen lists what the last refresh found
    page = text_of(client.get("/discard/"))
    assert old.application_id in page and kept.application_id in page
    assert fresh.application_id not in page
    response = client.post("/discard/hold", data={"ids": [kept.id], "hold": "1", "reason": ""},
                           follow_redirects=True)
    assert "廃棄を保留する理由を入力してください" in text_of(response)
    client.post("/discard/hold", data={"ids": [kept.id], "hold": "1", "reason": "本人から連絡あり"})
    response = client.post("/discard/execute", data={"ids": [old.id, kept.id], "reason": "期限経過"},
                           follow_redirects=True)
    assert "廃棄保留中です" in text_of(response)
    db.expire_all()
    assert db.get(Card, old.id).state == svc.NOTICE_SENT
    client.post("/discard/execute", data={"ids": [old.id], "reason": "期限経過"})
    db.expire_all()
    assert db.get(Card, old.id).state == svc.DISCARDED
    register = client.get("/discard/register")
    assert old.application_id in text_of(register) and "期限経過" in text_of(register)
    assert db.execute(select(AuditLog).where(AuditLog.action == "print")).scalars().first()


def test_move_respects_capacity_and_inventory_is_in_shelf_order(login_as, db):
    make_storage(db, code="金庫A-棚1-箱01", capacity=2, sort_key=1)
    small = make_storage(db, code="金庫B-棚1-箱01", capacity=1, sort_key=2)
    a, b = make_card(db), make_card(db)
    client = login_as("clerk")
    response = client.post("/storage/move", data={"ids": f"{a.id},{b.id}", "place": small.id},
                           follow_redirects=True)
    assert "あと 1 枚しか入りません" in text_of(response)
    client.post("/storage/move", data={"ids": f"{a.id}", "place": small.id})
    db.expire_all()
    assert db.get(Card, a.id).storage_place_id == small.id
    page = text_of(client.get("/storage/inventory")).split("棚卸し一覧")[-1]
    assert page.index("金庫A-棚1-箱01") < page.index("金庫B-棚1-箱01")
    assert page.index(b.application_id) < page.index(a.application_id)


def _token(client, username, password):
    response = client.post("/api/v1/security/login", json={
        "username": username, "password": password, "provider": "db"})
    return {"Authorization": f"Bearer {response.json['access_token']}"}


def test_api_lists_cards_and_transitions_through_the_service(app, users, db, place):
    users.create("clerk", username="api_clerk")
    users.create("viewer", username="api_viewer")
    card = make_card(db)
    client = app.test_client()
    clerk = _token(client, "api_clerk", users.password)
    listing = client.get("/api/v1/card/", headers=clerk)
    assert listing.status_code == 200 and listing.json["count"] == 1
    ok = client.post(f"/api/v1/card/{card.id}/transition", headers=clerk,
                     json={"to": "setup", "note": "API"})
    assert ok.status_code == 200 and ok.json["state"] == "setup"
    refused = client.post(f"/api/v1/card/{card.id}/transition", headers=clerk,
                          json={"to": "mailed"})
    assert refused.status_code == 409 and "次にできる状態" in refused.json["message"]
    db.refresh(card)
    assert card.state == svc.SETUP
    assert db.query(CardEvent).filter_by(card_id=card.id).count() == 2
    viewer = _token(client, "api_viewer", users.password)
    assert client.get("/api/v1/card/", headers=viewer).status_code == 403  # no API (roles.md)
    assert client.post(f"/api/v1/card/{card.id}/transition", headers=viewer,
                       json={"to": "notice_sent"}).status_code == 403
    assert client.delete(f"/api/v1/card/{card.id}", headers=clerk).status_code == 403


def test_lists_and_prints_split_by_visit_mode(login_as, db, place):
    collect = make_card(db, visit_mode="K")
    mailed = make_card(db, visit_mode="S", state=svc.SETUP)
    client = login_as("clerk")
    page = text_of(client.get("/cardmodelview/list/?_flt_3_visit_mode=S"))
    assert mailed.application_id in page and collect.application_id not in page
    inventory = text_of(client.get("/storage/inventory?mode=K")).split("棚卸し一覧")[-1]
    assert collect.application_id in inventory and mailed.application_id not in inventory


def test_scanned_postcard_qr_finds_the_card(login_as, db, place):
    from app.services import notice_numbers

    card = make_card(db, state=svc.SETUP)
    client = login_as("clerk")
    client.post(f"/cardmodelview/transition/{card.id}", data={"to": "notice_sent"})
    db.refresh(card)
    scanned = f"http://127.0.0.1:8080/reserve/?n={notice_numbers.display(card.notice_number)}"
    page = client.get("/handover/", query_string={"q": scanned}).get_data(as_text=True)
    assert 'data-testid="handover-form"' in page and card.application_id in page


def test_release_hold_is_all_or_nothing(login_as, db, place):
    held = make_card(db, state=svc.ON_HOLD, held_from=svc.SETUP)
    free = make_card(db, state=svc.SETUP)
    client = login_as("clerk")
    response = client.post("/cardmodelview/action_post", follow_redirects=True,
                           data={"action": "release_hold", "rowid": [held.id, free.id]})
    assert "保留中ではありません" in text_of(response)
    db.expire_all()
    assert db.get(Card, held.id).state == svc.ON_HOLD
    client.post("/cardmodelview/action_post", data={"action": "release_hold", "rowid": [held.id]})
    db.expire_all()
    assert db.get(Card, held.id).state == svc.SETUP
