"""Keeping readers' mail as it came, once: the raw bytes, before anything is parsed.

A copy is a message with the same content (``parse.content_key``: its body and
content headers), so one re-delivered with one more ``Received:`` header is
recognised, and a different message that reuses a stored Message-ID is not (it
is stored, without the ID: the column is unique, and serves only to find
copies). Rows stored before the key existed are under a hash of their bytes;
both are looked up.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digest.feedback.models import Feedback
from digest.feedback.parse import content_key, message_id_of
from subscribers.db import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Incoming:
    """One message as it arrived, with where from (a folder, a file, ``smtp``)."""

    raw: bytes
    origin: str
    envelope_to: tuple[str, ...] = ()
    #: False when it arrived just now (SMTP): its own Received: headers are the sender's
    dated_by_headers: bool = True


@dataclass
class FilingReport:
    """What a run of filing did, for the command's summary."""

    seen: int = 0
    stored: int = 0
    duplicates: int = 0
    unparsed: int = 0  # stored, but filed as other because parsing fell short
    kinds: Counter[str] = field(default_factory=Counter)
    effects: list[str] = field(default_factory=list)
    not_stored: list[tuple[str, str]] = field(default_factory=list)  # (origin, reason)


@dataclass(frozen=True)
class Row:
    """A message about to be stored, with the keys that find its copies."""

    incoming: Incoming
    sha256: str  # of the content (``content_key``): what the row is stored under
    raw_sha256: str  # of the bytes: what rows stored before issue 14 are stored under
    message_id: str | None
    #: the content key of the row already stored under ``message_id``, if one is (worked
    #: out before the write transaction: it may mean parsing the stored message)
    taken_key: str | None = None


#: The rows stored (id, message) and how many were copies of rows stored before.
Inserted = tuple[list[tuple[int, Incoming]], int]


def store_raw(
    db: Database,
    batch: list[Incoming],
    report: FilingReport,
    insert: Callable[[Session, list[Row]], Inserted],
) -> list[tuple[int, Incoming]]:
    """Keep the raw bytes of each message not stored before; returns the new rows.

    ``insert`` is ``insert`` with the time of storing (the filer's clock).
    """
    rows: list[Row] = []
    seen: set[str] = set()
    for incoming in batch:
        raw_sha256 = hashlib.sha256(incoming.raw).hexdigest()
        row = Row(incoming, _safe_key(incoming, raw_sha256), raw_sha256, _safe_id(incoming))
        keys = {row.sha256, row.raw_sha256}
        if keys & seen:
            report.duplicates += 1
            continue
        seen |= keys
        rows.append(row)
    try:
        rows = _with_taken_keys(db, rows)
    except Exception as exc:  # the store below reports what it cannot do, row by row
        log.warning("could not look up stored Message-IDs: %s", exc)
    try:
        with db.transaction() as session:
            stored, duplicates = insert(session, rows)
    except Exception:  # another process stored some meanwhile, or one row is bad
        stored, duplicates = [], 0
        for row in rows:
            try:
                with db.transaction() as session:
                    one, dup = insert(session, [row])
            except IntegrityError:
                one, dup = [], 1
            except Exception as exc:  # reported: the caller must not take it as stored
                log.error("could not store %s: %s", row.incoming.origin, exc)
                report.not_stored.append((row.incoming.origin, f"could not store: {exc}"))
                continue
            stored += one
            duplicates += dup
    report.stored += len(stored)
    report.duplicates += duplicates
    return stored


def insert(session: Session, rows: list[Row], now: datetime) -> Inserted:
    """Add the rows that are no copies of stored ones (in ``session``, not committed)."""
    hashes = [r.sha256 for r in rows] + [r.raw_sha256 for r in rows]
    known = set(session.scalars(select(Feedback.sha256).where(Feedback.sha256.in_(hashes))))
    taken = _taken_ids(session, rows)
    added: list[tuple[Feedback, Incoming]] = []
    duplicates = 0
    for row in rows:
        if (
            row.sha256 in known
            or row.raw_sha256 in known
            or (row.message_id is not None and taken.get(row.message_id) == row.sha256)
        ):
            duplicates += 1
            continue
        # Another message under a stored Message-ID is stored too, without the ID
        # (the column is unique; it serves only to find copies).
        message_id = None if row.message_id in taken else row.message_id
        if row.message_id is not None:
            taken.setdefault(row.message_id, row.sha256)
        feedback = Feedback(
            received_at=now,
            origin=clean(row.incoming.origin)[:300],
            sha256=row.sha256,
            message_id=message_id,
            size=len(row.incoming.raw),
            raw=row.incoming.raw,
            envelope_to=clean(", ".join(row.incoming.envelope_to)) or None,
        )
        session.add(feedback)
        added.append((feedback, row.incoming))
    session.flush()
    return [(feedback.id, incoming) for feedback, incoming in added], duplicates


def _with_taken_keys(db: Database, rows: list[Row]) -> list[Row]:
    """Each row with the content key of the row stored under its Message-ID, if any.

    A stored row whose key is not one of ours is either another message or one stored
    before the content key existed (under a hash of its bytes): only parsing it tells.
    It is read in a short transaction and parsed after it closes, so a large stored
    message never keeps the write lock while it is parsed.
    """
    ids = [r.message_id for r in rows if r.message_id]
    if not ids:
        return rows
    ours = {r.sha256 for r in rows}
    with db.transaction() as session:
        stored = {
            message_id: (sha256, None if sha256 in ours else raw)
            for message_id, sha256, raw in session.execute(
                select(Feedback.message_id, Feedback.sha256, Feedback.raw).where(
                    Feedback.message_id.in_(ids)
                )
            )
            if message_id is not None
        }
    keys = {
        message_id: sha256 if raw is None else _safe_key(Incoming(raw, ""), sha256)
        for message_id, (sha256, raw) in stored.items()
    }
    return [replace(r, taken_key=keys.get(r.message_id or "")) for r in rows]


def _taken_ids(session: Session, rows: list[Row]) -> dict[str, str]:
    """The content key of the row stored under each of these Message-IDs, if any.

    Keys worked out before the transaction (``taken_key``) are used; a row stored
    since then counts under the key it was stored with.
    """
    ids = [r.message_id for r in rows if r.message_id]
    if not ids:
        return {}
    known = {r.message_id: r.taken_key for r in rows if r.message_id and r.taken_key}
    taken: dict[str, str] = {}
    for message_id, sha256 in session.execute(
        select(Feedback.message_id, Feedback.sha256).where(Feedback.message_id.in_(ids))
    ):
        if message_id is not None:
            taken[message_id] = known.get(message_id, sha256)
    return taken


def clean(text: str) -> str:
    """Text any database takes: no NUL (PostgreSQL refuses it), no lone surrogates
    (some codecs, UTF-7 for one, produce them; they can't be encoded as UTF-8)."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def _safe_key(incoming: Incoming, fallback: str) -> str:
    try:
        return content_key(incoming.raw)
    except Exception:  # a message that can't be read for its content: its bytes stand in
        return fallback


def _safe_id(incoming: Incoming) -> str | None:
    try:
        return message_id_of(incoming.raw)
    except Exception:  # a header we cannot read only cannot dedupe
        return None
