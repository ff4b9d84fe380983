"""The shared file store (issue 16 §1): files one request or job makes and another request
serves, kept in the database (app/models/stored_file.py) so that any app server behind the
load balancer can serve them, and a server's restart loses nothing.

- :func:`put` copies a local file (or a binary stream) in pieces of CHUNK_SIZE into the
  caller's transaction: the file appears with whatever the caller changes with it (an
  export job marked done) or not at all.
- :func:`stream` / :func:`reader` read it back one piece per statement, each on a short
  connection of its own: a file of 50 MB is never in memory whole, and no transaction is
  held open while a slow client downloads. A piece missing meanwhile (the file was
  removed) ends the stream with :class:`FileGoneError`, never a silently short file.
- :func:`claim`: the compare-and-set of a file meant for a single download (one request
  of two gets it).
- :func:`delete` and :func:`purge` remove files (their pieces go with them).

The files are temporary and not part of the migration export."""
from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Iterator, Union

from sqlalchemy import and_, delete, insert, select, update

from app import clock
from app.models.stored_file import StoredFile, StoredFileChunk
from app.services.errors import DomainError

CHUNK_SIZE = 1024 * 1024  # bytes per stored_file_chunk row


class FileGoneError(DomainError):
    """The stored file is not there (removed, or never made)."""


@dataclass(frozen=True)
class Handle:
    """What a download needs to read a stored file after the request's transaction ended:
    its id, size and number of pieces, and the engine to read them with."""

    id: int
    token: str
    filename: str
    size: int
    chunks: int
    engine: object
    owner: str | None = None
    kind: str = ""


def handle_of(session, stored: StoredFile) -> Handle:
    return Handle(stored.id, stored.token, stored.filename, stored.size, stored.chunks,
                  session.get_bind(), stored.owner, stored.kind)


def put(session, source: Union[str, os.PathLike, BinaryIO], *, kind: str, token: str,
        filename: str, owner: str | None = None, now: datetime | None = None) -> Handle:
    """Copy ``source`` (a path or a binary file) into the store, in the caller's
    transaction (flushed, never committed here). One piece is read, inserted and dropped
    at a time."""
    stored = StoredFile(kind=kind, token=token, owner=owner, filename=filename, size=0,
                        chunks=0, created_at=now or clock.now())
    session.add(stored)
    session.flush()
    digest, size, seq = hashlib.sha256(), 0, 0
    opened = isinstance(source, (str, os.PathLike))
    stream = open(source, "rb") if opened else source
    try:
        while block := stream.read(CHUNK_SIZE):
            session.execute(insert(StoredFileChunk).values(file_id=stored.id, seq=seq,
                                                           data=block))
            digest.update(block)
            size += len(block)
            seq += 1
    finally:
        if opened:
            stream.close()
    session.execute(update(StoredFile).where(StoredFile.id == stored.id)
                    .values(size=size, chunks=seq, sha256=digest.hexdigest())
                    .execution_options(synchronize_session=False))
    session.expire(stored)
    return handle_of(session, stored)


def put_bytes(session, content: bytes, **options) -> Handle:
    return put(session, io.BytesIO(content), **options)


def find(session, token: str | None, kind: str | None = None) -> StoredFile | None:
    """The stored file of ``token`` (of ``kind`` when given), else None. Reads only."""
    if not token or not isinstance(token, str) or len(token) > 100:
        return None
    statement = select(StoredFile).where(StoredFile.token == token)
    if kind is not None:
        statement = statement.where(StoredFile.kind == kind)
    return session.execute(statement).scalar_one_or_none()


def get(session, token: str | None, kind: str | None = None) -> Handle:
    stored = find(session, token, kind)
    if stored is None:
        raise FileGoneError()
    return handle_of(session, stored)


