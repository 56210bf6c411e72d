"""CSV import of subscribers: reading, checking and counting the rows of a file.

Import streams the file in batches, each committed whole or not at all, so a
million rows never sit in memory and an interrupted import leaves no half-written
batch. Every row ends up counted as added, updated, unchanged or rejected (with
its row number and reason); nothing in the file can make the importer crash.
Reading and checking the rows happens here; writing a checked batch, with the
rules of ``audience.join``, is ``subscribers.bulk_join``.

A row the reader cannot get past safely (longer than ``MAX_ROW_CHARS``, more
than ``MAX_CELLS`` cells, unreadable as CSV: see ``subscribers.csv_rows``) stops
the import with ``ImportStoppedError`` naming the row and its line. Nothing is
lost and nothing is guessed: every row before it is imported (the batches before
it committed, and the rows of its own batch too), nothing from it on; after
correcting the file, importing it again finishes the job (rows already imported
count as unchanged). Skipping the row instead would mean guessing where the next
one begins, and a guess inside a quoted cell imports the cell's text as rows.

The file's character encoding is told by ``subscribers.csv_encoding`` (a BOM, or
a sample) before any row is read, and named in the report; a file no encoding
fits is refused at once. An address that comes again later in the same file
(in any letter case) is rejected as a duplicate, so the first row wins and
importing a file twice changes nothing. What is remembered of each address is a
64-bit hash of its normalised form, a few dozen bytes an address.
"""

from __future__ import annotations

import csv
import ctypes
import gc
import io
import multiprocessing
import os
import re
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy.exc import IntegrityError

from subscribers.addresses import parse_address
from subscribers.audience import ConsentEvidence, Outcome
from subscribers.bulk_join import Checked, Rejection, write_batch
from subscribers.csv_encoding import UTF8, detect
from subscribers.csv_export import safe_cell
from subscribers.csv_rows import RowError, Rows, header_line
from subscribers.db import Database
from subscribers.errors import AddressError, AudienceError, ImportStoppedError
from subscribers.models import ConsentMethod

__all__ = [
    "BATCH_CHARS",
    "BATCH_ROWS",
    "ImportReport",
    "ImportStoppedError",
    "Rejection",
    "check_rows",
    "import_csv",
]

#: What undecodable bytes (surrogate escapes) and NULs (replaced) become in a row.
_NOT_TEXT = re.compile("[\ufffd\udc80-\udcff]")
BATCH_ROWS = 2000
#: A batch also ends once its rows hold this many characters, so a file of long
#: rows keeps as little in memory (and in flight to a checking process) as short ones.
BATCH_CHARS = 1_048_576
#: Rejections kept in memory for the report; all of them go to the rejects file.
REPORTED_REJECTIONS = 200

Progress = Callable[[int, int], None]  # (bytes read, rows done)


@dataclass
class ImportReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    pending: int = 0  # new subscribers awaiting confirmation
    duplicates: int = 0  # of the rejected: an address an earlier row of the file has
    encoding: str = ""  # how the file was read, e.g. "Windows-1252 (detected)"

    @property
    def rows(self) -> int:
        return self.added + self.updated + self.unchanged + self.rejected


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
    try:
        encoding = detect(raw, str(path))
    except BaseException:
        raw.close()
        raise
    report.encoding = str(encoding)
    with (
        raw,
        io.TextIOWrapper(raw, encoding=encoding.codec, errors=encoding.errors, newline="") as text,
        _fewer_collections(),
    ):
        try:
            delimiter = _delimiter(header_line(text))
            text.seek(0)
            reader = Rows(text, delimiter)
            header = [cell.strip().lower() for cell in next(reader)]
        except StopIteration:
            raise AudienceError(
                f"{path} is empty; it needs a header row with an 'email' column"
            ) from None
        except RowError as exc:
            raise AudienceError(f"{path}: the header row {exc.reason}") from exc
        if "email" not in header:
            raise AudienceError(
                f"{path}: no 'email' column in the header ({', '.join(header) or 'empty'}); "
                "the first row must name the columns, e.g. email,name"
            )
        if reject_writer is not None:
            reject_writer.writerow(["row", "reason", *map(safe_cell, header)])
        stop: list[tuple[int, RowError]] = []
        batches = _batches(reader, raw, stop)
        parallel = workers if workers is not None else _default_workers(path)
        seen: set[int] = set()
        for position, checked in _checked(batches, header, encoding.name, parallel):
            _drop_duplicates(checked, seen, report)
            _import_batch(db, checked, header, now(), confirmed, report, reject_writer)
            if progress is not None:
                progress(position, report.rows)
    if stop:
        row, error = stop[0]
        raise ImportStoppedError(_stopped(path, row, error, report), report)
    return report


