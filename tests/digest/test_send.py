"""Sending an edition through the ledger to a real SMTP server (aiosmtpd) on localhost."""

from __future__ import annotations

import re
import shutil
import threading
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import text

from digest import ledger
from digest.edition.files import EXAMPLE_EDITION
from digest.ledger import DeliveryStatus, Recipient
from digest.send.compose import Composed
from digest.send.links import Links
from digest.send.publish import freeze_source, plan_send
from digest.send.tally import SendResult
from digest.settings import DeliverySettings, Settings, WebSettings
from subscribers import audience
from subscribers.csv_import import import_csv
from subscribers.db import Database
from subscribers.models import Status
from subscribers.tokens import Signer
from tests.helpers import Clock, add_subscribers, deliveries, wait_for
from tests.mailserver import SMTPServer, text_part

SECRET = "send-tests-secret-0123456789"


def make_settings(
    tmp_path: Path, db_url: str, smtp_server: SMTPServer, **delivery: Any
) -> Settings:
    editions = tmp_path / "editions"
    editions.mkdir(exist_ok=True)
    if not (editions / "2017-11-02.md").exists():
        shutil.copy(EXAMPLE_EDITION, editions / "2017-11-02.md")
    return Settings(
        database_url=db_url,
        delivery_url=SecretStr(smtp_server.url),
        secret_key=SecretStr(SECRET),
        editions_dir=editions,
        web=WebSettings(public_url="https://list.news.example.org"),
        delivery=DeliverySettings.model_validate(
            {
                "connections": 2,
                "batch_size": 20,
                "retry_base_seconds": 0.05,
                "retry_max_seconds": 0.2,
                **delivery,
            }
        ),
    )


def send(
    db: Database, settings: Settings, source: str = "2017-11-02", **options: Any
) -> SendResult:
    frozen = freeze_source(db, settings, source, new_version=options.pop("new_version", False))
    return plan_send(db, settings, frozen.edition, **options).sender.run()


def test_every_active_subscriber_gets_exactly_one_message_with_the_right_headers(
    db: Database, db_url: str, smtp_server: SMTPServer, tmp_path: Path
) -> None:
    """Active subscribers get one message each; pending and unsubscribed ones none."""
    settings = make_settings(tmp_path, db_url, smtp_server, verp=True)
    active = [f"reader{i}@example.org" for i in range(25)]
    add_subscribers(db, tmp_path, active)
    add_subscribers(db, tmp_path, ["pending@example.org"], confirmed=False)
    add_subscribers(db, tmp_path, ["gone@example.org"])
    with db.transaction() as session:
        gone = audience.get(session, "gone@example.org")
        audience.unsubscribe(session, gone, datetime.now(UTC), "test")
    result = send(db, settings)
    assert (result.sent, result.failed, result.deferred) == (25, 0, 0)
    received = Counter(r for m in smtp_server.inbox.messages for r in m.recipients)
    assert received == Counter(active)

    rows = {d.subscriber_id: d for d in deliveries(db)}
    assert {d.status for d in rows.values()} == {DeliveryStatus.sent}
    signer = Signer(SECRET)
    for got in smtp_server.inbox.messages:
        message = got.message
        [to] = got.recipients
        assert message["To"] == to
        assert message["From"] == "The Morning Ledger <briefing@news.example.org>"
        assert message["Reply-To"] == "The Morning Ledger <desk@news.example.org>"
        assert message["Subject"] == "Executive Summary for November 2nd"
        assert message["Date"] and message["List-Id"] == (
            "The Morning Ledger <briefing.news.example.org>"
        )
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        https, mailto = re.findall(r"<([^>]+)>", str(message["List-Unsubscribe"]))
        assert https.startswith("https://list.news.example.org/unsubscribe/")
        assert https in text_part(message)  # the same link is in the body
        assert mailto.startswith("mailto:unsubscribe+") and mailto.endswith(
            "@news.example.org?subject=unsubscribe"
        )
        message_id = str(message["Message-ID"])
        assert re.fullmatch(r"<20171102\.\d+\.[0-9a-f]{16}@news\.example\.org>", message_id)
        delivery_id = int(message_id.split(".")[1])
        assert got.sender == f"bounces+{signer.delivery_token(delivery_id)}@news.example.org"
        assert signer.read_delivery_token(got.sender.split("+")[1].split("@")[0]) == delivery_id
        stored = next(d for d in rows.values() if d.id == delivery_id)
        assert stored.message_id == message_id
        assert stored.reply and stored.reply.startswith("250 ")
        assert message.get_content_type() == "multipart/alternative"
        assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert len({str(m.message["Message-ID"]) for m in smtp_server.inbox.messages}) == 25

    again = send(db, settings)  # running it again sends nobody anything
    assert again.sent == 0 and len(smtp_server.inbox.messages) == 25


