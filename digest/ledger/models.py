"""The ledger's tables: a frozen edition, its approval, and one delivery row per recipient."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Date,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from subscribers.models import Base, UTCDateTime


class DeliveryStatus(enum.StrEnum):
    pending = "pending"
    sending = "sending"  # claimed by a sender
    sent = "sent"
    deferred = "deferred"  # temporary failure; retried at next_attempt_at
    failed = "failed"  # permanent failure, or retries exhausted
    skipped = "skipped"  # the subscriber left (or was erased) before their turn


#: Rows a sender may still pick up.
OPEN = (DeliveryStatus.pending, DeliveryStatus.sending, DeliveryStatus.deferred)


class FrozenEdition(Base):
    """An edition as it was sent: what every recipient of this version receives."""

    __tablename__ = "editions"

    id: Mapped[int] = mapped_column(primary_key=True)
    date: Mapped[date] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer)
    subject: Mapped[str] = mapped_column(Text)
    html: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    words: Mapped[int] = mapped_column(Integer)
    minutes: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(Text)
    source_sha256: Mapped[str] = mapped_column(String(64))
    salt: Mapped[str] = mapped_column(String(32))  # makes Message-IDs unguessable
    frozen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    pause_reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (UniqueConstraint("date", "version", name="uq_editions_date_version"),)

    @property
    def label(self) -> str:
        return self.date.isoformat() + (f" (version {self.version})" if self.version > 1 else "")


class Approval(Base):
    """An editor approved the edition of a date (``schedule.policy = "approval"``)."""

    __tablename__ = "approvals"

    date: Mapped[date] = mapped_column(Date, primary_key=True)
    approved_at: Mapped[datetime] = mapped_column(UTCDateTime())
    approved_by: Mapped[str] = mapped_column(String(200))


def delivery_status_type() -> Enum:
    return Enum(
        DeliveryStatus, name="delivery_status", values_callable=lambda e: [m.value for m in e]
    )


class Delivery(Base):
    """One recipient of one edition, and what happened when it was sent to them."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    edition_id: Mapped[int] = mapped_column(ForeignKey("editions.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="SET NULL")
    )
    status: Mapped[DeliveryStatus] = mapped_column(delivery_status_type())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    claimed_by: Mapped[int | None] = mapped_column(BigInteger)
    message_id: Mapped[str | None] = mapped_column(String(255))
    reply: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("edition_id", "subscriber_id", name="uq_deliveries_recipient"),
        UniqueConstraint("message_id", name="uq_deliveries_message_id"),
        Index("ix_deliveries_edition_status_id", "edition_id", "status", "id"),  # claims: id order
    )
