"""A real SMTP server on localhost (aiosmtpd) that keeps what it receives."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP


def free_port() -> int:
    """aiosmtpd can't bind port 0, so ask the kernel for a free port first."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage


@dataclass
class Inbox:
    """What the server accepted, and the addresses it refuses (550 5.1.1)."""

    messages: list[Received] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    commands: list[str] = field(default_factory=list)
    reject: set[str] = field(default_factory=set)  # 554 5.7.1: refused, but the address exists
    defer_once: set[str] = field(default_factory=set)  # 451 on the first try of each
    defer_all: bool = False  # 451 to every recipient
    drop_every: int = 0  # close the connection at every Nth MAIL FROM
    mails: int = 0
    deferred: list[str] = field(default_factory=list)
    open_sessions: int = 0  # connections not yet closed; 0: nothing more can arrive

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        self.mails += 1
        if self.drop_every and self.mails % self.drop_every == 0:
            server.transport.close()
            return "421 4.4.2 dropping the connection on purpose"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address.lower() in self.refuse:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if address.lower() in self.reject:
            return "554 5.7.1 Message rejected by policy"
        if self.defer_all or address.lower() in self.defer_once:
            self.defer_once.discard(address.lower())
            self.deferred.append(address)
            return "451 4.7.1 Greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_RSET(self, server: Any, session: Any, envelope: Any) -> str:
        self.commands.append("RSET")
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return f"250 2.0.0 Ok: queued as TEST{len(self.messages)}"


class _CountingSMTP(SMTP):
    """aiosmtpd's server, counting open connections in the inbox.

    A client that has exited can deliver nothing more once its connections are
    closed here, so a test waits for ``open_sessions == 0`` instead of sleeping.
    """

    def __init__(self, inbox: Inbox, **kwargs: Any) -> None:
        super().__init__(inbox, **kwargs)
        self.inbox = inbox

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.transport is None:  # not the STARTTLS upgrade of a counted connection
            self.inbox.open_sessions += 1
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        super().connection_lost(error)  # ends the session: no more DATA is handled
        self.inbox.open_sessions -= 1


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _CountingSMTP(self.handler, **self.SMTP_kwargs)


@dataclass
class SMTPServer:
    host: str
    port: int
    inbox: Inbox

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"


@pytest.fixture
def smtp_server() -> Iterator[SMTPServer]:
    inbox = Inbox()
    port = free_port()
    controller = _Controller(inbox, hostname="127.0.0.1", port=port, enable_SMTPUTF8=True)
    controller.start()
    try:
        yield SMTPServer("127.0.0.1", port, inbox)
    finally:
        controller.stop()


def text_part(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())
