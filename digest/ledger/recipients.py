"""Who an edition goes to: every active subscriber when it is frozen, and those who join later.

Freezing writes a ``pending`` row for every active subscriber (``enqueue``). A reader who
becomes active after that has no row; ``newcomers`` counts them and ``enqueue_newcomers``
gives them one, so ``digest send DATE --include-new`` reaches them. The unique
(edition, subscriber) constraint keeps each recipient to one row, even when two processes
add newcomers at once: the insert skips a row another process wrote first.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, insert, literal, select
from sqlalchemy.orm import Session

from digest.ledger.models import Delivery, DeliveryStatus, delivery_status_type
from subscribers.models import Status, Subscriber

_COLUMNS = ["edition_id", "subscriber_id", "status", "attempts"]


def _pending_rows(edition_id: int) -> Select[int, int, str, int]:
    """(edition, subscriber, pending, 0) for every active subscriber."""
    return select(
        literal(edition_id),
        Subscriber.id,
        literal(DeliveryStatus.pending, delivery_status_type()),
        literal(0),
    ).where(Subscriber.status == Status.active)


def _without_row(edition_id: int) -> Any:
    """Subscribers with no delivery row for the edition: they joined after it was frozen."""
    return ~(
        select(Delivery.id)
        .where(Delivery.edition_id == edition_id, Delivery.subscriber_id == Subscriber.id)
        .exists()
    )


def active_readers(session: Session) -> int:
    """How many subscribers a new send would reach now."""
    query = select(func.count()).select_from(Subscriber).where(Subscriber.status == Status.active)
    return int(session.scalar(query) or 0)


def enqueue(session: Session, edition_id: int) -> int:
    """A pending delivery for every active subscriber, in one statement; returns how many.

    The edition is new, so its rows are the ones written here. They are counted, not
    taken from the rowcount: PostgreSQL's driver reports -1 for this ``INSERT … SELECT``.
    """
    session.execute(insert(Delivery).from_select(_COLUMNS, _pending_rows(edition_id)))
    rows = select(func.count()).select_from(Delivery).where(Delivery.edition_id == edition_id)
    return int(session.scalar(rows) or 0)


def newcomers(session: Session, edition_id: int) -> int:
    """Active subscribers with no delivery of the edition: they joined after it was frozen."""
    query = (
        select(func.count())
        .select_from(Subscriber)
        .where(Subscriber.status == Status.active, _without_row(edition_id))
    )
    return int(session.scalar(query) or 0)


def enqueue_newcomers(session: Session, edition_id: int) -> int:
    """A pending delivery for each newcomer (see ``newcomers``); returns how many were added."""
    rows = _pending_rows(edition_id).where(_without_row(edition_id))
    statement: Any
    # one dialect's module, as it is used: `digest status` on SQLite needs neither
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        statement = postgresql.insert(Delivery).on_conflict_do_nothing(
            constraint="uq_deliveries_recipient"
        )
    else:  # SQLite
        from sqlalchemy.dialects import sqlite

        statement = sqlite.insert(Delivery).on_conflict_do_nothing(
            index_elements=["edition_id", "subscriber_id"]
        )
    statement = statement.from_select(_COLUMNS, rows).returning(Delivery.id)
    return len(session.execute(statement).all())  # the rowcount is -1 on PostgreSQL
