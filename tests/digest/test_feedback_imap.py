"""Fetching the contact mailbox from a real IMAP server (Dovecot, started by the tests)."""

from __future__ import annotations

import imaplib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select, text

from digest.clock import utc_now
from digest.errors import DigestError
from digest.feedback import imap as imap_module
from digest.feedback import store as store_module
from digest.feedback.imap import FILED, Fetcher, FetchReport, fetched_messages
from digest.feedback.models import Feedback, MailboxState
from digest.feedback.store import Filer
from digest.schedule import jobs
from digest.settings import Settings
from subscribers.db import Database
from tests.dovecot import ImapServer
from tests.helpers import (
    FEEDBACK_SECRET,
    append_all,
    reader_reply,
    run,
    scenario_settings,
    send_scenario,
)


def fetch(db: Database, settings: Settings, url: str) -> FetchReport:
    return Fetcher(db, settings.feedback, Filer(db, settings), url).fetch(utc_now)


def stored(db: Database) -> list[tuple[str | None, str | None]]:
    with db.transaction() as session:
        return [
            (row.message_id, row.kind)
            for row in session.scalars(select(Feedback).order_by(Feedback.id))
        ]


def test_new_messages_are_fetched_once_and_flagged(
    imap: ImapServer, db: Database, db_url: str, tmp_path: Path
) -> None:
    """A second fetch stores nothing; filed messages carry $DigestFiled and stay unread."""
    settings = scenario_settings(tmp_path, db_url)
    send_scenario(db, settings, tmp_path)
    append_all(imap, [reader_reply(n, n) for n in (1, 2, 3)])
    first = fetch(db, settings, imap.url())
    assert first.fetched == 3 and first.filing.stored == 3
    assert [kind for _, kind in stored(db)] == ["reply"] * 3
    flags = imap.flags()
    assert all(FILED in found and "\\Seen" not in found for found in flags.values())
    second = fetch(db, settings, imap.url())
    assert second.fetched == 0 and second.filing.stored == 0
    append_all(imap, [reader_reply(4, 4)])
    third = fetch(db, settings, imap.url())
    assert third.fetched == 1 and len(stored(db)) == 4


def test_a_new_uidvalidity_rereads_the_folder_without_duplicates(
    imap: ImapServer, db: Database, db_url: str, tmp_path: Path
) -> None:
    """After the server renumbers the folder, everything is read again and nothing doubles."""
    settings = scenario_settings(tmp_path, db_url)
    send_scenario(db, settings, tmp_path)
    append_all(imap, [reader_reply(n, n) for n in (1, 2)])
    fetch(db, settings, imap.url())
    before = imap.uidvalidity()
    after = imap.change_uidvalidity()
    assert after != before
    with imap.client() as connection:  # someone cleared our flags too
        connection.select("INBOX")
        connection.uid("STORE", "1:*", "-FLAGS", f"({FILED})")
    append_all(imap, [reader_reply(3, 3)])
    report = fetch(db, settings, imap.url())
    assert report.uidvalidity_changed and report.fetched == 3
    assert (report.filing.stored, report.filing.duplicates) == (1, 2)
    assert len(stored(db)) == 3
    with db.transaction() as session:
        [state] = session.scalars(select(MailboxState))
        assert state.uidvalidity == after and state.last_uid == max(imap.uids())


def test_moving_to_a_folder_keeps_every_message(
    imap: ImapServer, db: Database, db_url: str, tmp_path: Path
) -> None:
    """With imap_move_to, filed messages leave INBOX for that folder; none is deleted."""
    settings = scenario_settings(tmp_path, db_url, imap_move_to="Filed")
    send_scenario(db, settings, tmp_path)
    append_all(imap, [reader_reply(n, n) for n in (1, 2, 3)])
    fetch(db, settings, imap.url())
    assert imap.uids("INBOX") == [] and len(imap.uids("Filed")) == 3
    assert fetch(db, settings, imap.url()).fetched == 0


def test_a_refused_login_is_a_clear_error_without_the_password(
    imap: ImapServer, db: Database, db_url: str, tmp_path: Path
) -> None:
    settings = scenario_settings(tmp_path, db_url)
    url = imap.url().replace(imap.password, "not-the-password-123")
    with pytest.raises(DigestError) as caught:
        fetch(db, settings, url)
    assert "refused the login" in str(caught.value)
    assert "not-the-password-123" not in str(caught.value)


