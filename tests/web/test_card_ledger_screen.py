"""The card ledger at a staff PC's size (issue 12, section 5): one card per line (name
with kana in one cell, short dates), labelled row buttons, state and visit mode as choices,
and the add form's storage place in Japanese instead of FAB's "__None"."""
import re
from datetime import timedelta

from app.services import cards as svc
from tests.factories import make_card, make_storage


def _html(client, url):
    response = client.get(url)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_one_line_per_card_with_short_dates(login_as, db, clock):
    make_storage(db, code="金庫A-棚1-箱01", capacity=40)
    this_year = make_card(db, name="山田　花子", name_kana="ヤマダ　ハナコ")
    last_year = make_card(db, name="佐藤　一郎", name_kana="サトウ　イチロウ")
    last_year.received_at = clock() - timedelta(days=400)
    db.commit()
    html = _html(login_as("clerk"), "/cardmodelview/list/")
    assert re.search(r'<td class="col-name"><span class="clip" title="山田　花子（ヤマダ　ハナコ）">'
                     r'山田　花子（ヤマダ　ハナコ）</span></td>', html)
    assert 'class="col-name_kana"' not in html  # no column of its own
    rows = html.split('<td class="col-received_at">')[1:]
    shown = {re.search(r">([\d/]+)</span>", row).group(1) for row in rows}
    assert shown == {clock().strftime("%m/%d"),
                     (clock() - timedelta(days=400)).strftime("%Y/%m/%d")}, shown
    assert '<span title="昭和55年3月1日">1980/03/01</span>' in html
    assert this_year.application_id in html and last_year.application_id in html


def test_row_buttons_are_labelled_in_japanese(login_as, db):
    make_storage(db, code="金庫A-棚1-箱01", capacity=40)
    card = make_card(db)
    html = _html(login_as("manager"), "/cardmodelview/list/")
    for label, url in (("詳細", f"/cardmodelview/show/{card.id}"),
                       ("編集", f"/cardmodelview/edit/{card.id}")):
        assert f'href="{url}" class="btn btn-sm btn-default " title="{label}" ' \
               f'aria-label="{label}"' in html
    assert 'title="削除" aria-label="削除"' in html  # the manager may delete a row


def test_state_and_visit_mode_are_choices_not_text_operators(login_as, db):
    make_storage(db, code="金庫A-棚1-箱01", capacity=40)
    waiting = make_card(db, state=svc.NOTICE_SENT, visit_mode="K")
    mailed = make_card(db, state=svc.MAILED, visit_mode="S")
    client = login_as("viewer")
    html = _html(client, "/cardmodelview/list/?_flt_3_state=notice_sent")
    states = re.search(r'<select id="filter-state"[^>]*name="_flt_3_state" '
                       r'form="filter_form"[^>]*>(.*?)</select>', html, re.S).group(1)
    assert '<option value="notice_sent" selected>交付通知書発送</option>' in states
    assert '<option value="">（すべての状態）</option>' in states
    assert re.search(r'name="_flt_3_visit_mode" form="filter_form"', html)
    assert waiting.application_id in html and mailed.application_id not in html
    # FAB's search panel no longer offers the two columns with its text operators.
    panel = re.search(r'new AdminFilters\((.*?)\);', html, re.S).group(1)
    assert '"state"' not in panel and '"visit_mode"' not in panel
    assert '"application_id"' in panel
    # The counts above the list lead to the list of that state.
    assert 'href="/cardmodelview/list/?_flt_3_state=mailed"' in html


def test_add_form_offers_the_next_free_place_in_japanese(login_as, db):
    make_storage(db, code="金庫A-棚1-箱01", capacity=40)
    html = _html(login_as("clerk"), "/cardmodelview/add")
    assert re.search(r'<option selected value="__None">（空いている保管場所に自動で割り当て）</option>', html) \
        or re.search(r'<option value="__None" selected>（空いている保管場所に自動で割り当て）</option>', html), \
        re.search(r'<select[^>]*storage_place.*?</select>', html, re.S).group(0)[:400]
