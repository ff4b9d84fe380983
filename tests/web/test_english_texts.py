"""Residents who choose English read the English texts of purposes, notices and the
maintenance message where staff wrote one, the Japanese otherwise (issue 12, 6); the
Japanese site is unchanged; staff forms have the optional English fields."""
from datetime import timedelta

import pytest
from flask import render_template_string
from flask_babel import force_locale

from app.models.maintenance import MaintenanceWindow
from app.models.notice import AUDIENCE_RESIDENTS, Notice
from tests.conftest import text_of
from tests.factories import make_notice, make_offer


@pytest.fixture
def texts(db, clock):
    offer = make_offer(db)
    purpose = offer.purpose
    purpose.description = "はがきが届いた方の予約です。"
    purpose.what_to_bring = "交付通知書\n本人確認書類"
    purpose.name_en, purpose.description_en = "Collecting your card", "For postcard holders."
    purpose.what_to_bring_en = "The notification postcard\nAn identity document"
    make_notice(db, clock(), title="年末年始の休み", body="窓口は休みます。",
                title_en="New Year holidays", body_en="The counters are closed.",
                audience=AUDIENCE_RESIDENTS)
    make_notice(db, clock(), title="英語のないお知らせ", body="日本語だけの本文です。",
                audience=AUDIENCE_RESIDENTS)
    start = clock() + timedelta(days=3)
    db.add(MaintenanceWindow(starts_at=start, ends_at=start + timedelta(hours=2),
                             message="システム更新のため停止します。",
                             message_en="Closed for a system update."))
    db.commit()
    return purpose


def test_english_residents_read_the_english_texts(client, texts):
    client.get("/reserve/lang/en?next=/reserve/")
    page = text_of(client.get("/reserve/"))
    for english in ("Collecting your card", "For postcard holders.", "New Year holidays",
                    "The counters are closed.", "Closed for a system update."):
        assert english in page
    for japanese in ("マイナンバーカードの受け取り", "はがきが届いた方の予約です。", "年末年始の休み",
                     "窓口は休みます。", "システム更新のため停止します。"):
        assert japanese not in page
    assert "Collecting your card" in text_of(client.get("/reserve/book/kofu/"))


def test_an_empty_english_text_falls_back_to_the_japanese(client, texts, db):
    texts.description_en = ""
    db.commit()
    client.get("/reserve/lang/en?next=/reserve/")
    page = text_of(client.get("/reserve/"))
    assert "英語のないお知らせ" in page and "日本語だけの本文です。" in page
    assert "はがきが届いた方の予約です。" in page and "Collecting your card" in page


def test_japanese_residents_read_the_japanese_texts(client, texts):
    page = text_of(client.get("/reserve/"))
    for japanese in ("マイナンバーカードの受け取り", "はがきが届いた方の予約です。", "年末年始の休み",
                     "窓口は休みます。", "システム更新のため停止します。"):
        assert japanese in page
    for english in ("Collecting your card", "New Year holidays", "Closed for a system update."):
        assert english not in page


def test_what_to_bring_follows_the_language(app, texts):
    template = '{% from "public/_macros.html" import bring %}{{ bring(purpose) }}'
    with app.test_request_context("/reserve/"):
        with force_locale("en"):
            english = render_template_string(template, purpose=texts)
        with force_locale("ja"):
            japanese = render_template_string(template, purpose=texts)
    assert "The notification postcard" in english and "交付通知書" not in english
    assert "交付通知書" in japanese and "postcard" not in japanese


def test_the_maintenance_page_in_english(client, login_as, db):
    admin = login_as("sysadmin")
    admin.post("/maintenancewindowmodelview/start-now/",
               data={"message": "点検のため停止中です", "message_en": "Closed for checks"})
    client.get("/reserve/lang/en")
    page = client.get("/reserve/")
    assert page.status_code == 503
    assert "Closed for checks" in text_of(page) and "点検のため停止中です" not in text_of(page)
    client.get("/reserve/lang/ja_JP")
    assert "点検のため停止中です" in text_of(client.get("/reserve/"))
    admin.post("/maintenancewindowmodelview/end-now/")


def test_staff_forms_offer_the_english_fields(login_as, db, clock):
    manager = login_as("manager")
    purpose_form = text_of(manager.get("/purposemodelview/add"))
    assert "英語の名称（任意）" in purpose_form and "英語の持ち物（任意）" in purpose_form
    notice_form = manager.get("/noticemodelview/add")
    assert "英語の件名（任意）" in text_of(notice_form)
    manager.post("/noticemodelview/add", data={
        "title": "臨時休業", "body": "休みます", "title_en": "Closed today",
        "body_en": "  ", "audience": AUDIENCE_RESIDENTS, "importance": "0",
        "starts_at": clock().strftime("%Y-%m-%d %H:%M:%S")})
    notice = db.query(Notice).filter_by(title="臨時休業").one()
    assert notice.title_en == "Closed today" and notice.body_en is None


def test_the_maintenance_form_offers_the_english_message(login_as):
    maintenance_form = text_of(login_as("sysadmin").get("/maintenancewindowmodelview/add"))
    assert "英語のメッセージ（任意）" in maintenance_form
