"""One edition's message for one recipient, from what is prepared once per edition.

The email package is thorough but slow (milliseconds a message), so it builds
each edition's message once, as a skeleton; per recipient only the To, Date,
Message-ID and List-Unsubscribe headers are written and the placeholders filled
into bodies whose literal parts were quoted-printable encoded once. That keeps a
message to a fraction of a millisecond. tests/digest/test_compose.py checks the
result parses to exactly what the email package itself would have built.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import dkim

from digest.errors import ConfigError
from digest.ledger import FrozenEdition, Recipient
from digest.render.placeholders import Personalisable, escape_html, keep
from digest.render.renderer import preview_values
from digest.send.links import Links
from digest.send.mailboxes import bounce_mailbox, list_id, unsubscribe_mailbox
from digest.send.message import (
    SMTP,
    address_header,
    header_text,
    mailbox,
    new_message_id,
    plain_address_header,
)
from digest.send.wire import Part, data_payload, raw_message
from digest.settings import DeliverySettings, Settings

#: Headers the DKIM signature covers, List-* included so they can't be altered.
DKIM_HEADERS = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"reply-to",
    b"list-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"mime-version",
    b"content-type",
)


@dataclass(frozen=True)
class Composed:
    raw: bytes
    envelope_from: str
    message_id: str
    stuffed: bytes  # ``raw`` as SMTP's DATA carries it (see :mod:`digest.send.wire`)


@dataclass(frozen=True)
class DkimKey:
    selector: bytes
    domain: bytes
    private_key: bytes

    @classmethod
    def from_settings(cls, delivery: DeliverySettings, sender_domain: str) -> DkimKey | None:
        if not delivery.dkim_selector and not delivery.dkim_private_key_file:
            return None
        if not (delivery.dkim_selector and delivery.dkim_private_key_file):
            raise ConfigError("DKIM needs both delivery.dkim_selector and dkim_private_key_file")
        try:
            key = Path(delivery.dkim_private_key_file).read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"cannot read the DKIM key {delivery.dkim_private_key_file}: {exc.strerror}"
            ) from exc
        domain = delivery.dkim_domain or sender_domain
        signer = cls(delivery.dkim_selector.encode(), domain.encode(), key)
        signer.sign(b"From: check@" + domain.encode() + b"\r\nSubject: key check\r\n\r\nx\r\n")
        return signer  # the key works: a bad one is refused here, not mid-send

    def sign(self, raw: bytes) -> bytes:
        try:
            signature = dkim.sign(
                raw,
                self.selector,
                self.domain,
                self.private_key,
                include_headers=list(DKIM_HEADERS),
            )
        except dkim.DKIMException as exc:
            raise ConfigError(f"DKIM signing failed: {exc}") from exc
        return bytes(signature) + raw


_SOFT_BREAK = Part(b"=\r\n")
_TEXT_MARK = "DIGEST-TEXT-BODY-GOES-HERE"
_HTML_MARK = "DIGEST-HTML-BODY-GOES-HERE"


def _qp(text: str) -> bytes:
    """Quoted-printable with CRLF line ends (binascii: C speed)."""
    data = text.replace("\r\n", "\n").encode("utf-8")
    return binascii.b2a_qp(data, istext=True).replace(b"\n", b"\r\n")


class EncodedBody:
    """A body quoted-printable encoded once, its placeholders filled per recipient.

    The literal pieces are encoded once; each value is encoded on its own and
    joined with soft line breaks, so no line passes 76 characters and a value
    can't be split or mangled by the encoding around it.
    """

    def __init__(self, body: Personalisable) -> None:
        self.fields = body.fields
        self.pieces = [Part(_qp(piece)) for piece in body.pieces]

    def parts(self, values: dict[str, str], encode: Callable[[str], str] = keep) -> list[Part]:
        """The body for one recipient, as parts (see :mod:`digest.send.wire`)."""
        out = [self.pieces[0]]
        for name, piece in zip(self.fields, self.pieces[1:], strict=True):
            out += (_SOFT_BREAK, Part(_qp(encode(values[name]))), _SOFT_BREAK, piece)
        last = len(out) - 1  # the body's final line break goes (the MIME boundary brings one)
        while last and not out[last].raw:
            last -= 1
        out[last] = out[last].removesuffix(b"\r\n")
        return out


class Skeleton:
    """The parts of a message that are the same for every recipient, made once.

    The email package builds a message with marked bodies (so the boundary, part
    headers and encoded Subject are its work); per recipient only the bodies and
    a few headers go in. Every value goes through ``header_text``/``mailbox``.
    """

    def __init__(self, sender: Address, reply_to: Address, subject: str, list_id: str) -> None:
        message = EmailMessage()
        message.set_raw("From", address_header(sender, "From"))
        message["Subject"] = header_text(subject)
        message.set_raw("Reply-To", address_header(reply_to, "Reply-To"))
        message["List-Id"] = header_text(list_id)
        message.set_content(_TEXT_MARK, cte="quoted-printable")
        message.add_alternative(_HTML_MARK, subtype="html", cte="quoted-printable")
        raw = message.as_bytes(policy=SMTP)
        before_text, _, rest = raw.partition(_TEXT_MARK.encode())
        between, _, after_html = rest.partition(_HTML_MARK.encode())
        if not between or not after_html:
            raise AssertionError("the message skeleton lost its body marks")
        self.parts = (Part(before_text), Part(between), Part(after_html))

    def message(self, headers: bytes, text: list[Part], html: list[Part]) -> list[Part]:
        before_text, between, after_html = self.parts
        return [Part(headers), before_text, *text, between, *html, after_html]


#: Header values built here from parts already made safe (tokens, numbers, hex, a
#: checked prefix): ``header_text`` would return them unchanged.
_TOKEN_TEXT = re.compile(r"[A-Za-z0-9_.@<>:/+-]*")


def to_header(name: str | None, email: str) -> str:
    """``To`` for one recipient, made by the same function as every address header."""
    return plain_address_header(name, email, "To") or address_header(mailbox(name, email), "To")


class _Dates:
    """``Date`` header values: one ``format_datetime`` a second, not one a message."""

    def __init__(self) -> None:
        self.last: tuple[datetime | None, str] = (None, "")  # one object: threads share it

    def __call__(self, now: datetime) -> str:
        second = now.replace(microsecond=0)
        last_second, text = self.last
        if second != last_second:
            text = format_datetime(now)
            self.last = (second, text)
        return text


def _safe(value: str) -> str:
    """``header_text(value)``, quicker for the plain token-like values of every message."""
    return value if _TOKEN_TEXT.fullmatch(value) else header_text(value)


class EditionComposer:
    """Builds each recipient's message for one frozen edition."""

    def __init__(self, frozen: FrozenEdition, settings: Settings, links: Links) -> None:
        publication = settings.publication
        delivery = settings.delivery
        self.links = links
        self.sender: Address = mailbox(publication.from_name, publication.sender_email)
        self.domain = self.sender.domain
        self.reply_to = mailbox(publication.name, publication.contact_email)
        self.subject = frozen.subject
        self.day = frozen.date
        self.salt = frozen.salt
        self.html = EncodedBody(Personalisable.compile(frozen.html))
        self.text = EncodedBody(Personalisable.compile(frozen.text))
        self.list_id = header_text(list_id(settings))
        self.unsubscribe_local, self.unsubscribe_domain = unsubscribe_mailbox(settings)
        self.bounce_local, self.bounce_domain = bounce_mailbox(settings)
        self.verp = delivery.verp
        self.dkim = DkimKey.from_settings(delivery, self.domain)
        self.preview = preview_values(publication)
        self.skeleton = Skeleton(self.sender, self.reply_to, self.subject, self.list_id)
        self.dates = _Dates()

    def message_id(self, delivery_id: int) -> str:
        """Unique per delivery, the same on a retry, and unguessable: its tag is signed."""
        tag = self.links.signer.message_tag(delivery_id, self.salt)
        return f"<{self.day:%Y%m%d}.{delivery_id}.{tag}@{self.domain}>"

    def envelope_from(self, delivery_id: int | None) -> str:
        if self.verp and delivery_id is not None:
            token = self.links.signer.delivery_token(delivery_id)
            return f"{self.bounce_local}+{token}@{self.bounce_domain}"
        return f"{self.bounce_local}@{self.bounce_domain}"

    def compose(self, recipient: Recipient, now: datetime) -> Composed:
        unsubscribe_url = self.links.unsubscribe_url_for(
            recipient.subscriber_id, recipient.email_key
        )
        token = self.links.signer.delivery_token(recipient.delivery_id)
        mailto = (
            f"mailto:{self.unsubscribe_local}+{token}@{self.unsubscribe_domain}?subject=unsubscribe"
        )
        values = {"unsubscribe_url": unsubscribe_url, "recipient_email": recipient.email}
        return self._compose(
            self.skeleton,
            recipient.name,
            recipient.email,
            values,
            self.message_id(recipient.delivery_id),
            now,
            self.envelope_from(recipient.delivery_id),
            [unsubscribe_url, mailto],
        )

    def compose_test(self, email: str, now: datetime, prefix: str = "[TEST]") -> Composed:
        """A test send or draft: prefixed subject, placeholders as in previews, not recorded."""
        values = {**self.preview, "recipient_email": email}
        skeleton = Skeleton(self.sender, self.reply_to, f"{prefix} {self.subject}", self.list_id)
        return self._compose(
            skeleton,
            None,
            email,
            values,
            new_message_id(self.domain),
            now,
            self.envelope_from(None),
            [values["unsubscribe_url"]],
        )

    def _compose(
        self,
        skeleton: Skeleton,
        name: str | None,
        email: str,
        values: dict[str, str],
        message_id: str,
        now: datetime,
        envelope_from: str,
        unsubscribe_uris: list[str],
    ) -> Composed:
        # Written as raw lines: the email package would encode a long URL as an
        # RFC 2047 word, which mail clients then can't read as a link. One URI a
        # line, each made safe like any header value.
        list_unsubscribe = ",\r\n ".join(f"<{_safe(uri)}>" for uri in unsubscribe_uris)
        headers = (
            f"To: {to_header(name, email)}\r\n"
            f"Date: {self.dates(now)}\r\n"
            f"Message-ID: {_safe(message_id)}\r\n"
            f"List-Unsubscribe: {list_unsubscribe}\r\n"
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
        ).encode()
        parts = skeleton.message(
            headers, self.text.parts(values), self.html.parts(values, escape_html)
        )
        raw = raw_message(parts)
        if self.dkim is not None:
            signed = self.dkim.sign(raw)
            parts.insert(0, Part(signed[: len(signed) - len(raw)]))
            raw = signed
        return Composed(raw, envelope_from, message_id, data_payload(parts))
