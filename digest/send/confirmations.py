"""The double opt-in email: rendered once, filled and sent per pending subscriber.

``confirmation_sent_at`` on the subscriber records the last one sent. It makes
resending rate-limited (a person pressing "subscribe" ten times gets one email
per ``resend_minutes``) and lets :meth:`Confirmations.send_due` pick up, after
an interruption, exactly the pending subscribers who never got one. Database
transactions are kept short and never span an SMTP conversation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any, cast

from sqlalchemy import func, or_, select, update
from sqlalchemy.engine import CursorResult

from digest.errors import TransportError, UnsafeAddressError
from digest.render.placeholders import Personalisable, escape_html
from digest.render.renderer import Renderer, render_email
from digest.send.links import Links
from digest.send.message import build_message, mailbox, new_message_id, to_bytes
from digest.send.transport import Sent, Transport
from digest.settings import Settings
from subscribers.db import Database
from subscribers.models import Status, Subscriber

BATCH = 100


@dataclass
class SendReport:
    sent: int = 0
    failed: int = 0
    problems: list[str] = field(default_factory=list)  # the first few, for the person


class Confirmations:
    """Knows how the confirmation email looks and when one may go out."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Confirmations:
        return cls(settings, Renderer.from_settings(settings), Links.from_settings(settings))

    def __init__(self, settings: Settings, renderer: Renderer, links: Links) -> None:
        self.publication = settings.publication
        self.days = settings.subscribers.confirm_days
        self.resend = timedelta(minutes=settings.subscribers.resend_minutes)
        self.links = links
        rendered = render_email(
            renderer,
            "confirm",
            f"Confirm your subscription to {self.publication.name}",
            {"confirm_days": self.days},
            required="confirm_url",
        )
        self.subject = rendered.subject
        self._html = Personalisable.compile(rendered.html)
        self._text = Personalisable.compile(rendered.text)

    @property
    def max_age_seconds(self) -> int:
        return self.days * 86_400

    def is_due(self, subscriber: Subscriber, now: datetime) -> bool:
        """Pending, and no confirmation sent within the resend interval."""
        if subscriber.status is not Status.pending:
            return False
        last = subscriber.confirmation_sent_at
        return last is None or now - last >= self.resend

    def message(self, subscriber: Subscriber, now: datetime) -> EmailMessage:
        values = {
            "confirm_url": self.links.confirm_url(subscriber),
            "recipient_email": subscriber.email,
            "unsubscribe_url": self.links.unsubscribe_url(subscriber),
        }
        publication = self.publication
        sender = mailbox(publication.from_name, publication.sender_email)
        return build_message(
            sender=sender,
            to=mailbox(subscriber.name, subscriber.email),
            subject=self.subject,
            text=self._text.fill(values),
            html=self._html.fill(values, escape_html),
            message_id=new_message_id(sender.domain),
            now=now,
            reply_to=mailbox(publication.name, publication.contact_email),
            headers={"Auto-Submitted": "auto-generated"},
        )

    def send(self, transport: Transport, subscriber: Subscriber, now: datetime) -> Sent:
        """Send one confirmation; the caller records ``confirmation_sent_at``."""
        sender = self.publication.sender_email
        try:
            message = self.message(subscriber, now)
        except UnsafeAddressError as exc:  # refused for this subscriber only, like a 5xx reply
            raise TransportError(str(exc), permanent=True, per_message=True) from exc
        raw = to_bytes(message, sender, subscriber.email)
        return transport.send(raw, sender, subscriber.email)

    def send_one(self, db: Database, transport: Transport, subscriber_id: int) -> bool:
        """Send to one subscriber if still due; True if sent.

        The send is claimed first by a conditional update of ``confirmation_sent_at``,
        so two requests at once (two form posts) send one email, not two.
        """
        now = datetime.now(UTC)
        with db.transaction() as session:
            subscriber = session.get(Subscriber, subscriber_id)
            if subscriber is None or not self.is_due(subscriber, now):
                return False
            previous = subscriber.confirmation_sent_at
            claimed = session.execute(
                update(Subscriber)
                .where(
                    Subscriber.id == subscriber_id,
                    Subscriber.status == Status.pending,
                    or_(
                        Subscriber.confirmation_sent_at.is_(None),
                        Subscriber.confirmation_sent_at <= now - self.resend,
                    ),
                )
                .values(confirmation_sent_at=now)
            )
            if cast(CursorResult[Any], claimed).rowcount != 1:
                return False
            session.expunge(subscriber)
        try:
            self.send(transport, subscriber, now)
        except BaseException:
            with db.transaction() as session:  # not sent: due again
                session.execute(
                    update(Subscriber)
                    .where(Subscriber.id == subscriber_id)
                    .values(confirmation_sent_at=previous)
                )
            raise
        return True

    def send_due(
        self,
        db: Database,
        transport: Transport,
        clock: Callable[[], datetime],
        progress: Callable[[int], None] | None = None,
    ) -> SendReport:
        """Send to every pending subscriber who never got a confirmation.

        A refused address is counted and skipped; a transport that fails as a
        whole (server down) stops the run with what was sent recorded, so running
        it again sends only to those still waiting.
        """
        report = SendReport()
        after = 0
        while True:
            with db.transaction() as session:
                batch = list(
                    session.scalars(
                        select(Subscriber)
                        .where(
                            Subscriber.status == Status.pending,
                            Subscriber.confirmation_sent_at.is_(None),
                            Subscriber.id > after,
                        )
                        .order_by(Subscriber.id)
                        .limit(BATCH)
                    )
                )
                session.expunge_all()
            if not batch:
                return report
            sent: list[int] = []
            now = clock()
            try:
                for subscriber in batch:
                    after = subscriber.id
                    try:
                        self.send(transport, subscriber, now)
                    except TransportError as exc:
                        if not exc.per_message:
                            raise
                        report.failed += 1
                        if len(report.problems) < 20:
                            report.problems.append(f"{subscriber.email}: {exc}")
                        continue
                    sent.append(subscriber.id)
                    report.sent += 1
                    if progress is not None:
                        progress(report.sent + report.failed)
            finally:
                _mark_sent(db, sent, now)


def count_due(db: Database) -> int:
    """Pending subscribers who never got a confirmation (what ``send_due`` would send)."""
    with db.transaction() as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(Subscriber)
                .where(
                    Subscriber.status == Status.pending, Subscriber.confirmation_sent_at.is_(None)
                )
            )
            or 0
        )


def _mark_sent(db: Database, ids: list[int], now: datetime) -> None:
    if not ids:
        return
    with db.transaction() as session:
        session.execute(
            update(Subscriber).where(Subscriber.id.in_(ids)).values(confirmation_sent_at=now)
        )
