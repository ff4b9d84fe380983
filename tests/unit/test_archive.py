"""The one archive format (app/services/archive.py): parts hashed into a manifest, checked
when read; sealing with AES-256-GCM in chunks, refusing a wrong key, a flipped byte, a
reordered or cut-off file."""
import os
import zipfile

import pytest

from app.services import archive


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield


def _write(path, **parts):
    with archive.ArchiveWriter(str(path), "test", {"schema_revision": "r1"}) as writer:
        for name, data in parts.items():
            writer.add_bytes(name.replace("__", "/"), data, rows=data.count(b"\n"))
    return path


def test_manifest_lists_every_part_with_its_checksum(ctx, tmp_path):
    path = _write(tmp_path / "a.zip", tables__card=b"id\n1\n2\n", notes=b"x")
    with archive.ArchiveReader(str(path)) as reader:
        manifest = reader.manifest
        assert manifest["format"] == archive.FORMAT and manifest["kind"] == "test"
        assert manifest["schema_revision"] == "r1"
        assert manifest["product_version"]
        assert manifest["created_by"] == "system"
        card = reader.parts["tables/card"]
        assert card["rows"] == 3 and card["bytes"] == 7
        assert reader.verify() == []
        assert reader.read("tables/card") == b"id\n1\n2\n"


def test_a_changed_part_or_a_missing_manifest_is_refused(ctx, tmp_path):
    path = _write(tmp_path / "a.zip", one=b"hello")
    with zipfile.ZipFile(path) as source:
        manifest = source.read("manifest.json")
    forged = tmp_path / "forged.zip"
    with zipfile.ZipFile(forged, "w") as out:
        out.writestr("one", b"hellO")
        out.writestr("extra", b"?")
        out.writestr("manifest.json", manifest)
    with archive.ArchiveReader(str(forged)) as reader:
        problems = reader.verify()
        assert any("one" in p for p in problems) and any("extra" in p for p in problems)
        with pytest.raises(archive.ArchiveError):
            reader.verified()
    cut = tmp_path / "cut.zip"
    with zipfile.ZipFile(cut, "w") as out:
        out.writestr("one", b"hello")
    with pytest.raises(archive.ArchiveError, match="manifest"):
        archive.ArchiveReader(str(cut))


def test_a_failed_write_leaves_no_archive(ctx, tmp_path):
    target = tmp_path / "b.zip"
    with pytest.raises(RuntimeError):
        with archive.ArchiveWriter(str(target), "test") as writer:
            writer.add_bytes("one", b"1")
            raise RuntimeError("stop")
    assert os.listdir(tmp_path) == []


def test_two_archives_of_the_same_data_compare_equal(ctx, tmp_path):
    a = _write(tmp_path / "a.zip", one=b"1\n")
    b = _write(tmp_path / "b.zip", one=b"1\n")
    with archive.ArchiveReader(str(a)) as ra, archive.ArchiveReader(str(b)) as rb:
        assert archive.comparable(ra.manifest) == archive.comparable(rb.manifest)


KEY, OTHER = bytes(range(32)), bytes(32)


@pytest.mark.parametrize("size", [0, 10, archive.SEAL_CHUNK, 2 * archive.SEAL_CHUNK + 5])
def test_seal_round_trip(ctx, tmp_path, size):
    plain = tmp_path / "plain"
    plain.write_bytes(os.urandom(size))
    archive.seal(str(plain), str(tmp_path / "sealed"), KEY)
    assert archive.sealed_key_fingerprint(str(tmp_path / "sealed")) == \
        archive.key_fingerprint(KEY).hex()
    archive.unseal(str(tmp_path / "sealed"), str(tmp_path / "back"), KEY)
    assert (tmp_path / "back").read_bytes() == plain.read_bytes()


def test_seal_refuses_a_wrong_key_a_flipped_byte_and_a_cut(ctx, tmp_path):
    plain = tmp_path / "plain"
    plain.write_bytes(os.urandom(2 * archive.SEAL_CHUNK + 100))
    sealed = tmp_path / "sealed"
    archive.seal(str(plain), str(sealed), KEY)
    with pytest.raises(archive.SealKeyError, match="別の鍵で暗号化されています"):
        archive.unseal(str(sealed), str(tmp_path / "out"), OTHER)
    data = bytearray(sealed.read_bytes())
    for mutate in (lambda d: d.__setitem__(len(d) // 2, d[len(d) // 2] ^ 1),
                   lambda d: d.__delitem__(slice(len(d) - archive.SEAL_CHUNK // 2, None)),
                   lambda d: d.__delitem__(slice(len(d) - 116, None))):  # drop the last chunk
        copy = bytearray(data)
        mutate(copy)
        (tmp_path / "bad").write_bytes(bytes(copy))
        with pytest.raises(archive.SealIntegrityError):
            archive.unseal(str(tmp_path / "bad"), str(tmp_path / "out"), KEY)
        assert not (tmp_path / "out").exists()
    (tmp_path / "junk").write_bytes(b"not sealed at all")
    with pytest.raises(archive.SealIntegrityError):
        archive.unseal(str(tmp_path / "junk"), str(tmp_path / "out"), KEY)