def test_greylisting_refusals_and_dropped_connections(
    db: Database, db_url: str, smtp_server: SMTPServer, tmp_path: Path
) -> None:
    """451s are retried until delivered, 550 5.1.1 fails at once and bounces, drops lose nothing."""
    emails = [f"r{i}@example.org" for i in range(60)]
    add_subscribers(db, tmp_path, emails)
    inbox = smtp_server.inbox
    inbox.defer_once.update(emails[::4])  # a quarter are greylisted once
    inbox.refuse.update({"r7@example.org", "r33@example.org"})
    inbox.drop_every = 9
    result = send(db, make_settings(tmp_path, db_url, smtp_server))
    assert result.failed == 2 and result.sent == 58 and result.deferred >= 15
    delivered = Counter(r for m in inbox.messages for r in m.recipients)
    assert set(delivered) == set(emails) - {"r7@example.org", "r33@example.org"}
    assert max(delivered.values()) == 1
    rows = deliveries(db)
    failed = [d for d in rows if d.status is DeliveryStatus.failed]
    assert len(failed) == 2 and all("5.1.1" in (d.reply or "") for d in failed)
    assert all(d.attempts == 1 for d in failed)  # never retried
    with db.transaction() as session:
        assert audience.get(session, "r7@example.org").status is Status.bounced
        assert audience.get(session, "r8@example.org").status is Status.active
    assert max(d.attempts for d in rows) >= 2


def test_unsubscribing_during_a_send_skips_the_reader(
    db: Database, db_url: str, smtp_server: SMTPServer, tmp_path: Path
) -> None:
    """Someone who leaves after the ledger was written is skipped, not sent to."""
    settings = make_settings(tmp_path, db_url, smtp_server)
    add_subscribers(db, tmp_path, ["stays@example.org", "leaves@example.org"])
    frozen = freeze_source(db, settings, "2017-11-02")
    with db.transaction() as session:
        leaver = audience.get(session, "leaves@example.org")
        audience.unsubscribe(session, leaver, datetime.now(UTC), "one-click")
    result = plan_send(db, settings, frozen.edition).sender.run()
    assert (result.sent, result.skipped) == (1, 1)
    assert [m.recipients for m in smtp_server.inbox.messages] == [["stays@example.org"]]


def test_too_many_failures_pause_the_send_until_resumed(
    db: Database, db_url: str, smtp_server: SMTPServer, tmp_path: Path
) -> None:
    """A server refusing everything pauses the send instead of burning through the list."""
    add_subscribers(db, tmp_path, [f"p{i}@example.org" for i in range(30)])
    smtp_server.inbox.defer_all = True
    settings = make_settings(tmp_path, db_url, smtp_server, pause_after_errors=5)
    result = send(db, settings)
    assert result.paused and "5 failures in a row" in result.paused and "451" in result.paused
    assert result.sent == 0 and result.deferred < 30
    with db.transaction() as session:
        edition = ledger.latest(session, datetime(2017, 11, 2).date())
        assert edition is not None and edition.paused_at is not None


def test_a_changed_file_is_a_new_edition_only_when_asked(
    db: Database, db_url: str, smtp_server: SMTPServer, tmp_path: Path
) -> None:
    """The frozen subject is what resumes; --new-version sends the edited file to everyone."""
    settings = make_settings(tmp_path, db_url, smtp_server)
    add_subscribers(db, tmp_path, ["ann@example.org"])
    send(db, settings)
    path = settings.editions_dir / "2017-11-02.md"
    path.write_text(
        path.read_text().replace("date: 2017-11-02", 'date: 2017-11-02\nsubject: "Corrected"')
    )
    frozen = freeze_source(db, settings, "2017-11-02")
    assert not frozen.created and frozen.file_changed
    assert frozen.edition.subject == "Executive Summary for November 2nd"
    result = send(db, settings, new_version=True)
    assert result.sent == 1
    with db.transaction() as session:  # nothing of version 1 is left to go out later
        assert not ledger.unfinished(session, paused=False)
    assert [m.message["Subject"] for m in smtp_server.inbox.messages] == [
        "Executive Summary for November 2nd",
        "Corrected",
    ]


