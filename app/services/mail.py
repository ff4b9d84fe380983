"""E-mail to residents: booking, change and cancel confirmations, the reminder the day
before, and notice of a time the office had to close. Nothing is sent while MAIL_SERVER is
empty.

No request talks to the mail relay: :func:`enqueue` writes the rendered mail as a row of
the outbox (app/models/outbox.py) in the same transaction as the change it announces, and
:func:`send_outbox` (``flask --app run outbox send``, cron every minute) delivers the
queued rows afterwards, each once, retrying later when the relay is down. A mail that
cannot be sent never undoes the booking it is about. The sender claims and marks each mail
in a unit of its own (app/services/unit.py), never holding a transaction open while the
relay is called."""
from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from flask import render_template
from flask_babel import force_locale
from sqlalchemy import select, update

from app import clock
from app.clock import JST
from app.models.outbox import FAILED, QUEUED, SENDING, SENT, OutboxMail
from app.models.reservation import BOOKED, Reservation, Slot
from app.services import audit, unit
from app.services.fields import is_single_mailbox
from app.settings import settings

log = logging.getLogger(__name__)

KINDS = ("booked", "changed", "cancelled", "reminder", "slot_closed")

# The sender: attempts per mail before it is marked failed, the wait after the n-th failed
# attempt (1, 2, 4 ... minutes, at most an hour: about two hours in all), and how long a
# claimed row is left to its sender before another sender takes it (a sender that crashed).
MAX_ATTEMPTS = 8
MAX_RETRY_DELAY = timedelta(hours=1)
LEASE = timedelta(minutes=10)


class MailError(Exception):
    """The relay refused or could not be reached; the text goes to ``last_error``."""


def configured() -> bool:
    return bool(settings().mail_server)


def deliver(to: str, subject: str, body: str, message_id: str | None = None) -> None:
    """Send one plain-text mail through the relay, or raise :class:`MailError`. Refuses
    (MailError) when ``to`` is not exactly one mailbox with a domain
    (app/services/fields.py): nothing that slipped past a form (a list, a local mailbox, a
    display name) is ever handed to SMTP."""
    if not is_single_mailbox(to):
        raise MailError("the address is not a single mailbox")
    config = settings()
    domain = config.mail_from.rpartition("@")[2] or None
    message = EmailMessage()
    message["From"] = config.mail_from
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = f"<{message_id}@{domain or 'localhost'}>" if message_id \
        else make_msgid(domain=domain)
    message.set_content(body)
    try:
        with smtplib.SMTP(config.mail_server, config.mail_port,
                          timeout=config.mail_timeout_seconds) as smtp:
            if config.mail_starttls:
                smtp.starttls()
            if config.mail_username:
                smtp.login(config.mail_username, config.mail_password)
            smtp.send_message(message, to_addrs=[to])
    except (OSError, smtplib.SMTPException) as error:
        raise MailError(_smtp_reason(error, to)) from None


def _smtp_reason(error: BaseException, to: str) -> str:
    """What the log and the outbox keep of a failed delivery: the kind of error and the
    relay's codes, never the resident's address (a refusal repeats it, twice)."""
    name = type(error).__name__
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = sorted({str(code) for code, _text in error.recipients.values()})
        return f"{name}: {', '.join(codes)} (the relay refused the recipient)"
    if isinstance(error, smtplib.SMTPResponseException):
        text = error.smtp_error.decode("utf-8", "replace") if isinstance(
            error.smtp_error, bytes) else str(error.smtp_error)
        return f"{name}: {error.smtp_code} {text}".replace(to, "<recipient>")[:300]
    return (f"{name}: {error}".replace(to, "<recipient>") if str(error) else name)[:300]


def send(to: str, subject: str, body: str) -> bool:
    """Send one mail at once; False (and a log line) when it was not sent."""
    try:
        deliver(to, subject, body)
    except MailError as error:
        log.warning("mail to a resident was not sent: %s", error)
        return False
    return True


