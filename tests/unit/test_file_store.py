"""The shared file store (issue 16 §1): a file put in a transaction appears with it or not
at all, comes back piece by piece (one statement per piece), is taken once by one of two
requests, and goes with its pieces."""
import hashlib
import os
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app import clock
from app.models.stored_file import StoredFile, StoredFileChunk
from app.services import file_store, unit


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(file_store, "CHUNK_SIZE", 1000)


def _count(db, model):
    return db.execute(select(func.count()).select_from(model)).scalar()


def test_put_and_stream_in_pieces(db, tmp_path, small_chunks):
    content = os.urandom(4500)
    path = tmp_path / "a.bin"
    path.write_bytes(content)
    with unit.transaction(db):
        handle = file_store.put(db, str(path), kind="extraction", token="tok-a",
                                owner="kanri", filename="抽出.xlsx")
    assert (handle.size, handle.chunks) == (4500, 5)
    stored = db.execute(select(StoredFile)).scalar_one()
    assert stored.sha256 == hashlib.sha256(content).hexdigest()
    assert _count(db, StoredFileChunk) == 5
    pieces = list(file_store.stream(file_store.get(db, "tok-a")))
    assert [len(p) for p in pieces] == [1000, 1000, 1000, 1000, 500]
    assert b"".join(pieces) == content
    assert file_store.reader(handle).read() == content
    target = tmp_path / "copy.bin"
    file_store.save_to(handle, str(target))
    assert target.read_bytes() == content
    with pytest.raises(file_store.FileGoneError):
        file_store.get(db, "tok-a", kind="protected_export")  # another kind: not found


def test_an_empty_file_and_a_rolled_back_put(db, small_chunks):
    with unit.transaction(db):
        empty = file_store.put_bytes(db, b"", kind="extraction", token="empty",
                                     filename="e.csv")
    assert (empty.size, empty.chunks) == (0, 0) and file_store.read_all(empty) == b""
    with pytest.raises(RuntimeError), unit.transaction(db):
        file_store.put_bytes(db, b"x" * 3000, kind="extraction", token="gone",
                             filename="g.csv")
        raise RuntimeError("the caller's unit fails")
    assert file_store.find(db, "gone") is None and _count(db, StoredFileChunk) == 0


def test_a_file_removed_while_streaming_never_ends_short(db, small_chunks):
    with unit.transaction(db):
        handle = file_store.put_bytes(db, b"y" * 2500, kind="extraction", token="t",
                                      filename="t.csv")
    pieces = file_store.stream(handle)
    assert next(pieces) == b"y" * 1000
    with unit.transaction(db):
        assert file_store.delete_token(db, "t")
    with pytest.raises(file_store.FileGoneError):
        next(pieces)
    assert _count(db, StoredFile) == 0 and _count(db, StoredFileChunk) == 0


def test_claim_once_for_the_owner(db):
    with unit.transaction(db):
        file_store.put_bytes(db, b"zip", kind="protected_export", token="p",
                             owner="kanri", filename="x.zip")
    with unit.transaction(db):
        assert file_store.claim(db, "p", kind="protected_export", owner="other") is None
        assert file_store.claim(db, "p", kind="extraction", owner="kanri") is None
    with unit.transaction(db):
        taken = file_store.claim(db, "p", kind="protected_export", owner="kanri")
    assert taken is not None and file_store.read_all(taken) == b"zip"
    with unit.transaction(db):
        assert file_store.claim(db, "p", kind="protected_export", owner="kanri") is None


def test_purge_by_kind_age_and_tokens(db):
    now = clock.now()
    with unit.transaction(db):
        file_store.put_bytes(db, b"1", kind="protected_export", token="old",
                             filename="1.zip", now=now - timedelta(hours=2))
        file_store.put_bytes(db, b"2", kind="protected_export", token="new",
                             filename="2.zip", now=now)
        file_store.put_bytes(db, b"3", kind="extraction", token="job-live", filename="3")
        file_store.put_bytes(db, b"4", kind="extraction", token="job-gone", filename="4")
    with unit.transaction(db):
        assert file_store.purge(db, kind="protected_export",
                                older_than=now - timedelta(hours=1)) == 1
        assert file_store.purge(db, kind="extraction", keep_tokens={"job-live"}) == 1
    left = sorted(db.execute(select(StoredFile.token)).scalars())
    assert left == ["job-live", "new"]
    assert _count(db, StoredFileChunk) == 2


def test_pieces_of_one_mebibyte(db, tmp_path):
    """The real piece size: a file of 3.5 MiB is 4 rows, read back one by one."""
    content = os.urandom(3 * file_store.CHUNK_SIZE + file_store.CHUNK_SIZE // 2)
    path = tmp_path / "big.bin"
    path.write_bytes(content)
    with unit.transaction(db):
        handle = file_store.put(db, str(path), kind="extraction", token="big",
                                filename="big.xlsx")
    assert handle.chunks == 4 and handle.size == len(content)
    sizes = [len(piece) for piece in file_store.stream(handle)]
    assert sizes == [file_store.CHUNK_SIZE] * 3 + [file_store.CHUNK_SIZE // 2]
    assert hashlib.sha256(file_store.reader(handle).read()).hexdigest() == \
        hashlib.sha256(content).hexdigest()