def test_header_injection_through_names_and_subject_is_impossible(
    db: Database, db_url: str, smtp_server: SMTPServer, tmp_path: Path
) -> None:
    """CR/LF in a subscriber's name or the edition's subject never produce a header."""
    settings = make_settings(tmp_path, db_url, smtp_server)
    path = tmp_path / "csv-inject.csv"
    path.write_text(
        'email,name\n"eve@example.org","Eve\r\nBcc: victim@example.org"\n'
        '"zoë@example.org","Zoë Ünïcode"\n',
        encoding="utf-8",
    )
    import_csv(db, path, Clock(), confirmed=True)
    edition = settings.editions_dir / "2017-11-02.md"
    edition.write_text(
        edition.read_text().replace(
            "date: 2017-11-02", 'date: 2017-11-02\nsubject: "Hi\\r\\nBcc: victim@example.org"'
        )
    )
    assert send(db, settings).sent == 2
    for got in smtp_server.inbox.messages:
        assert got.message["Bcc"] is None
        assert "\n" not in str(got.message["Subject"]) and "\n" not in str(got.message["To"])
        assert got.recipients != ["victim@example.org"]
    names = {str(m.message["To"]) for m in smtp_server.inbox.messages}
    assert "Zoë Ünïcode <zoë@example.org>" in names


def test_links_in_a_sent_message_unsubscribe_that_reader(
    db: Database, db_url: str, smtp_server: SMTPServer, tmp_path: Path
) -> None:
    """The List-Unsubscribe link names its own reader (checked with the web app's signer)."""
    settings = make_settings(tmp_path, db_url, smtp_server)
    add_subscribers(db, tmp_path, ["ann@example.org", "bo@example.org"])
    send(db, settings)
    links = Links.from_settings(settings)
    for got in smtp_server.inbox.messages:
        https = re.findall(r"<([^>]+)>", str(got.message["List-Unsubscribe"]))[0]
        claim = links.signer.read_unsubscribe(https.rsplit("/", 1)[1])
        with db.transaction() as session:
            subscriber = audience.get(session, got.recipients[0])
            assert claim.names(subscriber)


def test_second_sender_on_sqlite_says_busy(smtp_server: SMTPServer, tmp_path: Path) -> None:
    """While one process owns an edition's send on SQLite, another is told so."""
    from filelock import FileLock

    from digest.database import open_database
    from digest.errors import SendBusyError

    db_url = f"sqlite:///{tmp_path / 'busy.db'}"
    db = open_database(db_url)
    try:
        settings = make_settings(tmp_path, db_url, smtp_server)
        add_subscribers(db, tmp_path, ["ann@example.org"])
        frozen = freeze_source(db, settings, "2017-11-02")
        with (
            FileLock(f"{(tmp_path / 'busy.db').resolve()}.send-{frozen.edition.id}.lock"),
            pytest.raises(SendBusyError, match="another `digest send`"),
        ):
            plan_send(db, settings, frozen.edition).sender.run()
        assert plan_send(db, settings, frozen.edition).sender.run().sent == 1
        assert not list(tmp_path.glob("*.lock"))  # the lock file went with its holder
    finally:
        db.close()


def test_rows_left_claimed_by_a_dead_sender_are_sent(
    db: Database, db_url: str, smtp_server: SMTPServer, tmp_path: Path
) -> None:
    """Claims of a sender that is gone (no lock held) go back to pending and get sent."""
    settings = make_settings(tmp_path, db_url, smtp_server)
    add_subscribers(db, tmp_path, [f"c{i}@example.org" for i in range(10)])
    frozen = freeze_source(db, settings, "2017-11-02")
    with db.transaction() as session:
        claimed, _ = ledger.claim(session, frozen.edition.id, 424242, 6, datetime.now(UTC))
    assert len(claimed) == 6
    result = plan_send(db, settings, frozen.edition).sender.run()
    assert result.sent == 10
    assert Counter(r for m in smtp_server.inbox.messages for r in m.recipients) == Counter(
        f"c{i}@example.org" for i in range(10)
    )


