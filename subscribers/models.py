"""The audience as SQLAlchemy 2 typed models.

Addresses are stored twice on purpose: ``email`` as the person typed it, and
``email_key`` (normalised, lower-cased) unique, so ``Ann@Example.org`` and
``ann@example.org`` are one subscriber. Every status change and every consent is
its own row: the record a privacy regulator asks to see.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect, Enum, ForeignKey, Index, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from subscribers.states import Status as Status


class Base(DeclarativeBase):
    pass


class UTCDateTime(TypeDecorator[datetime]):
    """A moment in time, always handed back as an aware UTC ``datetime``.

    PostgreSQL keeps the offset (``timestamptz``); SQLite keeps none and would hand
    back naive values. Stored as UTC either way, read back as UTC either way, so
    code never compares naive with aware.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return _utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return _utc(value)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


#: States only a fresh confirmed opt-in by the person may leave.
LEFT = frozenset({Status.unsubscribed, Status.bounced, Status.complained})


class ConsentMethod(enum.StrEnum):
    web_form = "web_form"
    import_ = "import"
    editor = "editor"


def _status_enum() -> Enum:
    return Enum(Status, name="subscriber_status", values_callable=lambda e: [m.value for m in e])


class Subscriber(Base):
    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    email_key: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[Status] = mapped_column(_status_enum(), index=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: When the last confirmation email went out; None while none has (pending only).
    confirmation_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    changes: Mapped[list[StatusChange]] = relationship(
        back_populates="subscriber", cascade="all, delete-orphan", order_by="StatusChange.id"
    )
    consents: Mapped[list[Consent]] = relationship(
        back_populates="subscriber", cascade="all, delete-orphan", order_by="Consent.id"
    )


class StatusChange(Base):
    """One transition of a subscriber's status, with when and why."""

    __tablename__ = "status_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    old: Mapped[Status | None] = mapped_column(_status_enum(), nullable=True)
    new: Mapped[Status] = mapped_column(_status_enum())
    reason: Mapped[str] = mapped_column(String(200))

    subscriber: Mapped[Subscriber] = relationship(back_populates="changes")

    __table_args__ = (Index("ix_status_changes_subscriber", "subscriber_id"),)


class Consent(Base):
    """Evidence of one subscription: when, how, under which form text, from where."""

    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    method: Mapped[str] = mapped_column(String(20))
    form_version: Mapped[str | None] = mapped_column(String(100))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(Text)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    subscriber: Mapped[Subscriber] = relationship(back_populates="consents")

    __table_args__ = (Index("ix_consents_subscriber", "subscriber_id"),)


class Suppression(Base):
    """An erased person's address, kept only as a hash so imports cannot re-add them."""

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(primary_key=True)
    email_hash: Mapped[str] = mapped_column(String(64), unique=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(String(100))
