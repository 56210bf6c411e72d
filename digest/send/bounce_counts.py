"""Counting a reader's bounced deliveries against the thresholds, in the ledger.

The policy itself (which failure is which bounce) is the pure table in
``digest.send.bounces``; this is where it meets the database, used alike by the
sender (refusals at send time) and by feedback (delivery reports).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from digest.ledger import Delivery, DeliveryStatus
from digest.send.bounces import Bounce, Thresholds
from subscribers.audience import change_status
from subscribers.models import Status, Subscriber


def bounced_deliveries(session: Session, subscriber_id: int, bounce: Bounce) -> set[int]:
    """The reader's deliveries recorded as failed with this kind of bounce."""
    query = select(Delivery.id).where(
        Delivery.subscriber_id == subscriber_id,
        Delivery.status == DeliveryStatus.failed,
        Delivery.reply.like(bounce.tag + "%"),
    )
    return set(session.scalars(query))


def not_yet_a_bounce() -> ColumnElement[bool]:
    """SQL: a delivery whose reply does not already record a bounce."""
    return or_(Delivery.reply.is_(None), and_(*(~Delivery.reply.like(b.tag + "%") for b in Bounce)))


def count_bounce(
    session: Session,
    subscriber: Subscriber,
    bounce: Bounce,
    thresholds: Thresholds,
    now: datetime,
    reason: str,
    also: set[int] | None = None,
) -> bool:
    """After a delivery was recorded as ``bounce``: mark the reader bounced at the threshold.

    ``also``: deliveries bounced in this batch but not yet visible to the query.
    True if the reader was marked bounced now.
    """
    deliveries = bounced_deliveries(session, subscriber.id, bounce) | (also or set())
    return (
        len(deliveries) >= thresholds.of(bounce)
        and subscriber.status in (Status.active, Status.pending)
        and change_status(session, subscriber, Status.bounced, now, reason[:200])
    )
