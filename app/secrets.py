"""Secrets that must never be written into the repository.

A key missing from the environment is generated once into ``instance/`` (mode 0600)
and read from there afterwards, so restarts keep sessions and the audit chain valid.
"""
import os
import secrets


def load_or_create(instance_dir: str, name: str) -> str:
    """Return the secret stored as instance/<name>, creating it on first use."""
    os.makedirs(instance_dir, exist_ok=True)
    path = os.path.join(instance_dir, name)
    if os.path.exists(path):
        with open(path, encoding="ascii") as handle:
            value = handle.read().strip()
        if len(value) >= 32:
            return value
    value = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(value)
    return value


# --- the key ring of scanned documents (app/services/documents.py) ------------------------
# A JSON file in instance/ (mode 0600): {"current": "<key id>", "keys": {"<key id>": "<base64
# of 32 random bytes>"}}. Written whole into a temporary file and renamed, so a reader (the
# other workers, a second app server sharing the folder) never sees half a ring.

def _write_private(path: str, text: str) -> None:
    temporary = f"{path}.{os.getpid()}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def new_key_id(day) -> str:
    """``k20261201-3fa2c1``: the day it was made and a random part."""
    return f"k{day:%Y%m%d}-{secrets.token_hex(3)}"


def read_key_ring(path: str) -> tuple[str, dict[str, bytes]] | None:
    """(current key id, {key id: key}) from the ring file, or None when there is none."""
    import base64
    import json

    try:
        with open(path, encoding="ascii") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return None
    keys = {str(k): base64.b64decode(v, validate=True) for k, v in data["keys"].items()}
    if data["current"] not in keys or any(len(v) != 32 for v in keys.values()):
        raise ValueError(f"{path}: the current key is missing or a key is not 32 bytes")
    return str(data["current"]), keys


class _RingLock:
    """The ring's lock file, held while the ring is read and written again."""

    def __init__(self, path: str):
        self.path = path + ".lock"

    def __enter__(self):
        import fcntl

        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)  # closing releases the lock


def _write_ring(path: str, current: str, keys: dict[str, bytes]) -> None:
    import base64
    import json

    encoded = {k: base64.b64encode(v).decode("ascii") for k, v in keys.items()}
    _write_private(path, json.dumps({"current": current, "keys": encoded}, indent=1))


def add_ring_key(path: str, key_id: str) -> None:
    """Add a fresh 256-bit key under ``key_id`` and make it current (the file is created on
    first use). Two processes adding at once take turns (lock file)."""
    with _RingLock(path):
        ring = read_key_ring(path)
        keys = dict(ring[1]) if ring else {}
        keys[key_id] = secrets.token_bytes(32)
        _write_ring(path, key_id, keys)


def ensure_key_ring(path: str, key_id: str) -> None:
    """Create the ring with one key when there is none yet (first upload)."""
    with _RingLock(path):
        if read_key_ring(path) is None:
            _write_ring(path, key_id, {key_id: secrets.token_bytes(32)})


def drop_ring_keys(path: str, key_ids: set[str]) -> None:
    """Remove keys no document uses any more (never the current one)."""
    with _RingLock(path):
        ring = read_key_ring(path)
        if ring is not None:
            current, keys = ring
            _write_ring(path, current, {k: v for k, v in keys.items()
                                        if k == current or k not in key_ids})
