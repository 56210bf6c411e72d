"""CSV import and export of subscribers.

Import streams the file in batches, each committed whole or not at all, so a
million rows never sit in memory and an interrupted import leaves no half-written
batch. Every row ends up counted as added, updated, unchanged or rejected (with
its row number and reason); nothing in the file can make the importer crash.

Export writes cells a spreadsheet would run as a formula (``=``, ``+``, ``-``,
``@``, tab, carriage return at the start) with a leading apostrophe.
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import os
import re
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, insert, literal, null, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from subscribers.addresses import Address, parse_address, suppression_hash
from subscribers.audience import ConsentEvidence, Outcome, Stored, has_left_before, plan_join
from subscribers.db import Database
from subscribers.errors import AddressError, AudienceError, SuppressedError
from subscribers.models import (
    Base,
    ConsentMethod,
    Status,
    Subscriber,
    Suppression,
)

TABLES = Base.metadata.tables
#: What undecodable bytes (surrogate escapes) and NULs (replaced) become in a row.
_NOT_TEXT = re.compile("[\ufffd\udc80-\udcff]")
BATCH_ROWS = 2000
#: Rejections kept in memory for the report; all of them go to the rejects file.
REPORTED_REJECTIONS = 200
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

Progress = Callable[[int, int], None]  # (bytes read, rows done)


@dataclass(frozen=True)
class Rejection:
    row: int
    reason: str
    values: list[str]


@dataclass
class ImportReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    pending: int = 0  # new subscribers awaiting confirmation

    @property
    def rows(self) -> int:
        return self.added + self.updated + self.unchanged + self.rejected


def _lines(handle: IO[str]) -> Iterator[str]:
    for line in handle:
        yield line.replace("\0", "\ufffd")  # csv refuses NUL; the row is then rejected


def _delimiter(header_line: str) -> str:
    """The separator that makes the header name an 'email' column (',' ';' or tab)."""
    for candidate in (",", ";", "\t"):
        try:
            cells = next(csv.reader([header_line], delimiter=candidate), [])
        except csv.Error:
            continue
        if "email" in (cell.strip().lower() for cell in cells):
            return candidate
    return ","


def import_csv(
    db: Database,
    path: Path,
    now: Callable[[], datetime],
    *,
    confirmed: bool,
    rejects: IO[str] | None = None,
    progress: Progress | None = None,
    workers: int | None = None,
) -> ImportReport:
    """Import subscribers from ``path``; see the module docstring for the guarantees."""
    report = ImportReport()
    reject_writer = csv.writer(rejects) if rejects is not None else None
    try:
        raw = path.open("rb")
    except OSError as exc:
        raise AudienceError(f"cannot read {path}: {exc.strerror}") from exc
    with (
        raw,
        io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="") as text,
    ):
        delimiter = _delimiter(text.readline())
        text.seek(0)
        reader = csv.reader(_lines(text), delimiter=delimiter)
        try:
            header = [cell.strip().lower() for cell in next(reader)]
        except StopIteration:
            raise AudienceError(
                f"{path} is empty; it needs a header row with an 'email' column"
            ) from None
        except csv.Error as exc:
            raise AudienceError(f"{path}: the header row cannot be read: {exc}") from exc
        if "email" not in header:
            raise AudienceError(
                f"{path}: no 'email' column in the header ({', '.join(header) or 'empty'}); "
                "the first row must name the columns, e.g. email,name"
            )
        if reject_writer is not None:
            reject_writer.writerow(["row", "reason", *header])
        batches = _batches(reader, raw, report, reject_writer)
        parallel = workers if workers is not None else _default_workers(path)
        for position, checked in _checked(batches, header, parallel):
            _import_batch(db, checked, header, now(), confirmed, report, reject_writer)
            if progress is not None:
                progress(position, report.rows)
    return report


#: Files larger than this have their rows checked in a second process.
PARALLEL_FROM_BYTES = 1_000_000


def _default_workers(path: Path) -> int:
    big = path.stat().st_size >= PARALLEL_FROM_BYTES
    return 1 if big and (os.cpu_count() or 1) > 1 else 0


_Batch = list[tuple[int, list[str]]]
_Checked = list[tuple[int, list[str], Address | None, str]]


def _batches(
    reader: Iterator[list[str]], raw: IO[bytes], report: ImportReport, reject_writer: Any
) -> Iterator[tuple[int, _Batch]]:
    """Rows in batches of ``BATCH_ROWS``, each with how far into the file it ends."""
    batch: _Batch = []
    row_number = 1
    while True:
        row_number += 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            _reject(report, reject_writer, Rejection(row_number, f"unreadable row: {exc}", []))
            continue
        if not any(cell.strip() for cell in cells):
            continue
        batch.append((row_number, cells))
        if len(batch) >= BATCH_ROWS:
            yield raw.tell(), batch
            batch = []
    if batch:
        yield raw.tell(), batch


def _checked(
    batches: Iterator[tuple[int, _Batch]], header: list[str], workers: int
) -> Iterator[tuple[int, _Checked]]:
    """Batches with every row's cells and address checked, in file order.

    Validating addresses is half the work of an import; with ``workers`` it runs
    in other processes while this one writes to the database. At most two batches
    per worker are in flight, so memory stays flat however long the file is.
    """
    if workers < 1:
        for position, batch in batches:
            yield position, check_rows(batch, header)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        in_flight: deque[tuple[int, Future[_Checked]]] = deque()
        for position, batch in batches:
            in_flight.append((position, pool.submit(check_rows, batch, header)))
            if len(in_flight) > 2 * workers:
                done_position, future = in_flight.popleft()
                yield done_position, future.result()
        while in_flight:
            done_position, future = in_flight.popleft()
            yield done_position, future.result()


def check_rows(batch: _Batch, header: list[str]) -> _Checked:
    """Each row's trimmed cells with its address, or None and why it is rejected."""
    checked: _Checked = []
    email_at = header.index("email")
    for number, cells in batch:
        values = [cell.strip() for cell in cells]
        if len(values) != len(header):
            checked.append((number, values, None, _cell_count(len(values), len(header))))
            continue
        if any(_NOT_TEXT.search(v) for v in values):
            checked.append((number, values, None, "the row is not valid UTF-8 text"))
            continue
        try:
            checked.append((number, values, parse_address(values[email_at]), ""))
        except AddressError as exc:
            checked.append((number, values, None, str(exc)))
    return checked


