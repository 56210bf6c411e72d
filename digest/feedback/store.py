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
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digest.feedback.classify import Mailboxes, classify
from digest.feedback.link import Link, find_link
from digest.feedback.models import Feedback, Kind
from digest.feedback.parse import Parsed, message_id_of, parse
from digest.ledger import Delivery, DeliveryStatus
from digest.links import Links
from digest.settings import Settings
from subscribers.audience import change_status, unsubscribe
from subscribers.db import Database
from subscribers.models import Base, Status, Subscriber

BATCH_MESSAGES = 200
BATCH_BYTES = 64 * 1024 * 1024

_FEEDBACK = Base.metadata.tables["feedback"]
_PARSED = (
    "kind",
    "problem",
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
    .values({name: bindparam(f"b_{name}") for name in _PARSED})
)
_UNFILED: dict[str, Any] = {f"b_{name}": None for name in _PARSED}


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Incoming:
    """One message as it arrived, with where from (a folder, a file, ``smtp``)."""

    raw: bytes
    origin: str
    envelope_to: tuple[str, ...] = ()


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
        self.threshold = settings.feedback.bounce_threshold
        self.clock = clock
        self._bounces_in_batch: Counter[int] = Counter()

    def file(
        self,
        messages: Iterable[Incoming],
        progress: Callable[[FilingReport], None] | None = None,
        on_stored: Callable[[list[Incoming]], None] | None = None,
    ) -> FilingReport:
        """Store and file every message; ``on_stored`` hears of each batch once it is safe."""
        report = FilingReport()
        self.file_unparsed(report)
        for batch in _batches(messages):
            report.seen += len(batch)
            stored = self.store(batch, report)
            if on_stored is not None:
                on_stored(batch)
            self._file_rows(stored, report)
            if progress is not None:
                progress(report)
        return report

    def store(self, batch: list[Incoming], report: FilingReport) -> list[tuple[int, Incoming]]:
        """Keep the raw bytes of each message not stored before; returns the new rows."""
        rows: list[_Row] = []
        seen: set[str] = set()
        for incoming in batch:
            try:
                row = _Row(incoming, hashlib.sha256(incoming.raw).hexdigest(), _safe_id(incoming))
            except Exception as exc:  # reported, never raised
                report.not_stored.append((incoming.origin, f"unreadable: {exc}"))
                continue
            keys = {row.sha256} | ({row.message_id} if row.message_id else set())
            if keys & seen:
                report.duplicates += 1
                continue
            seen |= keys
            rows.append(row)
        try:
            with self.db.transaction() as session:
                return self._insert(session, rows, report)
        except IntegrityError:  # another process stored some of these meanwhile
            stored: list[tuple[int, Incoming]] = []
            for row in rows:
                try:
                    with self.db.transaction() as session:
                        stored += self._insert(session, [row], report)
                except IntegrityError:
                    report.duplicates += 1
            return stored

    def _insert(
        self, session: Session, rows: list[_Row], report: FilingReport
    ) -> list[tuple[int, Incoming]]:
        hashes = [r.sha256 for r in rows]
        ids = [r.message_id for r in rows if r.message_id]
        known = set(session.scalars(select(Feedback.sha256).where(Feedback.sha256.in_(hashes))))
        if ids:
            known |= set(
                session.scalars(select(Feedback.message_id).where(Feedback.message_id.in_(ids)))
            )
        now = self.clock()
        added: list[tuple[Feedback, Incoming]] = []
        for row in rows:
            if row.sha256 in known or row.message_id in known:
                report.duplicates += 1
                continue
            feedback = Feedback(
                received_at=now,
                origin=row.incoming.origin[:300],
                sha256=row.sha256,
                message_id=row.message_id,
                size=len(row.incoming.raw),
                raw=row.incoming.raw,
                envelope_to=", ".join(row.incoming.envelope_to) or None,
            )
            session.add(feedback)
            added.append((feedback, row.incoming))
        session.flush()
        report.stored += len(added)
        return [(feedback.id, incoming) for feedback, incoming in added]

    def file_unparsed(self, report: FilingReport) -> None:
        """Parse rows stored but never filed (a crash came between the two steps)."""
        while True:
            with self.db.transaction() as session:
                rows = session.execute(
                    select(Feedback.id, Feedback.raw, Feedback.origin, Feedback.envelope_to)
                    .where(Feedback.kind.is_(None))
                    .order_by(Feedback.id)
                    .limit(BATCH_MESSAGES)
                ).all()
            if not rows:
                return
            self._file_rows(
                [
                    (row[0], Incoming(row[1], row[2], tuple((row[3] or "").split(", "))))
                    for row in rows
                ],
                report,
            )

    def _file_rows(self, rows: list[tuple[int, Incoming]], report: FilingReport) -> None:
        if not rows:
            return
        filed: list[dict[str, Any]] = []
        self._bounces_in_batch.clear()  # bounces filed in this batch are not written yet
        with self.db.transaction() as session:
            for feedback_id, incoming in rows:
                try:
                    values = self._file_one(session, incoming)
                except Exception as exc:  # kept raw and listed, never dropped
                    values = {
                        **_UNFILED,
                        "b_kind": Kind.other,
                        "b_problem": f"could not be parsed: {exc!r}"[:2000],
                    }
                    report.unparsed += 1
                filed.append({**values, "feedback_id": feedback_id})
                report.kinds[values["b_kind"]] += 1
                if values["b_effect"]:
                    report.effects.append(values["b_effect"])
            session.connection().execute(_FILE, filed)

    def _file_one(self, session: Session, incoming: Incoming) -> dict[str, Any]:
        """The parsed columns of one message (``_FILE``'s parameters), after its effects."""
        parsed = parse(incoming.raw, self.languages, tuple(a for a in incoming.envelope_to if a))
        link = find_link(session, parsed, self.mailboxes, self.signer)
        kind = classify(parsed, self.mailboxes, linked=link.found)
        effect = None
        if kind in (Kind.bounce, Kind.complaint, Kind.unsubscribe) and link.subscriber_id:
            with session.begin_nested():  # an effect that fails undoes itself, not the batch
                effect = self._act(session, kind, parsed, link)
        report = parsed.report
        detail = None
        if kind is Kind.bounce:
            detail = " ".join(x for x in (report.status, report.diagnostic) if x) or None
        elif kind is Kind.complaint:
            detail = report.fields.get("feedback-type")
        return {
            "b_kind": kind,
            "b_problem": "; ".join(parsed.problems)[:2000] or None,
            "b_from_email": (parsed.from_email or "")[:320] or None,
            "b_from_name": (parsed.from_name or "")[:300] or None,
            "b_subject": parsed.subject,
            "b_sent_at": parsed.date,
            "b_text": parsed.text,
            "b_full_text": parsed.full_text,
            "b_permanent": report.is_permanent if kind is Kind.bounce else None,
            "b_detail": detail[:2000] if detail else None,
            "b_linked_by": link.by,
            "b_edition_id": link.edition_id,
            "b_delivery_id": link.delivery_id,
            "b_subscriber_id": link.subscriber_id,
            "b_effect": effect,
        }

    def _act(self, session: Session, kind: Kind, parsed: Parsed, link: Link) -> str | None:
        """What a bounce, a complaint or an unsubscribe changes; a description, or None."""
        if kind is Kind.bounce and not parsed.report.is_permanent:
            return None  # temporary: only recorded
        subscriber = session.get(Subscriber, link.subscriber_id)
        if subscriber is None:
            return None
        now = self.clock()
        if kind is Kind.complaint:
            if change_status(session, subscriber, Status.complained, now, "abuse report"):
                return f"{subscriber.email} complained: no more mail to them"
            return None
        if kind is Kind.unsubscribe:
            if unsubscribe(session, subscriber, now, "unsubscribe email"):
                return f"{subscriber.email} unsubscribed by email"
            return None
        done = []
        reason = f"bounce: {parsed.report.status or ''} {parsed.report.diagnostic or ''}".strip()
        if link.delivery_id is not None:
            changed = session.execute(
                update(Delivery)
                .where(Delivery.id == link.delivery_id, Delivery.status != DeliveryStatus.failed)
                .values(status=DeliveryStatus.failed, reply=reason[:1000], claimed_by=None)
            )
            if changed.rowcount:  # type: ignore[attr-defined]
                done.append("delivery marked failed")
        bounces = session.scalar(
            select(func.count())
            .select_from(Feedback)
            .where(
                Feedback.subscriber_id == subscriber.id,
                Feedback.kind == Kind.bounce,
                Feedback.permanent.is_(True),
            )
        )
        self._bounces_in_batch[subscriber.id] += 1
        if (
            int(bounces or 0) + self._bounces_in_batch[subscriber.id] >= self.threshold
            and subscriber.status in (Status.active, Status.pending)
            and change_status(session, subscriber, Status.bounced, now, reason[:200])
        ):
            done.append(f"{subscriber.email} marked bounced")
        return "; ".join(done) or None


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
