"""The send ledger: frozen editions and one delivery row per (edition, subscriber).

``models`` holds the tables, ``queries`` freezing, claiming and recording outcomes,
``approvals`` an editor's approval of a day. Callers use ``from digest import ledger``
and ``ledger.claim(…)``: this package names its public functions in one place.
"""

from __future__ import annotations

from digest.ledger.approvals import approve, is_approved
from digest.ledger.models import OPEN, Approval, Delivery, DeliveryStatus, FrozenEdition
from digest.ledger.queries import (
    Frozen,
    Recipient,
    claim,
    claimers,
    counts,
    enqueue,
    failures,
    freeze,
    latest,
    next_retry,
    record_deferred,
    record_failed,
    record_sent,
    release,
    retry_failed,
    sent_since,
    set_paused,
    source_sha256,
    unfinished,
)

__all__ = [
    "OPEN",
    "Approval",
    "Delivery",
    "DeliveryStatus",
    "Frozen",
    "FrozenEdition",
    "Recipient",
    "approve",
    "claim",
    "claimers",
    "counts",
    "enqueue",
    "failures",
    "freeze",
    "is_approved",
    "latest",
    "next_retry",
    "record_deferred",
    "record_failed",
    "record_sent",
    "release",
    "retry_failed",
    "sent_since",
    "set_paused",
    "source_sha256",
    "unfinished",
]
