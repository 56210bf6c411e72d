"""MIME messages: multipart/alternative (text, then HTML) with safe headers.

Pure: values in, an ``EmailMessage`` out. Every value that reaches a header
(subject, names, addresses) passes through :func:`header_text`, so no newline or
control character in an edition or a subscriber's name can add a header.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


def header_text(value: str) -> str:
    """One line of text, control characters (CR, LF, tab, NUL…) turned into spaces."""
    return _CONTROL.sub(" ", value).strip()


def mailbox(name: str | None, email: str) -> Address:
    """``Name <email>`` as a header value; the name is quoted or encoded as needed."""
    local, _, domain = header_text(email).rpartition("@")
    if not local or not domain:
        raise ValueError(f"not an email address: {email!r}")
    return Address(display_name=header_text(name or ""), username=local, domain=domain)


def new_message_id(domain: str) -> str:
    """A globally unique Message-ID under ``domain`` (kept to trace replies)."""
    return make_msgid(domain=domain)


def build_message(
    *,
    sender: Address,
    to: Address,
    subject: str,
    text: str,
    html: str | None,
    message_id: str,
    now: datetime,
    reply_to: Address | None = None,
    headers: Mapping[str, str] | None = None,
) -> EmailMessage:
    """A complete message; ``headers`` adds more (List-*, Auto-Submitted …), all made safe."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = header_text(subject)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id
    if reply_to is not None:
        message["Reply-To"] = reply_to
    for name, value in (headers or {}).items():
        message[header_text(name)] = header_text(value)
    message.set_content(text, cte="quoted-printable")
    if html is not None:
        message.add_alternative(html, subtype="html", cte="quoted-printable")
    return message


def needs_smtputf8(*addresses: str) -> bool:
    """Whether an address has a non-ASCII local part or domain (RFC 6531)."""
    return not all(address.isascii() for address in addresses)


def to_bytes(message: EmailMessage, *addresses: str) -> bytes:
    """The message as sent over SMTP (CRLF); raw UTF-8 headers only when an address needs it."""
    utf8 = needs_smtputf8(*addresses)
    return message.as_bytes(policy=policy.SMTPUTF8 if utf8 else policy.SMTP)