def render(reservation: Reservation, kind: str,
           now: datetime | None = None) -> tuple[str, str]:
    """Subject and body in the language the resident booked in. A reminder says 本日 when
    the visit is on the day it is written (a run caught up after midnight), else 明日."""
    assert kind in KINDS
    visit_day = clock.to_jst(reservation.slot.starts_at).date()
    today = (now or clock.now()).astimezone(JST).date()
    with force_locale(reservation.locale or "ja"):
        text = render_template("public/mail/reservation.txt", r=reservation, kind=kind,
                               slot=reservation.slot, offer=reservation.slot.offer,
                               visit_is_today=visit_day == today,
                               lookup_url=settings().public_base_url + "/reserve/lookup")
    subject, _, body = text.strip().partition("\n")
    return subject.strip(), body.lstrip("\n")


def can_mail(reservation: Reservation) -> bool:
    """Mail is set up and the resident gave one usable address: what the screens mean by
    "the resident was e-mailed"."""
    return configured() and is_single_mailbox(reservation.email)


def enqueue(session, reservation: Reservation, kind: str,
            now: datetime | None = None) -> bool:
    """Queue the mail about this booking in the caller's transaction (no commit): it goes
    out only if the change it announces commits. Rendered now, in the resident's language.
    True when a mail was queued (mail is set up and the resident gave an address)."""
    if not can_mail(reservation):
        return False
    now = now or clock.now()
    subject, body = render(reservation, kind, now)
    session.add(OutboxMail(kind=kind, reservation_id=reservation.id,
                           to_address=reservation.email, locale=reservation.locale or "ja",
                           subject=subject[:300], body=body, created_at=now, state=QUEUED,
                           attempts=0, next_attempt_at=now))
    return True


@dataclass
class SendReport:
    sent: int = 0
    retried: int = 0  # failed this time, queued again for later
    failed: int = 0  # failed for the last time


