"""Filing within bounds: no message holds the write lock, is parsed without limit, or
blocks the next; copies are found by content, not by Message-ID."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, update

from digest.database import open_database
from digest.errors import ParseLimitError
from digest.feedback import parse as parse_module
from digest.feedback import raw as raw_module
from digest.feedback import store as feedback_store
from digest.feedback.bounds import DEFAULT_LIMITS, Limits
from digest.feedback.models import Feedback
from digest.feedback.parse import Parsed, parse
from digest.feedback.sources import FileSource
from digest.feedback.store import Filer, Incoming
from subscribers import audience
from subscribers.addresses import parse_address
from subscribers.db import Database
from subscribers.models import ConsentMethod
from tests.helpers import (
    READERS,
    Scenario,
    encoded_word_subject,
    html_only_reply,
    many_recipient_report,
    message_id,
    scenario_settings,
    send_scenario,
)

#: How long the sign-up writer below waits for the lock: far longer than a short
#: transaction takes, far shorter than parsing the hostile messages inside one took.
WRITER_WAIT_MS = 5_000


@pytest.fixture
def scenario(db: Database, db_url: str, tmp_path: Path) -> Scenario:
    settings = scenario_settings(tmp_path, db_url)
    send_scenario(db, settings, tmp_path)
    return Scenario(db, settings, tmp_path)


@pytest.fixture
def on_sqlite(tmp_path: Path) -> Iterator[Scenario]:
    """The scenario on a SQLite file: its one write lock is what is contended for."""
    url = f"sqlite:///{tmp_path / 'locks.db'}"
    settings = scenario_settings(tmp_path, url)
    with open_database(url) as db:
        send_scenario(db, settings, tmp_path)
        yield Scenario(db, settings, tmp_path)


def reply(number: int, text: str, own_id: str) -> bytes:
    return (
        f"From: {READERS[number - 1]}\nTo: desk@news.example.org\n"
        f"Subject: Re: Executive Summary for November 2nd\nMessage-ID: {own_id}\n"
        f"In-Reply-To: {message_id(number)}\nDate: Thu, 2 Nov 2017 09:00:00 +0000\n\n{text}\n"
    ).encode()


class SignUps(threading.Thread):
    """Readers joining through their own connection, one transaction each, until stopped."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.db = open_database(url)
        event.listen(self.db.engine, "connect", _short_wait)
        self.db.engine.dispose()  # connections from now on wait WRITER_WAIT_MS at most
        self.stop = threading.Event()
        self.joined = 0
        self.errors: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                with self.db.transaction() as session:
                    audience.join(
                        session,
                        parse_address(f"signup.{self.joined}@example.com"),
                        datetime.now(UTC),
                        audience.ConsentEvidence(ConsentMethod.editor),
                    )
                self.joined += 1
            except Exception as exc:
                self.errors.append(str(exc))

    def finish(self) -> None:
        self.stop.set()
        self.join()
        self.db.close()


