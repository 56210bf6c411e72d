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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from subscribers.addresses import parse_address
from subscribers.audience import ConsentEvidence, Outcome, join
from subscribers.db import Database
from subscribers.errors import AddressError, AudienceError, SuppressedError
from subscribers.models import ConsentMethod, Status, Subscriber

BATCH_ROWS = 1000
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
    pending: list[int] = field(default_factory=list)  # subscriber ids needing a confirmation

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
        batch: list[tuple[int, list[str]]] = []
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
                _import_batch(db, batch, header, now(), confirmed, report, reject_writer)
                batch = []
                if progress is not None:
                    progress(raw.tell(), report.rows)
        if batch:
            _import_batch(db, batch, header, now(), confirmed, report, reject_writer)
        if progress is not None:
            progress(raw.tell(), report.rows)
    return report


def _reject(report: ImportReport, writer: Any, rejection: Rejection) -> None:
    report.rejected += 1
    if len(report.rejections) < REPORTED_REJECTIONS:
        report.rejections.append(rejection)
    if writer is not None:
        writer.writerow([rejection.row, rejection.reason, *rejection.values])


def _import_batch(
    db: Database,
    batch: list[tuple[int, list[str]]],
    header: list[str],
    now: datetime,
    confirmed: bool,
    report: ImportReport,
    reject_writer: Any,
) -> None:
    """One transaction for the batch; counts are applied only once it has committed."""
    evidence = ConsentEvidence(ConsentMethod.import_, form_version="csv import")
    counts = {Outcome.added: 0, Outcome.updated: 0, Outcome.unchanged: 0}
    rejected: list[Rejection] = []
    pending: list[Subscriber] = []
    email_at = header.index("email")
    with db.transaction() as session:
        for number, cells in batch:
            values = [cell.strip() for cell in cells]
            if len(values) != len(header):
                rejected.append(Rejection(number, _cell_count(len(values), len(header)), values))
                continue
            row = dict(zip(header, values, strict=True))
            try:
                if any("\ufffd" in v or _has_surrogates(v) for v in values):
                    raise AddressError("the row is not valid UTF-8 text")
                address = parse_address(values[email_at])
                attributes = {k: v for k, v in row.items() if k not in ("email", "name") and v}
                with session.begin_nested():
                    joined = join(
                        session,
                        address,
                        now,
                        evidence,
                        name=row.get("name") or None,
                        confirmed=confirmed,
                        attributes=attributes,
                    )
            except (AddressError, SuppressedError) as exc:
                rejected.append(Rejection(number, str(exc), values))
                continue
            counts[joined.outcome] += 1
            if joined.needs_confirmation and joined.outcome is Outcome.added:
                pending.append(joined.subscriber)
        session.flush()
        pending_ids = [s.id for s in pending]
    report.added += counts[Outcome.added]
    report.updated += counts[Outcome.updated]
    report.unchanged += counts[Outcome.unchanged]
    report.pending.extend(pending_ids)
    for rejection in rejected:
        _reject(report, reject_writer, rejection)


def _cell_count(found: int, expected: int) -> str:
    return f"{found} cell{'' if found == 1 else 's'} where the header has {expected}"


def _has_surrogates(value: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in value)


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
