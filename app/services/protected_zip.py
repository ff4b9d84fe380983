"""Files that leave the server wrapped in an AES-256 encrypted ZIP (issue 15 §4, S2).

The format is WinZip AES (AE-2, 256-bit key, deflated), which Windows users open with
7-Zip, WinZip and other common archivers; each inner file keeps its original name, and a
Japanese name is stored in UTF-8 with the ZIP's UTF-8 flag (bit 11) so it shows right.
The password is the person's own (at least ``MIN_PASSWORD_LENGTH`` characters) or one
made here, readable aloud: 16 characters without the look-alikes 0/O/1/l/I, in groups of
four. Nothing here stores or logs a password.
"""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from typing import BinaryIO, Iterable, Iterator, Union

import pyzipper
from flask_babel import lazy_gettext as _l

from app.services.errors import InputError

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 128
# Letters and digits that cannot be taken for one another when read or typed.
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
GROUPS, GROUP_SIZE = 4, 4
CHUNK = 1024 * 1024

# one inner file: its name and its content (bytes, a path to a file, or chunks of bytes)
Content = Union[bytes, str, os.PathLike, Iterable[bytes]]


@dataclass(frozen=True)
class Part:
    name: str
    content: Content


class ExportPasswordError(InputError):
    """The typed password is too short or not usable."""


def generate_password() -> str:
    """16 random characters from ``ALPHABET`` (about 93 bits), grouped 4-4-4-4."""
    chars = "".join(secrets.choice(ALPHABET) for _n in range(GROUPS * GROUP_SIZE))
    return "-".join(chars[i:i + GROUP_SIZE] for i in range(0, len(chars), GROUP_SIZE))


def check_password(password: str | None) -> str:
    """The typed password if the policy accepts it, else a refusal in Japanese."""
    password = password or ""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ExportPasswordError(_l(
            "The password must be at least %(n)d characters long. Type a longer one, or "
            "let the system generate one.", n=MIN_PASSWORD_LENGTH))
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ExportPasswordError(_l("The password may be at most %(n)d characters long.",
                                     n=MAX_PASSWORD_LENGTH))
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in password):
        raise ExportPasswordError(_l("The password cannot contain line breaks or tabs."))
    return password


def _chunks(content: Content) -> Iterator[bytes]:
    if isinstance(content, (bytes, bytearray, memoryview)):
        yield bytes(content)
    elif isinstance(content, (str, os.PathLike)):
        with open(content, "rb") as source:
            while block := source.read(CHUNK):
                yield block
    else:
        for block in content:
            if block:
                yield block


def write(target: Union[str, os.PathLike, BinaryIO], parts: Iterable[Part],
          password: str) -> None:
    """Write the encrypted ZIP to ``target`` (a path or a binary file), streaming each
    part in chunks (a file of gigabytes never sits in memory)."""
    with pyzipper.AESZipFile(target, "w", compression=pyzipper.ZIP_DEFLATED,
                             encryption=pyzipper.WZ_AES) as archive:
        archive.setpassword(password.encode("utf-8"))
        archive.setencryption(pyzipper.WZ_AES, nbits=256)
        for part in parts:
            # zipfile sets the UTF-8 flag itself for a name that is not ASCII
            with archive.open(part.name, "w", force_zip64=True) as inner:
                for block in _chunks(part.content):
                    inner.write(block)


def to_bytes(parts: Iterable[Part], password: str) -> bytes:
    """The encrypted ZIP in memory (small files)."""
    import io

    buffer = io.BytesIO()
    write(buffer, parts, password)
    return buffer.getvalue()


def to_file(path: str, parts: Iterable[Part], password: str) -> int:
    """Write the encrypted ZIP to ``path`` (via a temporary name, so a half-written file
    is never offered); returns its size."""
    partial = path + ".part"
    try:
        write(partial, parts, password)
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return os.path.getsize(path)


def read_all(source: Union[str, os.PathLike, BinaryIO], password: str) -> dict[str, bytes]:
    """Every inner file by name (tests, and a check that a file opens)."""
    with pyzipper.AESZipFile(source) as archive:
        archive.setpassword(password.encode("utf-8"))
        return {name: archive.read(name) for name in archive.namelist()}

