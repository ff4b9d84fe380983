"""Extraction (抽出, issue 14 §2): conditions per type and operator against hand-made
records, AND/OR groups, kana and width normalised, empty / not empty, the messages of a
condition that cannot be used, CP932 characters, and the rules of saved queries."""
import json
from datetime import date, datetime

import pytest

from app.clock import JST
from app.models.audit import AuditLog
from app.models.card import Card
from app.models.extraction import SavedQuery
from app.models.fee import FeeEntry
from app.services import extraction
from app.services.actors import CardActor
from app.services.errors import ConcurrentChangeError, InputError, NotPermittedError
from tests.factories import make_card, make_intake, make_storage


@pytest.fixture
def ctx(app):
    with app.test_request_context():
        yield


@pytest.fixture
def cards(db, ctx):
    """Four cards, counted by hand in each test below."""
    make_storage(db, code="金庫A-棚1-箱01")
    yamada = make_card(db, name="山田　太郎", name_kana="ヤマダ　タロウ",
                       birth_date=date(1980, 3, 1), postal_code="012-3456",
                       address="みどり市中央１丁目")  # full-width digit, as typed
    hanako = make_card(db, name="山田　花子", name_kana="ヤマダ　ハナコ",
                       birth_date=date(1990, 5, 5), address="みどり市中央1丁目",
                       has_sign_cert=False)
    sato = make_card(db, name="佐藤　一郎", name_kana="サトウ　イチロウ",
                     birth_date=date(1975, 12, 31), address=None, notes="要連絡 100%")
    yoshida = make_card(db, name="𠮷田　太郎", name_kana="ヨシダ　タロウ",
                        birth_date=date(2000, 1, 1), address="みどり市東町5")
    hanako.state = "notice_sent"
    sato.state = "handed_over"
    yoshida.storage_place_id = None
    db.commit()
    return {"yamada": yamada.id, "hanako": hanako.id, "sato": sato.id,
            "yoshida": yoshida.id}


def ids(db, definition, key="application_id"):
    """The application IDs the query finds, through the same statement an export uses."""
    query = extraction.parse_definition({"columns": [key], **definition})
    rows = db.execute(extraction.rows_statement(query)).all()
    count = db.execute(extraction.count_statement(query)).scalar_one()
    assert count == len(rows)
    return {r[0] for r in rows}


def app_ids(db, *keys_of, cards):
    return {db.get(Card, cards[k]).application_id for k in keys_of}


def one(field, op, **value):
    return {"subject": "cards", "groups": [{"op": "and", "conditions": [
        {"field": field, "op": op, **value}]}]}


def test_kana_is_found_from_hiragana_and_half_width(db, cards):
    assert ids(db, one("name_kana", "starts", value="やまだ")) == app_ids(
        db, "yamada", "hanako", cards=cards)
    assert ids(db, one("name_kana", "starts", value="ﾔﾏﾀﾞ")) == app_ids(
        db, "yamada", "hanako", cards=cards)
    assert ids(db, one("name_kana", "contains", value="たろう")) == app_ids(
        db, "yamada", "yoshida", cards=cards)
    assert ids(db, one("name_kana", "eq", value="さとう いちろう")) == app_ids(
        db, "sato", cards=cards)


def test_names_fold_width_and_spaces(db, cards):
    # a half-width space is stored as one full-width space
    assert ids(db, one("name", "contains", value="山田 花")) == app_ids(db, "hanako",
                                                                        cards=cards)
    assert ids(db, one("name", "starts", value="𠮷田")) == app_ids(db, "yoshida", cards=cards)


def test_free_text_is_found_in_either_width(db, cards):
    # one address typed with a full-width digit, one with a half-width one
    both = app_ids(db, "yamada", "hanako", cards=cards)
    assert ids(db, one("address", "contains", value="中央1")) == both
    assert ids(db, one("address", "contains", value="中央１")) == both


