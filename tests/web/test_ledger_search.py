"""The ledger's searches as a clerk types them (issue 14 §3): kana in hiragana or half-width,
申請書ID in full-width with hyphens, part of a name; the count above the list matches."""
import re

from app.services import cards as svc
from tests.factories import make_card, make_storage


def _found(client, query) -> tuple[set[str], int]:
    response = client.get(f"/cardmodelview/list/?{query}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    ids = set(re.findall(r"\b(\d{23})\b", html))
    count = re.search(r"</strong>\s*(\d+)", html.split("Record Count")[-1]
                      if "Record Count" in html else html.split("件数")[-1])
    return ids, int(count.group(1)) if count else -1


def test_searches_find_what_the_clerk_typed(login_as, db):
    make_storage(db, capacity=100)
    hanako = make_card(db, name="山田　花子", name_kana="ヤマダ　ハナコ",
                       application_id="12345678901234567890123")
    taro = make_card(db, name="山田　太郎", name_kana="ヤマダ　タロウ", state=svc.SETUP)
    other = make_card(db, name="佐藤　花", name_kana="サトウ　ハナ", visit_mode="S")
    client = login_as("clerk")
    assert _found(client, "_flt_0_name_kana=やまだ") == ({hanako.application_id,
                                                          taro.application_id}, 2)
    assert _found(client, "_flt_0_name_kana=ﾔﾏﾀﾞ ﾊ") == ({hanako.application_id}, 1)
    assert _found(client, "_flt_3_application_id=１２３４５-６７８９０-１２３４５-６７８９０-１２３") \
        == ({hanako.application_id}, 1)
    assert _found(client, "_flt_0_application_id=1234 5678") == ({hanako.application_id}, 1)
    assert _found(client, "_flt_2_name=花") == ({hanako.application_id, other.application_id}, 2)
    assert _found(client, "_flt_2_name_kana=はな") == ({hanako.application_id,
                                                       other.application_id}, 2)
    assert _found(client, "_flt_2_name=%") == (set(), 0)  # a wildcard is a character
    # counts from the tally: everything, one state, one visit mode, both
    assert _found(client, "")[1] == 3
    assert _found(client, "_flt_3_state=setup") == ({taro.application_id}, 1)
    assert _found(client, "_flt_3_visit_mode=S") == ({other.application_id}, 1)
    assert _found(client, "_flt_3_visit_mode=K&_flt_3_state=received") == (
        {hanako.application_id}, 1)
    assert _found(client, "_flt_3_state=setup&_flt_0_name_kana=サトウ") == (set(), 0)
