"""The resident's draft booking (who, birth dates, name, phone, e-mail, card ids) rides in
Flask's session cookie, which is signed but readable by anyone holding it. So the draft is
sealed first: AES-GCM (Fernet) under a key derived from SECRET_KEY for this one use. A
cookie that was tampered with, or sealed under another key, reads as an empty draft."""
from __future__ import annotations

import base64
import json

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app, session

KEY = "draft"


def _fernet() -> Fernet:
    secret = current_app.config["SECRET_KEY"]
    if isinstance(secret, str):
        secret = secret.encode()
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=b"mnc-booking resident draft v1").derive(secret)
    return Fernet(base64.urlsafe_b64encode(key))


def seal(data: dict) -> str:
    return _fernet().encrypt(json.dumps(data, ensure_ascii=False).encode()).decode()


def unseal(token) -> dict:
    if not isinstance(token, str) or not token:
        return {}
    try:
        data = json.loads(_fernet().decrypt(token.encode()))
    except (InvalidToken, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def load() -> dict:
    """The draft of this browser, or {}."""
    return unseal(session.get(KEY))


def store(data: dict) -> None:
    session[KEY] = seal(data)
    session.modified = True


def clear() -> None:
    session.pop(KEY, None)
