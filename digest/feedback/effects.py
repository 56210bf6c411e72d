"""What a filed bounce, complaint or unsubscribe email changes, once it is linked for certain.

A complaint stops all mail to the reader; an unsubscribe email unsubscribes
them; a permanent bounce marks its delivery failed and counts toward the
reader's bounce threshold under the one bounce policy (``digest.send.bounces``),
exactly as a refusal at send time does. A temporary bounce is only recorded.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from digest.feedback.kinds import Kind
from digest.feedback.match import Link
from digest.feedback.parse import Parsed
from digest.ledger import Delivery, DeliveryStatus
from digest.send import bounce_counts, bounces
from subscribers.audience import change_status, unsubscribe
from subscribers.models import Status, Subscriber

#: Deliveries bounced earlier in the same batch, by (subscriber, bounce kind).
Counted = dict[tuple[int, bounces.Bounce], set[int]]


def act(
    session: Session,
    kind: Kind,
    parsed: Parsed,
    link: Link,
    counted: Counted,
    thresholds: bounces.Thresholds,
    now: datetime,
) -> str | None:
    """What a bounce, a complaint or an unsubscribe changes; a description, or None."""
    report = parsed.report
    if kind is Kind.bounce and not report.is_permanent:
        return None  # temporary: only recorded
    subscriber = session.get(Subscriber, link.subscriber_id) if link.subscriber_id else None
    if subscriber is None:
        return None
    if kind is Kind.complaint:
        if change_status(session, subscriber, Status.complained, now, "abuse report"):
            return f"{subscriber.email} complained: no more mail to them"
        return None
    if kind is Kind.unsubscribe:
        if unsubscribe(session, subscriber, now, "unsubscribe email"):
            return f"{subscriber.email} unsubscribed by email"
        return None
    return _bounced(session, parsed, link, subscriber, counted, thresholds, now)


def _bounced(
    session: Session,
    parsed: Parsed,
    link: Link,
    subscriber: Subscriber,
    counted: Counted,
    thresholds: bounces.Thresholds,
    now: datetime,
) -> str | None:
    report = parsed.report
    done = []
    said = f"{report.status or ''} {report.diagnostic or ''}".strip()
    reason = f"bounce: {said}"
    bounce = bounces.classify(report.status, permanent=True)
    assert link.delivery_id is not None  # trusted links name a delivery
    still_open = Delivery.status != DeliveryStatus.failed
    changed = session.execute(
        update(Delivery)
        .where(
            Delivery.id == link.delivery_id,
            # a delivery failed for another reason (retries used up) is now known as a bounce
            (still_open | bounce_counts.not_yet_a_bounce()) if bounce is not None else still_open,
        )
        .values(
            status=DeliveryStatus.failed,
            reply=(bounces.tagged(bounce, said) if bounce is not None else reason)[:1000],
            claimed_by=None,
        )
    )
    if changed.rowcount:  # type: ignore[attr-defined]
        done.append("delivery marked failed")
    if bounce is not None:
        batch = counted.setdefault((subscriber.id, bounce), set())
        batch.add(link.delivery_id)
        if bounce_counts.count_bounce(session, subscriber, bounce, thresholds, now, reason, batch):
            done.append(f"{subscriber.email} marked bounced")
    return "; ".join(done) or None
