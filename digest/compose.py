"""One edition's message for one recipient, from what is prepared once per edition.

Per recipient only the placeholders are filled and a few headers written; the
rest (parsed bodies, sender, List-Id, the DKIM key) is prepared when the
composer is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from pathlib import Path

import dkim

from digest.errors import ConfigError
from digest.ledger import FrozenEdition, Recipient
from digest.links import Links
from digest.message import build_message, header_text, mailbox, new_message_id, to_bytes
from digest.placeholders import Personalisable, escape_html
from digest.render import preview_values
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
        return cls(delivery.dkim_selector.encode(), domain.encode(), key)

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


def _split(address: str) -> tuple[str, str]:
    local, _, domain = address.rpartition("@")
    return local, domain


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
        self.html = Personalisable.compile(frozen.html)
        self.text = Personalisable.compile(frozen.text)
        self.list_id = header_text(
            delivery.list_id or f"{publication.name} <briefing.{self.domain}>"
        )
        self.unsubscribe_local, self.unsubscribe_domain = _split(
            delivery.unsubscribe_address or f"unsubscribe@{self.domain}"
        )
        self.bounce_local, self.bounce_domain = _split(
            delivery.bounce_address or f"bounces@{self.domain}"
        )
        self.verp = delivery.verp
        self.dkim = DkimKey.from_settings(delivery, self.domain)
        self.preview = preview_values(publication)

    def message_id(self, delivery_id: int) -> str:
        """Unique per delivery, the same on a retry, unguessable without the edition's salt."""
        return f"<{self.day:%Y%m%d}.{delivery_id}.{self.salt}@{self.domain}>"

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
        message_id = self.message_id(recipient.delivery_id)
        return self._compose(
            recipient.name,
            recipient.email,
            self.subject,
            values,
            message_id,
            now,
            self.envelope_from(recipient.delivery_id),
            f"<{unsubscribe_url}>,\r\n <{mailto}>",
        )

    def compose_test(self, email: str, now: datetime) -> Composed:
        """A test send: "[TEST]" subject, placeholders as in previews, nothing recorded."""
        values = {**self.preview, "recipient_email": email}
        return self._compose(
            None,
            email,
            f"[TEST] {self.subject}",
            values,
            new_message_id(self.domain),
            now,
            self.envelope_from(None),
            f"<{values['unsubscribe_url']}>",
        )

    def _compose(
        self,
        name: str | None,
        email: str,
        subject: str,
        values: dict[str, str],
        message_id: str,
        now: datetime,
        envelope_from: str,
        list_unsubscribe: str,
    ) -> Composed:
        message = build_message(
            sender=self.sender,
            to=mailbox(name, email),
            subject=subject,
            text=self.text.fill(values),
            html=self.html.fill(values, escape_html),
            message_id=message_id,
            now=now,
            reply_to=self.reply_to,
            headers={"List-Id": self.list_id},
        )
        # Written as raw lines: the email package would encode a long URL as an
        # RFC 2047 word, which mail clients then can't read as a link.
        extra = (
            f"List-Unsubscribe: {list_unsubscribe}\r\n"
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
        ).encode("ascii")
        raw = extra + to_bytes(message, envelope_from, email)
        if self.dkim is not None:
            raw = self.dkim.sign(raw)
        return Composed(raw, envelope_from, message_id)
