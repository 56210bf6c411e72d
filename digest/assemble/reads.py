"""Recommended reads: queued by editors, gathered from feeds, never repeated within a month.

A read is *queued* (``digest reads add``, or an entry of a configured feed) until an
edition carries it; then it is marked with that edition's date (``used_on``), as
are the reads written into edition files, so "recommended in the last 30 days"
is one indexed query. Links are compared normalised: scheme and host case, a
trailing slash and ``utm_*`` parameters don't make a link new.
"""

from __future__ import annotations

import calendar
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import feedparser
import lxml.html
from sqlalchemy import Date, Index, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from digest.edition.model import Read
from digest.errors import ReadError
from digest.render.check import normalise_url
from digest.settings import ReadsSettings
from subscribers.models import Base, UTCDateTime

MAX_PAGE_BYTES = 1_000_000
USER_AGENT = "digest-publisher (reads fetcher)"


class QueuedRead(Base):
    __tablename__ = "reads"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    url_key: Mapped[str] = mapped_column(String(2048))
    title: Mapped[str] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    origin: Mapped[str] = mapped_column(String(300))  # "editor", "edition file" or a feed URL
    added_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_on: Mapped[date | None] = mapped_column(Date)

    __table_args__ = (
        Index("ix_reads_url_key", "url_key"),
        Index("ix_reads_used_on", "used_on"),
    )

    def as_read(self) -> Read:
        return Read(title=self.title, url=self.url, source=self.source, note=self.note)


Fetch = Callable[[str, float], bytes]


def fetch(url: str, timeout: float) -> bytes:
    """GET ``url`` (at most a megabyte); every failure is a ``ReadError`` saying what."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return bytes(response.read(MAX_PAGE_BYTES))
    except urllib.error.HTTPError as exc:
        raise ReadError(f"{url} answered {exc.code} {exc.reason}") from exc
    except TimeoutError as exc:
        raise ReadError(f"{url} did not answer within {timeout:g} s") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError):
            raise ReadError(f"{url} did not answer within {timeout:g} s") from exc
        raise ReadError(f"{url} could not be fetched: {reason}") from exc


def page_title(url: str, timeout: float, get: Fetch = fetch) -> str:
    """The page's <title> (or og:title), whitespace collapsed."""
    try:
        document = lxml.html.fromstring(get(url, timeout))
    except (ValueError, lxml.etree.ParserError) as exc:
        raise ReadError(f"{url} is not an HTML page: {exc}") from exc
    candidates = document.xpath("//meta[@property='og:title']/@content") + document.xpath(
        "//title/text()"
    )
    for candidate in candidates:
        title = " ".join(str(candidate).split())
        if title:
            return title
    raise ReadError(f"{url} has no title; give one with --title")


def queue(
    session: Session,
    read: Read,
    now: datetime,
    origin: str = "editor",
) -> tuple[QueuedRead, bool]:
    """Queue a read for the next edition; (the row, False) if that link is queued already."""
    key = normalise_url(read.url)
    existing = session.scalars(
        select(QueuedRead).where(QueuedRead.url_key == key, QueuedRead.used_on.is_(None))
    ).first()
    if existing is not None:
        return existing, False
    row = QueuedRead(
        url=read.url,
        url_key=key,
        title=read.title,
        source=read.source,
        note=read.note,
        origin=origin,
        added_at=now,
    )
    session.add(row)
    return row, True


def recently_recommended(session: Session, since: date) -> set[str]:
    return set(
        session.scalars(select(QueuedRead.url_key).where(QueuedRead.used_on >= since).distinct())
    )


def mark_used(session: Session, reads: Iterable[Read], day: date, now: datetime) -> None:
    """Record that an edition of ``day`` carried ``reads`` (queued or written in the file)."""
    for read in reads:
        key = normalise_url(read.url)
        queued = session.scalars(
            select(QueuedRead).where(QueuedRead.url_key == key, QueuedRead.used_on.is_(None))
        ).first()
        if queued is None:
            queued, _ = queue(session, read, now, origin="edition file")
        queued.used_on = day


@dataclass(frozen=True)
class Gathered:
    reads: list[Read]
    problems: list[str]  # feeds that failed, said so the editors can act


@dataclass(frozen=True)
class FeedResult:
    reads: list[Read]
    warning: str | None  # the feed is malformed, though some entries could be read


def feed_reads(url: str, since: datetime | None, timeout: float, get: Fetch = fetch) -> FeedResult:
    """Entries of one Atom/RSS feed published after ``since`` (all if None)."""
    parsed = feedparser.parse(get(url, timeout))
    found = _entries(parsed, since)
    if parsed.bozo:
        problem = f"the feed {url} could not be read: {parsed.bozo_exception}"
        if not found:
            raise ReadError(problem)
        return FeedResult(found, f"{problem} ({len(found)} entries used anyway)")
    return FeedResult(found, None)


def _entries(parsed: feedparser.FeedParserDict, since: datetime | None) -> list[Read]:
    source = " ".join(str(parsed.feed.get("title", "")).split()) or None
    found = []
    for entry in parsed.entries:
        link, title = entry.get("link"), " ".join(str(entry.get("title", "")).split())
        if not link or not title or not str(link).startswith(("http://", "https://")):
            continue
        stamp = entry.get("published_parsed") or entry.get("updated_parsed")
        if since is not None and stamp is not None:
            published = datetime.fromtimestamp(calendar.timegm(stamp), tz=UTC)
            if published < since:
                continue
        found.append(Read(title=title, url=str(link), source=source, note=_summary(entry)))
    return found


def _summary(entry: feedparser.FeedParserDict) -> str | None:
    text = entry.get("summary")
    if not text:
        return None
    try:
        plain = " ".join(lxml.html.fromstring(str(text)).text_content().split())
    except (ValueError, lxml.etree.ParserError):
        return None
    return plain[:277] + "…" if len(plain) > 280 else plain or None


def choose(candidates: Iterable[Read], recently: set[str], limit: int) -> list[Read]:
    """The first ``limit`` candidates whose links weren't recommended recently, each once."""
    seen = set(recently)
    chosen: list[Read] = []
    for read in candidates:
        key = normalise_url(read.url)
        if key not in seen and len(chosen) < limit:
            seen.add(key)
            chosen.append(read)
    return chosen


def gather(
    session: Session,
    settings: ReadsSettings,
    day: date,
    now: datetime,
    *,
    written: Iterable[Read] = (),
    since: datetime | None = None,
    get: Fetch = fetch,
) -> Gathered:
    """The reads the edition of ``day`` will carry, and what went wrong on the way.

    ``written`` (the edition file's own reads) come first; then queued reads,
    oldest first; then feed entries newer than ``since``. Links recommended in the
    last ``dedupe_days`` days, or already taken, are dropped; at most ``max_reads``
    (the choice itself is :func:`choose`; this gathers from the database and feeds).
    """
    problems: list[str] = []
    candidates = list(written)
    queued = session.scalars(
        select(QueuedRead).where(QueuedRead.used_on.is_(None)).order_by(QueuedRead.added_at)
    )
    candidates += [row.as_read() for row in queued]
    for url in settings.feeds:
        try:
            result = feed_reads(url, since, settings.fetch_timeout_seconds, get)
        except ReadError as exc:
            problems.append(str(exc))
            continue
        if result.warning:
            problems.append(result.warning)
        candidates += result.reads
    recently = recently_recommended(session, day - timedelta(days=settings.dedupe_days))
    return Gathered(choose(candidates, recently, settings.max_reads), problems)