def test_rate_limit_spaces_sends_out() -> None:
    """At 10 a second, each send is given a slot a tenth of a second after the last."""
    from digest.send.pacing import RateLimit

    waits: list[float] = []
    limit = RateLimit(10, sleep=waits.append, clock=lambda: 1000.0)
    for _ in range(10):
        limit.wait()
    # the sleeps are recorded, not slept, and the clock stands still, so the k-th send
    # waits for slot k however slowly this loop runs
    assert len(waits) == 9
    assert all(abs(wait - 0.1 * (k + 1)) < 0.05 for k, wait in enumerate(waits))
    unlimited: list[float] = []
    RateLimit(0, sleep=unlimited.append).wait()
    assert unlimited == []


def test_a_crash_inside_a_sender_thread_is_reported_and_leaves_nothing_claimed(
    db: Database,
    db_url: str,
    smtp_server: SMTPServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An unexpected error while composing stops the send with a clear error; rows go back."""
    from digest.errors import DigestError

    settings = make_settings(tmp_path, db_url, smtp_server)
    add_subscribers(db, tmp_path, [f"k{i}@example.org" for i in range(8)])
    frozen = freeze_source(db, settings, "2017-11-02")
    plan = plan_send(db, settings, frozen.edition)

    def broken(recipient: Recipient, now: datetime) -> Composed:
        raise ValueError("the composer broke")

    monkeypatch.setattr(plan.sender.composer, "compose", broken)
    with pytest.raises(DigestError, match="sending stopped: the composer broke"):
        plan.sender.run()
    with db.transaction() as session:
        counts = ledger.counts(session, frozen.edition.id)
    assert counts[DeliveryStatus.sending] == 0 and counts[DeliveryStatus.pending] == 8
    assert plan_send(db, settings, frozen.edition).sender.run().sent == 8  # and it resumes


def test_a_new_version_takes_over_the_old_versions_waiting_rows(
    db: Database, db_url: str, smtp_server: SMTPServer, tmp_path: Path
) -> None:
    """Version 1 interrupted before anyone got it: version 2 goes out, version 1 never does."""
    settings = make_settings(tmp_path, db_url, smtp_server)
    add_subscribers(db, tmp_path, ["ann@example.org", "bo@example.org"])
    first = freeze_source(db, settings, "2017-11-02").edition
    second = freeze_source(db, settings, "2017-11-02", new_version=True).edition
    assert second.version == 2
    with db.transaction() as session:
        assert ledger.counts(session, first.id)[DeliveryStatus.skipped] == 2
        assert [e.id for e in ledger.unfinished(session, paused=False)] == [second.id]


def test_readers_added_by_two_processes_at_once_get_one_row_each(
    db: Database, db_url: str, smtp_server: SMTPServer, tmp_path: Path
) -> None:
    """Two `--include-new` at once on PostgreSQL: the second waits, then adds nobody twice."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time: the second waits for the first anyway")
    settings = make_settings(tmp_path, db_url, smtp_server)
    add_subscribers(db, tmp_path, ["ann@example.org"])
    edition = freeze_source(db, settings, "2017-11-02").edition
    add_subscribers(db, tmp_path, ["bo@example.org", "cy@example.org"])
    added: dict[str, int] = {}
    with db.sessions.begin() as first:
        added["first"] = ledger.enqueue_newcomers(first, edition.id)  # not committed yet

        def second() -> None:
            with db.transaction() as session:
                added["second"] = ledger.enqueue_newcomers(session, edition.id)

        other = threading.Thread(target=second)
        other.start()
        wait_for(lambda: _waiting_for_a_lock(db) == 1, "the second insert to wait for the first")
    other.join()
    assert added == {"first": 2, "second": 0}
    with db.transaction() as session:
        assert ledger.newcomers(session, edition.id) == 0
    assert Counter(row.subscriber_id for row in deliveries(db)) == {1: 1, 2: 1, 3: 1}
    assert send(db, settings).sent == 3


def _waiting_for_a_lock(db: Database) -> int:
    with db.engine.connect() as connection:
        return int(
            connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()"
                )
            ).scalar_one()
        )