def test_like_wildcards_are_literal(db, cards):
    assert ids(db, one("notes", "contains", value="100%")) == app_ids(db, "sato", cards=cards)
    assert ids(db, one("notes", "contains", value="%")) == app_ids(db, "sato", cards=cards)
    assert ids(db, one("name", "contains", value="_")) == set()


def test_choices_by_code_or_label_and_lists(db, cards):
    assert ids(db, one("state", "eq", value="received")) == app_ids(db, "yamada", "yoshida",
                                                                    cards=cards)
    assert ids(db, one("state", "in", values="交付通知書発送、交付済")) == app_ids(
        db, "hanako", "sato", cards=cards)
    assert ids(db, one("state", "in", values=["handed_over"])) == app_ids(db, "sato",
                                                                          cards=cards)


def test_dates_by_day_range_and_era(db, cards):
    assert ids(db, one("birth_date", "range", **{"from": "1980-01-01", "to": "1990-05-05"})) \
        == app_ids(db, "yamada", "hanako", cards=cards)
    assert ids(db, one("birth_date", "range", **{"from": "H2.1.1"})) == app_ids(
        db, "hanako", "yoshida", cards=cards)
    assert ids(db, one("birth_date", "range", to="1975-12-31")) == app_ids(db, "sato",
                                                                           cards=cards)
    assert ids(db, one("birth_date", "eq", value="昭和55年3月1日")) == app_ids(
        db, "yamada", cards=cards)
    assert ids(db, one("birth_date", "in", values="1980-03-01, 2000/1/1")) == app_ids(
        db, "yamada", "yoshida", cards=cards)


def test_datetimes_by_the_day_in_japan_time(db, cards):
    everyone = set(app_ids(db, "yamada", "hanako", "sato", "yoshida", cards=cards))
    # received at the test clock: 2026-12-01 10:00 JST (01:00 UTC)
    assert ids(db, one("received_at", "eq", value="2026-12-01")) == everyone
    assert ids(db, one("received_at", "range", to="2026-11-30")) == set()
    assert ids(db, one("received_at", "range", **{"from": "2026-12-01"})) == everyone
    assert ids(db, one("handed_over_at", "empty")) == everyone


def test_empty_and_not_empty(db, cards):
    assert ids(db, one("notes", "not_empty")) == app_ids(db, "sato", cards=cards)
    assert ids(db, one("notes", "empty")) == app_ids(db, "yamada", "hanako", "yoshida",
                                                     cards=cards)
    assert ids(db, one("address", "empty")) == app_ids(db, "sato", cards=cards)
    # a related field (保管場所, joined)
    assert ids(db, one("storage_place", "empty")) == app_ids(db, "yoshida", cards=cards)
    assert ids(db, one("storage_place", "starts", value="金庫Ａ")) == app_ids(
        db, "yamada", "hanako", "sato", cards=cards)


def test_booleans_and_codes(db, cards):
    assert ids(db, one("has_sign_cert", "eq", value="いいえ")) == app_ids(db, "hanako",
                                                                         cards=cards)
    assert len(ids(db, one("has_sign_cert", "eq", value="はい"))) == 3
    yamada = db.get(Card, cards["yamada"])
    typed = "０" * 10 + "-" + yamada.application_id[10:]  # full width, with a hyphen
    assert ids(db, one("application_id", "eq", value=typed)) == {yamada.application_id}
    assert ids(db, one("postal_code", "starts", value="〒０１２")) == {yamada.application_id}
    assert ids(db, one("postal_code", "eq", value="0123456")) == {yamada.application_id}