#: Allocations between the garbage collector's youngest collections during an import.
_YOUNG_THRESHOLD = 10_000


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Keep the garbage collector from rescanning what was there before the import.

    An import allocates a few objects for each row, each batch's gone once it is
    written, so the collector runs every few hundred rows, and its full collections
    walk every object of the process (SQLAlchemy's, the modules'): a quarter of the
    import's CPU time. Here what exists at the start is set aside (``gc.freeze``)
    and the youngest generation collected less often; both undone at the end. A caller
    that froze objects itself keeps them frozen: then nothing is frozen or thawed here.
    """
    thresholds = gc.get_threshold()
    ours = gc.get_freeze_count() == 0  # unfreeze() would thaw the caller's too
    if ours:
        gc.freeze()
    gc.set_threshold(_YOUNG_THRESHOLD, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        if ours:
            gc.unfreeze()


def _stopped(path: Path, row: int, error: RowError, report: ImportReport) -> str:
    return (
        f"{path}: row {row:,} (line {error.line:,}) {error.reason}. The import stopped at "
        f"that row: nothing from it on was imported, the rows before it were "
        f"({report.added:,} added, {report.updated:,} updated, {report.unchanged:,} unchanged, "
        f"{report.rejected:,} rejected). Correct that row and import the file again; rows "
        "already imported count as unchanged."
    )


#: Files larger than this have their rows checked in a second process.
PARALLEL_FROM_BYTES = 1_000_000


def _default_workers(path: Path) -> int:
    big = path.stat().st_size >= PARALLEL_FROM_BYTES
    return 1 if big and (os.cpu_count() or 1) > 1 else 0


_Batch = list[tuple[int, list[str]]]


def _batches(
    reader: Rows, raw: IO[bytes], stop: list[tuple[int, RowError]]
) -> Iterator[tuple[int, _Batch]]:
    """Rows in batches of ``BATCH_ROWS`` (or ``BATCH_CHARS``), each with how far into the
    file it ends. At a row that cannot be read safely, the rows before it are yielded and
    the row number and error put in ``stop``: the caller stops after importing them.
    """
    batch: _Batch = []
    chars = 0
    row_number = 1
    while True:
        row_number += 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except RowError as exc:
            stop.append((row_number, exc))
            break
        if not any(cell.strip() for cell in cells):
            continue
        batch.append((row_number, cells))
        chars += reader.chars
        if len(batch) >= BATCH_ROWS or chars >= BATCH_CHARS:
            yield raw.tell(), batch
            batch = []
            chars = 0
    if batch:
        yield raw.tell(), batch


def _checked(
    batches: Iterator[tuple[int, _Batch]], header: list[str], encoding: str, workers: int
) -> Iterator[tuple[int, Checked]]:
    """Batches with every row's cells and address checked, in file order.

    Validating addresses is half the work of an import; with ``workers`` it runs
    in other processes while this one writes to the database. At most two batches
    per worker are in flight, so memory stays flat however long the file is.
    """
    if workers < 1:
        for position, batch in batches:
            yield position, check_rows(batch, header, encoding)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=die_with_parent, initargs=(os.getpid(),)
    ) as pool:
        in_flight: deque[tuple[int, Future[Checked]]] = deque()
        for position, batch in batches:
            in_flight.append((position, pool.submit(check_rows, batch, header, encoding)))
            if len(in_flight) > 2 * workers:
                done_position, future = in_flight.popleft()
                yield done_position, future.result()
        while in_flight:
            done_position, future = in_flight.popleft()
            yield done_position, future.result()


#: prctl(2) option: the signal the kernel sends this process when its parent ends.
_PR_SET_PDEATHSIG = 1
#: How often a worker looks whether its parent is still there, where prctl is missing.
_PARENT_CHECK_SECONDS = 0.5


def die_with_parent(parent: int) -> None:
    """A worker's initializer: end when the importing process ends, however it ends.

    Workers wait for batches on a queue they hold both ends of, so a parent killed
    with SIGKILL leaves them (and multiprocessing's resource tracker, which waits for
    them) waiting for ever. On Linux the kernel kills the worker when the parent ends
    (``PR_SET_PDEATHSIG``); everywhere, a thread checks the parent every half second.
    A parent gone before either was in place is caught by the first check here.
    """
    if sys.platform == "linux":
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no prctl: the thread below does the job
            pass
    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(_PARENT_CHECK_SECONDS)
        if os.getppid() != parent:  # orphaned: adopted by init or a subreaper
            os._exit(1)


def check_rows(batch: _Batch, header: list[str], encoding: str = UTF8.name) -> Checked:
    """Each row's trimmed cells with its address, or None and why it is rejected;
    ``encoding`` names what the file was read as, for rows that are not valid in it."""
    checked: Checked = []
    email_at = header.index("email")
    for number, cells in batch:
        values = [cell.strip() for cell in cells]
        if len(values) != len(header):
            checked.append((number, values, None, _cell_count(len(values), len(header))))
            continue
        if _NOT_TEXT.search("\n".join(values)):  # one search for the whole row
            checked.append((number, values, None, f"the row is not valid {encoding} text"))
            continue
        try:
            checked.append((number, values, parse_address(values[email_at]), ""))
        except AddressError as exc:
            checked.append((number, values, None, str(exc)))
    return checked


def _drop_duplicates(checked: Checked, seen: set[int], report: ImportReport) -> None:
    """Turn each row whose address an earlier row of the file had into a rejection.

    ``seen`` holds the built-in hash of each normalised address so far: 64 bits, so
    two different addresses in a file of ten million rows collide with a chance of
    about one in 400,000 (the later row would be reported as a duplicate).
    """
    for at, (number, values, address, _) in enumerate(checked):
        if address is None:
            continue
        digest = hash(address.key)
        if digest in seen:
            checked[at] = (number, values, None, _DUPLICATE.format(address.typed))
            report.duplicates += 1
        else:
            seen.add(digest)


_DUPLICATE = (
    "{!r} is a duplicate: an earlier row of this file has the same address "
    "(the first one is imported)"
)


def _reject(report: ImportReport, writer: Any, rejection: Rejection) -> None:
    report.rejected += 1
    if len(report.rejections) < REPORTED_REJECTIONS:
        report.rejections.append(rejection)
    if writer is not None:
        writer.writerow([rejection.row, *map(safe_cell, [rejection.reason, *rejection.values])])


def _import_batch(
    db: Database,
    parsed: Checked,
    header: list[str],
    now: datetime,
    confirmed: bool,
    report: ImportReport,
    reject_writer: Any,
) -> None:
    """One transaction for the batch (``bulk_join.write_batch``); counts are applied
    only once it has committed. A concurrent writer adding the same address makes the
    batch retry.
    """
    evidence = ConsentEvidence(ConsentMethod.import_, form_version="csv import")
    for attempt in range(_RETRIES):
        try:
            outcome = write_batch(db, parsed, header, now, confirmed, evidence)
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


def _cell_count(found: int, expected: int) -> str:
    return f"{found} cell{'' if found == 1 else 's'} where the header has {expected}"