def _reject(report: ImportReport, writer: Any, rejection: Rejection) -> None:
    report.rejected += 1
    if len(report.rejections) < REPORTED_REJECTIONS:
        report.rejections.append(rejection)
    if writer is not None:
        writer.writerow([rejection.row, rejection.reason, *rejection.values])


@dataclass
class _Row:
    """One address's state within a batch: what is stored, as rows change it."""

    key: str
    typed: str
    stored: Stored | None
    subscriber_id: int | None
    is_new: bool = False
    dirty: bool = False
    needs_confirmation: bool = False
    changes: list[tuple[Status | None, Status, str]] = field(default_factory=list)
    consents: list[bool] = field(default_factory=list)  # confirmed?


def _import_batch(
    db: Database,
    parsed: _Checked,
    header: list[str],
    now: datetime,
    confirmed: bool,
    report: ImportReport,
    reject_writer: Any,
) -> None:
    """One transaction for the batch; counts are applied only once it has committed.

    The batch is decided in memory with the same rules as ``audience.join`` (rows in
    file order, so a later duplicate sees what an earlier one did), from one query
    for the stored addresses and one for suppressions, then written with bulk
    statements. A concurrent writer adding the same address makes the batch retry.
    """
    evidence = ConsentEvidence(ConsentMethod.import_, form_version="csv import")
    for attempt in range(_RETRIES):
        try:
            outcome = _write_batch(db, parsed, header, now, confirmed, evidence)
            break
        except IntegrityError:
            if attempt == _RETRIES - 1:
                raise
    counts, rejected, pending = outcome
    report.added += counts[Outcome.added]
    report.updated += counts[Outcome.updated]
    report.unchanged += counts[Outcome.unchanged]
    report.pending += pending
    for rejection in rejected:
        _reject(report, reject_writer, rejection)


