"""The send ledger: frozen editions and one delivery row per (edition, subscriber).

Sending an edition first *freezes* it: the rendered subject, HTML and text are
stored, so editing the file afterwards cannot change what half the list already
got. Then a ``pending`` delivery row is written for every active subscriber, in
one ``INSERT … SELECT``, before anything is sent. Senders claim batches of rows
(``sending``, stamped with the sender's key), send, and record each outcome at
once, so after a crash only rows still marked ``sending`` by a dead sender are
in doubt; they go back to ``pending``, and of those at most the one whose SMTP
transaction was in flight on each connection had actually been handed over.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import (
    func,
    select,
    update,
)
from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.orm import Session

from digest.edition.model import Edition
from digest.errors import NoRecipientsError
from digest.ledger.models import OPEN, Delivery, DeliveryStatus, FrozenEdition
from digest.ledger.recipients import enqueue
from subscribers.models import Status, Subscriber

if TYPE_CHECKING:  # only named in annotations: the renderer (premailer, lxml) stays unloaded
    from digest.render.renderer import RenderedEdition


def _rowcount(result: Result[Any]) -> int:
    return int(cast(CursorResult[Any], result).rowcount or 0)


def source_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def latest(session: Session, day: date) -> FrozenEdition | None:
    """The newest frozen version of the edition for ``day``."""
    return session.scalars(
        select(FrozenEdition)
        .where(FrozenEdition.date == day)
        .order_by(FrozenEdition.version.desc())
    ).first()


@dataclass(frozen=True)
class Frozen:
    edition: FrozenEdition
    created: bool  # False: an existing frozen version is being resumed
    file_changed: bool  # the file differs from what was frozen (and was not re-frozen)


def freeze(
    session: Session,
    edition: Edition,
    rendered: RenderedEdition,
    source: str,
    sha256: str,
    now: datetime,
    *,
    new_version: bool = False,
) -> Frozen:
    """The frozen edition to send, creating it (and its ledger) if needed.

    An edition already frozen for that date is resumed as it was frozen, even if
    the file changed since; ``new_version`` freezes the file as it is now as a new
    version, which goes to every active subscriber again. With no active subscriber
    it raises ``NoRecipientsError`` and the transaction must not be committed: an
    edition frozen for nobody would answer "nothing left to send" ever after.
    """
    existing = latest(session, edition.date)
    if existing is not None and not new_version:
        return Frozen(existing, False, existing.source_sha256 != sha256)
    frozen = FrozenEdition(
        date=edition.date,
        version=(existing.version + 1) if existing else 1,
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        words=rendered.words,
        minutes=rendered.minutes,
        source=source,
        source_sha256=sha256,
        salt=secrets.token_hex(8),
        frozen_at=now,
    )
    session.add(frozen)
    session.flush()
    if existing is not None:  # the new version replaces the old for those still waiting
        older = select(FrozenEdition.id).where(
            FrozenEdition.date == edition.date, FrozenEdition.id != frozen.id
        )
        session.execute(
            update(Delivery)
            .where(
                Delivery.edition_id.in_(older),
                Delivery.status.in_([DeliveryStatus.pending, DeliveryStatus.deferred]),
            )
            .values(status=DeliveryStatus.skipped)
        )
    if enqueue(session, frozen.id) == 0:  # nobody to send to: the caller's rollback undoes it
        raise NoRecipientsError(edition.date)
    return Frozen(frozen, True, False)


@dataclass(frozen=True)
class Recipient:
    """A claimed delivery, with what sending it needs to know about the subscriber."""

    delivery_id: int
    subscriber_id: int
    email: str
    email_key: str
    name: str | None
    attempts: int


def claim(
    session: Session,
    edition_id: int,
    sender_key: int,
    limit: int,
    now: datetime,
    after: int = 0,
) -> tuple[list[Recipient], int]:
    """Take up to ``limit`` due rows for this sender; rows of leavers become ``skipped``.

    Returns the recipients to send to and how many rows were skipped.

    On PostgreSQL the rows are locked with ``FOR UPDATE SKIP LOCKED``, so senders
    working on the same edition never take the same row. ``after``: the highest id
    this sender claimed before; pending rows past it are looked for first. On
    PostgreSQL a row's earlier versions stay in the index until vacuumed, so a claim
    from the start would walk past every row already sent (a send of N readers, N²
    steps); rows put back below ``after`` are still found, once none are left past it.
    """
    # Pending rows first, then deferred ones now due: queries that each walk the
    # (edition, status, id) index in id order, where one query with OR sorts every row.
    ids: list[int] = []
    pending = Delivery.status == DeliveryStatus.pending
    wanted = [pending & (Delivery.id > after)] + ([pending] if after else [])
    wanted.append((Delivery.status == DeliveryStatus.deferred) & (Delivery.next_attempt_at <= now))
    for condition in wanted:
        ids += session.scalars(
            select(Delivery.id)
            .where(Delivery.edition_id == edition_id, condition, Delivery.id.not_in(ids))
            .order_by(Delivery.id)
            .limit(limit - len(ids))
            .with_for_update(skip_locked=True)
        )
        if len(ids) >= limit:
            break
    if not ids:
        return [], 0
    rows = session.execute(
        select(
            Delivery.id,
            Delivery.attempts,
            Subscriber.id,
            Subscriber.email,
            Subscriber.email_key,
            Subscriber.name,
            Subscriber.status,
        )
        .outerjoin(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(Delivery.id.in_(ids))
        .order_by(Delivery.id)
    ).all()
    recipients = [
        Recipient(row[0], row[2], row[3], row[4], row[5], row[1])
        for row in rows
        if row[2] is not None and row[6] is Status.active
    ]
    skipped = [row[0] for row in rows if row[2] is None or row[6] is not Status.active]
    if skipped:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(skipped))
            .values(status=DeliveryStatus.skipped, claimed_by=None)
        )
    if recipients:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_([r.delivery_id for r in recipients]))
            .values(status=DeliveryStatus.sending, claimed_by=sender_key)
        )
    return recipients, len(skipped)


def release(session: Session, edition_id: int, sender_keys: list[int] | None) -> int:
    """Claimed rows back to ``pending``: of the senders named, or of any sender (None)."""
    query = update(Delivery).where(
        Delivery.edition_id == edition_id, Delivery.status == DeliveryStatus.sending
    )
    if sender_keys is not None:
        query = query.where(Delivery.claimed_by.in_(sender_keys))
    result = session.execute(query.values(status=DeliveryStatus.pending, claimed_by=None))
    return _rowcount(result)


def claimers(session: Session, edition_id: int) -> list[int]:
    """The senders holding claims on this edition."""
    return [
        key
        for key in session.scalars(
            select(Delivery.claimed_by)
            .where(Delivery.edition_id == edition_id, Delivery.status == DeliveryStatus.sending)
            .distinct()
        )
        if key is not None
    ]


def unfinished(session: Session, *, paused: bool) -> list[FrozenEdition]:
    """Editions with deliveries still open, paused or not, oldest first."""
    has_open = (
        select(Delivery.id)
        .where(Delivery.edition_id == FrozenEdition.id, Delivery.status.in_(OPEN))
        .exists()
    )
    pause_state = (
        FrozenEdition.paused_at.is_not(None) if paused else FrozenEdition.paused_at.is_(None)
    )
    query = select(FrozenEdition).where(has_open, pause_state).order_by(FrozenEdition.id)
    return list(session.scalars(query))


def counts(session: Session, edition_id: int) -> dict[DeliveryStatus, int]:
    rows = session.execute(
        select(Delivery.status, func.count())
        .where(Delivery.edition_id == edition_id)
        .group_by(Delivery.status)
    ).all()
    found = {row[0]: row[1] for row in rows}
    return {status: int(found.get(status, 0)) for status in DeliveryStatus}


def next_retry(session: Session, edition_id: int) -> datetime | None:
    """When the earliest deferred row is due, if any."""
    return session.scalar(
        select(func.min(Delivery.next_attempt_at)).where(
            Delivery.edition_id == edition_id, Delivery.status == DeliveryStatus.deferred
        )
    )


def failures(session: Session, edition_id: int, limit: int = 50) -> list[tuple[str, str, str]]:
    """(email, status, reply) of failed and deferred rows, newest problems first."""
    rows = session.execute(
        select(Subscriber.email, Delivery.status, Delivery.reply)
        .outerjoin(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(
            Delivery.edition_id == edition_id,
            Delivery.status.in_([DeliveryStatus.failed, DeliveryStatus.deferred]),
        )
        .order_by(Delivery.id)
        .limit(limit)
    ).all()
    return [(email or "(erased)", status.value, reply or "") for email, status, reply in rows]


def retry_failed(session: Session, edition_id: int) -> tuple[int, int]:
    """Failed rows of still-active subscribers back to ``pending``, attempts reset.

    Returns (re-queued, left alone because the subscriber bounced, left or was erased).
    """
    active = select(Subscriber.id).where(Subscriber.status == Status.active)
    failed = (Delivery.edition_id == edition_id) & (Delivery.status == DeliveryStatus.failed)
    result = session.execute(
        update(Delivery)
        .where(failed, Delivery.subscriber_id.in_(active))
        .values(status=DeliveryStatus.pending, attempts=0, next_attempt_at=None)
    )
    rest = session.scalar(select(func.count()).select_from(Delivery).where(failed)) or 0
    return _rowcount(result), int(rest)


def sent_since(session: Session, edition_id: int, since: datetime) -> int:
    return int(
        session.scalar(
            select(func.count()).where(
                Delivery.edition_id == edition_id,
                Delivery.status == DeliveryStatus.sent,
                Delivery.sent_at >= since,
            )
        )
        or 0
    )


def set_paused(session: Session, edition_id: int, reason: str | None, now: datetime) -> bool:
    """Pause (``reason``) or resume (None) an edition; False if it already was, or is gone."""
    this = FrozenEdition.id == edition_id
    if reason is None:
        result = session.execute(
            update(FrozenEdition)
            .where(this, FrozenEdition.paused_at.is_not(None))
            .values(paused_at=None, pause_reason=None)
        )
    else:
        result = session.execute(
            update(FrozenEdition)
            .where(this, FrozenEdition.paused_at.is_(None))
            .values(paused_at=now, pause_reason=reason[:1000])
        )
    return _rowcount(result) > 0
