"""Command line: `flask --app run <group> <command>`. Every command is idempotent."""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections import Counter
from datetime import date

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from flask_appbuilder.security.manager import BaseSecurityManager
from flask_migrate import upgrade

from app import clock
from app.clock import JST
from app.extensions import session
from app.services import (audit, backups, discard, documents, extraction, jobs, mail,
                          migration_export, protected_zip, scan, unit)
from app.services.accounts import create_user, unlock_user
from app.services.calendar import materialise_slots
from app.services.demo import accounts_table, seed_demo
from app.services.errors import DomainError, InputError
from app.services.passwords import generate_password
from app.services.qr_decode import decode_file
from app.services.qr_formats import decode_bytes, parse_payload
from app.settings import settings as app_settings

demo_cli = AppGroup("demo", help="Demo data.")
audit_cli = AppGroup("audit", help="The audit trail.")
users_cli = AppGroup("users", help="Staff accounts.")
qr_cli = AppGroup("qr", help="QR codes of the card issuance list.")
reservations_cli = AppGroup("reservations", help="Visit bookings.")
outbox_cli = AppGroup("outbox", help="Mails to residents, queued with their changes.")
slots_cli = AppGroup("slots", help="Bookable time slots.")
documents_cli = AppGroup("documents", help="Scanned papers of intakes (encrypted at rest).")
extraction_cli = AppGroup("extraction", help="Exports of the extraction screen.")
backup_cli = AppGroup("backup", help="Backups of the whole instance, encrypted with the "
                                     "backup key (docs/operations.md).")
data_cli = AppGroup("data", help="Every table and document out (for a next system) and in "
                                 "(into an empty instance): docs/data-export.md.")


def _as_cli_operator():
    """Everything this command changes is recorded as ``cli:<os user>``."""
    audit.act_as(audit.cli_actor())


def _as_job():
    """A job run by cron (reminders, closing the day): recorded as ``system``."""
    audit.act_as(audit.SYSTEM)


def init_database() -> None:
    """Create or upgrade the schema (Alembic), then sync roles and permissions (one unit;
    FAB's own steps also commit as they go)."""
    upgrade()
    sm = current_app.appbuilder.sm
    with unit.transaction(session()):
        BaseSecurityManager.create_db(sm)  # built-in roles of config.FAB_ROLES, Public
        current_app.appbuilder.add_permissions(update_perms=True)


@click.command("init", help="Create or upgrade the database and sync roles and permissions.")
def init_command():
    _as_cli_operator()
    init_database()
    click.echo("database ready; roles: " + ", ".join(current_app.config["STAFF_ROLES"]))
    click.echo(f"slots made ahead: {materialise_slots(session())}")


@demo_cli.command("seed", help="Load realistic demo data (skips what exists).")
def demo_seed():
    _as_cli_operator()
    for line in seed_demo():
        click.echo(line)


@demo_cli.command("accounts", help="Which demo account to try for which role.")
def demo_accounts():
    for line in accounts_table():
        click.echo(line)


@audit_cli.command("verify", help="Walk the hash chain; exit 1 naming the first bad record.")
def audit_verify():
    report = audit.verify_chain(session())
    if report.ok:
        click.echo(f"audit log intact: {report.checked} records")
        return
    click.echo(f"audit log BROKEN at record id={report.bad_id}: {report.reason} "
               f"({report.checked} records before it are intact)", err=True)
    sys.exit(1)


@audit_cli.command("export", help="The records after --since ID as JSON lines (every field "
                                  "and the chain's hashes) for a SIEM: docs/audit.md. "
                                  "The export itself is recorded.")
@click.option("--since", "since_id", type=click.IntRange(min=0), default=0, show_default=True,
              help="Export the records whose id is greater than this.")
@click.option("--to", "to_file", type=click.Path(dir_okay=False), default=None,
              help="Write to this file (mode 0600) instead of standard output.")
