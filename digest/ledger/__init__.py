"""The send ledger: frozen editions and one delivery row per (edition, subscriber).

``models`` holds the tables, ``queries`` freezing, claiming and recording outcomes,
``recipients`` who an edition goes to (and who joined since it was frozen),
``approvals`` an editor's approval of a day. Callers use ``from digest import ledger``
and ``ledger.claim(…)``: this package names its public functions in one place.
"""

from __future__ import annotations

from digest.ledger.approvals import approve, is_approved
from digest.ledger.models import OPEN, Approval, Delivery, DeliveryStatus, FrozenEdition
from digest.ledger.outcomes import (
    SentRow,
    record_deferred,
    record_failed,
    record_sent,
    record_sent_rows,
)
from digest.ledger.queries import (
    Frozen,
    Recipient,
    claim,
    claimers,
    counts,
    failures,
    freeze,
    latest,
    next_retry,
    release,
    retry_failed,
    sent_since,
    set_paused,
    source_sha256,
    unfinished,
)
from digest.ledger.recipients import active_readers, enqueue, enqueue_newcomers, newcomers

__all__ = [
    "OPEN",
    "Approval",
    "Delivery",
    "DeliveryStatus",
    "Frozen",
    "FrozenEdition",
    "Recipient",
    "SentRow",
    "active_readers",
    "approve",
    "claim",
    "claimers",
    "counts",
    "enqueue",
    "enqueue_newcomers",
    "failures",
    "freeze",
    "is_approved",
    "latest",
    "newcomers",
    "next_retry",
    "record_deferred",
    "record_failed",
    "record_sent",
    "record_sent_rows",
    "release",
    "retry_failed",
    "sent_since",
    "set_paused",
    "source_sha256",
    "unfinished",
]
