"""One edition of a day, whichever way it is looked at: preview, check, test send, send."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from digest.assemble.day import assemble_source
from digest.assemble.feeds import fetch
from digest.database import open_database
from digest.edition.files import EXAMPLE_EDITION
from digest.ledger import FrozenEdition
from digest.settings import ReadsSettings, Settings
from subscribers.db import Database
from tests.helpers import add_subscribers, run
from tests.mailserver import SMTPServer, text_part
from tests.webserver import Site

NOW = datetime(2017, 11, 2, 6, 0, tzinfo=UTC)

FEED = """<?xml version="1.0"?>
<rss version="2.0"><channel><title>Wire picks</title>
<item><title>Feed piece on grain prices</title><link>https://example.org/grain</link>
<pubDate>Thu, 02 Nov 2017 05:00:00 GMT</pubDate></item>
</channel></rss>"""


@pytest.fixture
def newsroom(desk: Path, site: Site, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CLI's desk (test database, SMTP server, the example edition) plus a feed."""
    feed = site.page("/feed.xml", FEED, kind="application/rss+xml")
    monkeypatch.setenv("DIGEST_READS__FEEDS", json.dumps([feed]))
    return desk


def test_every_path_carries_the_queued_and_feed_reads(
    newsroom: Path, db: Database, smtp_server: SMTPServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """check, preview, a test send and the real send all show the file's, queue's and feed's reads."""
    code, _, err = run(
        ["reads", "add", "https://example.org/queued", "--title", "Queued piece on ferries"],
        capsys,
    )
    assert code == 0, err

    code, out, err = run(["check", "2017-11-02", "--format", "json"], capsys)
    assert code == 0, err
    report = json.loads(out)
    origins = [(r["title"], r["from"].split(" ")[0]) for r in report["reads_list"]]
    assert ("Queued piece on ferries", "queue") in origins
    assert ("Feed piece on grain prices", "feed") in origins
    assert [kind for _, kind in origins].count("file") == 4
    assert report["reads"] == 6

    code, out, _ = run(["check", "2017-11-02"], capsys)
    assert "file 4, queue 1, feed 1" in out
    assert "(queue): Queued piece on ferries <https://example.org/queued>" in out

    code, out, _ = run(["preview", "2017-11-02", "--format", "text"], capsys)
    assert code == 0
    assert "Queued piece on ferries" in out and "Feed piece on grain prices" in out

    code, _, err = run(["send", "2017-11-02", "--to", "editor@example.org"], capsys)
    assert code == 0, err
    [test] = smtp_server.inbox.messages
    assert "Queued piece on ferries" in text_part(test.message)
    assert "Feed piece on grain prices" in text_part(test.message)

    add_subscribers(db, newsroom, ["ann@example.org"])
    code, _, err = run(["send", "2017-11-02"], capsys)
    assert code == 0, err
    [_, real] = smtp_server.inbox.messages
    assert real.recipients == ["ann@example.org"]
    assert "Queued piece on ferries" in text_part(real.message)
    assert "Feed piece on grain prices" in text_part(real.message)

    code, out, _ = run(["reads", "list", "--date", "2017-11-03", "--format", "json"], capsys)
    assert code == 0 and "Queued piece on ferries" not in out  # used by the sent edition


def test_the_frozen_hash_is_of_the_text_that_was_parsed(
    newsroom: Path, db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    """The ledger's source hash is of the bytes the frozen content came from."""
    add_subscribers(db, newsroom, ["ann@example.org"])
    text = (newsroom / "editions" / "2017-11-02.md").read_text(encoding="utf-8")
    code, _, err = run(["send", "2017-11-02"], capsys)
    assert code == 0, err
    with db.transaction() as session:
        frozen = session.scalars(select(FrozenEdition)).one()
        assert frozen.source_sha256 == hashlib.sha256(text.encode("utf-8")).hexdigest()
        assert "Feed piece on grain prices" in frozen.text


def test_a_broken_feed_is_a_warning_and_the_edition_still_checks(
    newsroom: Path, site: Site, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A feed that answers 404 is named on stderr; check still reports the file's reads."""
    monkeypatch.setenv("DIGEST_READS__FEEDS", json.dumps([site.base + "/no-feed"]))
    code, out, err = run(["check", "2017-11-02", "--format", "json"], capsys)
    assert code == 0
    assert "no-feed answered 404" in err
    assert [r["from"] for r in json.loads(out)["reads_list"]] == ["file"] * 4


def test_feeds_are_fetched_with_no_write_lock_held(tmp_path: Path, site: Site) -> None:
    """While the edition's feeds are fetched, another process can still write (sign-ups go on)."""
    feed = site.page("/feed.xml", FEED, kind="application/rss+xml")
    editions = tmp_path / "editions"
    editions.mkdir()
    shutil.copy(EXAMPLE_EDITION, editions / "2017-11-02.md")
    path = tmp_path / "digest.db"
    settings = Settings(
        editions_dir=editions,
        database_url=f"sqlite:///{path}",
        reads=ReadsSettings(feeds=[feed]),
    )
    writes: list[str] = []

    def fetch_while_writing(url: str, timeout: float) -> bytes:
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # fails at once if anyone holds the write lock
            other.execute("ROLLBACK")
            writes.append("written")
        except sqlite3.OperationalError as exc:
            writes.append(str(exc))
        finally:
            other.close()
        return fetch(url, timeout)

    with open_database(settings.database_url) as db:
        assembled = assemble_source(db, settings, "2017-11-02", NOW, get=fetch_while_writing)
    assert writes == ["written"]
    assert "Feed piece on grain prices" in [r.title for r in assembled.require().reads]
