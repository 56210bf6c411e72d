"""Inbound SMTP (aiosmtpd) for operators who point an MX or a forwarding rule at us.

Only the publication's own addresses are accepted (the contact address, the
unsubscribe and bounce addresses with or without a ``+TOKEN``, and any listed in
``feedback.addresses``); anything else is refused at ``RCPT`` so the listener is
no open relay. A message is acknowledged only after its raw bytes are stored;
if storing fails the sender is told to try again later (451), so nothing is lost.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiosmtpd.controller import Controller

from digest.feedback.classify import Mailboxes
from digest.feedback.store import Filer, Incoming
from digest.send import smtp_codes

log = logging.getLogger(__name__)


class FeedbackHandler:
    """aiosmtpd hooks: check each recipient, file each message."""

    def __init__(self, filer: Filer, mailboxes: Mailboxes, extra: list[str]) -> None:
        self.filer = filer
        self.mailboxes = mailboxes
        self.extra = {address.lower() for address in extra}
        self.filed = 0

    def accepts(self, address: str) -> bool:
        return self.mailboxes.accepts(address) or address.lower() in self.extra

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if not self.accepts(address):
            return smtp_codes.REPLY_NO_SUCH_MAILBOX
        envelope.rcpt_tos.append(address)
        return smtp_codes.REPLY_RECIPIENT_OK

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        incoming = Incoming(bytes(raw), "smtp", tuple(envelope.rcpt_tos), dated_by_headers=False)
        try:
            report = await asyncio.get_running_loop().run_in_executor(
                None, self.filer.file, [incoming]
            )
        except Exception:
            log.exception("storing an inbound message failed")
            return smtp_codes.REPLY_TRY_LATER
        if report.not_stored:
            return smtp_codes.REPLY_TRY_LATER
        self.filed += 1
        return smtp_codes.REPLY_FILED


def start_listener(
    filer: Filer, mailboxes: Mailboxes, extra: list[str], host: str, port: int, max_bytes: int
) -> Controller:
    """A running listener; ``stop()`` it when done."""
    controller = Controller(
        FeedbackHandler(filer, mailboxes, extra),
        hostname=host,
        port=port,
        data_size_limit=max_bytes,
        decode_data=False,
        ident="digest feedback",
    )
    controller.start()
    return controller
