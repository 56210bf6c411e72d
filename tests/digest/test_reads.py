"""Recommended reads: queued, fetched, gathered from feeds, never repeated within a month."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from digest.assemble import queue as reads
from digest.assemble.day import assemble, gather
from digest.assemble.feeds import page_title
from digest.edition.files import EXAMPLE_EDITION
from digest.edition.model import Read
from digest.errors import ReadError
from digest.settings import ReadsSettings, Settings
from subscribers.db import Database
from tests.helpers import run
from tests.webserver import Site

NOW = datetime(2017, 11, 2, 6, 0, tzinfo=UTC)

RSS = """<?xml version="1.0"?>
<rss version="2.0"><channel><title>Desk bookmarks</title>
<item><title>Ports in the age of automation</title><link>https://example.org/ports</link>
<description>&lt;p&gt;Why cranes &lt;b&gt;matter&lt;/b&gt;.&lt;/p&gt;</description>
<pubDate>Thu, 02 Nov 2017 05:00:00 GMT</pubDate></item>
<item><title>An old piece</title><link>https://example.org/old</link>
<pubDate>Mon, 02 Oct 2017 05:00:00 GMT</pubDate></item>
<item><title>Budget explainer</title><link>https://example.org/budget?utm_source=rss</link></item>
</channel></rss>"""


def test_page_title_is_fetched_and_failures_are_clear(site: Site) -> None:
    """The <title> of a real page; a 404, a timeout and a title-less page each say what."""
    good = site.page(
        "/article", "<html><head><title>  Harbour\n talks resume </title></head></html>"
    )
    assert page_title(good, 2) == "Harbour talks resume"
    with pytest.raises(ReadError, match="answered 404"):
        page_title(site.base + "/missing", 2)
    with pytest.raises(ReadError, match=r"did not answer within 0\.3 s"):
        page_title(site.slow("/slow"), 0.3)
    with pytest.raises(ReadError, match="has no title"):
        page_title(site.page("/bare", "<html><body>hi</body></html>"), 2)


def test_reads_add_from_the_command_line(
    clean_env: Path, site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    """add fetches the title; a tracking-tagged copy of a queued link is not queued twice."""
    url = site.page("/piece", "<title>The ferry timetable, explained</title>")
    code, out, _ = run(["reads", "add", url, "--source", "The Wire"], capsys)
    assert code == 0 and "queued for the next edition: The ferry timetable, explained" in out
    code, out, _ = run(
        [
            "reads",
            "add",
            url.upper().replace("/PIECE", "/piece/") + "?utm_medium=x",
            "--title",
            "Again",
        ],
        capsys,
    )
    assert "already queued" in out
    code, _, err = run(["reads", "add", site.base + "/gone"], capsys)
    assert code == 1 and "answered 404" in err and "--title" in err
    code, _, err = run(["reads", "add", "ftp://example.org/x", "--title", "x"], capsys)
    assert code == 1 and "not an http:// or https:// address" in err
    code, out, _ = run(["reads", "list", "--date", "2017-11-02", "--format", "json"], capsys)
    assert code == 0 and '"The ferry timetable, explained"' in out


def test_links_recommended_in_the_last_30_days_are_not_repeated(db: Database) -> None:
    """Sent on 2 Nov: dropped on 12 Nov and 2 Dec (30 days), offered again on 3 Dec."""
    settings = ReadsSettings(max_reads=5)
    with db.transaction() as session:
        reads.mark_used(
            session, [Read("Harbour", "https://Example.org/harbour/")], date(2017, 11, 2), NOW
        )
        reads.queue(
            session, Read("Harbour again", "https://example.org/harbour?utm_campaign=x"), NOW
        )
        reads.queue(session, Read("Fresh", "https://example.org/fresh"), NOW)
    titles = [r.title for r in gather(db, settings, date(2017, 11, 12), NOW).reads]
    assert titles == ["Fresh"]
    titles = [r.title for r in gather(db, settings, date(2017, 12, 2), NOW).reads]
    assert titles == ["Fresh"]
    titles = [r.title for r in gather(db, settings, date(2017, 12, 3), NOW).reads]
    assert titles == ["Harbour again", "Fresh"]


def test_feeds_broken_and_slow_ones_reported_and_the_cap_applied(db: Database, site: Site) -> None:
    """A good feed's new entries are used; broken XML and a timeout are reported, not fatal."""
    good = site.page("/bookmarks.xml", RSS, kind="application/rss+xml")
    broken = site.page("/broken.xml", "<rss><channel><item><title>oops</ti", kind="text/xml")
    slow = site.slow("/slow.xml")
    settings = ReadsSettings(feeds=[broken, slow, good], max_reads=2, fetch_timeout_seconds=0.5)
    with db.transaction() as session:
        reads.queue(session, Read("Queued by an editor", "https://example.org/editor"), NOW)
    since = datetime(2017, 11, 1, tzinfo=UTC)
    gathered = gather(db, settings, date(2017, 11, 2), NOW, since=since)
    assert [r.title for r in gathered.reads] == [
        "Queued by an editor",
        "Ports in the age of automation",
    ]
    assert (
        gathered.reads[1].source == "Desk bookmarks"
        and gathered.reads[1].note == "Why cranes matter."
    )
    assert len(gathered.problems) == 2
    assert "could not be read" in gathered.problems[0] and broken in gathered.problems[0]
    assert "did not answer within 0.5 s" in gathered.problems[1]
    uncapped = ReadsSettings(feeds=[good], max_reads=10)
    titles = [r.title for r in gather(db, uncapped, date(2017, 11, 2), NOW, since=since).reads]
    assert "An old piece" not in titles and "Budget explainer" in titles  # undated: kept


def test_assembly_adds_reads_to_the_edition_file(db: Database, tmp_path: Path) -> None:
    """The day's file plus queued reads; no file or an invalid one says why, naming the file."""
    editions = tmp_path / "editions"
    editions.mkdir()
    settings = Settings(editions_dir=editions, reads=ReadsSettings(max_reads=6))
    missing = assemble(db, settings, date(2017, 11, 2), NOW)
    assert missing.edition is None and missing.reason and "digest new 2017-11-02" in missing.reason
    shutil.copy(EXAMPLE_EDITION, editions / "2017-11-02.md")
    with db.transaction() as session:
        reads.queue(session, Read("Queued", "https://example.org/queued"), NOW)
    assembled = assemble(db, settings, date(2017, 11, 2), NOW)
    assert assembled.edition is not None
    assert [r.title for r in assembled.edition.reads][-1] == "Queued"
    assert len(assembled.edition.reads) == 5  # the file's four, then the queued one
    (editions / "2017-11-02.md").write_text("---\ndate: 2017-11-02\n---\nno heading\n")
    broken = assemble(db, settings, date(2017, 11, 2), NOW)
    assert broken.edition is None and broken.reason and "2017-11-02.md" in broken.reason


def test_new_writes_a_skeleton_to_fill_in(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """digest new writes a file that parses (its sample text is all check objects to), once."""
    code, out, _ = run(["new", "2017-11-03"], capsys)
    assert code == 0 and "wrote editions/2017-11-03.md" in out
    code, out, err = run(["check", "2017-11-03"], capsys)
    assert code == 1 and "the edition has 3 problems" in err
    assert err.count("from the `digest new` skeleton") == 3
    code, _, err = run(["new", "2017-11-03"], capsys)
    assert code == 1 and "already exists" in err
