"""One person across every table: the subject-access answer and the erase.

``subscribers`` owns its own tables (the subscriber, status changes, consents, the
suppression hash) and never imports ``digest``; ``subscribers.audience`` erases and
shows those. This module adds what the publisher stores about the same person: the
mail filed from or about them (``feedback``) and their deliveries. Which mail is
theirs is decided in one place, ``_their_mail``, so what ``show`` lists is exactly
what ``erase`` deletes.

A delivery row is kept, anonymous (no subscriber, no Message-ID, no server reply),
so the counts of a send stay true. On SQLite the erase runs with
``PRAGMA secure_delete`` (deleted bytes overwritten with zeros) and ends with a
``wal_checkpoint(TRUNCATE)``, so the bytes are gone from the database file and its
write-ahead log; PostgreSQL reuses the space of deleted rows after its autovacuum.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    String,
    Text,
    cast,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from digest.feedback.models import Feedback
from digest.ledger import Delivery, FrozenEdition
from subscribers import audience
from subscribers.db import Database
from subscribers.models import Subscriber


@dataclass(frozen=True)
class Erased:
    """What an erase removed, for the command's report."""

    mail: int  # filed messages deleted
    deliveries: int  # delivery rows kept, anonymous
    #: SQLite: False when another connection kept the write-ahead log from being emptied.
    log_cleared: bool = True


def _needles(subscriber: Subscriber) -> list[str]:
    """The address in the forms mail writes it: as typed and normalised, lower-cased."""
    return sorted({subscriber.email.lower(), subscriber.email_key})


def _escaped(needle: str) -> str:
    """``needle`` as PostgreSQL's ``encode(bytes, 'escape')`` writes its UTF-8 bytes."""
    out = []
    for byte in needle.encode("utf-8"):
        if byte == 0x5C:
            out.append("\\\\")
        elif byte == 0 or byte >= 0x80:
            out.append(f"\\{byte:03o}")
        else:
            out.append(chr(byte))
    return "".join(out)


def _raw_names(dialect: str, needle: str) -> ColumnElement[bool]:
    """The raw message contains ``needle``, in any ASCII letter case."""
    if dialect == "postgresql":
        text = func.lower(func.encode(Feedback.raw, "escape"))
        return func.strpos(text, _escaped(needle)) > 0
    return func.instr(func.lower(cast(Feedback.raw, Text)), needle) > 0


def _their_mail(session: Session, subscriber: Subscriber) -> ColumnElement[bool]:
    """Filed mail from or about the person: linked to them or to a delivery of theirs,
    sent from their address, or naming the address in any column or in the raw bytes."""
    dialect = session.get_bind().dialect.name
    words = [c for c in Feedback.__table__.columns if isinstance(c.type, String | Text)]
    named = [
        condition
        for needle in _needles(subscriber)
        for condition in (
            _raw_names(dialect, needle),
            *(func.lower(column).contains(needle, autoescape=True) for column in words),
        )
    ]
    return or_(
        Feedback.subscriber_id == subscriber.id,
        Feedback.delivery_id.in_(
            select(Delivery.id).where(Delivery.subscriber_id == subscriber.id)
        ),
        *named,
    )


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None


def person_data(session: Session, subscriber: Subscriber) -> dict[str, Any]:
    """Everything stored about one person: ``audience.person_data``, their filed mail
    (``digest feedback show ID`` prints a message whole) and their deliveries."""
    data = audience.person_data(subscriber)
    mail = session.execute(
        select(Feedback, FrozenEdition.date)
        .outerjoin(FrozenEdition, FrozenEdition.id == Feedback.edition_id)
        .where(_their_mail(session, subscriber))
        .order_by(Feedback.received_at, Feedback.id)
    )
    data["mail"] = [
        {
            "id": item.id,
            "received_at": _iso(item.received_at),
            "kind": item.kind,
            "from": item.from_email,
            "subject": item.subject,
            "text": item.text,
            "detail": item.detail,
            "effect": item.effect,
            "edition": day.isoformat() if day else None,
        }
        for item, day in mail
    ]
    deliveries = session.execute(
        select(Delivery, FrozenEdition)
        .join(FrozenEdition, FrozenEdition.id == Delivery.edition_id)
        .where(Delivery.subscriber_id == subscriber.id)
        .order_by(FrozenEdition.date, FrozenEdition.version, Delivery.id)
    )
    data["deliveries"] = [
        {
            "edition": edition.date.isoformat(),
            "version": edition.version,
            "status": delivery.status.value,
            "attempts": delivery.attempts,
            "sent_at": _iso(delivery.sent_at),
            "message_id": delivery.message_id,
            "reply": delivery.reply,
        }
        for delivery, edition in deliveries
    ]
    return data


def erase_in(session: Session, raw_email: str, now: datetime) -> Erased:
    """Within the caller's transaction: delete the person's mail, strip their deliveries,
    then ``audience.erase`` (their rows gone, a hash kept that blocks re-adding them)."""
    subscriber = audience.get(session, raw_email)
    mail = session.execute(
        delete(Feedback)
        .where(_their_mail(session, subscriber))
        .execution_options(synchronize_session=False)
    )
    stripped = session.execute(
        update(Delivery)
        .where(Delivery.subscriber_id == subscriber.id)
        .values(subscriber_id=None, message_id=None, reply=None, claimed_by=None)
        .execution_options(synchronize_session=False)
    )
    for needle in _needles(subscriber):  # a server's refusal naming them, on any row
        session.execute(
            update(Delivery)
            .where(func.lower(Delivery.reply).contains(needle, autoescape=True))
            .values(reply=None)
            .execution_options(synchronize_session=False)
        )
    audience.erase(session, raw_email, now)
    return Erased(mail.rowcount, stripped.rowcount)  # type: ignore[attr-defined]


def _pragma(connection: Connection, statement: str) -> tuple[Any, ...] | None:
    """Run a PRAGMA on the driver's connection, outside any transaction."""
    cursor = connection.connection.driver_connection.execute(statement)  # type: ignore[union-attr]
    row = cursor.fetchone()
    cursor.close()
    return tuple(row) if row is not None else None


def erase(db: Database, raw_email: str, now: datetime) -> Erased:
    """Erase the person everywhere in one transaction; on SQLite, leave no readable trace
    of the deleted bytes in the database file or its write-ahead log."""
    with db.engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            _pragma(connection, "PRAGMA secure_delete = ON")
        with Session(connection) as session, session.begin():
            erased = erase_in(session, raw_email, now)
        if not sqlite:
            return erased
        checkpoint = _pragma(connection, "PRAGMA wal_checkpoint(TRUNCATE)")
    busy = checkpoint is not None and checkpoint[0] != 0
    return Erased(erased.mail, erased.deliveries, log_cleared=not busy)