def _short_wait(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {WRITER_WAIT_MS}")
    cursor.close()


def test_hostile_messages_never_lock_out_a_writer_and_are_filed_as_other(
    on_sqlite: Scenario,
) -> None:
    """While a Subject of 100,000 encoded words and a report of 20,000 recipient blocks are
    filed, sign-ups on the same SQLite file all commit; both are filed as other with the
    reason, and the reply after them as a reply."""
    signups = SignUps(str(on_sqlite.settings.database_url))
    signups.start()
    try:
        report = on_sqlite.filer().file(
            [
                Incoming(encoded_word_subject(100_000), "words"),
                Incoming(many_recipient_report(20_000), "blocks"),
                Incoming(reply(1, "Thanks for the harbour piece.", "<after@example.com>"), "r"),
            ]
        )
    finally:
        signups.finish()
    assert signups.errors == [] and signups.joined > 0
    words, blocks, after = on_sqlite.rows()
    assert words.kind == "other" and words.problem is not None
    assert "cut to 16,384 characters: subject" in words.problem
    assert words.subject is not None and len(words.subject) < 16_384
    assert blocks.kind == "other" and blocks.problem is not None
    assert "more than 1,000 MIME parts" in blocks.problem
    assert blocks.subject == "Undelivered Mail Returned to Sender"  # listed, though unparsed
    assert after.kind == "reply" and after.delivery_id == 1
    assert report.kinds == {"other": 2, "reply": 1}


def test_over_its_time_budget_a_message_is_filed_as_other_and_the_next_one_too(
    scenario: Scenario,
) -> None:
    """With a time budget of 0 every message is over it: each is filed as other with that
    reason (From and Subject still listed), none is left unfiled."""
    filer = Filer(scenario.db, scenario.settings, limits=Limits(seconds=0))
    report = filer.file(
        [
            Incoming(reply(1, "One.", "<one@example.com>"), "1"),
            Incoming(reply(2, "Two.", "<two@example.com>"), "2"),
        ]
    )
    assert (report.unparsed, report.kinds) == (2, {"other": 2})
    for row, reader in zip(scenario.rows(), READERS, strict=False):
        assert row.kind == "other" and row.from_email == reader
        assert row.problem is not None and "over its 0 s budget" in row.problem


class Killed(BaseException):
    """The process dying in the middle of a parse (kill -9, out of memory)."""


def test_a_leftover_whose_parse_never_finished_is_not_parsed_again(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stored row whose parse killed the process is left alone while that parse could
    still be running, then filed as other with the reason, never parsed again; new mail
    is filed meanwhile."""
    poison = reply(3, "This one kills the parser.", "<poison@example.com>")
    started = datetime(2017, 11, 2, 9, 0, tzinfo=UTC)
    scenario.filer().store([Incoming(poison, "p")], feedback_store.FilingReport())
    parsed: list[bytes] = []

    def watched_parse(
        raw: bytes,
        languages: tuple[str, ...] = ("en",),
        envelope_to: tuple[str, ...] = (),
        limits: Limits = DEFAULT_LIMITS,
    ) -> Parsed:
        parsed.append(raw)
        if raw == poison:
            raise Killed
        return parse(raw, languages, envelope_to, limits)

    monkeypatch.setattr(feedback_store, "parse", watched_parse)
    with pytest.raises(Killed):
        Filer(scenario.db, scenario.settings, clock=lambda: started).file([])
    soon = Filer(scenario.db, scenario.settings, clock=lambda: started + timedelta(minutes=1))
    fine = reply(4, "Filed while the other is pending.", "<fine@example.com>")
    assert soon.file([Incoming(fine, "f")]).kinds == {"reply": 1}
    later = Filer(scenario.db, scenario.settings, clock=lambda: started + timedelta(hours=1))
    assert later.file([]).kinds == {"other": 1}
    assert parsed == [poison, fine]  # the poison once, by the run it killed
    left, filed = scenario.rows()
    assert left.kind == "other" and left.problem is not None
    assert "never finished" in left.problem and left.from_email == READERS[2]
    assert filed.kind == "reply"


def test_a_different_message_reusing_a_message_id_is_stored(scenario: Scenario) -> None:
    """Same Message-ID, other words: a second message, stored and filed; a copy of it
    delivered again with one more Received: header is still a copy."""
    first = reply(1, "First answer.", "<reused@example.com>")
    second = reply(2, "Another person, the same ID.", "<reused@example.com>")
    again = b"Received: from relay.example.com by mx; Thu, 2 Nov 2017\n" + second
    assert scenario.filer().file([Incoming(first, "a")]).stored == 1
    report = scenario.filer().file([Incoming(second, "b"), Incoming(again, "c")])
    assert (report.stored, report.duplicates) == (1, 1)
    assert scenario.filer().file([Incoming(again, "d")]).duplicates == 1
    one, two = scenario.rows()
    assert (one.raw, two.raw) == (first, second)
    assert (one.text, two.text) == ("First answer.", "Another person, the same ID.")
    assert (one.message_id, two.message_id) == ("<reused@example.com>", None)


def test_a_copy_of_a_row_stored_under_its_bytes_hash_is_still_a_copy(
    scenario: Scenario,
) -> None:
    """Rows stored before content keys (under a hash of their bytes) still catch a copy
    re-delivered with one more Received: header, through its Message-ID."""
    raw = reply(5, "Stored by an older version.", "<old@example.com>")
    scenario.filer().file([Incoming(raw, "old")])
    with scenario.db.transaction() as session:
        session.execute(update(Feedback).values(sha256=hashlib.sha256(raw).hexdigest()))
    again = b"Received: from relay.example.com by mx; Thu, 2 Nov 2017\n" + raw
    report = scenario.filer().file([Incoming(again, "new"), Incoming(raw, "same")])
    assert (report.stored, report.duplicates) == (0, 2)


def test_a_stored_message_is_parsed_again_only_outside_the_write_transaction(
    on_sqlite: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Telling an old row from another message under its Message-ID means parsing the
    stored one: that happens while another connection can still take the write lock."""
    raw = reply(5, "Stored by an older version.", "<old@example.com>")
    on_sqlite.filer().file([Incoming(raw, "old")])
    with on_sqlite.db.transaction() as session:
        session.execute(update(Feedback).values(sha256=hashlib.sha256(raw).hexdigest()))
    path = on_sqlite.db.engine.url.database
    assert path is not None
    locks: list[str] = []

    def content_key(data: bytes) -> str:
        if data == raw:  # the stored message, parsed again
            other = sqlite3.connect(path, timeout=0, isolation_level=None)
            try:
                other.execute("BEGIN IMMEDIATE")
                other.execute("ROLLBACK")
                locks.append("free")
            except sqlite3.OperationalError as exc:
                locks.append(str(exc))
            finally:
                other.close()
        return parse_module.content_key(data)

    monkeypatch.setattr(raw_module, "content_key", content_key)
    other = reply(6, "Someone else, the same ID.", "<old@example.com>")
    assert on_sqlite.filer().file([Incoming(other, "new")]).stored == 1
    assert locks and set(locks) == {"free"}


def test_folder_import_takes_eml_files_in_any_case(tmp_path: Path) -> None:
    """`.EML` and `.Eml` files in a folder are imported like `.eml`; other files are not."""
    for name in ("a.EML", "b.eml", "c.Eml", "notes.txt"):
        (tmp_path / name).write_bytes(reply(1, name, f"<{name}@example.com>"))
    source = FileSource(tmp_path)
    assert source.count() == 3
    assert sorted(Path(m.origin).name for m in source) == ["a.EML", "b.eml", "c.Eml"]


def test_header_values_are_cut_before_they_are_decoded() -> None:
    """A Subject of 2,000 encoded words is cut, decoded only up to the cut, and listed."""
    parsed = parse(encoded_word_subject(2_000))
    assert parsed.subject.startswith("a" * 1_000) and len(parsed.subject) < 2_000
    assert "1 header cut to 16,384 characters: subject" in parsed.problems


def test_a_content_type_of_many_parameters_is_cut_before_mime_parsing() -> None:
    """The MIME parser reads a multipart's parameters in quadratic time: they are cut."""
    raw = (
        "From: a@example.com\nContent-Type: multipart/mixed"
        + "; a=b" * 20_000
        + '; boundary="B"\n\n--B\n\nhello\n--B--\n'
    ).encode()
    parsed = parse(raw)
    assert "1 Content-Type header cut to 16,384 characters" in parsed.problems


def test_the_html_turned_into_text_is_cut() -> None:
    """Past ``html_chars`` the HTML is not read for text (the raw keeps it)."""
    parsed = parse(html_only_reply(0.05), limits=Limits(html_chars=2_000))
    assert parsed.full_text.startswith("I agree.") and len(parsed.full_text) < 2_000
    assert "only the first 2,000 characters of its HTML read" in parsed.problems


def test_a_report_naming_too_many_recipients_is_not_read() -> None:
    """Each of our messages goes to one reader: a report naming 150 is over the limit."""
    with pytest.raises(ParseLimitError, match="names 150 failed recipients"):
        parse(many_recipient_report(150))
    assert parse(many_recipient_report(3)).report.kind == "bounce"


def test_a_message_over_the_size_limit_is_not_parsed() -> None:
    """``message_bytes`` (feedback.max_message_mb) bounds what is parsed at all."""
    with pytest.raises(ParseLimitError, match="over the limit"):
        parse(html_only_reply(0.01), limits=Limits(message_bytes=1_000))