_RETRIES = 3


def _write_batch(
    db: Database,
    parsed: list[tuple[int, list[str], Address | None, str]],
    header: list[str],
    now: datetime,
    confirmed: bool,
    evidence: ConsentEvidence,
) -> tuple[dict[Outcome, int], list[Rejection], int]:
    counts = {Outcome.added: 0, Outcome.updated: 0, Outcome.unchanged: 0}
    rejected: list[Rejection] = []
    keys = {address.key for _, _, address, _ in parsed if address is not None}
    with db.transaction() as session:
        state: dict[str, _Row] = {}
        suppressed: set[str] = set()
        if keys:
            for found in session.execute(
                select(
                    Subscriber.id,
                    Subscriber.email_key,
                    Subscriber.email,
                    Subscriber.name,
                    Subscriber.status,
                    Subscriber.attributes,
                    Subscriber.status_changed_at,
                ).where(Subscriber.email_key.in_(keys))
            ):
                stored = Stored(
                    found.email, found.name, found.status, found.attributes, found.status_changed_at
                )
                state[found.email_key] = _Row(found.email_key, found.email, stored, found.id)
            waiting = {
                entry.subscriber_id: entry
                for entry in state.values()
                if entry.subscriber_id is not None
                and entry.stored is not None
                and entry.stored.status is Status.pending
            }
            for left in has_left_before(session, list(waiting)):
                entry = waiting[left]
                if entry.stored is not None:
                    entry.stored = replace(entry.stored, left_before=True)
            hashes = {suppression_hash(key): key for key in keys}
            suppressed = {
                hashes[digest]
                for digest in session.scalars(
                    select(Suppression.email_hash).where(Suppression.email_hash.in_(hashes))
                )
            }
        for number, values, address, reason in parsed:
            if address is None:
                rejected.append(Rejection(number, reason, values))
                continue
            row = dict(zip(header, values, strict=True))
            current = state.get(address.key)
            try:
                plan = plan_join(
                    current.stored if current else None,
                    address,
                    evidence,
                    suppressed=address.key in suppressed,
                    name=row.get("name") or None,
                    confirmed=confirmed,
                    attributes={k: v for k, v in row.items() if k not in ("email", "name") and v},
                )
            except (AddressError, SuppressedError) as exc:
                rejected.append(Rejection(number, str(exc), values))
                continue
            counts[plan.outcome] += 1
            if current is None:
                current = state[address.key] = _Row(address.key, address.typed, None, None, True)
            old = current.stored
            if plan.status_reason is not None:
                current.changes.append(
                    (old.status if old else None, plan.status, plan.status_reason)
                )
            if plan.consent:
                current.consents.append(plan.consent_confirmed)
            current.dirty = current.dirty or plan.outcome is not Outcome.unchanged
            current.needs_confirmation = plan.needs_confirmation
            current.stored = Stored(
                current.typed,
                plan.name,
                plan.status,
                plan.attributes,
                now if plan.status_reason is not None else old.status_changed_at if old else now,
                old.left_before if old else False,
            )
        pending = _flush(session, state, now, evidence)
    return counts, rejected, pending


