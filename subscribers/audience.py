"""What can happen to a subscriber: join, confirm, leave, be erased.

Functions take a session and the time (``now``) and change rows; the caller owns
the transaction. The consent rules live here: an address that unsubscribed,
bounced or complained is never made active by an import or an editor; only a
fresh opt-in by the person, confirmed through their own link, does that.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from subscribers.addresses import Address, parse_address, suppression_hash
from subscribers.errors import NotSubscribedError, SuppressedError
from subscribers.models import (
    LEFT,
    Consent,
    ConsentMethod,
    Status,
    StatusChange,
    Subscriber,
    Suppression,
)


class Outcome(enum.StrEnum):
    added = "added"
    updated = "updated"
    unchanged = "unchanged"


@dataclass(frozen=True)
class Joined:
    """The result of adding an address: what happened and whether to send a confirmation."""

    subscriber: Subscriber
    outcome: Outcome
    needs_confirmation: bool


@dataclass(frozen=True)
class ConsentEvidence:
    method: ConsentMethod
    form_version: str | None = None
    ip: str | None = None
    user_agent: str | None = None


def _by_key(session: Session, key: str) -> Subscriber | None:
    return session.scalars(select(Subscriber).where(Subscriber.email_key == key)).one_or_none()


def find(session: Session, raw_email: str) -> Subscriber | None:
    return _by_key(session, parse_address(raw_email).key)


def get(session: Session, raw_email: str) -> Subscriber:
    subscriber = find(session, raw_email)
    if subscriber is None:
        raise NotSubscribedError(f"no subscriber with the address {raw_email.strip()!r}")
    return subscriber


def is_suppressed(session: Session, key: str) -> bool:
    digest = suppression_hash(key)
    return (
        session.scalars(select(Suppression.id).where(Suppression.email_hash == digest)).first()
        is not None
    )


def change_status(
    session: Session, subscriber: Subscriber, new: Status, now: datetime, reason: str
) -> bool:
    """Move to ``new`` with a recorded reason; False when it was already there."""
    if subscriber.status == new:
        return False
    session.add(
        StatusChange(subscriber=subscriber, at=now, old=subscriber.status, new=new, reason=reason)
    )
    subscriber.status = new
    subscriber.status_changed_at = now
    return True


def _left_message(subscriber: Subscriber) -> str:
    return (
        f"{subscriber.email} is {subscriber.status.value} (since "
        f"{subscriber.status_changed_at:%Y-%m-%d}); only the person can re-subscribe, "
        "through the sign-up form and their confirmation link"
    )


def join(
    session: Session,
    address: Address,
    now: datetime,
    evidence: ConsentEvidence,
    *,
    name: str | None = None,
    confirmed: bool = False,
    attributes: dict[str, Any] | None = None,
) -> Joined:
    """Add or refresh a subscriber.

    ``confirmed`` (an editor or import attesting consent) makes a new address
    active at once; otherwise it is pending until the person confirms.
    """
    by_person = evidence.method is ConsentMethod.web_form
    if not by_person and is_suppressed(session, address.key):
        raise SuppressedError(
            f"{address.typed} was erased at the person's request and may not be re-added"
        )
    existing = _by_key(session, address.key)
    if existing is None:
        status = Status.active if confirmed and not by_person else Status.pending
        subscriber = Subscriber(
            email=address.typed,
            email_key=address.key,
            name=name,
            status=status,
            attributes=dict(attributes or {}),
            created_at=now,
            status_changed_at=now,
        )
        session.add(subscriber)
        session.add(
            StatusChange(
                subscriber=subscriber, at=now, old=None, new=status, reason=evidence.method.value
            )
        )
        _record_consent(session, subscriber, now, evidence, confirmed=status is Status.active)
        return Joined(subscriber, Outcome.added, status is Status.pending)
    if existing.status in LEFT:
        if not by_person:
            raise SuppressedError(_left_message(existing))
        _record_consent(session, existing, now, evidence, confirmed=False)
        change_status(session, existing, Status.pending, now, "re-subscribed via web form")
        return Joined(existing, Outcome.updated, True)
    changed = False
    if name and name != existing.name:
        existing.name, changed = name, True
    if attributes:
        merged = {**existing.attributes, **attributes}
        if merged != existing.attributes:
            existing.attributes, changed = merged, True
    if existing.status is Status.pending and confirmed and not by_person:
        _record_consent(session, existing, now, evidence, confirmed=True)
        change_status(
            session, existing, Status.active, now, f"confirmed by {evidence.method.value}"
        )
        changed = True
    outcome = Outcome.updated if changed else Outcome.unchanged
    return Joined(existing, outcome, existing.status is Status.pending)


def _record_consent(
    session: Session,
    subscriber: Subscriber,
    now: datetime,
    evidence: ConsentEvidence,
    *,
    confirmed: bool,
) -> None:
    session.add(
        Consent(
            subscriber=subscriber,
            at=now,
            method=evidence.method.value,
            form_version=evidence.form_version,
            ip=evidence.ip,
            user_agent=evidence.user_agent,
            confirmed_at=now if confirmed else None,
        )
    )


def confirm(session: Session, subscriber: Subscriber, now: datetime) -> bool:
    """The person followed their confirmation link: pending becomes active."""
    if subscriber.status is not Status.pending:
        return False
    for consent in reversed(subscriber.consents):
        if consent.confirmed_at is None:
            consent.confirmed_at = now
            break
    session.execute(
        delete(Suppression).where(Suppression.email_hash == suppression_hash(subscriber.email_key))
    )
    return change_status(session, subscriber, Status.active, now, "confirmed by the subscriber")


def unsubscribe(session: Session, subscriber: Subscriber, now: datetime, reason: str) -> bool:
    """Leave; idempotent. A bounced or complained address keeps that stronger status."""
    if subscriber.status in LEFT:
        return False
    return change_status(session, subscriber, Status.unsubscribed, now, reason)


def erase(session: Session, raw_email: str, now: datetime) -> None:
    """Delete everything about a person, keeping only a hash that blocks re-adding them."""
    subscriber = get(session, raw_email)
    digest = suppression_hash(subscriber.email_key)
    session.delete(subscriber)
    if session.scalars(select(Suppression).where(Suppression.email_hash == digest)).first() is None:
        session.add(Suppression(email_hash=digest, at=now, reason="erased on request"))


def person_data(subscriber: Subscriber) -> dict[str, Any]:
    """Everything stored about one person, as a subject-access request asks for it."""
    return {
        "email": subscriber.email,
        "name": subscriber.name,
        "status": subscriber.status.value,
        "attributes": subscriber.attributes,
        "created_at": subscriber.created_at.isoformat(),
        "status_changed_at": subscriber.status_changed_at.isoformat(),
        "status_history": [
            {
                "at": change.at.isoformat(),
                "from": change.old.value if change.old else None,
                "to": change.new.value,
                "reason": change.reason,
            }
            for change in subscriber.changes
        ],
        "consents": [
            {
                "at": consent.at.isoformat(),
                "method": consent.method,
                "form_version": consent.form_version,
                "ip": consent.ip,
                "user_agent": consent.user_agent,
                "confirmed_at": consent.confirmed_at.isoformat() if consent.confirmed_at else None,
            }
            for consent in subscriber.consents
        ],
    }
