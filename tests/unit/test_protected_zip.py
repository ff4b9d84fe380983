"""AES-256 encrypted ZIPs for files that leave the server (issue 15 §4, S2): they open
with the right password (read back with pyzipper), never without it or with a wrong one;
Japanese inner names carry the UTF-8 flag; a big file streams; the password policy."""
import io
import os
import re
import struct
import tracemalloc
import zipfile

import pytest
import pyzipper

from app.services import protected_zip
from app.services.errors import InputError
from app.services.protected_zip import Part

PASSWORD = "correct-horse-battery"


def _zip(parts, password=PASSWORD):
    return protected_zip.to_bytes(parts, password)


def test_reads_back_with_the_right_password_only(app):
    data = _zip([Part("一覧_山田.csv", "氏名,住所\r\n山田　太郎,札幌市\r\n".encode("utf-8-sig")),
                 Part("qr/0001.png", b"\x89PNG" + bytes(range(256)) * 10)])
    assert protected_zip.read_all(io.BytesIO(data), PASSWORD) == {
        "一覧_山田.csv": "氏名,住所\r\n山田　太郎,札幌市\r\n".encode("utf-8-sig"),
        "qr/0001.png": b"\x89PNG" + bytes(range(256)) * 10}
    with pytest.raises(RuntimeError, match="Bad password"):
        protected_zip.read_all(io.BytesIO(data), "wrong-password-123")
    with pyzipper.AESZipFile(io.BytesIO(data)) as archive, \
            pytest.raises(RuntimeError, match="password"):
        archive.read("一覧_山田.csv")
    # the standard library sees an encrypted entry and cannot read it either
    with zipfile.ZipFile(io.BytesIO(data)) as archive, pytest.raises(RuntimeError):
        archive.read("qr/0001.png")
    assert "山田　太郎".encode("utf-8") not in data and b"\x89PNG" not in data


def test_winzip_aes_256_deflated_and_utf8_names(app):
    data = _zip([Part("交付通知書.csv", b"a" * 5000)])
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.infolist()[0]
        assert info.filename == "交付通知書.csv"
        assert info.flag_bits & 0x800  # UTF-8 name (7-Zip, WinZip, Lhaplus show it right)
        assert info.flag_bits & 0x1  # encrypted
        assert info.compress_type == 99  # WinZip AES (method 99)
        # the AES extra field (0x9901): AE-2, vendor "AE", strength 3 = 256 bits, deflate
        extra = info.extra
        at = extra.find(b"\x01\x99")
        assert at >= 0
        _tag, _size, version, vendor, strength, method = struct.unpack(
            "<HHH2sBH", extra[at:at + 11])
        assert (vendor, strength, method) == (b"AE", 3, 8) and version in (1, 2)
        assert info.compress_size < 5000  # deflated inside


def test_a_big_file_streams_from_disk(app, tmp_path):
    source = tmp_path / "big.csv"
    block = os.urandom(1024 * 1024)
    with open(source, "wb") as handle:
        for _n in range(24):  # 24 MB
            handle.write(block)
    target = tmp_path / "big.zip"
    tracemalloc.start()
    size = protected_zip.to_file(str(target), [Part("big.csv", str(source))], PASSWORD)
    _now, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert size == os.path.getsize(target) > 24 * 1024 * 1024
    assert peak < 8 * 1024 * 1024  # chunks, never the whole file in memory
    assert not os.path.exists(str(target) + ".part")
    with pyzipper.AESZipFile(target) as archive:
        archive.setpassword(PASSWORD.encode())
        with archive.open("big.csv") as inner:
            assert inner.read(1024 * 1024) == block


def test_chunks_from_a_generator_are_written_as_they_come(app):
    def chunks():
        yield "申請書ID\r\n".encode("cp932")
        for n in range(1000):
            yield f"{n:023d}\r\n".encode("cp932")
    data = _zip([Part("抽出.csv", chunks())])
    text = protected_zip.read_all(io.BytesIO(data), PASSWORD)["抽出.csv"].decode("cp932")
    assert text.splitlines()[0] == "申請書ID" and len(text.splitlines()) == 1001


def test_generated_passwords_are_readable_and_different(app):
    seen = {protected_zip.generate_password() for _n in range(200)}
    assert len(seen) == 200
    for password in seen:
        assert re.fullmatch(r"[A-Za-z2-9]{4}(-[A-Za-z2-9]{4}){3}", password)
        assert not set(password) & set("0O1lI")
        protected_zip.check_password(password)  # a generated one passes the policy


@pytest.mark.parametrize("typed", ["", "short", "x" * 11])
def test_a_typed_password_needs_twelve_characters(app, typed):
    with app.test_request_context(), pytest.raises(InputError) as refused:
        protected_zip.check_password(typed)
    with app.test_request_context(headers={"Accept-Language": "ja"}):
        assert "12文字以上" in str(refused.value.message)


def test_a_twelve_character_password_with_japanese_is_accepted(app):
    password = "ひみつのパスワード123"
    assert protected_zip.check_password(password) == password
    data = _zip([Part("a.txt", b"x")], password)
    assert protected_zip.read_all(io.BytesIO(data), password) == {"a.txt": b"x"}
