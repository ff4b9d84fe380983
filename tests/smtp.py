"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives."""
from __future__ import annotations

import email
import socket
from email.policy import default

import pytest
from aiosmtpd.controller import Controller

from app import settings


class Inbox:
    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.messages.append(email.message_from_bytes(envelope.content, policy=default))
        return "250 OK"

    def to(self, address: str) -> list:
        return [m for m in self.messages if m["To"] == address]

    @staticmethod
    def body(message) -> str:
        return message.get_body(("plain",)).get_content()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp(app):
    """Start the server and point the app's mail settings at it."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.configure(app, MAIL_SERVER="127.0.0.1", MAIL_PORT=controller.port,
                       MAIL_FROM="yoyaku@city.midori.lg.jp")  # undone after the test
    yield inbox
    controller.stop()


def deliver_outbox(app):
    """Run the sender once, as cron does (``flask --app run outbox send``), and return its
    report: the mails queued by the requests go out now."""
    from app.extensions import session
    from app.services import audit, mail

    with app.app_context():  # its own database session, closed with the context
        audit.act_as(audit.SYSTEM)
        return mail.send_outbox(session())