def audit_export(since_id, to_file):
    _as_cli_operator()
    upto = audit.last_record_id(session())  # a fixed range: not this export's own record
    written, first, last = 0, None, since_id
    out = sys.stdout
    if to_file:
        descriptor = os.open(to_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(descriptor, 0o600)  # an existing file too: before anything is written
        out = os.fdopen(descriptor, "w", encoding="utf-8", newline="\n")
    try:
        for record in audit.export_records(session(), since_id, upto):
            out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
            written, last = written + 1, record["id"]
            first = first or last
    finally:
        if to_file:
            out.close()
        else:
            out.flush()
        # personal data left the system, whether or not every line was written
        audit.record_event(audit.ACTION_EXPORT, "audit_log", None,
                           {"format": "jsonl", "since_id": since_id, "last_id": last,
                            "records": written, "to": to_file or "stdout"})
    click.echo(f"audit export: {written} records"
               + (f", id {first} to {last}" if written else ""), err=True)


@users_cli.command("create", help="Create a staff account (password policy applies).")
@click.option("--username", required=True)
@click.option("--role", "roles", multiple=True, required=True)
@click.option("--first-name", default="")
@click.option("--last-name", default="")
@click.option("--email", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def users_create(username, roles, first_name, last_name, email, password):
    _as_cli_operator()
    try:
        create_user(username, password, list(roles), first_name or username,
                    last_name or "-", email)
    except DomainError as error:
        _fail(error, 2)
    click.echo(f"created {username}")


@users_cli.command("ensure-admin",
                   help="Create the system administrator from ADMIN_USERNAME/ADMIN_PASSWORD, "
                        "or with a generated password printed once.")
def users_ensure_admin():
    _as_cli_operator()
    username = os.environ.get("ADMIN_USERNAME", "admin")
    sm = current_app.appbuilder.sm
    if sm.find_user(username=username) is not None:
        click.echo(f"administrator '{username}' exists")
        return
    password = os.environ.get("ADMIN_PASSWORD") or generate_password()
    try:
        create_user(username, password, [current_app.config["AUTH_ROLE_ADMIN"]],
                    "システム", "管理者", os.environ.get("ADMIN_EMAIL", f"{username}@example.jp"))
    except DomainError as error:
        _fail(error, 2)
    if os.environ.get("ADMIN_PASSWORD"):
        click.echo(f"administrator '{username}' created with ADMIN_PASSWORD")
    else:
        click.echo("=" * 60)
        click.echo(f"administrator created: user ID '{username}'  password '{password}'")
        click.echo("this password is shown only once: note it now")
        click.echo("=" * 60)


@users_cli.command("unlock", help="Unlock an account locked after failed sign-ins.")
@click.argument("username")
def users_unlock(username):
    _as_cli_operator()
    user = current_app.appbuilder.sm.find_user(username=username)
    if user is None:
        click.echo(f"no such user: {username}", err=True)
        sys.exit(2)
    unlock_user(session(), user)
    click.echo(f"unlocked {username}")


@qr_cli.command("decode", help="Print one JSON line per QR code found in the files.")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
def qr_decode(files):
    today = clock.now().date()
    for path in files:
        with open(path, "rb") as handle:
            pages = decode_file(handle.read(), os.path.basename(path))
        for page in pages:
            for payload in page.payloads:
                line = {"file": path, "page": page.page}
                try:
                    line["payload"] = decode_bytes(payload)
                    parsed = parse_payload(payload, today)
                    line["fields"] = {"application_id": parsed.application_id,
                                      "shipment_number": parsed.shipment_number,
                                      "manufacture_number": parsed.manufacture_number,
                                      "visit_mode": parsed.visit_mode, **parsed.personal}
                except InputError as error:
                    line.setdefault("payload", payload.decode("latin-1"))
                    line["error"] = str(error.message)
                click.echo(json.dumps(line, ensure_ascii=False, default=str))


@qr_cli.command("register", help="Register the cards of scanned list pages, as the screen does.")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Classify only; write nothing.")
def qr_register(files, dry_run):
    _as_cli_operator()
    db = session()
    if dry_run:
        payloads = []
        for path in files:
            with open(path, "rb") as handle:
                for page in decode_file(handle.read(), os.path.basename(path)):
                    payloads += [(p, f"{path} p.{page.page}") for p in page.payloads]
        rows = scan.preview(db, payloads)
        for row in rows:
            if row["status"] != "ok":
                click.echo(f"{row['source']}: {row['status']} {row['application_id'] or ''} "
                           f"{row['reason'] or ''}")
        summary = Counter(row["status"] for row in rows)
        click.echo(f"dry run: {len(rows)} codes: " +
                   ", ".join(f"{k} {v}" for k, v in sorted(summary.items())))
        return
    batch = scan.open_batch(db)
    uploads = []
    for path in files:
        with open(path, "rb") as handle:
            uploads.append((handle.read(), os.path.basename(path)))
    for filename, page, found in scan.add_scanned_files(db, batch, uploads).pages:
        click.echo(f"{filename} page {page}: {found} codes")
    counts = scan.counts(batch)
    try:
        created = scan.register_batch(db, batch)
    except DomainError as error:
        _fail(error, 2)
    click.echo(f"batch {batch.id}: registered {len(created)} cards "
               f"(K {counts.ok_by_mode['K']}, S {counts.ok_by_mode['S']}); skipped: "
               f"duplicate {counts.duplicate}, in ledger {counts.exists}, "
               f"invalid {counts.invalid}, no personal data {counts.incomplete}")


@reservations_cli.command("remind", help="Queue a reminder mail for tomorrow's visitors (run "
                                          "once a day from cron; `outbox send` delivers them; "
                                          "a second run queues nothing twice).")
def remind_command():
    _as_job()
    if not mail.configured():
        click.echo("MAIL_SERVER is not set: no reminders queued")
    queued, failed = mail.send_reminders(session())
    click.echo(f"reminders queued: {queued}, not queued: {failed}")
    if failed and mail.configured():
        sys.exit(1)


@outbox_cli.command("send", help="Deliver the queued mails to residents (cron, every minute): "
                                 "each once, failures retried later.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="at most this many mails in this run")
def outbox_send_command(limit):
    _as_job()
    if not mail.configured():
        click.echo("MAIL_SERVER is not set: nothing sent (the mails stay queued)")
        return
    report = mail.send_outbox(session(), limit=limit)
    click.echo(f"mails sent: {report.sent}, to retry later: {report.retried}, "
               f"failed for good: {report.failed}")
    if report.failed:
        sys.exit(1)


@reservations_cli.command("close-day", help="Mark the bookings nobody checked in as no-show, "
                                             "at venues whose last slot is over; without "
                                             "--date today and any of the last 7 days left "
                                             "open (the worker runs this every hour).")
@click.option("--date", "day_text", default=None, help="YYYY-MM-DD (default: today)")
def close_day_command(day_text):
    _as_job()
    day = date.fromisoformat(day_text) if day_text else None
    for closed in jobs.close_days(session(), clock.now(), day):
        when = "" if day or closed.day == clock.now().astimezone(JST).date() \
            else f" {closed.day:%Y-%m-%d}"
        if closed.still_open:
            click.echo(f"{closed.venue}{when}: still open (last slot ends "
                       f"{closed.last_slot_end.astimezone(JST):%H:%M})")
        else:
            click.echo(f"{closed.venue}{when}: {closed.no_shows} no-show(s)")


@slots_cli.command("materialise", help="Make the bookable slots of every active venue and "
                                        "purpose from today through its window, so pages "
                                        "only read them (cron, daily; idempotent).")
def slots_materialise():
    _as_job()
    click.echo(f"slots made: {materialise_slots(session())}")


@documents_cli.command("rotate-key", help="Add a new key, make it current and re-encrypt every "
                                          "document under it, one row at a time, while the "
                                          "app keeps serving.")
@click.option("--drop-old", is_flag=True,
              help="Afterwards remove old keys no document uses any more from the key ring.")
def documents_rotate_key(drop_old):
    _as_cli_operator()
    try:
        report = documents.rotate_key(session())
    except DomainError as error:
        _fail(error, 2)
    if report.added:
        click.echo(f"new key {report.current} added to the key ring and made current")
    else:
        click.echo(f"keys from DOCUMENT_KEYS: re-encrypting under DOCUMENT_KEY_CURRENT "
                   f"{report.current} (put a new key there first to rotate)")
    click.echo(f"re-encrypted: {report.reencrypted}, skipped (changed meanwhile): "
               f"{report.skipped}, failed: {len(report.failed)}")
    for document_id, why in report.failed:
        click.echo(f"  document {document_id}: {why}", err=True)
    if drop_old:
        dropped = documents.drop_unused_keys(report)
        click.echo("old keys removed: " + (", ".join(dropped) or "none"))
    elif report.unused_keys:
        click.echo("old keys no document uses (remove with --drop-old): "
                   + ", ".join(report.unused_keys))
    if report.failed:
        sys.exit(1)


@documents_cli.command("verify", help="Decrypt every document and compare its SHA-256; exit 1 "
                                      "naming each one that fails.")
def documents_verify():
    try:
        report = documents.verify_all(session())
    except DomainError as error:
        _fail(error, 2)
    for document_id, why in report.failed:
        click.echo(f"document {document_id}: {why}", err=True)
    click.echo(f"documents checked: {report.checked}, failed: {len(report.failed)}")
    if report.failed:
        sys.exit(1)


@documents_cli.command("purge", help="Remove documents past the retention rule "
                                     "(DOCUMENT_RETENTION_YEARS after the card's hand-over or "
                                     "discard, or the application's withdrawal), listing "
                                     "each.")
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
def documents_purge(dry_run):
    _as_cli_operator()
    items = documents.purge_candidates(session())
    for item in items:
        ended = {"handed_over": "handed over", "discarded": "card discarded"}.get(
            item.ended_by, "withdrawn")
        click.echo(f"intake {item.intake_id} application {item.application_id}: document "
                   f"{item.document_id} {item.filename!r} uploaded "
                   f"{item.uploaded_at.astimezone(JST):%Y-%m-%d}, {ended} "
                   f"{item.ended_at.astimezone(JST):%Y-%m-%d}")
    if dry_run:
        click.echo(f"dry run: {len(items)} document(s) would be removed; nothing removed")
        return
    removed = documents.purge(session(), items)
    click.echo(f"removed: {removed} document(s)")


@extraction_cli.command("purge-exports", help="Remove export files kept longer than "
                                               "EXPORT_KEEP_MINUTES, and mark jobs that stopped "
                                               "reporting (EXPORT_STALE_MINUTES) as failed "
                                               "(cron, e.g. every 10 minutes).")
def extraction_purge_exports():
    _as_job()
    report = extraction.purge_exports(session())
    click.echo(f"expired: {report.expired}, failed: {report.failed}, "
               f"files removed: {report.files}")


cards_cli = AppGroup("cards", help="Cards: the discard candidates.")


@cards_cli.command("refresh-discard", help="Find the discard candidates again (the 廃棄候補 "
                                           "screen lists what the last refresh found); "
                                           "audited with the count.")
def cards_refresh_discard():
    _as_cli_operator()
    try:
        found = discard.refresh(session(), clock.now())
    except DomainError as error:
        _fail(error)
    click.echo(f"discard candidates: {found}")


def _fail(error: DomainError, code: int = 1):
    click.echo(f"error: {error.message}", err=True)
    sys.exit(code)


def _megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"


@backup_cli.command("create", help="Snapshot the database while the app keeps serving, with "
                                   "the settings (no secrets), encrypted into BACKUP_DIR.")
@click.option("--to", "to_dir", type=click.Path(file_okay=False), default=None,
              help="Another folder than BACKUP_DIR.")
def backup_create(to_dir):
    _as_cli_operator()
    try:
        made = backups.create(session(), to_dir)
    except DomainError as error:
        _fail(error)
    click.echo(f"backup written: {made.path} ({_megabytes(made.bytes)}, schema "
               f"{made.schema_revision}, {sum(made.rows.values())} rows in "
               f"{len(made.rows)} tables)")
    click.echo(f"sha256 {made.sha256}")


@backup_cli.command("list", help="The backups of BACKUP_DIR, newest first (no key needed).")
def backup_list():
    try:
        rows = backups.list_backups()
    except DomainError as error:
        _fail(error)
    if not rows:
        click.echo(f"no backup in {backups.backup_dir()}")
        return
    for info in rows:
        when = info.created_at.astimezone(JST).strftime("%Y-%m-%d %H:%M") \
            if info.created_at else "?"
        if info.verify_problem:
            state = "FAILED verification"
        elif info.verified:
            state = f"verified {info.verified_at.astimezone(JST):%Y-%m-%d %H:%M}"
        else:
            state = "not verified"
        click.echo(f"{info.name}  {when}  {_megabytes(info.bytes):>10}  "
                   f"{info.schema_revision or '?'}  {state}")


@backup_cli.command("verify", help="Decrypt a backup, check every checksum and the database "
                                   "dump (pg_restore --list); exit 1 when anything fails.")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--latest", is_flag=True, help="The newest backup of BACKUP_DIR.")
def backup_verify(file, latest):
    _as_cli_operator()
    if latest == bool(file):
        raise click.UsageError("give either FILE or --latest")
    try:
        checked = backups.verify(backups.latest() if latest else file)
    except DomainError as error:
        _fail(error)
    manifest = checked.manifest
    click.echo(f"backup OK: {os.path.basename(checked.path)} (made "
               f"{manifest.get('created_at')}, schema {manifest.get('schema_revision')}, "
               f"{len(manifest.get('files', []))} parts checked)")


@backup_cli.command("restore", help="Restore a backup into an empty database, or with --force "
                                    "and the database name typed over the existing data; a "
                                    "backup of an older schema is upgraded afterwards.")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Replace the data of a database that is not empty.")
@click.option("--yes-i-typed", "typed", default=None, metavar="DBNAME",
              help="The database name, for scripts (instead of typing it when asked).")
def backup_restore(file, force, typed):
    _as_cli_operator()
    try:
        name = backups.database_name(session())
        if force and typed is None and not backups.is_empty(session()):
            click.echo(f"This REPLACES every row of the database {name} with the backup "
                       f"{os.path.basename(file)}.")
            typed = click.prompt("Type the database name to confirm", default="",
                                 show_default=False)
        restored = backups.restore(session(), file, force=force, confirm=typed)
    except DomainError as error:
        _fail(error)
    click.echo(f"restored {os.path.basename(restored.path)} into {name} "
               f"({sum(restored.tables.values())} rows in {len(restored.tables)} tables)")
    if restored.upgraded:
        click.echo(f"the backup was at schema {restored.revision_before}: upgraded to "
                   f"{restored.revision_after}")


@backup_cli.command("prune", help="Remove backups beyond BACKUP_KEEP_DAILY days and "
                                  "BACKUP_KEEP_MONTHLY months (never the newest verified one).")
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
def backup_prune(dry_run):
    _as_cli_operator()
    try:
        removed = backups.prune(dry_run=dry_run)
        left = len(backups.list_backups()) - (len(removed) if dry_run else 0)
    except DomainError as error:
        _fail(error)
    for info in removed:
        click.echo(f"{'would remove' if dry_run else 'removed'} {info.name}")
    click.echo(f"{'dry run: ' if dry_run else ''}{len(removed)} backup(s) "
               f"{'to remove' if dry_run else 'removed'}, {left} kept")


def _password_from(path: str | None) -> str | None:
    """The password in the first line of ``path`` (never typed on the command line)."""
    if path is None:
        return None
    with open(path, encoding="utf-8") as handle:
        return handle.readline().rstrip("\r\n")


@data_cli.command("export", help="Write every table (CSV) and the stored documents into one "
                                  "archive with manifest.json (docs/data-export.md). Audited.")
@click.argument("file", type=click.Path(dir_okay=False, writable=True))
@click.option("--decrypt", is_flag=True,
              help="Write the documents decrypted (plaintext files) instead of as stored "
                   "(encrypted with their key). Such an export cannot be imported.")
@click.option("--encrypt", is_flag=True,
              help="Wrap the archive into an AES-256 encrypted ZIP (WinZip AES). Without "
                   "--password-file a password is generated and shown once.")
@click.option("--password-file", type=click.Path(exists=True, dir_okay=False),
              help="File whose first line is the ZIP's password (at least 12 characters); "
                   "implies --encrypt.")
def data_export(file, decrypt, encrypt, password_file):
    _as_cli_operator()
    generated = False
    try:
        password = _password_from(password_file)
        if password is None and encrypt:
            password, generated = protected_zip.generate_password(), True
        report = migration_export.export_all(
            session(), file, decrypt=decrypt, password=password,
            progress=lambda table, rows: click.echo(f"  {table}: {rows} rows"))
    except DomainError as error:
        _fail(error, 2)
    click.echo(f"exported {sum(report.rows.values())} rows of {len(report.rows)} tables and "
               f"{report.documents} documents ({'decrypted' if decrypt else 'encrypted'}) to "
               f"{file} ({report.size} bytes, sha256 {report.sha256})"
               + (f"; AES-256 ZIP holding {migration_export.INNER_NAME}"
                  if report.encrypted else ""))
    if generated:
        click.echo(f"password (shown once, keep it apart from the file): {password}")


@data_cli.command("import", help="Load a migration export into this empty instance (schema "
                                 "made by `flask init` at the same revision), all or nothing. "
                                 "Audited.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--password-file", type=click.Path(exists=True, dir_okay=False),
              help="File whose first line is the password of an export made with --encrypt.")
def data_import(file, password_file):
    _as_cli_operator()
    try:
        report = migration_export.import_all(
            session(), file, password=_password_from(password_file),
            progress=lambda table, rows: click.echo(f"  {table}: {rows} rows"))
    except DomainError as error:
        _fail(error, 2)
    click.echo(f"imported {sum(report.rows.values())} rows of {len(report.rows)} tables and "
               f"{report.documents} documents from {file}; audit chain intact "
               f"({report.audit_records} records)")


def register_cli(app: Flask) -> None:
    app.cli.add_command(worker_command)
    app.cli.add_command(backup_cli)
    app.cli.add_command(ledger_cli)
    app.cli.add_command(data_cli)
    app.cli.add_command(extraction_cli)
    app.cli.add_command(documents_cli)
    app.cli.add_command(slots_cli)
    app.cli.add_command(qr_cli)
    app.cli.add_command(cards_cli)
    app.cli.add_command(reservations_cli)
    app.cli.add_command(outbox_cli)
    app.cli.add_command(init_command)
    app.cli.add_command(demo_cli)
    app.cli.add_command(audit_cli)
    app.cli.add_command(users_cli)


ledger_cli = AppGroup("ledger", help="The card ledger.")
PROBLEMS_SHOWN = 30


@ledger_cli.command("import", help="Import an existing card ledger (CSV in UTF-8 or Shift_JIS, "
                                   "or XLSX): check every row, then load it in one "
                                   "transaction. Exit 1 when a row is bad or nothing was "
                                   "imported.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Check only; write nothing.")
@click.option("--skip-invalid", is_flag=True,
              help="Import the good rows and write the bad ones to the rejects file.")
@click.option("--update", is_flag=True,
              help="Apply the differences to cards already in the ledger.")
@click.option("--mapping", "mapping_path", type=click.Path(exists=True, dir_okay=False),
              help="A TOML mapping file for other layouts (docs/ledger-import.md).")
@click.option("--rejects", "rejects_path", type=click.Path(dir_okay=False),
              help="Where the rejected rows go (default: FILE.rejects.csv).")
@click.option("--problems", "problems_path", type=click.Path(dir_okay=False),
              help="Write every problem (line, column, value, reason) to this CSV file.")
def ledger_import_command(file, dry_run, skip_invalid, update, mapping_path, rejects_path,
                          problems_path):
    from app.services import ledger_import

    _as_cli_operator()
    if skip_invalid and not rejects_path:
        rejects_path = os.path.splitext(file)[0] + ".rejects.csv"
    interactive = sys.stderr.isatty()
    total = max(os.path.getsize(file), 1)
    bar = click.progressbar(length=total, label="import", file=sys.stderr) \
        if interactive else None
    state = {"done": 0, "written": -1}

    def progress(done, of, written):
        if bar is not None:
            bar.length = max(of, 1)
            bar.update(max(done - state["done"], 0))
        elif written != state["written"] and written:
            click.echo(f"written: {written}", err=True)
        state["done"], state["written"] = done, written

    try:
        if bar is not None:
            bar.__enter__()
        report = ledger_import.import_ledger(
            session(), file, mapping=ledger_import.load_mapping(mapping_path),
            dry_run=dry_run, skip_invalid=skip_invalid, update=update,
            progress=progress, rejects_path=rejects_path)
    except DomainError as error:
        click.echo(f"error: {error.message}", err=True)
        sys.exit(1)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    click.echo(f"file: {report.file_name} ({report.encoding}) sha256:{report.sha256}")
    if report.unknown_columns:
        click.echo("unknown columns (not imported): " + ", ".join(report.unknown_columns))
    click.echo(f"rows: {report.rows}, new: {report.created}, updated: {report.updated}, "
               f"unchanged: {report.unchanged}, rejected: {report.rejected}, "
               f"storage places created: {len(report.places_created)}")
    for problem in report.problems[:PROBLEMS_SHOWN]:
        click.echo(f"line {problem.line}: {problem.column}: {problem.value!r}: "
                   f"{problem.reason}")
    if len(report.problems) > PROBLEMS_SHOWN:
        click.echo(f"... and {len(report.problems) - PROBLEMS_SHOWN} more problem(s)"
                   + ("" if problems_path else " (--problems FILE writes them all)"))
    if update:
        for difference in report.differences[:PROBLEMS_SHOWN]:
            click.echo(f"updated, line {difference.line}: {difference.reason}")
    if problems_path:
        with open(problems_path, "w", encoding="utf-8-sig", newline="") as handle:
            ledger_import.write_problems(report, handle)
        click.echo(f"problems written to {problems_path}")
    if report.rejects_file:
        click.echo(f"rejected rows written to {report.rejects_file}")
    if dry_run:
        click.echo("dry run: nothing written")
    elif report.problems and not skip_invalid:
        click.echo("nothing imported: fix the rows above (or use --skip-invalid)")
    if report.problems or not (report.written or report.unchanged or dry_run):
        sys.exit(1)


# --- the worker (issue 16 §3, docs/worker.md) -------------------------------------------------

@click.command("worker", help="Send the outbox continuously and run the scheduled jobs "
                              "(reminders, day close, slots, discard candidates, backup); "
                              "each job once per period even with several workers. SIGTERM "
                              "stops it after the current job.")
@click.option("--once", is_flag=True, help="Run what is due now, then exit (tests, cron).")
@click.option("--only", "only", multiple=True, type=click.Choice(list(jobs.JOBS)),
              help="Only this job (repeatable).")
def worker_command(once, only):
    _as_job()
    stop = threading.Event()

    def ask_to_stop(signum, _frame):
        click.echo(f"worker: signal {signum}, stopping after the current job", err=True)
        stop.set()

    handlers = {}
    if threading.current_thread() is threading.main_thread():
        for number in (signal.SIGTERM, signal.SIGINT):
            handlers[number] = signal.signal(number, ask_to_stop)
    name = jobs.worker_name()
    click.echo(f"worker {name} started" + (" (once)" if once else ""))
    failed = False
    try:
        while not stop.is_set():
            try:
                for outcome in jobs.run_due(session(), name, only, stopping=stop.is_set):
                    failed = failed or outcome.state == "failed"
                    if not outcome.quiet:
                        click.echo(outcome.line())
            except Exception as error:  # noqa: BLE001 - the database is away: try again later
                unit.discard(session())
                failed = True
                click.echo(f"worker: this loop stopped: {type(error).__name__}: {error}",
                           err=True)
            session().expunge_all()  # a long-running process keeps no rows between loops
            if once:
                break
            stop.wait(app_settings().worker_interval_seconds)
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)
    click.echo(f"worker {name} stopped")
    if once and failed:
        sys.exit(1)
