"""The count printed on uploaded pages is compared with the codes read from THOSE pages,
not with the whole batch (issue 12, 6): a typed code and a refused one before the upload
made a sheet of 20 with a printed 20 warn "20 件ですが、22 件"."""
import io

import pytest

from app.models.scan import ScanBatch
from tests.conftest import text_of
from tests.factories import make_storage
from tests.qrpages import draw_page, payload

WARNING = "一覧表では {expected} 件ですが、読み取れたのは {found} 件です"


@pytest.fixture
def shelves(db):
    return [make_storage(db, code=f"金庫B-棚1-箱0{i}", capacity=30, sort_key=i) for i in (1, 2)]


@pytest.fixture(scope="module")
def sheet_of_20():
    return draw_page([payload(n, "K") for n in range(1, 21)], dpi=150)


def _batch_with_a_typed_and_a_refused_code(client):
    batch_id = int(client.post("/scan/new").headers["Location"].rstrip("/").split("/")[-1])
    typed = client.post(f"/scan/{batch_id}/add", data={"payload": payload(500, "S")},
                        headers={"Accept": "application/json"}).json
    refused = client.post(f"/scan/{batch_id}/add", data={"payload": "MNC1|123|JL1|X|K"},
                          headers={"Accept": "application/json"}).json
    assert typed["item"]["status"] == "ok" and refused["item"]["status"] == "invalid"
    return batch_id


def _upload(client, batch_id, sheet, expected):
    return text_of(client.post(f"/scan/{batch_id}/upload", follow_redirects=True,
                               content_type="multipart/form-data",
                               data={"files": [(io.BytesIO(sheet), "sheet.png")],
                                     "expected": expected}))


def test_a_sheet_of_20_with_a_printed_20_does_not_warn_after_typed_codes(
        login_as, db, shelves, sheet_of_20):
    client = login_as("clerk")
    batch_id = _batch_with_a_typed_and_a_refused_code(client)
    page = _upload(client, batch_id, sheet_of_20, "20")
    assert "sheet.png 1 ページ目: 20 件" in page
    assert "読み取れたのは" not in page
    assert "うち画像から 20 件 / 一覧表 20 件" in page
    assert len(db.get(ScanBatch, batch_id).items) == 22


def test_a_printed_21_warns_with_the_20_read_from_the_sheet(login_as, db, shelves, sheet_of_20):
    client = login_as("clerk")
    batch_id = _batch_with_a_typed_and_a_refused_code(client)
    page = _upload(client, batch_id, sheet_of_20, "21")
    assert WARNING.format(expected=21, found=20) in page
    assert WARNING.format(expected=21, found=22) not in page
