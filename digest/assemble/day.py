"""THE edition of a day: its file, plus queued reads and feed reads, deduplicated and capped.

Every path that shows, checks, tests, freezes or sends an edition gets it from here
(``digest preview``, ``check``, ``send --to``, ``send``, ``schedule``, the daily draft
and send, and the web editor), so what an editor approves is what goes out. The file
is read once: the edition is parsed from the same text whose hash the ledger stores.

The file's own reads come first, then queued reads (oldest first), then feed entries
newer than the previous edition; links recommended in the last ``dedupe_days`` days
are dropped, and at most ``max_reads`` are kept (the choice itself is pure:
``digest.assemble.choose``).

Unlike ``edition`` and ``render``, this step is at the edge: it reads the edition file,
the database and the feeds.

An edition whose file still holds the sample text of ``digest new``'s skeleton
(``digest.edition.skeleton``) is assembled but cannot go out: ``edition`` is None and
``require`` raises an ``EditionError`` naming each such line, so ``check`` and every
send path refuse it; ``preview`` shows it (``for_preview``) with a warning.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.assemble.choose import choose_with_origin
from digest.assemble.feeds import Fetch, feed_reads, fetch
from digest.assemble.queue import QueuedRead, recently_recommended
from digest.edition.files import resolve_source
from digest.edition.model import Edition, Read
from digest.edition.parse import normalised, parse_edition, read_edition_text
from digest.edition.skeleton import skeleton_problems
from digest.errors import DigestError, EditionError, Problem, ReadError
from digest.ledger.models import FrozenEdition
from digest.settings import ReadsSettings, Settings
from subscribers.db import Database

#: Where a read came from, as ``digest check`` tells it.
FROM_FILE = "file"
FROM_QUEUE = "queue"
FROM_FEED = "feed"


@dataclass(frozen=True)
class Gathered:
    reads: list[Read]
    problems: list[str]  # feeds that failed, said so the editors can act
    origins: list[str] = field(default_factory=list)  # beside each read: file, queue, feed URL


@dataclass(frozen=True)
class Assembled:
    """The edition of ``day`` as it would go out now, or why none can."""

    day: date
    path: Path
    edition: Edition | None  # None: nothing can be sent, see ``reason``
    reason: str | None = None
    problems: list[str] = field(default_factory=list)  # worth telling editors, not fatal
    text: str = ""  # the file's text the edition was parsed from
    origins: tuple[str, ...] = ()  # beside each of edition.reads: "file", "queue" or "feed URL"
    error: DigestError | None = None  # what ``require`` raises when there is no edition
    file_reads: tuple[Read, ...] = ()  # the reads written in the file, before the choice
    skeleton: tuple[Problem, ...] = ()  # lines still holding `digest new`'s sample text
    draft: Edition | None = None  # the edition with its reads, even when it can't go out

    @property
    def sha256(self) -> str:
        """The hash the ledger stores: of the very text that was parsed."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def require(self) -> Edition:
        """The edition, or the error that says why there is none (for the CLI)."""
        if self.edition is not None:
            return self.edition
        raise self.error or DigestError(self.reason or "the edition cannot be assembled")

    def for_preview(self) -> Edition:
        """The edition to show, even one still holding sample text (see ``skeleton``)."""
        return self.draft or self.require()

    def file_edition(self) -> Edition:
        """The edition as written in its file, before queued and feed reads were added."""
        return replace(self.require(), reads=self.file_reads)


def edition_path(settings: Settings, day: date) -> Path:
    return settings.editions_dir / f"{day.isoformat()}.md"


def last_sent_at(session: Session, before: date) -> datetime | None:
    """When the previous edition was frozen: feed entries older than that were seen."""
    return session.scalar(
        select(FrozenEdition.frozen_at)
        .where(FrozenEdition.date < before)
        .order_by(FrozenEdition.date.desc(), FrozenEdition.version.desc())
        .limit(1)
    )


