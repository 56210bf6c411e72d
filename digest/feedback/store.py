"""Filing readers' mail: store the raw bytes, then parse, link, classify and act.

Two short transactions per batch, and the parsing between them outside any: on
SQLite a transaction holds the one write lock, and a slow message inside it
made the sign-up form answer "database is locked". The first transaction stores
the raw messages not seen before; once it commits, nothing can be lost. A copy
is one with the same content (``parse.content_key``: body and content headers,
so one re-delivered with one more ``Received:`` header is recognised; a
different message that reuses a Message-ID is not). Then each message is parsed,
within ``bounds.Limits``; one that is over them, or fails, is filed as ``other``
with the reason. The second transaction links, classifies, acts and writes.

Rows a crash left unparsed are filed after the new mail, one at a time, each
marked before it is parsed: one found still marked (its parse never finished,
the process died) is filed as ``other`` with that reason, not parsed again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from digest.clock import utc_now
from digest.errors import ParseLimitError
from digest.feedback.bounds import Limits
from digest.feedback.classify import Mailboxes, classify
from digest.feedback.effects import Counted, act
from digest.feedback.kinds import Kind
from digest.feedback.match import find_link
from digest.feedback.models import Feedback
from digest.feedback.parse import Parsed, headline, parse
from digest.feedback.raw import (
    FilingReport,
    Incoming,
    Inserted,
    Row,
    clean,
    insert,
    store_raw,
)
from digest.send.bounces import Thresholds
from digest.send.links import Links
from digest.settings import Settings
from subscribers.db import Database
from subscribers.models import Base, UTCDateTime

__all__ = ["BATCH_BYTES", "BATCH_MESSAGES", "Filer", "FilingReport", "Incoming"]

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
class _Parsed:
    """One stored message, parsed (outside any transaction), or why it was not."""

    feedback_id: int
    incoming: Incoming
    parsed: Parsed | None
    unfiled: dict[str, Any] | None = None  # when not parsed: ``_FILE``'s parameters


#: Written to ``problem`` of an unfiled row before its parse begins (time ISO 8601).
_STARTED = "parsing began "


class Filer:
    """Files messages for one publication into its database."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        clock: Callable[[], datetime] = utc_now,
        limits: Limits | None = None,
    ) -> None:
        self.db = db
        self.mailboxes = Mailboxes.from_settings(settings)
        self.signer = Links.from_settings(settings).signer
        self.languages = tuple(settings.feedback.reply_languages)
        self.thresholds = Thresholds.from_settings(settings.feedback)
        self.limits = limits or Limits(
            message_bytes=int(settings.feedback.max_message_mb * 1024 * 1024)
        )
        #: A mark older than this is a parse that never finished (not one still running).
        self.abandoned_after = timedelta(seconds=max(600.0, 10 * self.limits.seconds))
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
        return store_raw(self.db, batch, report, self._insert)

    def _insert(self, session: Session, rows: list[Row]) -> Inserted:
        return insert(session, rows, self.clock())

    def file_unparsed(self, report: FilingReport) -> None:
        """File rows stored but never filed (a crash came between the two steps).

        Never in the way of storing: it runs after, and a failure here is logged.
        """
        try:
            after: int | None = 0
            while after is not None:
                after = self._file_some_unparsed(report, after)
        except Exception as exc:  # never in the way of storing new mail
            log.error("filing stored messages failed; they stay stored, unfiled: %s", exc)

    def _file_some_unparsed(self, report: FilingReport, after: int) -> int | None:
        with self.db.transaction() as session:
            ids = list(
                session.scalars(
                    select(Feedback.id)
                    .where(Feedback.kind.is_(None), Feedback.id > after)
                    .order_by(Feedback.id)
                    .limit(BATCH_MESSAGES)
                )
            )
        for feedback_id in ids:
            self._file_leftover(feedback_id, report)
        return ids[-1] if ids else None

    def _file_leftover(self, feedback_id: int, report: FilingReport) -> None:
        """Mark the row, parse it, file it. A row found marked is being parsed by another
        process (it is left alone), or its parse never finished: filed as other."""
        now = self.clock()
        with self.db.transaction() as session:
            stored = session.get(Feedback, feedback_id)
            if stored is None or stored.kind is not None:
                return  # filed meanwhile by another process
            envelope = tuple(a for a in (stored.envelope_to or "").split(", ") if a)
            incoming = Incoming(stored.raw, stored.origin, envelope)
            mark = stored.problem
            began = _began(mark)
            if mark is None:
                stored.problem = f"{_STARTED}{now.isoformat()}"
            elif began is not None and now - began < self.abandoned_after:
                return  # another process is parsing it now
        if mark is None:
            self._file_rows([(feedback_id, incoming)], report)
            return
        reason = f"{mark} and never finished (the process stopped?): not parsed again"
        self._write_all([self._unparsed(feedback_id, incoming, reason)], report)

    def _file_rows(self, rows: Sequence[tuple[int, Incoming]], report: FilingReport) -> None:
        """Parse stored rows, with no transaction open, then file them in one."""
        if rows:
            self._write_all([self._parse(i, incoming) for i, incoming in rows], report)

    def _parse(self, feedback_id: int, incoming: Incoming) -> _Parsed:
        envelope = tuple(a for a in incoming.envelope_to if a)
        try:
            parsed = parse(incoming.raw, self.languages, envelope, self.limits)
        except ParseLimitError as exc:
            return self._unparsed(feedback_id, incoming, str(exc))
        except Exception as exc:  # kept raw and listed, never dropped
            return self._unparsed(feedback_id, incoming, f"could not be parsed: {exc!r}")
        return _Parsed(feedback_id, incoming, parsed)

    def _unparsed(self, feedback_id: int, incoming: Incoming, problem: str) -> _Parsed:
        log.warning("%s filed as other: %s", incoming.origin, problem)
        return _Parsed(feedback_id, incoming, None, _unfiled(incoming, problem))

    def _write_all(self, parsed: list[_Parsed], report: FilingReport) -> None:
        try:
            self._write(parsed, report)
        except Exception:  # one bad row (or a race) must not keep the rest unfiled
            for one in parsed:
                try:
                    self._write([one], report)
                except Exception as exc:
                    self._give_up(one.feedback_id, exc, report)

    def _write(self, parsed: list[_Parsed], report: FilingReport) -> None:
        """Link, classify, act and write, in one short transaction.

        Each row is claimed first (``kind`` set where it is still null), so two
        processes filing the same leftovers never act on one message twice.
        """
        batch = FilingReport()
        counted: Counted = {}  # bounced deliveries not yet written
        filed: list[dict[str, Any]] = []
        with self.db.transaction() as session:
            claimed = set(
                session.scalars(
                    update(Feedback)
                    .where(
                        Feedback.id.in_([one.feedback_id for one in parsed]),
                        Feedback.kind.is_(None),
                    )
                    .values(kind=Kind.other)
                    .returning(Feedback.id)
                )
            )
            for one in parsed:
                if one.feedback_id not in claimed:
                    continue  # filed meanwhile by another process
                if one.parsed is None:
                    assert one.unfiled is not None
                    values = one.unfiled
                    batch.unparsed += 1
                else:
                    try:
                        values = self._file_one(session, one.incoming, one.parsed, counted)
                    except Exception as exc:  # kept raw and listed, never dropped
                        values = _unfiled(one.incoming, f"could not be filed: {exc!r}")
                        batch.unparsed += 1
                filed.append({**values, "feedback_id": one.feedback_id})
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
                    .values(kind=Kind.other, problem=clean(f"could not be filed: {exc!r}")[:2000])
                )
        except Exception as again:  # stays stored and unfiled; the next run tries again
            log.error("could not mark feedback %d unfiled: %s", feedback_id, again)
            return
        report.unparsed += 1
        report.kinds[Kind.other] += 1

    def _file_one(
        self, session: Session, incoming: Incoming, parsed: Parsed, counted: Counted
    ) -> dict[str, Any]:
        """The parsed columns of one message (``_FILE``'s parameters), after its effects."""
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
        return {k: clean(v) if isinstance(v, str) else v for k, v in values.items()}


def _unfiled(incoming: Incoming, problem: str) -> dict[str, Any]:
    """The columns of a message filed as other, unparsed: why, and who sent what when."""
    try:
        head = headline(incoming.raw)
    except Exception:  # nothing more to show than the reason
        head = None
    values = {
        **_UNFILED,
        "b_kind": Kind.other,
        "b_problem": clean(problem)[:2000],
        "b_from_email": (head.from_email or "")[:320] or None if head else None,
        "b_from_name": (head.from_name or "")[:300] or None if head else None,
        "b_subject": head.subject if head else None,
        "b_sent_at": head.date if head else None,
    }
    return {k: clean(v) if isinstance(v, str) else v for k, v in values.items()}


def _began(mark: str | None) -> datetime | None:
    """When the parse that left this mark began; None if it is no mark of ours."""
    if not mark or not mark.startswith(_STARTED):
        return None
    try:
        return datetime.fromisoformat(mark.removeprefix(_STARTED))
    except ValueError:
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
