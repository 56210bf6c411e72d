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

from subscribers.addresses import Address, clean_name, parse_address, suppression_hash
from subscribers.errors import AddressError, NotSubscribedError, SuppressedError
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


def _left_message(email: str, status: Status, since: datetime) -> str:
    return (
        f"{email} is {status.value} (since {since:%Y-%m-%d}); only the person can "
        "re-subscribe, through the sign-up form and their confirmation link"
    )


@dataclass(frozen=True)
class Stored:
    """What the database holds about an address, as far as joining is concerned."""

    email: str
    name: str | None
    status: Status
    attributes: dict[str, Any]
    status_changed_at: datetime
    left_before: bool = False  # was unsubscribed, bounced or complained at some point


def has_left_before(session: Session, subscriber_ids: list[int]) -> set[int]:
    """Which of these subscribers ever unsubscribed, bounced or complained."""
    if not subscriber_ids:
        return set()
    return set(
        session.scalars(
            select(StatusChange.subscriber_id)
            .where(StatusChange.subscriber_id.in_(subscriber_ids), StatusChange.new.in_(LEFT))
            .distinct()
        )
    )


@dataclass(frozen=True)
class JoinPlan:
    """What joining does to an address: the new state and the records to write."""

    outcome: Outcome
    name: str | None
    status: Status
    attributes: dict[str, Any]
    status_reason: str | None  # set when the status changes (or the row is new)
    consent: bool  # whether a consent record is written
    consent_confirmed: bool
    needs_confirmation: bool


MAX_NAME = 200


def plan_join(
    stored: Stored | None,
    address: Address,
    evidence: ConsentEvidence,
    *,
    suppressed: bool,
    name: str | None,
    confirmed: bool,
    attributes: dict[str, Any] | None,
) -> JoinPlan:
    """Decide what adding ``address`` does, given what is stored; the consent rules.

    Raises ``SuppressedError`` when an editor or import may not (re-)add the address,
    and ``AddressError`` for a name too long to store.
    """
    name = clean_name(name)
    if name is not None and len(name) > MAX_NAME:
        raise AddressError(f"the name is longer than {MAX_NAME} characters")
    by_person = evidence.method is ConsentMethod.web_form
    if not by_person and suppressed:
        raise SuppressedError(
            f"{address.typed} was erased at the person's request and may not be re-added"
        )
    if stored is None:
        status = Status.active if confirmed and not by_person else Status.pending
        return JoinPlan(
            Outcome.added,
            name,
            status,
            dict(attributes or {}),
            evidence.method.value,
            consent=True,
            consent_confirmed=status is Status.active,
            needs_confirmation=status is Status.pending,
        )
    if stored.status in LEFT:
        if not by_person:
            raise SuppressedError(
                _left_message(stored.email, stored.status, stored.status_changed_at)
            )
        return JoinPlan(
            Outcome.updated,
            stored.name,
            Status.pending,
            stored.attributes,
            "re-subscribed via web form",
            consent=True,
            consent_confirmed=False,
            needs_confirmation=True,
        )
    if by_person:  # an unconfirmed form may not change what the person set before
        return JoinPlan(
            Outcome.unchanged,
            stored.name,
            stored.status,
            stored.attributes,
            None,
            consent=False,
            consent_confirmed=False,
            needs_confirmation=stored.status is Status.pending,
        )
    new_name = name if name else stored.name
    merged = {**stored.attributes, **attributes} if attributes else stored.attributes
    activate = stored.status is Status.pending and confirmed and not by_person
    if activate and stored.left_before:
        raise SuppressedError(
            f"{stored.email} left the list before and is waiting for their own "
            "confirmation; only the person can make the subscription active again"
        )
    changed = new_name != stored.name or merged != stored.attributes or activate
    return JoinPlan(
        Outcome.updated if changed else Outcome.unchanged,
        new_name,
        Status.active if activate else stored.status,
        merged,
        f"confirmed by {evidence.method.value}" if activate else None,
        consent=activate,
        consent_confirmed=activate,
        needs_confirmation=not activate and stored.status is Status.pending,
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
    existing = _by_key(session, address.key)
    stored = (
        None
        if existing is None
        else Stored(
            existing.email,
            existing.name,
            existing.status,
            existing.attributes,
            existing.status_changed_at,
            bool(has_left_before(session, [existing.id])),
        )
    )
    suppressed = evidence.method is not ConsentMethod.web_form and is_suppressed(
        session, address.key
    )
    plan = plan_join(
        stored,
        address,
        evidence,
        suppressed=suppressed,
        name=name,
        confirmed=confirmed,
        attributes=attributes,
    )
    if existing is None:
        subscriber = Subscriber(
            email=address.typed,
            email_key=address.key,
            name=plan.name,
            status=plan.status,
            attributes=plan.attributes,
            created_at=now,
            status_changed_at=now,
        )
        session.add(subscriber)
        session.add(
            StatusChange(
                subscriber=subscriber, at=now, old=None, new=plan.status, reason=plan.status_reason
            )
        )
    else:
        subscriber = existing
        subscriber.name = plan.name
        if plan.attributes != subscriber.attributes:
            subscriber.attributes = plan.attributes
        if plan.status_reason is not None:
            changed = change_status(session, subscriber, plan.status, now, plan.status_reason)
            if changed and plan.status is Status.pending:
                # a new sign-up: its own confirmation is due now (the last one's link
                # belongs to the sign-up before and no longer confirms)
                subscriber.confirmation_sent_at = None
    if plan.consent:
        _record_consent(session, subscriber, now, evidence, confirmed=plan.consent_confirmed)
    return Joined(subscriber, plan.outcome, plan.needs_confirmation)


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


def signed_up_at(session: Session, subscriber: Subscriber) -> datetime | None:
    """When the person's latest sign-up began (their last move to pending), if ever."""
    if subscriber.status is Status.pending:
        return subscriber.status_changed_at
    return session.scalars(
        select(StatusChange.at)
        .where(StatusChange.subscriber_id == subscriber.id, StatusChange.new == Status.pending)
        .order_by(StatusChange.id.desc())
        .limit(1)
    ).first()


def unsubscribe(session: Session, subscriber: Subscriber, now: datetime, reason: str) -> bool:
    """Leave; idempotent. A bounced or complained address keeps that stronger status."""
    if subscriber.status in LEFT:
        return False
    return change_status(session, subscriber, Status.unsubscribed, now, reason)


def erase(session: Session, raw_email: str, now: datetime) -> None:
    """Delete the person's rows in the audience's tables (subscriber, status changes,
    consents), keeping only a hash that blocks re-adding them.

    The application's tables (their mail, their deliveries) are not known here:
    ``digest.feedback.person.erase`` does those in the same transaction, then calls this.
    """
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