def gather(
    db: Database,
    settings: ReadsSettings,
    day: date,
    now: datetime,
    *,
    written: tuple[Read, ...] | list[Read] = (),
    since: datetime | None = None,
    since_last_edition: bool = False,
    get: Fetch = fetch,
) -> Gathered:
    """The reads the edition of ``day`` will carry, where each came from, and what failed.

    The queue is read in one short transaction; the feeds are fetched with none open,
    so a slow feed never keeps SQLite's write lock (and the sign-up form) waiting.
    ``since_last_edition``: take feed entries newer than the previous edition's freeze.
    """
    with db.transaction() as session:
        queued = [
            row.as_read()
            for row in session.scalars(
                select(QueuedRead).where(QueuedRead.used_on.is_(None)).order_by(QueuedRead.added_at)
            )
        ]
        recently = recently_recommended(session, day - timedelta(days=settings.dedupe_days))
        if since_last_edition:
            since = last_sent_at(session, day)
    problems: list[str] = []
    candidates = [(read, FROM_FILE) for read in written]
    candidates += [(read, FROM_QUEUE) for read in queued]
    for url in settings.feeds:
        try:
            result = feed_reads(url, since, settings.fetch_timeout_seconds, get)
        except ReadError as exc:
            problems.append(str(exc))
            continue
        if result.warning:
            problems.append(result.warning)
        candidates += [(read, f"{FROM_FEED} {url}") for read in result.reads]
    chosen = choose_with_origin(candidates, recently, settings.max_reads)
    return Gathered([r for r, _ in chosen], problems, [o for _, o in chosen])


def assemble(
    db: Database,
    settings: Settings,
    day: date,
    now: datetime,
    get: Fetch = fetch,
    *,
    path: Path | None = None,
) -> Assembled:
    """The edition of ``day`` (from ``path``, by default the day's file in the editions folder)."""
    path = path or edition_path(settings, day)
    if not path.is_file():
        reason = (
            f"there is no edition file for {day.isoformat()}: {path} does not exist "
            f"(`digest new {day.isoformat()}` writes one to fill in)"
        )
        return Assembled(day, path, None, reason)
    try:
        text = read_edition_text(path)
        edition = _parse(text, path)
    except EditionError as exc:
        return Assembled(day, path, None, f"{path} is not a valid edition:\n{exc}", error=exc)
    return _with_reads(db, settings, path, edition, text, now, get)


def _parse(text: str, path: Path) -> Edition:
    """Parse ``text``; an invalid file's problems include its lines of sample text."""
    try:
        return parse_edition(text, path)
    except EditionError as exc:
        raise EditionError(exc.problems + skeleton_problems(normalised(text), path)) from exc


def _with_reads(
    db: Database,
    settings: Settings,
    path: Path,
    edition: Edition,
    text: str,
    now: datetime,
    get: Fetch,
) -> Assembled:
    gathered = gather(
        db,
        settings.reads,
        edition.date,
        now,
        written=edition.reads,
        since_last_edition=True,
        get=get,
    )
    full = replace(edition, reads=tuple(gathered.reads))
    skeleton = tuple(skeleton_problems(normalised(text), path))
    error = EditionError(list(skeleton)) if skeleton else None
    return Assembled(
        edition.date,
        path,
        None if skeleton else full,
        f"{path} still holds sample text; it is not sent:\n{error}" if error else None,
        gathered.problems,
        text,
        tuple(gathered.origins),
        error,
        file_reads=edition.reads,
        skeleton=skeleton,
        draft=full,
    )


def assemble_source(
    db: Database, settings: Settings, source: str, now: datetime, get: Fetch = fetch
) -> Assembled:
    """The edition a SOURCE names (a date or a file), for the CLI: errors are raised.

    A file outside the editions folder is taken as it is, its date from its front matter.
    """
    path = resolve_source(source, settings.editions_dir)
    text = read_edition_text(path)
    edition = _parse(text, path)
    return _with_reads(db, settings, path, edition, text, now, get)