def test_groups_combine_with_and_or(db, cards):
    received_or_handed = {"op": "or", "conditions": [
        {"field": "state", "op": "eq", "value": "received"},
        {"field": "state", "op": "eq", "value": "handed_over"}]}
    yamada_family = {"op": "and", "conditions": [
        {"field": "name_kana", "op": "starts", "value": "ヤマダ"}]}
    assert ids(db, {"subject": "cards", "groups": [received_or_handed]}) == app_ids(
        db, "yamada", "sato", "yoshida", cards=cards)
    assert ids(db, {"subject": "cards", "join": "and",
                    "groups": [received_or_handed, yamada_family]}) == app_ids(
        db, "yamada", cards=cards)
    assert ids(db, {"subject": "cards", "join": "or",
                    "groups": [received_or_handed, yamada_family]}) == app_ids(
        db, "yamada", "hanako", "sato", "yoshida", cards=cards)
    # AND inside a group: both must hold
    both = {"op": "and", "conditions": [
        {"field": "state", "op": "eq", "value": "received"},
        {"field": "name", "op": "contains", "value": "太郎"}]}
    assert ids(db, {"subject": "cards", "groups": [both]}) == app_ids(db, "yamada", "yoshida",
                                                                      cards=cards)
    # no condition: every record
    assert len(ids(db, {"subject": "cards"})) == 4


def test_preview_counts_and_orders_the_chosen_columns(db, cards):
    result = extraction.preview(db, {
        "subject": "cards", "columns": ["name_kana", "state", "birth_date"],
        "order": [{"field": "birth_date", "desc": True}]}, limit=3)
    assert result.count == 4
    assert result.headers == ["フリガナ", "状態", "生年月日"]
    assert result.rows == [["ヨシダ　タロウ", "納品", "2000-01-01"],
                           ["ヤマダ　ハナコ", "交付通知書発送", "1990-05-05"],
                           ["ヤマダ　タロウ", "納品", "1980-03-01"]]


def test_every_mistake_is_named_and_nothing_runs(db, cards, no_writes):
    bad = {"subject": "cards", "groups": [{"op": "and", "conditions": [
        {"field": "name", "op": "contains", "value": "山田"},
        {"field": "birth_date", "op": "contains", "value": "1980"},
        {"field": "no_such_field", "op": "eq", "value": "x"},
        {"field": "birth_date", "op": "eq", "value": "2026-02-30"},
        {"field": "state", "op": "eq", "value": "行方不明"},
        {"field": "birth_date", "op": "range", "from": "2000-01-01", "to": "1999-01-01"},
        {"field": "name", "op": "contains", "value": ""},
    ]}, {"op": "xor", "conditions": []}], "columns": ["name", "nope"]}
    with no_writes("a refused query"), pytest.raises(extraction.QueryError) as refused:
        extraction.preview(db, bad)
    failures = dict(refused.value.failures)
    assert "を含む" in failures["グループ1の条件2（生年月日）"]
    assert "日付" in failures["グループ1の条件2（生年月日）"]
    assert "no_such_field" in failures["グループ1の条件3"]
    assert failures["グループ1の条件4（生年月日）"] == "存在しない日付です。"
    assert "行方不明" in failures["グループ1の条件5（状態）"]
    assert failures["グループ1の条件6（生年月日）"] == "範囲の開始が終了より後になっています。"
    assert failures["グループ1の条件7（氏名）"] == "探す値を入力してください。"
    assert "AND か OR" in failures["グループ2"]
    assert "nope" in failures["出力する項目"]
    assert len(refused.value.failures) == 8
    with pytest.raises(InputError):
        extraction.parse_definition({"subject": "people"})


