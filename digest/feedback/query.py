"""The editors' view of filed mail: lists, one message, counts per edition."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from digest.feedback.kinds import Kind
from digest.feedback.models import Feedback
from digest.ledger import FrozenEdition
from subscribers.models import Subscriber

#: The keys of every listed message, in this order (JSON objects, CSV columns).
FIELDS = ("id", "received_at", "from", "subject", "kind", "edition", "subscriber", "text")


@dataclass(frozen=True)
class Filter:
    edition: date | None = None
    kind: Kind | None = None
    since: datetime | None = None
    include_auto: bool = False
    limit: int | None = None


def _listing() -> Select[Feedback, date, str]:
    return (
        select(Feedback, FrozenEdition.date, Subscriber.email)
        .outerjoin(FrozenEdition, FrozenEdition.id == Feedback.edition_id)
        .outerjoin(Subscriber, Subscriber.id == Feedback.subscriber_id)
    )


def _record(feedback: Feedback, day: date | None, subscriber: str | None) -> dict[str, Any]:
    return {
        "id": feedback.id,
        "received_at": feedback.received_at.isoformat(timespec="seconds"),
        "from": feedback.from_email,
        "subject": feedback.subject,
        "kind": feedback.kind,
        "edition": day.isoformat() if day else None,
        "subscriber": subscriber,
        "text": feedback.text,
    }


def list_feedback(session: Session, wanted: Filter) -> list[dict[str, Any]]:
    """Newest first; auto replies only when asked for by kind or with ``include_auto``."""
    query = _listing().where(Feedback.kind.is_not(None))
    if wanted.edition is not None:
        query = query.where(FrozenEdition.date == wanted.edition)
    if wanted.kind is not None:
        query = query.where(Feedback.kind == wanted.kind)
    elif not wanted.include_auto:
        query = query.where(Feedback.kind != Kind.auto_reply)
    if wanted.since is not None:
        query = query.where(Feedback.received_at >= wanted.since)
    query = query.order_by(Feedback.received_at.desc(), Feedback.id.desc())
    if wanted.limit is not None:
        query = query.limit(wanted.limit)
    return [_record(f, day, email) for f, day, email in session.execute(query)]


@dataclass(frozen=True)
class Shown:
    record: dict[str, Any]
    feedback: Feedback


def show(session: Session, feedback_id: int) -> Shown | None:
    row = session.execute(_listing().where(Feedback.id == feedback_id)).first()
    if row is None:
        return None
    feedback, day, email = row
    return Shown(_record(feedback, day, email), feedback)


def counts_for_edition(session: Session, day: date) -> dict[str, int]:
    """How many of each kind the edition of ``day`` drew, over all its versions."""
    rows = session.execute(
        select(Feedback.kind, func.count())
        .join(FrozenEdition, FrozenEdition.id == Feedback.edition_id)
        .where(FrozenEdition.date == day, Feedback.kind.is_not(None))
        .group_by(Feedback.kind)
    ).all()
    found = {str(kind): int(count) for kind, count in rows}
    return {kind.value: found.get(kind.value, 0) for kind in Kind}
