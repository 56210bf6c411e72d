"""What the publisher keeps of readers' mail.

The raw bytes are stored before anything is parsed from them, so a message the
parser chokes on is kept, listed as ``other`` with the reason, and can be parsed
again by a later version. ``kind`` is null only between those two steps.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from subscribers.models import Base, UTCDateTime


class Feedback(Base):
    """One message that reached the contact, unsubscribe or bounce address."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    origin: Mapped[str] = mapped_column(String(300))  # imap folder, file path, smtp
    #: of the content (``parse.content_key``); rows stored before it: of the raw bytes
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    #: null also for a message reusing a stored one's ID (``raw.py`` says why)
    message_id: Mapped[str | None] = mapped_column(String(998), unique=True)
    size: Mapped[int] = mapped_column(Integer)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    #: Envelope recipients, when the message arrived by SMTP (comma-separated).
    envelope_to: Mapped[str | None] = mapped_column(Text)

    # Filled in by parsing; kind is null until then.
    kind: Mapped[str | None] = mapped_column(String(20))
    problem: Mapped[str | None] = mapped_column(Text)  # why parsing fell short
    from_email: Mapped[str | None] = mapped_column(String(320))
    from_name: Mapped[str | None] = mapped_column(String(300))
    subject: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # its Date: header
    text: Mapped[str | None] = mapped_column(Text)  # the reader's own words
    full_text: Mapped[str | None] = mapped_column(Text)
    permanent: Mapped[bool | None] = mapped_column()  # bounces: permanent or temporary
    bounce_status: Mapped[str | None] = mapped_column(String(16))  # e.g. 5.1.1
    detail: Mapped[str | None] = mapped_column(Text)  # bounce diagnostic, report type, …
    linked_by: Mapped[str | None] = mapped_column(String(40))
    edition_id: Mapped[int | None] = mapped_column(ForeignKey("editions.id", ondelete="SET NULL"))
    delivery_id: Mapped[int | None] = mapped_column(
        ForeignKey("deliveries.id", ondelete="SET NULL")
    )
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="SET NULL")
    )
    effect: Mapped[str | None] = mapped_column(Text)  # what filing it changed

    __table_args__ = (
        Index("ix_feedback_received", "received_at"),
        Index("ix_feedback_edition_kind", "edition_id", "kind"),
        Index("ix_feedback_subscriber", "subscriber_id"),
        Index("ix_feedback_unparsed", "kind"),
    )


class MailboxState(Base):
    """How far an IMAP folder has been read: UIDs are only meaningful per UIDVALIDITY."""

    __tablename__ = "mailbox_state"

    mailbox: Mapped[str] = mapped_column(String(500), primary_key=True)  # no password
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime())
