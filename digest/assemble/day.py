"""The day's edition from what editors and sources provided since the last one.

The edition file for the day gives the title, dek and sections (and any reads the
editor wrote in); queued reads and feed entries are added, links recommended in
the last month dropped, and the reads capped. Nothing is sent from here: the
result says what would go out, or why nothing can.

Unlike content and render, this step is at the edge: it reads the edition file,
the database and the feeds. The choice of reads itself is pure
(``digest.assemble.reads.choose``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.assemble.reads import Fetch, fetch, gather
from digest.edition.model import Edition
from digest.edition.parse import load_edition
from digest.errors import EditionError
from digest.ledger import FrozenEdition
from digest.settings import Settings


@dataclass(frozen=True)
class Assembled:
    day: date
    path: Path
    edition: Edition | None  # None: nothing can be sent, see ``reason``
    reason: str | None = None
    problems: list[str] = field(default_factory=list)  # worth telling editors, not fatal


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


def assemble(
    session: Session, settings: Settings, day: date, now: datetime, get: Fetch = fetch
) -> Assembled:
    path = edition_path(settings, day)
    if not path.is_file():
        return Assembled(
            day,
            path,
            None,
            f"there is no edition file for {day.isoformat()}: {path} does not exist "
            f"(`digest new {day.isoformat()}` writes one to fill in)",
        )
    try:
        edition = load_edition(path)
    except EditionError as exc:
        return Assembled(day, path, None, f"{path} is not a valid edition:\n{exc}")
    since = last_sent_at(session, day)
    gathered = gather(
        session, settings.reads, day, now, written=edition.reads, since=since, get=get
    )
    return Assembled(
        day, path, replace(edition, reads=tuple(gathered.reads)), None, gathered.problems
    )
