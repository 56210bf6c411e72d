"""Recording what happened to a message: sent, deferred or failed; the row is then unclaimed.

Core statements, not the ORM: this runs once per message and the ORM costs four times
more. Accepted messages can be recorded several at once (``record_sent_rows``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.orm import Session

from digest.ledger.models import Delivery, DeliveryStatus
from subscribers.models import Base, Subscriber

_DELIVERIES = Base.metadata.tables["deliveries"]
#: One statement for every outcome (sent, deferred, failed): the hot path of a send.
_FINISH_ATTEMPT = (
    update(_DELIVERIES)
    .where(_DELIVERIES.c.id == bindparam("delivery_id"))
    .values(
        status=bindparam("status"),
        reply=bindparam("reply"),
        message_id=bindparam("message_id"),
        sent_at=bindparam("sent_at"),
        next_attempt_at=bindparam("next_attempt_at"),
        attempts=_DELIVERIES.c.attempts + 1,
        claimed_by=None,
    )
)


def _finish_attempt(
    connection: Connection,
    delivery_id: int,
    status: DeliveryStatus,
    reply: str,
    *,
    message_id: str | None = None,
    sent_at: datetime | None = None,
    next_attempt_at: datetime | None = None,
) -> None:
    """Record one attempt's outcome; the row is no longer claimed.

    Core, not the ORM: this runs once per message and the ORM costs four times more.
    """
    connection.execute(
        _FINISH_ATTEMPT,
        {
            "delivery_id": delivery_id,
            "status": status,
            "reply": reply[:1000],
            "message_id": message_id,
            "sent_at": sent_at,
            "next_attempt_at": next_attempt_at,
        },
    )


def record_sent(
    connection: Connection, delivery_id: int, message_id: str, reply: str, now: datetime
) -> None:
    _finish_attempt(
        connection, delivery_id, DeliveryStatus.sent, reply, message_id=message_id, sent_at=now
    )


@dataclass(frozen=True)
class SentRow:
    """A message the server accepted, waiting to be recorded."""

    delivery_id: int
    message_id: str
    reply: str
    sent_at: datetime


def record_sent_rows(connection: Connection, rows: list[SentRow]) -> None:
    """Several accepted messages recorded in one statement (executemany)."""
    connection.execute(
        _FINISH_ATTEMPT,
        [
            {
                "delivery_id": row.delivery_id,
                "status": DeliveryStatus.sent,
                "reply": row.reply[:1000],
                "message_id": row.message_id,
                "sent_at": row.sent_at,
                "next_attempt_at": None,
            }
            for row in rows
        ],
    )


def record_deferred(
    connection: Connection, delivery_id: int, reply: str, retry_at: datetime
) -> None:
    _finish_attempt(
        connection, delivery_id, DeliveryStatus.deferred, reply, next_attempt_at=retry_at
    )


def record_failed(session: Session, delivery_id: int, reply: str) -> Subscriber | None:
    """A permanent failure; returns the subscriber, for the bounce policy to judge."""
    _finish_attempt(session.connection(), delivery_id, DeliveryStatus.failed, reply)
    return session.scalars(
        select(Subscriber)
        .join(Delivery, Delivery.subscriber_id == Subscriber.id)
        .where(Delivery.id == delivery_id)
    ).first()