def stream(handle: Handle) -> Iterator[bytes]:
    """The file's pieces in order, each read by one statement on a short connection. Each
    piece is read through its file's token too: a file removed meanwhile stops the
    download (FileGoneError), even where SQLite gives its id to the next file stored."""
    table, files = StoredFileChunk.__table__, StoredFile.__table__
    for seq in range(handle.chunks):
        with handle.engine.connect() as connection:
            data = connection.execute(
                select(table.c.data).join(files, files.c.id == table.c.file_id).where(
                    table.c.file_id == handle.id, table.c.seq == seq,
                    files.c.token == handle.token)).scalar()
        if data is None:
            raise FileGoneError()
        yield bytes(data)


class _ChunkReader(io.RawIOBase):
    """A read-only binary file over :func:`stream` (for send_file and zip writers)."""

    def __init__(self, handle: Handle, on_close=None):
        self._pieces = stream(handle)
        self._left = b""
        self._on_close = on_close

    def close(self) -> None:
        if not self.closed and self._on_close is not None:
            callback, self._on_close = self._on_close, None
            try:
                callback()
            finally:
                super().close()
            return
        super().close()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._left:
            try:
                self._left = next(self._pieces)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._left))
        buffer[:size] = self._left[:size]
        self._left = self._left[size:]
        return size


def reader(handle: Handle, on_close=None) -> BinaryIO:
    """A binary file reading the stored file; ``on_close`` is called once when it is
    closed (the WSGI server closes a response's file when the download ended)."""
    return io.BufferedReader(_ChunkReader(handle, on_close), buffer_size=CHUNK_SIZE)


def read_all(handle: Handle) -> bytes:
    """The whole file (small files and tests only)."""
    return b"".join(stream(handle))


def save_to(handle: Handle, path: str) -> None:
    """Copy the stored file to a local path, piece by piece."""
    with open(path, "wb") as out:
        for block in stream(handle):
            out.write(block)


def claim(session, token: str, *, kind: str, owner: str | None,
          now: datetime | None = None) -> Handle | None:
    """Take a single-download file for its owner: one UPDATE that succeeds for one request
    only (``claimed_at`` was empty); None when another request took it or it is gone. In
    the caller's transaction."""
    stored = find(session, token, kind)
    if stored is None or stored.owner != owner or stored.claimed_at is not None:
        return None
    changed = session.execute(
        update(StoredFile).where(StoredFile.id == stored.id, StoredFile.kind == kind,
                                 StoredFile.owner == owner, StoredFile.claimed_at.is_(None))
        .values(claimed_at=now or clock.now())
        .execution_options(synchronize_session=False)).rowcount
    if changed != 1:
        return None
    return handle_of(session, stored)


def delete_ids(session, ids) -> int:
    """Remove the files of ``ids`` and their pieces (in the caller's transaction)."""
    ids = list(ids)
    if not ids:
        return 0
    session.execute(delete(StoredFileChunk).where(StoredFileChunk.file_id.in_(ids))
                    .execution_options(synchronize_session=False))
    return session.execute(delete(StoredFile).where(StoredFile.id.in_(ids))
                           .execution_options(synchronize_session=False)).rowcount


def delete_token(session, token: str, kind: str | None = None) -> bool:
    stored = find(session, token, kind)
    return bool(stored is not None and delete_ids(session, [stored.id]))


def purge(session, *, kind: str, older_than: datetime | None = None,
          keep_tokens=None) -> int:
    """Remove files of ``kind`` made before ``older_than`` and/or whose token is not in
    ``keep_tokens`` (in the caller's transaction); returns how many."""
    conditions = [StoredFile.kind == kind]
    if older_than is not None:
        conditions.append(StoredFile.created_at < older_than)
    rows = session.execute(select(StoredFile.id, StoredFile.token)
                           .where(and_(*conditions))).all()
    if keep_tokens is not None:
        keep = set(keep_tokens)
        rows = [row for row in rows if row.token not in keep]
    return delete_ids(session, [row.id for row in rows])
