"""The one archive format of data leaving the product (issue 15): the migration export
(`data export`), the backups (`backup create`) and the rejected rows of a ledger import are
all written and read here.

An archive is a ZIP file (ZIP64, deflated) of parts plus ``manifest.json``::

    {"format": "mnc-archive/1", "kind": "migration-export" | "backup" | ...,
     "product_version": "1.15.0", "schema_revision": "0018_...",
     "created_at": "2026-11-28T10:00:00+09:00", "created_by": "cli:root",
     "files": [{"path": "tables/card.csv", "rows": 300000, "bytes": 81234567,
                "sha256": "…"}, …],
     …anything the kind adds (counts, settings)…}

Every part is hashed while it is written, so a reader checks each one against the manifest
(:func:`verify`) before it trusts any. The manifest is written last: an archive cut short
has none and is refused.

Sealing (:func:`seal` / :func:`unseal`) encrypts a whole file with AES-256-GCM for storage
away from the server (backups): a header naming the key by its fingerprint (never the key),
then chunks of at most 1 MiB, each its own GCM message whose nonce is a random prefix and
the chunk's number and whose associated data is the header and a last-chunk flag. So a
flipped byte, chunks reordered, dropped or cut off, and a wrong key are each refused before
anything of the file is used; and a file of any size is sealed in constant memory.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import struct
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask_babel import gettext as _

from app.services.errors import DomainError

FORMAT = "mnc-archive/1"
MANIFEST = "manifest.json"
_COPY_CHUNK = 1024 * 1024


class ArchiveError(DomainError):
    """The archive cannot be trusted: no manifest, a part missing, changed or extra."""


class SealKeyError(DomainError):
    """The sealed file was made with another key than the one given."""


class SealIntegrityError(DomainError):
    """The sealed file was changed or cut short after it was sealed."""


def product_version() -> str:
    from app.version import __version__

    return __version__


def schema_revision(connection) -> str | None:
    """The Alembic revision the database is at (None for a database without one)."""
    from sqlalchemy import text

    try:
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception:  # noqa: BLE001  (no table yet: an empty database)
        return None


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_COPY_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- writing --------------------------------------------------------------------------------

@dataclass
class Part:
    path: str
    sha256: str
    bytes: int
    rows: int | None = None

    def as_json(self) -> dict:
        entry = {"path": self.path, "bytes": self.bytes, "sha256": self.sha256}
        if self.rows is not None:
            entry["rows"] = self.rows
        return entry


class _HashingWriter(io.RawIOBase):
    """Wraps a ZIP member opened for writing: counts and hashes what passes through."""

    def __init__(self, target: IO[bytes]):
        self.target = target
        self.digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        data = bytes(data)
        self.digest.update(data)
        self.size += len(data)
        self.target.write(data)
        return len(data)


@dataclass
class ArchiveWriter:
    """``with ArchiveWriter(path, kind) as archive: archive.add_bytes(...)``; the manifest
    is written when the block ends without an error (a failed write leaves no archive: the
    file is written under a temporary name and renamed at the end)."""

    path: str
    kind: str
    meta: dict = field(default_factory=dict)
    compression: int = zipfile.ZIP_DEFLATED
    parts: list[Part] = field(default_factory=list)

    def __post_init__(self):
        self._temporary = f"{self.path}.{os.getpid()}.part"
        self._zip = zipfile.ZipFile(self._temporary, "w", compression=self.compression,
                                    compresslevel=1 if self.compression else None,
                                    allowZip64=True)

    def __enter__(self) -> "ArchiveWriter":
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if error is None:
            self.close()
        else:
            self.abort()

    def open(self, arcname: str) -> "_PartStream":
        """A binary stream for one part; call ``.close(rows=N)`` when it is written."""
        self._check_name(arcname)
        member = self._zip.open(zipfile.ZipInfo(arcname, date_time=_zip_time()), "w",
                                force_zip64=True)
        return _PartStream(self, arcname, member)

    def add_bytes(self, arcname: str, data: bytes, rows: int | None = None) -> Part:
        stream = self.open(arcname)
        stream.write(data)
        return stream.close(rows=rows)

    def add_file(self, arcname: str, source: str, rows: int | None = None) -> Part:
        stream = self.open(arcname)
        with open(source, "rb") as handle:
            for chunk in iter(lambda: handle.read(_COPY_CHUNK), b""):
                stream.write(chunk)
        return stream.close(rows=rows)

    def close(self) -> dict:
        from app import clock
        from app.services import audit

        manifest = {"format": FORMAT, "kind": self.kind,
                    "product_version": product_version(),
                    "created_at": clock.now().isoformat(timespec="seconds"),
                    "created_by": audit.current_actor().username,
                    **self.meta,
                    "files": [part.as_json() for part in self.parts]}
        self._zip.writestr(zipfile.ZipInfo(MANIFEST, date_time=_zip_time()),
                           json.dumps(manifest, ensure_ascii=False, indent=1))
        self._zip.close()
        with open(self._temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(self._temporary, self.path)
        return manifest

    def abort(self) -> None:
        try:
            self._zip.close()
        finally:
            if os.path.exists(self._temporary):
                os.remove(self._temporary)

    def _check_name(self, arcname: str) -> None:
        if (arcname == MANIFEST or arcname.startswith("/") or ".." in arcname.split("/")
                or any(part.path == arcname for part in self.parts)):
            raise ValueError(f"bad or repeated part name: {arcname!r}")


class _PartStream(_HashingWriter):
    def __init__(self, archive: ArchiveWriter, arcname: str, member: IO[bytes]):
        super().__init__(member)
        self.archive, self.arcname = archive, arcname

    def close(self, rows: int | None = None) -> Part:  # type: ignore[override]
        if self.closed:
            return self.archive.parts[-1]
        self.target.close()
        part = Part(self.arcname, self.digest.hexdigest(), self.size, rows)
        self.archive.parts.append(part)
        super().close()
        return part


def _zip_time() -> tuple:
    from app import clock

    now = clock.now()
    return (max(now.year, 1980), now.month, now.day, now.hour, now.minute, now.second)


# --- reading --------------------------------------------------------------------------------

class ArchiveReader:
    """An archive opened for reading; ``manifest`` is read and checked for shape when
    opened, the parts only by :meth:`verify` (or as each is read with ``open``)."""

    def __init__(self, path: str):
        self.path = path
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as error:
            raise ArchiveError(_("%(file)s is not an archive of this product (%(why)s).",
                                 file=os.path.basename(path), why=error)) from None
        try:
            self.manifest = json.loads(self._zip.read(MANIFEST))
        except KeyError:
            raise ArchiveError(_("%(file)s has no manifest.json: it was cut short or is "
                                 "not an archive of this product.",
                                 file=os.path.basename(path))) from None
        except (ValueError, zipfile.BadZipFile) as error:
            raise ArchiveError(_("The manifest of %(file)s cannot be read (%(why)s).",
                                 file=os.path.basename(path), why=error)) from None
        if self.manifest.get("format") != FORMAT:
            raise ArchiveError(_("%(file)s is in format %(format)s, not %(expected)s.",
                                 file=os.path.basename(path),
                                 format=self.manifest.get("format"), expected=FORMAT))
        self.parts = {entry["path"]: entry for entry in self.manifest.get("files", [])}

    def __enter__(self) -> "ArchiveReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()

    @property
    def kind(self) -> str:
        return self.manifest.get("kind", "")

    def names(self) -> list[str]:
        return list(self.parts)

    def open(self, arcname: str) -> IO[bytes]:
        """The part as a binary stream (not checked: call :meth:`verify` first)."""
        if arcname not in self.parts:
            raise ArchiveError(_("%(part)s is not in the archive.", part=arcname))
        return self._zip.open(arcname)

    def read(self, arcname: str) -> bytes:
        with self.open(arcname) as handle:
            return handle.read()

    def extract(self, arcname: str, target: str) -> str:
        with self.open(arcname) as source, open(target, "wb") as out:
            for chunk in iter(lambda: source.read(_COPY_CHUNK), b""):
                out.write(chunk)
        return target

    def verify(self) -> list[str]:
        """Every part against the manifest (size and SHA-256), and no part that the
        manifest does not list. Returns the problems in Japanese; empty when sound."""
        problems = []
        members = {info.filename for info in self._zip.infolist()} - {MANIFEST}
        for extra in sorted(members - set(self.parts)):
            problems.append(_("%(part)s is in the archive but not in its manifest.",
                              part=extra))
        for name, entry in self.parts.items():
            if name not in members:
                problems.append(_("%(part)s is listed in the manifest but missing.",
                                  part=name))
                continue
            digest, size = hashlib.sha256(), 0
            try:
                with self._zip.open(name) as handle:
                    for chunk in iter(lambda: handle.read(_COPY_CHUNK), b""):
                        digest.update(chunk)
                        size += len(chunk)
            except (zipfile.BadZipFile, OSError, EOFError) as error:
                problems.append(_("%(part)s cannot be read (%(why)s).", part=name, why=error))
                continue
            if size != entry.get("bytes") or digest.hexdigest() != entry.get("sha256"):
                problems.append(_("%(part)s does not match its checksum in the manifest.",
                                  part=name))
        return problems

    def verified(self) -> "ArchiveReader":
        """Self when :meth:`verify` finds nothing, else :class:`ArchiveError` listing
        what it found."""
        problems = self.verify()
        if problems:
            raise ArchiveError(" ".join(problems))
        return self


def comparable(manifest: dict) -> dict:
    """The manifest without what differs between two exports of the same data (when, by
    whom): two such results are equal when the data is."""
    return {key: value for key, value in manifest.items()
            if key not in ("created_at", "created_by")}


# --- sealing (AES-256-GCM, chunked) ---------------------------------------------------------

SEAL_MAGIC = b"MNCSEAL1"
SEAL_CHUNK = 1024 * 1024
_HEADER = struct.Struct(">8s16s8sI")  # magic, key fingerprint, nonce prefix, chunk size
_TAG = 16


def key_fingerprint(key: bytes) -> bytes:
    """16 bytes that name a key without revealing it (shown as hex to people)."""
    return hashlib.sha256(b"mnc-seal-key:" + key).digest()[:16]


def _check_key(key: bytes) -> AESGCM:
    if not isinstance(key, (bytes, bytearray)) or len(key) != 32:
        raise ValueError("an AES-256 key is 32 bytes")
    return AESGCM(bytes(key))


def seal(source: str, target: str, key: bytes) -> None:
    """Encrypt the file ``source`` into ``target`` (written under a temporary name and
    renamed when complete)."""
    aead = _check_key(key)
    header = _HEADER.pack(SEAL_MAGIC, key_fingerprint(key), secrets.token_bytes(8),
                          SEAL_CHUNK)
    prefix = header[24:32]
    temporary = f"{target}.{os.getpid()}.part"
    try:
        with open(source, "rb") as plain, open(temporary, "wb") as out:
            out.write(header)
            chunk, number = plain.read(SEAL_CHUNK), 0
            while True:
                following = plain.read(SEAL_CHUNK)
                last = not following
                nonce = prefix + struct.pack(">I", number)
                out.write(aead.encrypt(nonce, chunk, header + (b"\x01" if last else b"\x00")))
                if last:
                    break
                chunk, number = following, number + 1
                if number >= 2 ** 32:
                    raise ValueError("file too large to seal")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def sealed_key_fingerprint(path: str) -> str:
    """The fingerprint (hex) of the key a sealed file needs."""
    with open(path, "rb") as handle:
        return _read_header(handle, path)[1].hex()


def _read_header(handle: IO[bytes], path: str) -> tuple:
    raw = handle.read(_HEADER.size)
    if len(raw) < _HEADER.size or raw[:8] != SEAL_MAGIC:
        raise SealIntegrityError(_("%(file)s is not an encrypted archive of this product.",
                                   file=os.path.basename(path)))
    magic, fingerprint, prefix, chunk_size = _HEADER.unpack(raw)
    if not 1 <= chunk_size <= 64 * 1024 * 1024:
        raise SealIntegrityError(_("%(file)s is damaged (its header is not valid).",
                                   file=os.path.basename(path)))
    return raw, fingerprint, prefix, chunk_size


def iter_unsealed(source: str, key: bytes) -> Iterator[bytes]:
    """The plaintext of a sealed file, chunk by chunk, each authenticated before it is
    yielded; raises when the key is wrong, a chunk was changed, or the file was cut."""
    aead = _check_key(key)
    name = os.path.basename(source)
    with open(source, "rb") as handle:
        header, fingerprint, prefix, chunk_size = _read_header(handle, source)
        if fingerprint != key_fingerprint(key):
            raise SealKeyError(_("%(file)s was encrypted with another key (fingerprint "
                                 "%(needed)s; the key given is %(given)s).", file=name,
                                 needed=fingerprint.hex()[:16],
                                 given=key_fingerprint(key).hex()[:16]))
        number = 0
        record = handle.read(chunk_size + _TAG)
        while True:
            following = handle.read(chunk_size + _TAG)
            last = not following
            nonce = prefix + struct.pack(">I", number)
            try:
                yield aead.decrypt(nonce, record, header + (b"\x01" if last else b"\x00"))
            except InvalidTag:
                raise SealIntegrityError(_("%(file)s was changed or damaged after it was "
                                           "encrypted (part %(part)d does not check): "
                                           "nothing of it is used.", file=name,
                                           part=number + 1)) from None
            if last:
                return
            record, number = following, number + 1


def unseal(source: str, target: str, key: bytes) -> None:
    """Decrypt ``source`` into ``target``; on any error no ``target`` is left."""
    temporary = f"{target}.{os.getpid()}.part"
    try:
        with open(temporary, "wb") as out:
            for chunk in iter_unsealed(source, key):
                out.write(chunk)
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def now_stamp(moment: datetime) -> str:
    """``20261128-1030``: for file names of archives."""
    return moment.strftime("%Y%m%d-%H%M%S")
