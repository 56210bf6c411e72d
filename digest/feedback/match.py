"""Which delivery a message answers, and so which edition and which subscriber.

Tried in order of certainty:

1. the signed token of the VERP or unsubscribe address it was sent to (a
   complaint's ``Original-Mail-From`` included);
2. ``In-Reply-To`` / ``References`` naming one of our stored Message-IDs;
3. one of our Message-IDs inside the message: the headers a bounce or an abuse
   report returns, or the original it attaches;
4. for bounces and complaints, the failed (or reported) recipient: the
   subscriber only, since nothing says which edition failed;
5. the sender's address: a subscriber, and, if the subject is "Re:" an
   edition's subject, that edition's delivery to them.

Only the first three are *trusted*: tokens and Message-IDs are signed per
delivery, so nobody can name another reader's delivery with them. Bounces,
complaints and unsubscribes change a subscriber only through a trusted link;
the rest are filed for the editors to read, because a ``From:`` or a
``Final-Recipient:`` anyone can write.
"""

from __future__ import annotations

import email.utils
import hmac
import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.feedback.classify import Mailboxes, base_subject
from digest.feedback.parse import Parsed
from digest.ledger import Delivery, FrozenEdition
from subscribers import audience
from subscribers.errors import AddressError, TokenError
from subscribers.models import Subscriber
from subscribers.tokens import Signer


@dataclass(frozen=True)
class Link:
    delivery_id: int | None = None
    edition_id: int | None = None
    subscriber_id: int | None = None
    by: str | None = None

    @property
    def found(self) -> bool:
        return self.edition_id is not None or self.subscriber_id is not None

    @property
    def answers_ours(self) -> bool:
        """Linked by In-Reply-To/References: it answers one of our deliveries."""
        return self.by is not None and self.by.partition(",")[0] == "in-reply-to"

    @property
    def trusted(self) -> bool:
        """Through a signed token or Message-ID: safe to act on."""
        return self.delivery_id is not None and self.by in TRUSTED


_SIGNED_ID = re.compile(r"<\d{8}\.\d+\.([0-9a-f]{16})@")
TRUSTED = frozenset({"verp", "unsubscribe", "in-reply-to", "returned-headers"})


def find_link(session: Session, parsed: Parsed, mailboxes: Mailboxes, signer: Signer) -> Link:
    link = _by_token(session, parsed, mailboxes, signer)
    if link is None:
        link = _by_message_ids(session, parsed.thread_ids, "in-reply-to", signer)
    if link is None:
        link = _by_message_ids(session, parsed.quoted_ids, "returned-headers", signer)
    if link is None and parsed.report.kind is not None:
        link = _by_recipient(session, parsed)
    if link is None and parsed.report.kind is None and parsed.from_email:
        link = _by_sender(session, parsed)
    return link or Link()


def _delivery_link(delivery: Delivery | None, by: str) -> Link | None:
    if delivery is None:
        return None
    return Link(delivery.id, delivery.edition_id, delivery.subscriber_id, by)


def _by_message_ids(session: Session, ids: tuple[str, ...], by: str, signer: Signer) -> Link | None:
    if not ids:
        return None
    # Columns, not entities: this runs for nearly every message filed.
    found = {
        row[0]: row[1:]
        for row in session.execute(
            select(
                Delivery.message_id,
                Delivery.id,
                Delivery.edition_id,
                Delivery.subscriber_id,
                FrozenEdition.salt,
            )
            .join(FrozenEdition, FrozenEdition.id == Delivery.edition_id)
            .where(Delivery.message_id.in_(ids[:50]))
        )
    }
    for message_id in ids:
        if message_id in found:
            delivery_id, edition_id, subscriber_id, salt = found[message_id]
            signed = _SIGNED_ID.match(message_id)
            genuine = signed is not None and hmac.compare_digest(
                signed.group(1), signer.message_tag(delivery_id, salt)
            )
            # A stored ID without a valid tag (written before tags were signed) links
            # the message, but is guessable, so it is not trusted to act on.
            return Link(
                delivery_id, edition_id, subscriber_id, by if genuine else f"{by}, unsigned"
            )
    return None


def _by_token(
    session: Session, parsed: Parsed, mailboxes: Mailboxes, signer: Signer
) -> Link | None:
    addresses = list(parsed.recipients)
    original_from = parsed.report.fields.get("original-mail-from")
    if original_from:
        addresses.append(email.utils.parseaddr(original_from)[1])
    for address in addresses:
        for which, by in ((mailboxes.bounce, "verp"), (mailboxes.unsubscribe, "unsubscribe")):
            token = mailboxes.token_in(address, which)
            if not token:
                continue
            try:
                delivery_id = signer.read_delivery_token(token)
            except TokenError:
                continue
            link = _delivery_link(session.get(Delivery, delivery_id), by)
            if link is not None:
                return link
    return None


def _subscriber(session: Session, address: str) -> Subscriber | None:
    """The subscriber at ``address``; None also when it is no valid address at all."""
    try:
        return audience.find(session, address)
    except AddressError:
        return None


def _by_recipient(session: Session, parsed: Parsed) -> Link | None:
    report = parsed.report
    candidates = list(report.permanent) + list(report.temporary)
    reported = report.fields.get("original-rcpt-to")
    if reported:
        candidates.append(email.utils.parseaddr(reported)[1])
    for address in candidates:
        subscriber = _subscriber(session, address)
        if subscriber is not None:
            return Link(subscriber_id=subscriber.id, by="failed-recipient")
    return None


def _by_sender(session: Session, parsed: Parsed) -> Link | None:
    assert parsed.from_email is not None
    subscriber = _subscriber(session, parsed.from_email)
    if subscriber is None:
        return None
    subject = base_subject(parsed.subject)
    if subject:
        rows = session.execute(
            select(FrozenEdition.id, FrozenEdition.subject, Delivery)
            .join(Delivery, Delivery.edition_id == FrozenEdition.id)
            .where(Delivery.subscriber_id == subscriber.id)
            .order_by(FrozenEdition.id.desc())
            .limit(200)
        ).all()
        for _, edition_subject, delivery in rows:
            if base_subject(edition_subject) == subject:
                return _delivery_link(delivery, "sender-subject")
    return Link(subscriber_id=subscriber.id, by="sender")
