"""E-mail to residents: booking, change and cancel confirmations, the reminder the day
before, and notice of a time the office had to close. Nothing is sent while MAIL_SERVER is
empty. A mail that cannot be sent is logged and never undoes the booking it is about."""
from __future__ import annotations

import logging
import smtplib
from datetime import datetime, time, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from flask import current_app, render_template
from flask_babel import force_locale
from sqlalchemy import select, update

from app import clock
from app.clock import JST
from app.models.reservation import BOOKED, Reservation, Slot

log = logging.getLogger(__name__)

KINDS = ("booked", "changed", "cancelled", "reminder", "slot_closed")


def configured() -> bool:
    return bool(current_app.config.get("MAIL_SERVER"))


def send(to: str, subject: str, body: str) -> bool:
    """Send one plain-text mail; False (and a log line) when the server refuses, or when
    ``to`` is not exactly one mailbox with a domain (app/services/fields.py): nothing that
    slipped past a form (a list, a local mailbox, a display name) is ever handed to SMTP."""
    from app.services.fields import is_single_mailbox

    if not is_single_mailbox(to):
        log.warning("mail to a resident was not sent: the address is not a single mailbox")
        return False
    config = current_app.config
    message = EmailMessage()
    message["From"] = config["MAIL_FROM"]
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain=config["MAIL_FROM"].rpartition("@")[2] or None)
    message.set_content(body)
    try:
        with smtplib.SMTP(config["MAIL_SERVER"], config.get("MAIL_PORT", 25),
                          timeout=config.get("MAIL_TIMEOUT_SECONDS", 10)) as smtp:
            if config.get("MAIL_STARTTLS"):
                smtp.starttls()
            if config.get("MAIL_USERNAME"):
                smtp.login(config["MAIL_USERNAME"], config.get("MAIL_PASSWORD", ""))
            smtp.send_message(message, to_addrs=[to])
    except (OSError, smtplib.SMTPException) as error:
        log.warning("mail to a resident was not sent: %s", error)
        return False
    return True


def render(reservation: Reservation, kind: str) -> tuple[str, str]:
    """Subject and body in the language the resident booked in."""
    assert kind in KINDS
    with force_locale(reservation.locale or "ja"):
        text = render_template("public/mail/reservation.txt", r=reservation, kind=kind,
                               slot=reservation.slot, offer=reservation.slot.offer,
                               lookup_url=current_app.config["PUBLIC_BASE_URL"].rstrip("/")
                               + "/reserve/lookup")
    subject, _, body = text.strip().partition("\n")
    return subject.strip(), body.lstrip("\n")


def notify(reservation: Reservation, kind: str) -> bool:
    """Mail the resident about their booking, when mail is set up and they gave an address."""
    if not configured() or not reservation.email:
        return False
    subject, body = render(reservation, kind)
    return send(reservation.email, subject, body)


def send_reminders(session, now: datetime | None = None) -> tuple[int, int]:
    """Remind everyone booked for tomorrow (Japan time) who gave an e-mail address and has
    not been reminded yet. Each reminder is committed as it goes, so a second run (or a
    run after a crash) sends no mail twice. Returns (sent, failed)."""
    now = now or clock.now()
    tomorrow = now.astimezone(JST).date() + timedelta(days=1)
    first = datetime.combine(tomorrow, time.min, JST)
    due = session.execute(
        select(Reservation.id).join(Slot, Reservation.slot_id == Slot.id)
        .where(Reservation.state == BOOKED, Reservation.email.is_not(None),
               Reservation.email != "", Reservation.reminded_at.is_(None),
               Slot.starts_at >= first, Slot.starts_at < first + timedelta(days=1))
        .order_by(Slot.starts_at)).scalars().all()
    sent = failed = 0
    if not configured():
        return sent, len(due)
    for reservation_id in due:
        # Claim the reminder first: two runs at once never both send it.
        claimed = session.execute(update(Reservation).where(
            Reservation.id == reservation_id, Reservation.reminded_at.is_(None))
            .values(reminded_at=now)).rowcount == 1
        session.commit()
        if not claimed:
            continue
        reservation = session.get(Reservation, reservation_id)
        if notify(reservation, "reminder"):
            sent += 1
        else:  # give it back, so the next run tries again
            session.execute(update(Reservation).where(Reservation.id == reservation_id)
                            .values(reminded_at=None))
            session.commit()
            failed += 1
    return sent, failed