def test_a_fetch_killed_half_way_loses_and_duplicates_nothing(
    imap: ImapServer,
    clean_env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SIGKILL while `digest feedback fetch` works; the rerun files the rest exactly once."""
    total = 600
    append_all(imap, [reader_reply(n, n, padding=300) for n in range(1, total + 1)])
    database = clean_env / "digest.db"
    env = {
        **os.environ,
        "DIGEST_DATABASE_URL": f"sqlite:///{database}",
        "DIGEST_SECRET_KEY": "feedback-corpus-secret-0001",
        "DIGEST_FEEDBACK__IMAP_URL": imap.url(),
    }
    engine = create_engine(f"sqlite:///{database}")
    process = subprocess.Popen(
        [sys.executable, "-c", "from digest.cli.app import main; main()", "feedback", "fetch"],
        cwd=clean_env,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    count = 0
    deadline = time.monotonic() + 60
    try:
        while count == 0 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.01)
            try:
                with engine.connect() as connection:
                    count = connection.execute(text("SELECT count(*) FROM feedback")).scalar_one()
            except Exception:  # the table does not exist until the first migration ends
                count = 0
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    with engine.connect() as connection:
        at_kill = connection.execute(text("SELECT count(*) FROM feedback")).scalar_one()
    assert 0 < at_kill < total, "the kill came before the first batch or after the last"

    for name in ("DIGEST_DATABASE_URL", "DIGEST_SECRET_KEY", "DIGEST_FEEDBACK__IMAP_URL"):
        monkeypatch.setenv(name, env[name])
    code, _, err = run(["feedback", "fetch"], capsys)
    assert code == 0, err
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT message_id, kind FROM feedback")).all()
        engine.dispose()
    assert len(rows) == total
    assert {row[0] for row in rows} == {
        f"<reply-{n}@mail.example.com>" for n in range(1, total + 1)
    }
    assert all(row[1] is not None for row in rows)  # nothing left unparsed
    assert all(FILED in flags for flags in imap.flags().values())


def test_the_scheduler_job_files_the_mailbox(
    imap: ImapServer,
    db: Database,
    db_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """`digest run`'s polling job fetches with the settings file it is given."""
    settings = scenario_settings(tmp_path, db_url)
    send_scenario(db, settings, tmp_path)
    config = tmp_path / "digest.toml"
    config.write_text(
        f'database_url = "{db_url}"\nsecret_key = "feedback-corpus-secret-0001"\n'
        f'[feedback]\nimap_url = "{imap.url()}"\n',
        encoding="utf-8",
    )
    append_all(imap, [reader_reply(2, 2)])
    jobs.fetch_feedback(str(config))
    assert stored(db) == [("<reply-2@mail.example.com>", "reply")]
    imap_server_down = config.read_text(encoding="utf-8").replace(str(imap.port), "1")
    config.write_text(imap_server_down, encoding="utf-8")
    jobs.fetch_feedback(str(config))  # logged, not raised: the service keeps running
    assert "feedback fetch failed" in caplog.text and imap.password not in caplog.text


def fail_storing(monkeypatch: pytest.MonkeyPatch, marker: bytes) -> None:
    """Storing any batch holding a message with ``marker`` fails, as in a database outage."""
    real_insert = Filer._insert

    def insert(self: Filer, session: Any, rows: list[Any]) -> Any:
        if any(marker in row.incoming.raw for row in rows):
            raise OSError("simulated database outage")
        return real_insert(self, session, rows)

    monkeypatch.setattr(Filer, "_insert", insert)


def test_a_message_that_could_not_be_stored_is_fetched_again(
    imap: ImapServer,
    db: Database,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When storing one message fails (a database outage, say), it is neither marked
    filed on the server nor passed by the read position; the next fetch stores it."""
    settings = scenario_settings(tmp_path, db_url)
    send_scenario(db, settings, tmp_path)
    append_all(imap, [reader_reply(n, n) for n in (1, 2, 3)])
    first, poison, third = imap.uids()
    fail_storing(monkeypatch, b"Reply number 2.")
    report = fetch(db, settings, imap.url())
    assert report.filing.stored == 2 and len(report.filing.not_stored) == 1
    flags = imap.flags()
    assert FILED in flags[first] and FILED in flags[third] and FILED not in flags[poison]
    with db.transaction() as session:
        [state] = session.scalars(select(MailboxState))
        assert state.last_uid == first  # not past the message that failed
    monkeypatch.undo()
    again = fetch(db, settings, imap.url())
    assert (again.fetched, again.filing.stored) == (1, 1)  # the flagged third is skipped
    assert len(stored(db)) == 3 and all(FILED in f for f in imap.flags().values())


def test_a_failure_in_an_earlier_batch_holds_the_read_position(
    imap: ImapServer,
    db: Database,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A message that failed to store in one batch is not passed by the read position when
    a later batch of the same fetch stores cleanly; the next fetch stores it."""
    settings = scenario_settings(tmp_path, db_url)
    send_scenario(db, settings, tmp_path)
    append_all(imap, [reader_reply(n, n) for n in (1, 2, 3)])
    poison, _, _ = imap.uids()
    fail_storing(monkeypatch, b"Reply number 1.")
    monkeypatch.setattr(store_module, "BATCH_MESSAGES", 1)  # each message a batch of its own
    report = fetch(db, settings, imap.url())
    assert report.filing.stored == 2 and len(report.filing.not_stored) == 1
    assert FILED not in imap.flags()[poison]
    with db.transaction() as session:
        [state] = session.scalars(select(MailboxState))
        assert state.last_uid < poison  # not past the message that failed
    monkeypatch.undo()
    again = fetch(db, settings, imap.url())
    assert again.filing.stored == 1
    assert len(stored(db)) == 3 and all(FILED in f for f in imap.flags().values())


def test_a_batch_that_fails_whole_is_reported_and_fetched_again(
    imap: ImapServer,
    db: Database,
    db_url: str,
    clean_env: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When no message of a batch can be stored, `digest feedback fetch` and the
    scheduler's job report each one (no TypeError from the read position), mark none
    and keep the read position; the next fetch stores them all."""
    settings = scenario_settings(clean_env, db_url)
    send_scenario(db, settings, clean_env)
    append_all(imap, [reader_reply(n, n) for n in (1, 2, 3)])

    def insert(self: Filer, session: Any, rows: list[Any]) -> Any:
        raise OSError("simulated database outage")

    monkeypatch.setattr(Filer, "_insert", insert)
    monkeypatch.setenv("DIGEST_DATABASE_URL", db_url)
    monkeypatch.setenv("DIGEST_SECRET_KEY", FEEDBACK_SECRET)
    monkeypatch.setenv("DIGEST_FEEDBACK__IMAP_URL", imap.url())
    code, out, err = run(["feedback", "fetch"], capsys)
    assert code == 1 and "3 new" in out
    assert err.count("NOT STORED") == 3 and "simulated database outage" in err
    jobs.fetch_feedback()  # the same through `digest run`: logged, not raised
    assert caplog.text.count("NOT STORED") == 3 and "fetched again next time" in caplog.text
    assert not any(FILED in flags for flags in imap.flags().values())
    with db.transaction() as session:
        [state] = session.scalars(select(MailboxState))
        assert state.last_uid == 0
    monkeypatch.undo()
    again = fetch(db, settings, imap.url())
    assert (again.fetched, again.filing.stored, again.filing.not_stored) == (3, 3, [])
    assert len(stored(db)) == 3 and all(FILED in f for f in imap.flags().values())


# RFC 3501 lets a server put UID after the message literal; imaplib then hands the UID
# in the element after the (text, literal) tuple. Dovecot always puts it first.
UID_FIRST = [(b"1 (UID 5 BODY[] {11}", b"Subject: a\r\n"), b")"]
UID_AFTER = [(b"1 (BODY[] {11}", b"Subject: a\r\n"), b" UID 5)"]


@pytest.mark.parametrize("data", [UID_FIRST, UID_AFTER], ids=["uid-first", "uid-after"])
def test_a_fetch_answer_is_read_with_the_uid_before_or_after_the_literal(data: Any) -> None:
    """Both orders give the message with its UID, and nothing lost."""
    assert fetched_messages(data) == ([(5, b"Subject: a\r\n")], 0)


def test_a_fetch_answer_with_mixed_orders_and_unsolicited_lines() -> None:
    """Messages keep their own UIDs; a FLAGS line, and "UID" inside a message, are not read."""
    data = [
        (b"1 (BODY[] {20}", b"Subject: UID 99\r\n\r\nx"),
        b" UID 5)",
        b"2 (FLAGS (\\Seen))",
        (b"3 (UID 7 BODY[] {3}", b"abc"),
        b")",
        (b"4 (X-GM-UID 1 BODY[] {3}", b"def"),
        b" FLAGS () UID 9)",
    ]
    assert fetched_messages(data) == (
        [(5, b"Subject: UID 99\r\n\r\nx"), (7, b"abc"), (9, b"def")],
        0,
    )


def test_a_message_the_answer_names_no_uid_for_is_counted_lost() -> None:
    """A literal without a UID on either side is reported, so the read position holds."""
    data = [(b"1 (BODY[] {3}", b"abc"), b")", (b"2 (UID 6 BODY[] {3}", b"def"), b")"]
    assert fetched_messages(data) == ([(6, b"def")], 1)
    assert fetched_messages([(b"1 (BODY[] {3}", b"abc")]) == ([], 1)


def test_dovecot_answers_in_the_shape_the_parser_reads(imap: ImapServer) -> None:
    """The real server's answer, as imaplib returns it, is the uid-first shape above."""
    append_all(imap, [reader_reply(1, 1)])
    with imap.client() as connection:
        connection.select("INBOX")
        result, data = connection.uid("FETCH", "1:*", "(UID BODY.PEEK[])")
    assert result == "OK" and isinstance(data[0], tuple) and data[1] == b")"
    [(uid, raw)] = fetched_messages(data)[0]
    assert uid == imap.uids()[0] and b"Reply number 1." in raw


def _uid_moved(data: list[Any], keep: bool) -> list[Any]:
    """Dovecot's answer rewritten as RFC 3501 also allows: UID after the literal
    (``keep``), or, as a broken server would, no UID at all."""
    out: list[Any] = []
    for item in data:
        if isinstance(item, tuple):
            uid = re.search(rb"UID (\d+) ", item[0])
            assert uid is not None
            out += [(item[0].replace(uid.group(0), b""), item[1]), b")"]
            if keep:
                out[-1] = b" " + uid.group(0).strip() + b")"
        elif item != b")":
            out.append(item)
    return out


def test_uid_after_the_literal_files_every_message_and_a_missing_uid_holds_the_position(
    imap: ImapServer,
    db: Database,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With UID after the literal nothing is skipped; an answer naming no UID for a message
    keeps the read position below it, and the next fetch stores it."""
    settings = scenario_settings(tmp_path, db_url)
    send_scenario(db, settings, tmp_path)
    append_all(imap, [reader_reply(n, n) for n in (1, 2, 3)])
    second = imap.uids()[1]  # read by uid() below, when it runs
    real_uid = imaplib.IMAP4.uid
    keep = True

    def uid(self: imaplib.IMAP4, command: str, *args: str) -> Any:
        result, data = real_uid(self, command, *args)
        if command != "FETCH" or "BODY.PEEK[]" not in args[-1]:
            return result, data
        return result, _uid_moved(data, keep=keep or str(second) not in args[0].split(","))

    monkeypatch.setattr(imaplib.IMAP4, "uid", uid)
    monkeypatch.setattr(imap_module, "FETCH_CHUNK", 1)  # message 2 alone loses its UID
    report = fetch(db, settings, imap.url())
    assert report.filing.stored == 3 and not report.warnings
    assert all(FILED in f for f in imap.flags().values())

    imap.reset()
    append_all(imap, [reader_reply(n, n + 10) for n in (1, 2, 3)])
    first, second, _ = imap.uids()
    keep = False  # now the answer for message 2 names no UID
    report = fetch(db, settings, imap.url())
    assert report.filing.stored == 2 and report.warnings
    with db.transaction() as session:
        [state] = session.scalars(select(MailboxState))
        assert state.last_uid == first  # not past the message without a UID
    assert FILED not in imap.flags()[second]
    monkeypatch.undo()
    again = fetch(db, settings, imap.url())
    assert (again.fetched, again.filing.stored) == (1, 1)
    assert len(stored(db)) == 6 and all(FILED in f for f in imap.flags().values())