def test_fees_join_their_application_and_compare_numbers(db, ctx):
    intake = make_intake(db, name="佐藤　花子", kind="reissue", reissue_reason="lost")
    day = date(2026, 12, 1)
    at = datetime(2026, 12, 1, 10, 0, tzinfo=JST)
    for entry_type, amount, reason in (("charge", 1000, None), ("charge", 800, None),
                                       ("waiver", 0, "災害")):
        db.add(FeeEntry(intake_id=intake.id, entry_type=entry_type, amount=amount,
                        reason=reason, venue_id=intake.venue_id, clerk="clerk",
                        business_day=day, at=at))
    db.commit()

    def amounts(condition):
        query = extraction.parse_definition({"subject": "fees", "columns": ["amount"],
                                             "groups": [{"conditions": [condition]}]})
        return sorted(r[0] for r in db.execute(extraction.rows_statement(query)))

    assert amounts({"field": "amount", "op": "range", "from": "500", "to": "９００"}) == [800]
    assert amounts({"field": "amount", "op": "in", "values": "0、1000"}) == [0, 1000]
    assert amounts({"field": "amount", "op": "eq", "value": "1000円"}) == [1000]
    assert amounts({"field": "name", "op": "contains", "value": "佐藤"}) == [0, 800, 1000]
    assert amounts({"field": "entry_type", "op": "eq", "value": "免除"}) == [0]
    assert amounts({"field": "venue", "op": "starts", "value": "市役所"}) == [0, 800, 1000]
    with pytest.raises(extraction.QueryError) as refused:
        amounts({"field": "amount", "op": "eq", "value": "千円"})
    assert "整数" in refused.value.failures[0][1]


# --- CP932 -------------------------------------------------------------------------------

def test_cp932_characters():
    assert extraction.unmappable("𠮷田　髙橋　﨑") == ["𠮷"]  # 髙 and 﨑: NEC/IBM extensions
    assert extraction.unmappable("😀と𠮷") == ["😀", "𠮷"]
    assert extraction.replace_unmappable("𠮷田と😀", "〓") == ("〓田と〓", 2)
    assert extraction.replace_unmappable("山田", "〓") == ("山田", 0)


def test_the_replacement_must_be_one_cp932_character(ctx):
    assert extraction.check_replacement("") == "〓"
    assert extraction.check_replacement("＊") == "＊"
    for bad in ("𠮷", "ab", "=", "😀", "\x00"):
        with pytest.raises(InputError):
            extraction.check_replacement(bad)


# --- saved queries -------------------------------------------------------------------------

def actor(app, role, name):
    return CardActor(name, frozenset({app.config[role]}))


@pytest.fixture
def people(app):
    return {"manager": actor(app, "ROLE_MANAGER", "boss"),
            "clerk": actor(app, "ROLE_CLERK", "clerk1"),
            "clerk2": actor(app, "ROLE_CLERK", "clerk2"),
            "viewer": actor(app, "ROLE_VIEWER", "viewer1")}


QUERY = {"subject": "cards", "groups": [{"op": "and", "conditions": [
    {"field": "name_kana", "op": "starts", "value": "やまだ"}]}]}


def test_saved_queries_private_and_shared(db, ctx, people):
    mine = extraction.save_query(db, QUERY, "山田さん", actor=people["viewer"])
    assert mine.owner == "viewer1" and not mine.shared
    stored = extraction.definition_of(mine)
    assert stored["groups"][0]["conditions"][0]["value"] == "ヤマダ"  # normalised
    with pytest.raises(NotPermittedError):
        extraction.save_query(db, QUERY, "共有", actor=people["clerk"], shared=True)
    shared = extraction.save_query(db, QUERY, "共有", actor=people["manager"], shared=True)
    # the same name: another person's private one is fine, one's own twice is not
    extraction.save_query(db, QUERY, "山田さん", actor=people["clerk"])
    with pytest.raises(InputError):
        extraction.save_query(db, QUERY, "山田さん", actor=people["viewer"])
    with pytest.raises(InputError):
        extraction.save_query(db, QUERY, "共有", actor=people["manager"], shared=True)
    with pytest.raises(extraction.QueryError):
        extraction.save_query(db, one("birth_date", "eq", value="x"), "壊れた",
                              actor=people["manager"])
    listed = [(q.name, q.shared) for q in extraction.saved_queries(db, people["viewer"])]
    assert listed == [("共有", True), ("山田さん", False)]
    assert extraction.get_saved(db, mine.id, people["clerk"]) is None  # not theirs
    assert extraction.get_saved(db, shared.id, people["clerk"]).name == "共有"
    assert db.query(SavedQuery).count() == 3


