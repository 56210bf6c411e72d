"""`digest send / status / retry / pause / resume` from the command line."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from digest.ledger import DeliveryStatus, FrozenEdition
from subscribers.db import Database
from tests.helpers import add_subscribers, deliveries, run
from tests.mailserver import SMTPServer, free_port


def test_test_send_goes_to_one_address_and_records_nothing(
    desk: Path, db: Database, smtp_server: SMTPServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """--to sends one "[TEST]" message and writes no ledger."""
    code, out, _ = run(["send", "2017-11-02", "--to", "Editor@News.example.org"], capsys)
    assert code == 0 and "test send to Editor@News.example.org via the SMTP server" in out
    [got] = smtp_server.inbox.messages
    assert got.message["Subject"] == "[TEST] Executive Summary for November 2nd"
    assert got.recipients == ["Editor@News.example.org"]
    assert deliveries(db) == []
    code, _, err = run(["send", "2017-11-02", "--to", "not-an-address"], capsys)
    assert code == 1 and "not a valid email address" in err


def test_send_status_retry_pause_and_resume(
    desk: Path,
    db: Database,
    smtp_server: SMTPServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A failed delivery is listed with its reason, re-queued, and sent once fixed."""
    add_subscribers(
        db, desk, ["ann@example.org", "bo@example.org", "cy@example.org", "dee@example.org"]
    )
    smtp_server.inbox.reject.add("bo@example.org")
    smtp_server.inbox.refuse.add("dee@example.org")
    code, out, _ = run(["send", "2017-11-02"], capsys)
    assert code == 0 and "froze the edition 2017-11-02: 4 deliveries queued" in out
    assert "the edition so far: 2 sent, 2 failed" in out and "digest retry 2017-11-02" in out
    code, out, _ = run(["status", "2017-11-02", "--format", "json"], capsys)
    status = json.loads(out)
    assert status["counts"]["sent"] == 2 and status["counts"]["failed"] == 2
    assert status["edition"] == "2017-11-02" and status["paused"] is None
    failures = {f["email"]: f["reply"] for f in status["failures"]}
    assert "554 5.7.1" in failures["bo@example.org"] and "550 5.1.1" in failures["dee@example.org"]
    code, out, _ = run(["status", "2017-11-02"], capsys)
    assert "bo@example.org" in out and "failed" in out

    smtp_server.inbox.reject.clear()
    smtp_server.inbox.refuse.clear()
    code, out, _ = run(["retry", "2017-11-02"], capsys)
    assert "1 failed delivery re-queued; `digest send 2017-11-02` sends it" in out
    assert "1 stays failed: its subscriber is no longer active" in out  # dee bounced
    code, out, _ = run(["send", "2017-11-02"], capsys)
    assert "resuming the edition 2017-11-02" in out and "this run: 1 sent" in out
    assert [m.recipients for m in smtp_server.inbox.messages][-1] == ["bo@example.org"]

    code, out, _ = run(["pause", "2017-11-02"], capsys)
    assert "2017-11-02: paused" in out
    code, _, err = run(["send", "2017-11-02"], capsys)
    assert code == 1 and "is paused (paused by an editor)" in err and "digest resume" in err
    code, out, _ = run(["resume", "2017-11-02"], capsys)
    assert code == 0 and "nothing left to send" in out
    code, _, err = run(["status", "2017-12-25"], capsys)
    assert code == 1 and "has not been sent" in err