def retry_delay(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: 1, 2, 4 ... minutes, at most
    MAX_RETRY_DELAY."""
    return min(timedelta(minutes=2 ** max(attempts - 1, 0)), MAX_RETRY_DELAY)


def send_outbox(session, limit: int | None = None) -> SendReport:
    """Deliver the queued mails that are due. Each row is claimed first by a
    compare-and-set (``queued`` -> ``sending``, or a ``sending`` row whose sender's lease
    ran out) and committed before the relay is called, so two senders at once never both
    send it; then marked ``sent``, or queued again for later, or ``failed`` after
    MAX_ATTEMPTS. The outcome is audited as the caller's actor (``system`` from cron)."""
    report = SendReport()
    if not configured():
        return report
    due = select(OutboxMail.id).where(OutboxMail.state.in_((QUEUED, SENDING)),
                                      OutboxMail.next_attempt_at <= clock.now()) \
        .order_by(OutboxMail.next_attempt_at, OutboxMail.id)
    if limit:
        due = due.limit(limit)
    with unit.transaction(session):  # the list only; each mail then in units of its own
        ids = session.execute(due).scalars().all()
    for mail_id in ids:
        outcome = _send_one(session, mail_id)
        if outcome == SENT:
            report.sent += 1
        elif outcome == QUEUED:
            report.retried += 1
        elif outcome == FAILED:
            report.failed += 1
    return report


def _send_one(session, mail_id: int) -> str | None:
    """One mail: claimed in one unit (committed before the relay is called), delivered,
    then marked in another unit."""
    now = clock.now()
    with unit.transaction(session):
        claimed = _claim(session, mail_id, now)
        if claimed is None:
            # Taken by another sender, or a row whose sender stopped at its last attempt.
            gave_up = _finish(session, mail_id, SENDING, None, FAILED, now,
                              "the sender stopped while sending", stale_at=now)
    if claimed is None:
        return FAILED if gave_up else None
    stamp = claimed.created_at.astimezone(JST).strftime("%Y%m%d%H%M%S")
    try:
        deliver(claimed.to_address, claimed.subject, claimed.body,
                message_id=f"outbox-{mail_id}.{stamp}")
    except MailError as error:
        log.warning("mail %s to a resident was not sent (attempt %s): %s", mail_id,
                    claimed.attempts, error)
        last = claimed.attempts >= MAX_ATTEMPTS
        state = FAILED if last else QUEUED
        with unit.transaction(session):
            _finish(session, mail_id, SENDING, claimed.attempts, state, clock.now(),
                    str(error)[:500])
        return state
    with unit.transaction(session):
        _finish(session, mail_id, SENDING, claimed.attempts, SENT, clock.now(), None)
    return SENT


def _claim(session, mail_id: int, now: datetime):
    """Compare-and-set ``queued`` (or a ``sending`` row past its lease) -> ``sending``;
    the row's attempt and content, or None when another sender has it."""
    return session.execute(
        update(OutboxMail).where(OutboxMail.id == mail_id,
                                 OutboxMail.state.in_((QUEUED, SENDING)),
                                 OutboxMail.next_attempt_at <= now,
                                 OutboxMail.attempts < MAX_ATTEMPTS)
        .values(state=SENDING, attempts=OutboxMail.attempts + 1, next_attempt_at=now + LEASE)
        .returning(OutboxMail.attempts, OutboxMail.to_address, OutboxMail.subject,
                   OutboxMail.body, OutboxMail.created_at)
        .execution_options(synchronize_session=False)).first()


def _finish(session, mail_id: int, expected: str, attempts: int | None, state: str,
            now: datetime, error: str | None, stale_at: datetime | None = None) -> bool:
    """Compare-and-set from ``sending`` (by this sender's attempt, or a stale row at the
    maximum): sent, queued again with the next attempt later, or failed."""
    conditions = [OutboxMail.id == mail_id, OutboxMail.state == expected]
    if attempts is not None:
        conditions.append(OutboxMail.attempts == attempts)
    if stale_at is not None:
        conditions += [OutboxMail.next_attempt_at <= stale_at,
                       OutboxMail.attempts >= MAX_ATTEMPTS]
    values = {"state": state, "last_error": error}
    if state == SENT:
        values["sent_at"] = now
    elif state == QUEUED:
        values["next_attempt_at"] = now + retry_delay(attempts or 1)
    done = session.execute(update(OutboxMail).where(*conditions).values(**values)
                           .execution_options(synchronize_session=False)).rowcount == 1
    if done and state != QUEUED:  # the outcome, once per mail; retries are bookkeeping
        audit.record_in_transaction(session, audit.ACTION_UPDATE, "outbox", mail_id,
                                    {"state": {"old": expected, "new": state},
                                     **({"last_error": error} if error else {})})
    return done


def send_reminders(session, now: datetime | None = None,
                   day: date | None = None) -> tuple[int, int]:
    """Queue a reminder for everyone booked for ``day`` (default: tomorrow, Japan time) who
    gave an e-mail address and has not been reminded yet, for visits that have not begun
    (a run caught up late reminds nobody of a visit already under way). Each booking is
    claimed (``reminded_at``, a compare-and-set) in the same transaction as its queued
    mail, so a second run (or two runs at once) queues no mail twice. Returns (queued,
    not queued)."""
    now = now or clock.now()
    day = day or now.astimezone(JST).date() + timedelta(days=1)
    first = datetime.combine(day, time.min, JST)
    due = session.execute(
        select(Reservation.id).join(Slot, Reservation.slot_id == Slot.id)
        .where(Reservation.state == BOOKED, Reservation.email.is_not(None),
               Reservation.email != "", Reservation.reminded_at.is_(None),
               Slot.starts_at >= max(first, now),
               Slot.starts_at < first + timedelta(days=1))
        .order_by(Slot.starts_at)).scalars().all()
    queued = failed = 0
    if not configured():
        return queued, len(due)
    for reservation_id in due:
        try:
            with unit.transaction(session):  # each booking's claim and mail: one unit
                claimed = session.execute(update(Reservation).where(
                    Reservation.id == reservation_id, Reservation.reminded_at.is_(None))
                    .values(reminded_at=now).execution_options(synchronize_session=False)
                ).rowcount == 1
                if not claimed:  # reminded by another run meanwhile
                    continue
                reservation = session.get(Reservation, reservation_id)
                if not enqueue(session, reservation, "reminder", now):
                    raise _NotMailable()
        except _NotMailable:  # an address no mail can go to: not claimed, looked at again
            failed += 1
            continue
        queued += 1
    return queued, failed


class _NotMailable(Exception):
    """Inside send_reminders: roll back the claim of a booking no mail can go to."""