def test_who_may_change_and_delete(db, ctx, people):
    shared = extraction.save_query(db, QUERY, "共有", actor=people["manager"], shared=True)
    mine = extraction.save_query(db, QUERY, "自分の", actor=people["clerk"])
    with pytest.raises(NotPermittedError):
        extraction.delete_query(db, shared.id, extraction.version_of(shared),
                                actor=people["clerk"])
    with pytest.raises(NotPermittedError):
        extraction.overwrite_query(db, shared.id, extraction.version_of(shared), QUERY,
                                   actor=people["clerk"])
    with pytest.raises(ConcurrentChangeError):  # someone else's private query: not found
        extraction.delete_query(db, mine.id, extraction.version_of(mine),
                                actor=people["clerk2"])
    assert db.query(SavedQuery).count() == 2
    assert extraction.delete_query(db, mine.id, extraction.version_of(mine),
                                   actor=people["clerk"]) == "自分の"
    assert extraction.delete_query(db, shared.id, extraction.version_of(shared),
                                   actor=people["manager"]) == "共有"
    assert db.query(SavedQuery).count() == 0
    actions = [(r.action, r.target_table, r.username) for r in
               db.query(AuditLog).filter(AuditLog.target_table == "saved_query")
               .order_by(AuditLog.id)]
    assert actions == [("create", "saved_query", "system"), ("create", "saved_query", "system"),
                       ("delete", "saved_query", "system"), ("delete", "saved_query", "system")]


def test_two_people_editing_one_shared_query(db, ctx, people, clock):
    shared = extraction.save_query(db, QUERY, "共有", actor=people["manager"], shared=True)
    seen = extraction.version_of(shared)  # both opened it at this version
    clock.advance(minutes=1)
    changed = {**QUERY, "join": "or"}
    extraction.overwrite_query(db, shared.id, seen, changed, actor=people["manager"])
    clock.advance(minutes=1)
    with pytest.raises(ConcurrentChangeError):  # the second, on the old version
        extraction.overwrite_query(db, shared.id, seen, QUERY, actor=people["manager"])
    with pytest.raises(ConcurrentChangeError):
        extraction.delete_query(db, shared.id, seen, actor=people["manager"])
    db.expire_all()
    assert extraction.definition_of(db.get(SavedQuery, shared.id))["join"] == "or"


def test_csv_cells_a_spreadsheet_would_read_as_formulas_get_a_quote(db, ctx):
    """The fast path (a whole column at once) and the cell-by-cell path give the same."""
    make_storage(db)
    make_card(db, application_id="00000000000000000000001", notes="=SUM(A1)",
              address="普通の住所")
    make_card(db, application_id="00000000000000000000002", notes="普通", address="@home")
    make_card(db, application_id="00000000000000000000003", notes=None, address=None)
    query = extraction.parse_definition({"subject": "cards", "columns": [
        "application_id", "notes", "address", "state", "birth_date", "notice_number"]})
    tally = extraction.Tally()
    text = "".join(extraction.csv_text(db, query, tally))
    lines = text.split("\r\n")
    assert tally.written == 3
    assert lines[1].startswith("00000000000000000000001,'=SUM(A1),普通の住所,納品,")
    assert lines[2].startswith("00000000000000000000002,普通,'@home,納品,")
    assert lines[3].startswith("00000000000000000000003,,,納品,")
    slow = [c(v) for c, v in zip(extraction.text_converters(query, safe=True),
                                 db.execute(extraction.rows_statement(query)).first())]
    assert lines[1] == ",".join(slow)


# --- relative dates (older than N / within the last N), resolved when the query runs -----

