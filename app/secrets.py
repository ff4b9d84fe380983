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