def _flush(
    session: Session, state: dict[str, _Row], now: datetime, evidence: ConsentEvidence
) -> int:
    """Write the batch's new and changed subscribers with bulk statements.

    A new subscriber's first status change and consent are copied from its
    inserted row by ``INSERT … SELECT``, one statement for each kind of new row;
    anything else is written row by row in one ``executemany``.
    """
    connection = session.connection()
    subscribers = TABLES["subscribers"]
    new = [row for row in state.values() if row.is_new and row.stored is not None]
    if new:
        connection.execute(
            insert(subscribers),
            [
                {
                    "email": row.typed,
                    "email_key": row.key,
                    "name": row.stored.name,
                    "status": row.stored.status,
                    "attributes": row.stored.attributes,
                    "created_at": now,
                    "status_changed_at": now,
                }
                for row in new
                if row.stored is not None
            ],
        )
    simple: dict[tuple[Status, str, bool], list[str]] = {}
    for row in new:
        if len(row.changes) == 1 and len(row.consents) == 1 and row.changes[0][0] is None:
            _, status, why = row.changes.pop()
            simple.setdefault((status, why, row.consents.pop()), []).append(row.key)
    for (status, why, confirmed_now), keys in simple.items():
        _copy_first_records(connection, keys, status, why, confirmed_now, now, evidence)
    leftover = [row for row in new if row.changes or row.consents]
    if leftover:
        for subscriber_id, key in connection.execute(
            select(subscribers.c.id, subscribers.c.email_key).where(
                subscribers.c.email_key.in_([row.key for row in leftover])
            )
        ):
            state[key].subscriber_id = subscriber_id
    changed = [
        {
            "id": row.subscriber_id,
            "name": row.stored.name,
            "status": row.stored.status,
            "attributes": row.stored.attributes,
            "status_changed_at": row.stored.status_changed_at,
        }
        for row in state.values()
        if row.dirty and row.stored is not None and not row.is_new
    ]
    if changed:
        session.execute(update(Subscriber), changed)
    changes = [
        {"subscriber_id": row.subscriber_id, "at": now, "old": old, "new": status, "reason": why}
        for row in state.values()
        for old, status, why in row.changes
    ]
    if changes:
        connection.execute(insert(TABLES["status_changes"]), changes)
    consents = [
        {
            "subscriber_id": row.subscriber_id,
            "at": now,
            "method": evidence.method.value,
            "form_version": evidence.form_version,
            "confirmed_at": now if confirmed_now else None,
        }
        for row in state.values()
        for confirmed_now in row.consents
    ]
    if consents:
        connection.execute(insert(TABLES["consents"]), consents)
    return sum(1 for row in new if row.stored is not None and row.stored.status is Status.pending)


def _copy_first_records(
    connection: Connection,
    keys: list[str],
    status: Status,
    why: str,
    confirmed_now: bool,
    now: datetime,
    evidence: ConsentEvidence,
) -> None:
    """The first status change and consent of just-inserted subscribers, in two statements."""
    subscribers = TABLES["subscribers"]
    ids = select(subscribers.c.id).where(subscribers.c.email_key.in_(keys))
    changes = TABLES["status_changes"]
    connection.execute(
        insert(changes).from_select(
            ["subscriber_id", "at", "old", "new", "reason"],
            ids.add_columns(
                literal(now, changes.c.at.type),
                null(),
                literal(status, changes.c.new.type),
                literal(why, changes.c.reason.type),
            ),
        )
    )
    consents = TABLES["consents"]
    connection.execute(
        insert(consents).from_select(
            ["subscriber_id", "at", "method", "form_version", "confirmed_at"],
            ids.add_columns(
                literal(now, consents.c.at.type),
                literal(evidence.method.value, consents.c.method.type),
                literal(evidence.form_version, consents.c.form_version.type),
                literal(now, consents.c.confirmed_at.type) if confirmed_now else null(),
            ),
        )
    )


def _cell_count(found: int, expected: int) -> str:
    return f"{found} cell{'' if found == 1 else 's'} where the header has {expected}"


def safe_cell(value: str) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula."""
    return "'" + value if value.startswith(_FORMULA_START) else value


EXPORT_COLUMNS = ("email", "name", "status", "created_at", "status_changed_at", "attributes")


def export_csv(session: Session, out: IO[str], status: Status | None = None) -> int:
    """Write subscribers as CSV, streamed from the database; returns the count."""
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    query = select(Subscriber).order_by(Subscriber.id).execution_options(yield_per=1000)
    if status is not None:
        query = query.where(Subscriber.status == status)
    count = 0
    for subscriber in session.scalars(query):
        writer.writerow(
            [
                safe_cell(subscriber.email),
                safe_cell(subscriber.name or ""),
                subscriber.status.value,
                subscriber.created_at.isoformat(),
                subscriber.status_changed_at.isoformat(),
                safe_cell(json.dumps(subscriber.attributes, ensure_ascii=False))
                if subscriber.attributes
                else "",
            ]
        )
        count += 1
    return count
