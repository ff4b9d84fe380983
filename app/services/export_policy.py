"""What may leave the server, and how (issue 15 §4, S2).

- ``EXPORTS``: every file the product hands out, and whether it holds personal data.
- The office's policy (管理者, screen エクスポートの暗号化): when ``encryption_required``,
  an export with personal data leaves only as an AES-256 ZIP (app/services/protected_zip.py);
  ``require`` refuses the plain file for every entry point, before anything is audited.
- ``Choice``: what the person asked for on the form (plain, or encrypted with a typed or a
  generated password). A password is never written into the audit trail, a log or a URL;
  the audit record of an export notes only ``"encrypted": true/false``.
- The prepared file: kept in the shared file store (app/services/file_store.py: any app
  server serves it) under a random token for its owner, handed out once (``take``: a
  compare-and-set) and removed; leftovers go after EXPORT_KEEP_MINUTES.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Iterable, Mapping

from flask_babel import lazy_gettext as _l
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session as OrmSession

from app import clock
from app.models.setting import SiteSetting
from app.extensions import session as app_session
from app.services import actors, audit, file_store, protected_zip, unit
from app.services.actors import CardActor
from app.services.errors import ConcurrentChangeError, DomainError, InputError
from app.settings import settings as app_settings

POLICY_KEY = "export_policy"
# who may change the policy (the screen's permission is in config.FAB_ROLES too)
POLICY_EDITORS = ("ROLE_MANAGER", "ROLE_SYSADMIN")

# the form's field names (app/templates/exports/_encryption.html)
FIELD_ENCRYPT = "encrypt"
FIELD_MODE = "password_mode"
FIELD_PASSWORD = "zip_password"
MODE_GENERATE, MODE_TYPED = "generate", "typed"


@dataclass(frozen=True)
class Export:
    key: str
    label: object
    personal: bool
    why: object


EXPORTS: dict[str, Export] = {e.key: e for e in (
    Export("audit_csv", _l("Audit log (CSV)"), True,
           _l("Staff names, IP addresses and the changed values of residents' records")),
    Export("postcard_print", _l("Postcard print data (CSV + QR)"), True,
           _l("Residents' names, addresses and postcard numbers")),
    Export("extraction", _l("Extraction (CSV, XLSX)"), True,
           _l("The chosen columns of cards, bookings, applications or fees")),
    Export("document_original", _l("Scanned document, original file"), True,
           _l("Application forms, identity and proxy papers as scanned")),
    Export("statistics", _l("Statistics (CSV, XLSX)"), False,
           _l("Counts and amounts only")),
    # no resident's name, but each payment's 申請書ID (a key to the resident in the ledger)
    # and the staff's names: treated as personal data.
    Export("fees_daily", _l("Daily fees (XLSX)"), True,
           _l("Application IDs and amounts of each payment, and the staff's names")),
    Export("fees_monthly", _l("Monthly fees (XLSX)"), False, _l("Amounts only")),
    # 既存データ取込 (app/services/ledger_import.py): the report and the rejected rows
    # repeat the imported file's values
    Export("ledger_import_report", _l("Import report and rejected rows (CSV)"), True,
           _l("Residents' names, birth dates and addresses from the imported file")),
    # flask data export (app/services/migration_export.py): the whole database
    Export("migration_export", _l("Migration export of all data (command line)"), True,
           _l("Every table: residents' records, staff accounts and the audit trail")),
)}


class EncryptionRequiredError(InputError):
    """A plain file of personal data was asked for while the policy requires encryption."""

    message = _l("This file contains personal data and may only be exported as an "
                 "encrypted ZIP (the office's setting). Choose \"Export as an encrypted "
                 "ZIP\" and try again.")


class PreparedFileGoneError(DomainError):
    message = _l("This file was already downloaded or has expired. Export it again.")


# --- the policy ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Policy:
    encryption_required: bool = False
    version: int = 0  # 0: never set (the default)
    updated_at: datetime | None = None
    updated_by: str = ""


def policy(session) -> Policy:
    row = session.execute(select(SiteSetting).where(SiteSetting.key == POLICY_KEY)
                          ).scalar_one_or_none()
    if row is None:
        return Policy()
    value = json.loads(row.value or "{}")
    return Policy(bool(value.get("encryption_required")), row.version, row.updated_at,
                  row.updated_by)


def may_edit(actor: CardActor) -> bool:
    return actors.has_role(actor, POLICY_EDITORS)


@unit.operation
def set_policy(session, *, encryption_required: bool, expected_version: int,
               actor: CardActor, now: datetime | None = None) -> Policy:
    """Change the policy (compare-and-set on the version the screen showed); audited with
    the value before and after."""
    actors.check_roles(actor, POLICY_EDITORS, _l(
        "Your role does not allow changing the export policy. Only %(roles)s may do this.",
        roles="、".join(actors.role_names(POLICY_EDITORS))))
    stamp = now or clock.now()
    before = policy(session)
    value = json.dumps({"encryption_required": bool(encryption_required)})
    who = actors.name_of(actor)
    if before.version == 0:
        if expected_version != 0:
            raise ConcurrentChangeError()
        session.execute(insert(SiteSetting).values(key=POLICY_KEY, value=value, version=1,
                                                   updated_at=stamp, updated_by=who))
    else:
        done = session.execute(
            update(SiteSetting)
            .where(SiteSetting.key == POLICY_KEY, SiteSetting.version == expected_version)
            .values(value=value, version=SiteSetting.version + 1, updated_at=stamp,
                    updated_by=who))
        if done.rowcount != 1:
            raise ConcurrentChangeError()
    audit.record_in_transaction(session, audit.ACTION_UPDATE, "site_setting", None, {
        "key": POLICY_KEY,
        "encryption_required": [before.encryption_required, bool(encryption_required)]})
    session.expire_all()
    return policy(session)


def require(session, export_key: str, encrypted: bool) -> None:
    """Refuse a plain file of personal data while the policy requires encryption (call it
    before the export is made or audited)."""
    export = EXPORTS[export_key]
    if export.personal and not encrypted and policy(session).encryption_required:
        raise EncryptionRequiredError()


def encryption_required_for(session, export_key: str) -> bool:
    return EXPORTS[export_key].personal and policy(session).encryption_required


# --- what the person chose -------------------------------------------------------------------

@dataclass(frozen=True)
class Choice:
    encrypt: bool = False
    password: str = field(default="", repr=False)
    generated: bool = False

    def audit_note(self) -> dict:
        """What the audit record of the export says about it (never the password)."""
        return {"encrypted": self.encrypt}


PLAIN = Choice()


def choice_from(values: Mapping) -> Choice:
    """The form's choice: plain, or encrypted with a generated password (the default) or
    a typed one checked against the policy (≥ 12 characters)."""
    if (values.get(FIELD_ENCRYPT) or "") not in ("1", "on", "yes", "true"):
        return PLAIN
    if values.get(FIELD_MODE) == MODE_TYPED:
        return Choice(True, protected_zip.check_password(values.get(FIELD_PASSWORD)), False)
    return Choice(True, protected_zip.generate_password(), True)


# --- the prepared file, handed out once ---------------------------------------------------------
#
# Kept in the shared file store (app/services/file_store.py, kind "protected_export"),
# so that the page, the offer and the download may each be served by any app server.

STORE_KIND = "protected_export"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")


@dataclass(frozen=True)
class Prepared:
    token: str
    filename: str
    size: int
    stored: file_store.Handle | None = None  # set by take(): what the download reads


def scratch_folder() -> str:
    """instance/protected_exports/: this server's scratch space while a ZIP is encrypted
    (the finished file goes into the store)."""
    from flask import current_app

    path = os.path.join(current_app.instance_path, "protected_exports")
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def _check_token(token: str | None) -> str:
    if not isinstance(token, str) or not _TOKEN.match(token):
        raise PreparedFileGoneError()
    return token


def purge(max_age_seconds: float | None = None, now: datetime | None = None) -> int:
    """Remove prepared files older than EXPORT_KEEP_MINUTES (never downloaded, or taken by
    a download that did not finish); returns how many. One unit."""
    limit = (max_age_seconds if max_age_seconds is not None
             else app_settings().export_keep_minutes * 60)
    stamp = now or clock.now()
    with unit.transaction() as session:
        removed = file_store.purge(session, kind=STORE_KIND,
                                   older_than=stamp - timedelta(seconds=limit))
    folder = scratch_folder()  # what a process that died while encrypting left
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        with contextlib.suppress(FileNotFoundError):
            if time.time() - os.path.getmtime(path) > max(limit, 3600):
                os.unlink(path)
    return removed


def zip_name(filename: str) -> str:
    """``report.csv`` → ``report.zip`` (the download's name)."""
    stem, _dot, _ext = filename.rpartition(".")
    return f"{stem or filename}.zip"


def prepare(parts: Iterable[protected_zip.Part], choice: Choice, *, owner: str,
            filename: str) -> Prepared:
    """Encrypt the parts into a file kept for ``owner`` until it is downloaded once: written
    to a local temporary file, then copied into the shared store (one unit)."""
    if not choice.encrypt or not choice.password:
        raise ValueError("prepare() is for an encrypted choice")
    purge()
    token = secrets.token_urlsafe(24)
    handle, path = tempfile.mkstemp(prefix=f"{token}.", suffix=".zip.part",
                                    dir=scratch_folder())
    os.close(handle)
    try:
        protected_zip.to_file(path, parts, choice.password)
        with unit.transaction() as session:
            stored = file_store.put(session, path, kind=STORE_KIND, token=token,
                                    owner=owner, filename=zip_name(filename))
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    return Prepared(token, stored.filename, stored.size)


def prepared(token: str, owner: str) -> Prepared:
    """The owner's prepared file, not yet taken (another person's, or one gone, is not
    found). Reads only."""
    stored = file_store.find(app_session(), _check_token(token), STORE_KIND)
    if stored is None or stored.owner != owner or stored.claimed_at is not None:
        raise PreparedFileGoneError()
    return Prepared(token, stored.filename, stored.size)


def take(token: str, owner: str) -> Prepared:
    """Claim the file for its one download: a compare-and-set on the stored file (of two
    requests, on any servers, one gets it; the other finds it gone). The caller streams
    ``stored`` and then calls ``discard``."""
    _check_token(token)
    with unit.transaction() as session:
        stored = file_store.claim(session, token, kind=STORE_KIND, owner=owner)
    if stored is None:
        raise PreparedFileGoneError()
    return Prepared(token, stored.filename, stored.size, stored)


def discard(found: Prepared) -> None:
    """Remove the file once it was sent (its own unit, on a session of its own: called
    when the response closes, maybe after the request's context ended)."""
    if found.stored is None:
        return
    session = OrmSession(bind=found.stored.engine)
    try:
        with unit.transaction(session):
            file_store.delete_token(session, found.token, STORE_KIND)
    finally:
        session.close()