WAITING = ["received", "setup", "notice_sent", "renotified", "returned"]
OLDER_THAN_6_MONTHS = {"subject": "cards", "join": "and", "groups": [{"op": "and", "conditions": [
    {"field": "received_at", "op": "older_than", "n": 6, "unit": "months"},
    {"field": "state", "op": "in", "values": ["納品", "交付前設定済", "交付通知書発送", "再通知",
                                               "返戻"]}]}],
    "columns": ["application_id"]}


@pytest.fixture
def waiting(db, ctx):
    """Cards received on hand-picked days (Japan time), in hand-picked states. The clock
    starts at 2026-12-01 10:00 JST: six months back is 2026-06-01."""
    make_storage(db)

    def card(key, received, state):
        made = make_card(db, application_id=f"{key:023d}", state=state)
        made.received_at = received
        return made.application_id

    made = {
        "may20": card(1, datetime(2026, 5, 20, 9, 0, tzinfo=JST), "notice_sent"),
        "jun15": card(2, datetime(2026, 6, 15, 9, 0, tzinfo=JST), "received"),
        "may01_handed": card(3, datetime(2026, 5, 1, 9, 0, tzinfo=JST), "handed_over"),
        "jun01_midnight": card(4, datetime(2026, 6, 1, 0, 0, tzinfo=JST), "setup"),
        "aug01": card(5, datetime(2026, 8, 1, 9, 0, tzinfo=JST), "returned"),
        "jun30_late": card(6, datetime(2026, 6, 30, 23, 59, tzinfo=JST), "renotified"),
        "jul10_midnight": card(7, datetime(2026, 7, 10, 0, 0, tzinfo=JST), "setup"),
        "may31_night": card(8, datetime(2026, 5, 31, 23, 59, tzinfo=JST), "received"),
    }
    db.commit()
    return made


def found(db, data):
    result = extraction.preview(db, data)
    assert result.count == len(result.rows)
    return {r[0] for r in result.rows}


def test_a_saved_older_than_query_finds_other_cards_next_month(db, waiting, clock, people):
    saved = extraction.save_query(db, OLDER_THAN_6_MONTHS, "受取待ち6か月以上",
                                  actor=people["manager"], shared=True)
    db.commit()
    stored = json.loads(saved.definition)
    # saved as written (relative), never as the day it meant when it was saved
    assert stored["groups"][0]["conditions"][0] == {
        "field": "received_at", "op": "older_than", "n": 6, "unit": "months"}
    assert stored["groups"][0]["conditions"][1]["values"] == WAITING
    # 2026-12-01: before 2026-06-01 00:00 JST (the 23:59 of May 31 is in, midnight is not)
    assert found(db, extraction.definition_of(saved)) == {waiting["may20"],
                                                          waiting["may31_night"]}
    clock.advance(days=40)  # 2027-01-10: before 2026-07-10 00:00 JST
    assert found(db, extraction.definition_of(saved)) == {
        waiting["may20"], waiting["may31_night"], waiting["jun15"],
        waiting["jun01_midnight"], waiting["jun30_late"]}


def test_within_the_last_n_and_units(db, waiting, clock):
    def where(op, n, unit):
        return {"subject": "cards", "columns": ["application_id"], "groups": [
            {"op": "and", "conditions": [{"field": "received_at", "op": op, "n": n,
                                          "unit": unit}]}]}

    # since 2026-06-01 (6 months) : everything from June 1 00:00 on
    assert found(db, where("within_last", 6, "months")) == {
        waiting["jun15"], waiting["jun01_midnight"], waiting["aug01"], waiting["jun30_late"],
        waiting["jul10_midnight"]}
    # 183 days before 2026-12-01 is 2026-06-01 as well
    assert found(db, where("within_last", 183, "days")) == found(
        db, where("within_last", 6, "months"))
    assert found(db, where("older_than", 1, "years")) == set()  # before 2025-12-01
    clock.set(datetime(2027, 5, 21, 8, 0, tzinfo=JST))  # a year back: 2026-05-21
    assert found(db, where("older_than", 1, "years")) == {waiting["may20"],
                                                          waiting["may01_handed"]}
    # the end of a month: 2027-03-31 less one month is 2027-02-28
    assert extraction.relative_cutoff(date(2027, 3, 31), 1, "months") == date(2027, 2, 28)
    assert extraction.relative_cutoff(date(2028, 2, 29), 1, "years") == date(2027, 2, 28)
    assert extraction.relative_cutoff(date(2026, 12, 1), 18, "months") == date(2025, 6, 1)