def test_send_pauses_with_a_clear_message(
    desk: Path,
    db: Database,
    smtp_server: SMTPServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Consecutive failures stop the run with exit 1, the reason, and how to go on."""
    monkeypatch.setenv("DIGEST_DELIVERY__PAUSE_AFTER_ERRORS", "3")
    add_subscribers(db, desk, [f"x{i}@example.org" for i in range(6)])
    smtp_server.inbox.defer_all = True
    code, _, err = run(["send", "2017-11-02"], capsys)
    assert code == 1 and "the send paused: 3 failures in a row" in err
    assert "digest resume 2017-11-02" in err
    smtp_server.inbox.defer_all = False
    code, out, _ = run(["pause"], capsys)  # every unfinished edition: this one already is
    assert "no send is running unpaused; nothing to pause" in out
    code, out, _ = run(["resume"], capsys)  # every paused edition
    assert code == 0 and "the edition so far: 6 sent" in out
    code, out, _ = run(["resume"], capsys)
    assert "no edition is paused; nothing to resume" in out


def test_a_dead_relay_or_outbox_stops_the_send_saying_why_and_freezes_nothing(
    desk: Path, db: Database, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No relay: exit 1 with the reason before anything is frozen (nothing to wait through);
    the test send says it too; an outbox that can't be made says which folder and why."""
    add_subscribers(db, desk, ["ann@example.org", "bo@example.org"])
    port = free_port()
    monkeypatch.setenv("DIGEST_DELIVERY_URL", f"smtp://127.0.0.1:{port}")
    code, out, err = run(["send", "2017-11-02"], capsys)
    assert code == 1 and f"connection refused by 127.0.0.1:{port}" in err
    assert "nothing was frozen or sent" in err and "digest send 2017-11-02" in err
    assert "froze" not in out
    code, _, err = run(["send", "2017-11-02", "--to", "editor@news.example.org"], capsys)
    assert code == 1 and f"connection refused by 127.0.0.1:{port}" in err
    (desk / "a-file").write_text("")
    monkeypatch.setenv("DIGEST_DELIVERY_URL", f"maildir:{desk / 'a-file' / 'outbox'}")
    code, _, err = run(["send", "2017-11-02"], capsys)
    assert code == 1 and f"cannot create {desk / 'a-file' / 'outbox'}" in err
    assert "Not a directory" in err and "nothing was frozen or sent" in err
    assert deliveries(db) == []
    code, _, err = run(["status", "2017-11-02"], capsys)
    assert code == 1 and "has not been sent" in err


def test_a_resumed_send_checks_the_relay_first_and_a_wait_says_why_and_until_when(
    desk: Path,
    db: Database,
    smtp_server: SMTPServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Deferred rows and the relay gone: exit 1 with the reason, the rows untouched. Back up,
    a send that waits for a retry says on stderr when the next try is and why it waits."""
    add_subscribers(db, desk, ["ann@example.org", "bo@example.org"])
    smtp_server.inbox.defer_all = True
    code, out, err = run(["send", "2017-11-02", "--no-wait"], capsys)
    assert code == 0 and "2 deliveries wait for a retry" in out
    assert "waiting for retries" not in err  # --no-wait: no wait
    before = [(d.status, d.attempts, d.reply) for d in deliveries(db)]
    assert {status for status, _, _ in before} == {DeliveryStatus.deferred}
    smtp_server.inbox.defer_all = False
    live = smtp_server.url
    port = free_port()
    monkeypatch.setenv("DIGEST_DELIVERY_URL", f"smtp://127.0.0.1:{port}")
    code, _, err = run(["send", "2017-11-02"], capsys)
    assert code == 1 and f"connection refused by 127.0.0.1:{port}" in err
    assert "nothing was sent this time" in err
    assert [(d.status, d.attempts, d.reply) for d in deliveries(db)] == before  # untouched

    monkeypatch.setenv("DIGEST_DELIVERY_URL", live)
    smtp_server.inbox.defer_once.add("bo@example.org")
    code, out, err = run(["send", "2017-11-02"], capsys)
    assert code == 0 and "the edition so far: 2 sent" in out
    [line] = [line for line in err.splitlines() if line.startswith("waiting for retries")]
    assert "the next try at " in line and " UTC (in " in line
    assert "the last deferral: " in line and "451 4.7.1 Greylisted" in line


def _editions(db: Database) -> list[tuple[str, int]]:
    with db.transaction() as session:
        rows = session.execute(select(FrozenEdition.date, FrozenEdition.version)).all()
    return [(day.isoformat(), version) for day, version in rows]


def _received(smtp_server: SMTPServer) -> Counter[str]:
    return Counter(r for m in smtp_server.inbox.messages for r in m.recipients)


def test_a_send_to_nobody_freezes_nothing_and_the_next_send_reaches_new_readers(
    desk: Path, db: Database, smtp_server: SMTPServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """No active subscriber: a clear error, nothing frozen; once readers are added it goes."""
    add_subscribers(db, desk, ["pending@example.org"], confirmed=False)  # not active
    code, out, err = run(["send", "2017-11-02"], capsys)
    assert code == 1 and "the edition of 2017-11-02 would reach nobody" in err
    assert "Nothing was frozen" in err and "`digest send 2017-11-02` sends it to them" in err
    assert _editions(db) == [] and deliveries(db) == []
    code, _, err = run(["send", "2017-11-02", "--new-version"], capsys)
    assert code == 1 and "would reach nobody" in err and _editions(db) == []
    code, _, err = run(["send", "2017-12-25"], capsys)  # no file: that is said first
    assert code == 1 and "not found" in err and "would reach nobody" not in err
    add_subscribers(db, desk, ["ann@example.org", "bo@example.org"])
    code, out, _ = run(["send", "2017-11-02"], capsys)
    assert code == 0 and "froze the edition 2017-11-02: 2 deliveries queued" in out
    assert "this run: 2 sent" in out
    assert _received(smtp_server) == {"ann@example.org": 1, "bo@example.org": 1}
    assert _editions(db) == [("2017-11-02", 1)]


def test_readers_who_joined_since_are_told_and_sent_to_with_include_new(
    desk: Path, db: Database, smtp_server: SMTPServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """`send DATE` counts those who joined since; --include-new sends to them, each once."""
    add_subscribers(db, desk, ["ann@example.org", "bo@example.org"])
    assert run(["send", "2017-11-02"], capsys)[0] == 0
    add_subscribers(db, desk, ["cy@example.org", "dee@example.org"])
    add_subscribers(db, desk, ["pending@example.org"], confirmed=False)  # not a reader yet
    code, out, _ = run(["send", "2017-11-02"], capsys)
    assert code == 0 and "nothing left to send: 2 sent" in out
    assert (
        "2 readers joined since it was frozen and have not got it; "
        "`digest send 2017-11-02 --include-new` sends it to them"
    ) in out
    assert len(smtp_server.inbox.messages) == 2
    code, out, _ = run(["send", "2017-11-02", "--include-new", "--yes"], capsys)
    assert code == 0 and "added 2 readers who joined since it was frozen" in out
    assert "this run: 2 sent" in out and "the edition so far: 4 sent" in out
    assert _received(smtp_server) == {
        "ann@example.org": 1,
        "bo@example.org": 1,
        "cy@example.org": 1,
        "dee@example.org": 1,
    }
    code, out, _ = run(["send", "2017-11-02", "--include-new"], capsys)
    assert code == 0 and "nobody joined since the edition 2017-11-02 was frozen" in out
    assert "nothing left to send: 4 sent" in out and len(smtp_server.inbox.messages) == 4
    assert _editions(db) == [("2017-11-02", 1)]  # the same frozen edition, not a new version


def test_without_a_terminal_the_send_goes_without_asking(
    desk: Path, db: Database, smtp_server: SMTPServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Scripts and cron have no terminal: nobody is asked (and -y is accepted)."""
    assert not sys.stdin.isatty()
    add_subscribers(db, desk, ["ann@example.org"])
    code, out, _ = run(["send", "2017-11-02"], capsys)
    assert code == 0 and "froze the edition 2017-11-02: 1 delivery queued" in out
    assert "Send the edition" not in out and len(smtp_server.inbox.messages) == 1
    add_subscribers(db, desk, ["bo@example.org"])
    code, out, _ = run(["send", "2017-11-02", "--include-new", "-y"], capsys)
    assert code == 0 and "added 1 reader who joined" in out
    assert _received(smtp_server) == {"ann@example.org": 1, "bo@example.org": 1}
