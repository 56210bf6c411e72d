"""Fetching from the web: a read's page title, and the entries of Atom/RSS feeds.

Every failure is a ``ReadError`` that says which URL and what went wrong, so a broken
feed is reported to the editors while the edition still goes.
"""

from __future__ import annotations

import calendar
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import feedparser
import lxml.html

from digest.edition.model import Read
from digest.errors import ReadError
from digest.words import plural

MAX_PAGE_BYTES = 1_000_000
USER_AGENT = "digest-publisher (reads fetcher)"


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
        return FeedResult(
            found, f"{problem} ({plural(len(found), 'entry', 'entries')} used anyway)"
        )
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
