"""The scan station and scanned pages: classification, one-transaction registration,
the ledger sheet, the CLI."""
import json

import pytest
from sqlalchemy import select

from app.models.card import Card
from app.models.scan import ScanBatch
from app.services import cards as svc
from tests.conftest import text_of
from tests.factories import make_card, make_storage
from tests.qrpages import draw_page, multipage_tiff, payload


@pytest.fixture
def shelves(db):
    return [make_storage(db, code=f"金庫A-棚1-箱0{i}", capacity=3, sort_key=i) for i in (1, 2, 3, 4)]


def _new_batch(client):
    response = client.post("/scan/new")
    return int(response.headers["Location"].rstrip("/").split("/")[-1])


def _scan(client, batch_id, text):
    return client.post(f"/scan/{batch_id}/add", data={"payload": text},
                       headers={"Accept": "application/json"}).json


def test_each_scan_is_classified_at_once(login_as, db, shelves):
    existing = make_card(db, application_id="99999999999999999999999")
    client = login_as("clerk")
    batch_id = _new_batch(client)
    first = _scan(client, batch_id, payload(1, "K"))
    assert first["item"]["status"] == "ok" and first["counts"]["ok_k"] == 1
    assert _scan(client, batch_id, payload(2, "S"))["counts"]["ok_s"] == 1
    assert _scan(client, batch_id, payload(1, "K"))["item"]["status"] == "duplicate"
    head = f"MNC1|{existing.application_id}|JL1|ZZ12CD34EF56GH78|K"
    assert _scan(client, batch_id, head + "|山田　太郎|ヤマダ　タロウ|19800301||みどり市|1|1")[
        "item"]["status"] == "exists"
    bad = _scan(client, batch_id, "MNC1|123|JL1|AB12CD34EF56GH78|K")
    assert bad["item"]["status"] == "invalid" and "23桁" in bad["item"]["reason"]
    short = _scan(client, batch_id, payload(3, "K", short=True))
    assert short["item"]["status"] == "incomplete"
    counts = short["counts"]
    assert (counts["ok"], counts["duplicate"], counts["exists"], counts["invalid"],
            counts["incomplete"], counts["total"]) == (2, 1, 1, 1, 1, 6)
    page = text_of(client.get(f"/scan/{batch_id}"))  # kept on the server: a reload loses nothing
    assert "重複" in page and "管理簿に登録済み" in page and "個人情報なし" in page


def test_register_writes_every_valid_row_in_shelf_order_then_prints(login_as, db, shelves):
    client = login_as("clerk", username="madoguchi_s")
    batch_id = _new_batch(client)
    for n, mode in ((1, "S"), (2, "K"), (3, "K"), (4, "S"), (5, "K")):
        _scan(client, batch_id, payload(n, mode))
    _scan(client, batch_id, "garbage")
    response = client.post(f"/scan/{batch_id}/register")
    assert response.headers["Location"].endswith(f"/scan/{batch_id}/sheet")
    created = list(db.execute(select(Card).order_by(Card.id)).scalars())
    assert len(created) == 5 and {c.state for c in created} == {svc.RECEIVED}
    places = [(c.visit_mode, c.storage_place.code) for c in created]
    assert places == [("K", "金庫A-棚1-箱01")] * 3 + [("S", "金庫A-棚1-箱02")] * 2
    assert db.get(ScanBatch, batch_id).status == "registered"
    sheet = client.get(f"/scan/{batch_id}/sheet")
    body = sheet.get_data(as_text=True)
    assert "交付時来庁" in body and "申請時来庁" in body
    assert body.index("交付時来庁") < body.index("申請時来庁")
    again = client.post(f"/scan/{batch_id}/register", follow_redirects=True)
    assert "既に登録または破棄" in text_of(again)
    assert db.query(Card).count() == 5


def test_a_failed_registration_writes_nothing(login_as, db, shelves, monkeypatch):
    client = login_as("clerk")
    batch_id = _new_batch(client)
    for n in range(1, 5):
        _scan(client, batch_id, payload(n, "K"))
    calls = {"n": 0}
    real = svc.prepare_received

    def failing(session, card, **who):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk full")
        return real(session, card, **who)

    monkeypatch.setattr(svc, "prepare_received", failing)
    with pytest.raises(RuntimeError):
        client.post(f"/scan/{batch_id}/register")
    assert db.query(Card).count() == 0
    db.expire_all()
    assert db.get(ScanBatch, batch_id).status == "open"


def test_rows_registered_meanwhile_stop_the_registration(login_as, app, db, shelves):
    client = login_as("clerk")
    batch_id = _new_batch(client)
    other = _new_batch(client)
    for n in (1, 2):
        _scan(client, batch_id, payload(n, "K"))
    _scan(client, other, payload(2, "K"))
    client.post(f"/scan/{other}/register")
    response = client.post(f"/scan/{batch_id}/register", follow_redirects=True)
    assert "何も登録していません" in text_of(response)
    assert db.query(Card).count() == 1
    client.post(f"/scan/{batch_id}/register")
    assert db.query(Card).count() == 2


def test_uploaded_pages_feed_the_batch_and_warn_on_a_count_mismatch(login_as, db, shelves):
    client = login_as("manager")
    batch_id = _new_batch(client)
    page_one = draw_page([payload(n, "K") for n in range(1, 7)], dpi=150)
    page_two = draw_page([payload(n, "S") for n in range(7, 11)], dpi=150)
    tiff = multipage_tiff([page_one, page_two])
    response = client.post(f"/scan/{batch_id}/upload", follow_redirects=True,
                           content_type="multipart/form-data",
                           data={"files": [(__import__("io").BytesIO(tiff), "list.tiff")],
                                 "expected": "１２"})
    page = text_of(response)
    assert "list.tiff 1 ページ目: 6 件" in page and "list.tiff 2 ページ目: 4 件" in page
    assert "一覧表では 12 件ですが、読み取れたのは 10 件です" in page
    batch = db.get(ScanBatch, batch_id)
    assert len(batch.items) == 10 and batch.items[0].source == "list.tiff p.1"


def test_a_file_that_is_not_an_image_is_refused(login_as, db):
    client = login_as("clerk")
    batch_id = _new_batch(client)
    response = client.post(f"/scan/{batch_id}/upload", follow_redirects=True,
                           content_type="multipart/form-data",
                           data={"files": [(__import__("io").BytesIO(b"hello"), "notes.txt")]})
    assert "画像またはPDFとして読めませんでした" in text_of(response)


def test_viewer_cannot_scan(login_as):
    assert login_as("viewer").get("/scan/").status_code == 403


def test_cli_decode_and_register(app, db, shelves, tmp_path):
    path = tmp_path / "page.png"
    path.write_bytes(draw_page([payload(n, "KS"[n % 2]) for n in range(1, 5)] +
                               ["MNC1|bad"], dpi=150))
    runner = app.test_cli_runner()
    decoded = runner.invoke(args=["qr", "decode", str(path)])
    lines = [json.loads(line) for line in decoded.output.splitlines()]
    assert len(lines) == 5 and sum("fields" in line for line in lines) == 4
    assert any("error" in line for line in lines) and lines[0]["page"] == 1
    dry = runner.invoke(args=["qr", "register", "--dry-run", str(path)])
    assert "dry run: 5 codes: invalid 1, ok 4" in dry.output
    assert db.query(Card).count() == 0
    done = runner.invoke(args=["qr", "register", str(path)])
    assert done.exit_code == 0, done.output
    assert "registered 4 cards" in done.output
    assert db.query(Card).count() == 4