def test_relative_dates_on_a_date_field(db, ctx, clock):
    make_storage(db)
    old = make_card(db, birth_date=date(1956, 11, 30))  # 70 on 2026-11-30
    young = make_card(db, birth_date=date(1956, 12, 1))  # 70 today (2026-12-01)
    rest = make_card(db, birth_date=date(1956, 12, 2))
    data = {"subject": "cards", "columns": ["application_id"], "groups": [
        {"op": "and", "conditions": [{"field": "birth_date", "op": "older_than", "n": 70,
                                      "unit": "years"}]}]}
    assert found(db, data) == {old.application_id}
    data["groups"][0]["conditions"][0]["op"] = "within_last"
    assert found(db, data) == {young.application_id, rest.application_id}


@pytest.mark.parametrize("n, why", [
    ("0", "N は1から9999までの整数で入力してください（入力：0）。"),
    ("10000", "N は1から9999までの整数で入力してください（入力：10000）。"),
    ("1.5", "N は1から9999までの整数で入力してください（入力：1.5）。"),
    ("-3", "N は1から9999までの整数で入力してください（入力：-3）。"),
    ("六", "N は1から9999までの整数で入力してください（入力：六）。"),
    ("", "日数・月数・年数の N を入力してください（1から9999までの整数）。"),
])
def test_n_must_be_a_whole_number_from_1_to_9999(db, ctx, n, why):
    data = {"subject": "cards", "groups": [{"op": "and", "conditions": [
        {"field": "received_at", "op": "older_than", "n": n, "unit": "months"}]}]}
    with pytest.raises(extraction.QueryError) as caught:
        extraction.parse_definition(data)
    assert caught.value.failures == [("グループ1の条件1（納品日時）", why)]


def test_relative_operators_are_for_dates_only(db, ctx):
    data = {"subject": "cards", "groups": [{"op": "and", "conditions": [
        {"field": "name", "op": "older_than", "n": 6, "unit": "months"},
        {"field": "received_at", "op": "older_than", "n": 6, "unit": "weeks"},
        {"field": "received_at", "op": "within_last:days", "value": "６"}]}]}
    with pytest.raises(extraction.QueryError) as caught:
        extraction.parse_definition(data)
    failures = dict(caught.value.failures)
    assert "使えません" in failures["グループ1の条件1（氏名）"]
    assert failures["グループ1の条件2（納品日時）"] == "日・か月・年のどれかを選んでください。"
    assert len(failures) == 2  # the third (full-width ６, unit in the operator) is fine


def test_exports_and_jobs_audit_the_relative_condition_and_its_day(db, waiting, clock,
                                                                   people, app):
    clock.advance(days=40)  # 2027-01-10
    plan = extraction.plan_csv(db, OLDER_THAN_6_MONTHS, actor=people["clerk"])
    body = b"".join(extraction.csv_chunks(app, plan)).decode("utf-8-sig")
    assert len(body.strip().splitlines()) == 1 + 5
    record = db.query(AuditLog).filter(AuditLog.action == "export").one()
    detail = json.loads(record.changes)
    assert detail["today"] == "2027-01-10" and detail["rows"] == 5
    assert detail["conditions"]["groups"][0]["conditions"][0] == {
        "field": "received_at", "op": "older_than", "n": 6, "unit": "months",
        "cutoff": "2026-07-10", "means": "< 2026-07-10"}
