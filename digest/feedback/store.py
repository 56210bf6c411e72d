"""Filing readers' mail: store the raw bytes, then parse, link, classify and act.

Two transactions per batch. The first stores the raw messages not seen before
(by a hash of the bytes and by Message-ID, so a copy re-delivered with one more
``Received:`` header is recognised); once it commits, nothing can be lost. The
second parses each new message and files it; a message that fails there, for any
reason, is filed as ``other`` with the reason and the batch goes on. Rows a crash
left unparsed between the two are parsed at the start of the next run.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digest.clock import utc_now
from digest.feedback.classify import Mailboxes, classify
from digest.feedback.effects import Counted, act
from digest.feedback.kinds import Kind
from digest.feedback.match import find_link
from digest.feedback.models import Feedback
from digest.feedback.parse import message_id_of, parse
from digest.send.bounces import Thresholds
from digest.send.links import Links
from digest.settings import Settings
from subscribers.db import Database
from subscribers.models import Base, UTCDateTime

log = logging.getLogger(__name__)

BATCH_MESSAGES = 200
BATCH_BYTES = 64 * 1024 * 1024

_FEEDBACK = Base.metadata.tables["feedback"]
_PARSED = (
    "received_at",
    "kind",
    "problem",
    "bounce_status",
    "from_email",
    "from_name",
    "subject",
    "sent_at",
    "text",
    "full_text",
    "permanent",
    "detail",
    "linked_by",
    "edition_id",
    "delivery_id",
    "subscriber_id",
    "effect",
)
#: One statement files a whole batch (executemany): the ORM costs a millisecond a row.
_FILE = (
    update(_FEEDBACK)
    .where(_FEEDBACK.c.id == bindparam("feedback_id"))
    .values(
        {
            **{name: bindparam(f"b_{name}") for name in _PARSED},
            # when the Received: header says it arrived, if it says; else when stored
            "received_at": func.coalesce(
                bindparam("b_received_at", type_=UTCDateTime()), _FEEDBACK.c.received_at
            ),
        }
    )
)
_UNFILED: dict[str, Any] = {f"b_{name}": None for name in _PARSED}


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
class _Row:
    incoming: Incoming
    sha256: str
    message_id: str | None


class Filer:
    """Files messages for one publication into its database."""

    def __init__(
        self, db: Database, settings: Settings, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self.db = db
        self.mailboxes = Mailboxes.from_settings(settings)
        self.signer = Links.from_settings(settings).signer
        self.languages = tuple(settings.feedback.reply_languages)
        self.thresholds = Thresholds.from_settings(settings.feedback)
        self.clock = clock

    def file(
        self,
        messages: Iterable[Incoming],
        progress: Callable[[FilingReport], None] | None = None,
        on_stored: Callable[[list[Incoming], list[Incoming]], None] | None = None,
    ) -> FilingReport:
        """Store and file every message.

        ``on_stored(safe, failed)`` hears of each batch once its messages are safe
        (stored now or before) and which of them could not be stored.
        """
        report = FilingReport()
        for batch in _batches(messages):
            report.seen += len(batch)
            before = len(report.not_stored)
            stored = self.store(batch, report)
            if on_stored is not None:
                failed_origins = {origin for origin, _ in report.not_stored[before:]}
                on_stored(
                    [m for m in batch if m.origin not in failed_origins],
                    [m for m in batch if m.origin in failed_origins],
                )
            self._file_rows(stored, report)
            if progress is not None:
                progress(report)
        self.file_unparsed(report)
        return report

    def store(self, batch: list[Incoming], report: FilingReport) -> list[tuple[int, Incoming]]:
        """Keep the raw bytes of each message not stored before; returns the new rows."""
        rows: list[_Row] = []
        seen: set[str] = set()
        for incoming in batch:
            row = _Row(incoming, hashlib.sha256(incoming.raw).hexdigest(), _safe_id(incoming))
            keys = {row.sha256} | ({row.message_id} if row.message_id else set())
            if keys & seen:
                report.duplicates += 1
                continue
            seen |= keys
            rows.append(row)
        try:
            with self.db.transaction() as session:
                stored, duplicates = self._insert(session, rows)
        except Exception:  # another process stored some meanwhile, or one row is bad
            stored, duplicates = [], 0
            for row in rows:
                try:
                    with self.db.transaction() as session:
                        one, dup = self._insert(session, [row])
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

    def _insert(self, session: Session, rows: list[_Row]) -> tuple[list[tuple[int, Incoming]], int]:
        hashes = [r.sha256 for r in rows]
        ids = [r.message_id for r in rows if r.message_id]
        known = set(session.scalars(select(Feedback.sha256).where(Feedback.sha256.in_(hashes))))
        if ids:
            known |= set(
                session.scalars(select(Feedback.message_id).where(Feedback.message_id.in_(ids)))
            )
        now = self.clock()
        added: list[tuple[Feedback, Incoming]] = []
        duplicates = 0
        for row in rows:
            if row.sha256 in known or row.message_id in known:
                duplicates += 1
                continue
            feedback = Feedback(
                received_at=now,
                origin=_clean(row.incoming.origin)[:300],
                sha256=row.sha256,
                message_id=row.message_id,
                size=len(row.incoming.raw),
                raw=row.incoming.raw,
                envelope_to=_clean(", ".join(row.incoming.envelope_to)) or None,
            )
            session.add(feedback)
            added.append((feedback, row.incoming))
        session.flush()
        return [(feedback.id, incoming) for feedback, incoming in added], duplicates

    def file_unparsed(self, report: FilingReport) -> None:
        """Parse rows stored but never filed (a crash came between the two steps).

        Never in the way of storing: it runs after, and a failure here is logged.
        """
        try:
            while self._file_some_unparsed(report):
                pass
        except Exception as exc:  # never in the way of storing new mail
            log.error("filing stored messages failed; they stay stored, unfiled: %s", exc)

    def _file_some_unparsed(self, report: FilingReport) -> bool:
        with self.db.transaction() as session:
            ids = list(
                session.scalars(
                    select(Feedback.id)
                    .where(Feedback.kind.is_(None))
                    .order_by(Feedback.id)
                    .limit(BATCH_MESSAGES)
                )
            )
        if not ids:
            return False
        self._file_rows([(i, None) for i in ids], report)
        return True

    def _file_rows(self, rows: Sequence[tuple[int, Incoming | None]], report: FilingReport) -> None:
        """File stored rows in one transaction; ``None`` in place of a message: read it back.

        Each row is claimed first (``kind`` set where it is still null), so two
        processes filing the same leftovers never act on one message twice.
        """
        if not rows:
            return
        try:
            self._file_together(rows, report)
        except Exception:  # one bad row (or a race) must not keep the rest unfiled
            for row in rows:
                try:
                    self._file_together([row], report)
                except Exception as exc:
                    self._give_up(row[0], exc, report)

    def _file_together(
        self, rows: Sequence[tuple[int, Incoming | None]], report: FilingReport
    ) -> None:
        batch = FilingReport()
        counted: Counted = {}  # bounced deliveries not yet written
        filed: list[dict[str, Any]] = []
        with self.db.transaction() as session:
            claimed = set(
                session.scalars(
                    update(Feedback)
                    .where(Feedback.id.in_([i for i, _ in rows]), Feedback.kind.is_(None))
                    .values(kind=Kind.other)
                    .returning(Feedback.id)
                )
            )
            for feedback_id, incoming in rows:
                if feedback_id not in claimed:
                    continue  # filed meanwhile by another process
                if incoming is None:
                    stored = session.get(Feedback, feedback_id)
                    assert stored is not None
                    envelope = tuple(a for a in (stored.envelope_to or "").split(", ") if a)
                    incoming = Incoming(stored.raw, stored.origin, envelope)
                try:
                    values = self._file_one(session, incoming, counted)
                except Exception as exc:  # kept raw and listed, never dropped
                    values = {
                        **_UNFILED,
                        "b_kind": Kind.other,
                        "b_problem": _clean(f"could not be parsed: {exc!r}")[:2000],
                    }
                    batch.unparsed += 1
                filed.append({**values, "feedback_id": feedback_id})
                batch.kinds[values["b_kind"]] += 1
                if values["b_effect"]:
                    batch.effects.append(values["b_effect"])
            if filed:
                session.connection().execute(_FILE, filed)
        report.unparsed += batch.unparsed
        report.kinds.update(batch.kinds)
        report.effects += batch.effects

    def _give_up(self, feedback_id: int, exc: Exception, report: FilingReport) -> None:
        """The row could not be filed at all: listed as other with the reason, still raw."""
        log.error("could not file feedback %d: %s", feedback_id, exc)
        try:
            with self.db.transaction() as session:
                session.execute(
                    update(Feedback)
                    .where(Feedback.id == feedback_id, Feedback.kind.is_(None))
                    .values(kind=Kind.other, problem=_clean(f"could not be filed: {exc!r}")[:2000])
                )
        except Exception as again:  # stays stored and unfiled; the next run tries again
            log.error("could not mark feedback %d unfiled: %s", feedback_id, again)
            return
        report.unparsed += 1
        report.kinds[Kind.other] += 1

    def _file_one(self, session: Session, incoming: Incoming, counted: Counted) -> dict[str, Any]:
        """The parsed columns of one message (``_FILE``'s parameters), after its effects."""
        parsed = parse(incoming.raw, self.languages, tuple(a for a in incoming.envelope_to if a))
        link = find_link(session, parsed, self.mailboxes, self.signer)
        kind = classify(parsed, self.mailboxes, linked=link.found, answers_ours=link.answers_ours)
        effect = None
        if kind in (Kind.bounce, Kind.complaint, Kind.unsubscribe):
            if not link.trusted:
                effect = "no change: nothing in it names one of our deliveries for certain"
            else:
                with session.begin_nested():  # an effect that fails undoes itself only
                    effect = act(
                        session, kind, parsed, link, counted, self.thresholds, self.clock()
                    )
        report = parsed.report
        detail = None
        if kind is Kind.bounce:
            detail = " ".join(x for x in (report.status, report.diagnostic) if x) or None
        elif kind is Kind.complaint:
            detail = report.fields.get("feedback-type")
        now = self.clock()
        arrived = parsed.received if incoming.dated_by_headers else None
        values = {
            "b_received_at": arrived if arrived and arrived <= now else None,
            "b_kind": kind,
            "b_problem": "; ".join(parsed.problems)[:2000] or None,
            "b_from_email": (parsed.from_email or "")[:320] or None,
            "b_from_name": (parsed.from_name or "")[:300] or None,
            "b_subject": parsed.subject,
            "b_sent_at": parsed.date,
            "b_text": parsed.text,
            "b_full_text": parsed.full_text,
            "b_permanent": report.is_permanent if kind is Kind.bounce else None,
            "b_bounce_status": (report.status or "")[:16] or None if kind is Kind.bounce else None,
            "b_detail": detail[:2000] if detail else None,
            "b_linked_by": link.by,
            "b_edition_id": link.edition_id,
            "b_delivery_id": link.delivery_id,
            "b_subscriber_id": link.subscriber_id,
            "b_effect": effect,
        }
        return {k: _clean(v) if isinstance(v, str) else v for k, v in values.items()}


def _clean(text: str) -> str:
    """Text any database takes: no NUL (PostgreSQL refuses it), no lone surrogates
    (some codecs, UTF-7 for one, produce them; they can't be encoded as UTF-8)."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def _safe_id(incoming: Incoming) -> str | None:
    try:
        return message_id_of(incoming.raw)
    except Exception:  # a header we cannot read only cannot dedupe
        return None


def _batches(messages: Iterable[Incoming]) -> Iterator[list[Incoming]]:
    batch: list[Incoming] = []
    size = 0
    for message in messages:
        batch.append(message)
        size += len(message.raw)
        if len(batch) >= BATCH_MESSAGES or size >= BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch
