"""`digest feedback import` files readers' mail only: no junk files, none of our own mail."""

from __future__ import annotations

import random
import re
from email.message import EmailMessage
from pathlib import Path

import pytest

from subscribers.db import Database
from tests.helpers import READERS, Scenario, reader_reply, run, scenario_settings, send_scenario


@pytest.fixture
def desk(
    db: Database, db_url: str, tmp_path: Path, clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> Scenario:
    """The feedback scenario (the edition sent to ten readers through a maildir outbox),
    with the CLI pointed at it."""
    settings = scenario_settings(tmp_path, db_url)
    send_scenario(db, settings, tmp_path)
    monkeypatch.setenv("DIGEST_DATABASE_URL", db_url)
    monkeypatch.setenv("DIGEST_SECRET_KEY", "feedback-corpus-secret-0001")
    monkeypatch.setenv("DIGEST_EDITIONS_DIR", str(tmp_path / "editions"))
    return Scenario(db, settings, tmp_path)


def folder(desk: Scenario, files: dict[str, bytes]) -> Path:
    path = desk.tmp / "saved"
    path.mkdir()
    for name, raw in files.items():
        (path / name).write_bytes(raw)
    return path


def test_files_that_are_no_mail_are_skipped_with_the_reason(
    desk: Scenario, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = folder(
        desk,
        {
            "1-empty.eml": b"",
            "2-random.eml": random.Random(5).randbytes(3000),
            "3-note.eml": b"Remember to call the printer.\n\nAnd the courier.\n",
            "4-fields.eml": b"Subject: a list of things\nPriority: high\n\nmilk\n",
            "5-reply.eml": reader_reply(1, 1),
        },
    )
    code, out, _ = run(["feedback", "import", str(saved)], capsys)
    assert code == 0
    assert "1 stored" in out
    assert "4 items skipped, not mail messages:" in out
    assert f"{saved / '1-empty.eml'}: empty file" in out
    assert f"{saved / '2-random.eml'}: binary data, not a mail message" in out
    assert f"{saved / '3-note.eml'}: not a mail message: it does not begin with header" in out
    assert f"{saved / '4-fields.eml'}: not a mail message: its header block has no From" in out
    [row] = desk.rows()
    assert row.kind == "reply" and row.origin.endswith("5-reply.eml")


@pytest.mark.parametrize("content", [b"", b"just a line of text\n", bytes(range(256))])
def test_a_file_that_is_no_mail_files_nothing_and_fails(
    desk: Scenario, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    path = desk.tmp / "message.eml"
    path.write_bytes(content)
    code, out, err = run(["feedback", "import", str(path)], capsys)
    assert code == 1
    assert "1 item skipped, not mail messages:" in out
    assert f"nothing was filed from {path}" in err
    assert desk.rows() == []


def test_our_own_outgoing_mail_is_skipped_and_counted(
    desk: Scenario, capsys: pytest.CaptureFixture[str]
) -> None:
    """The outbox's copies (Message-IDs in the ledger), a test send (our sender and List-Id,
    a Message-ID we never recorded) are skipped; mail from our sender without our List-Id
    and readers' replies are filed."""
    outbox = desk.tmp / "outbox" / "new"
    copies = sorted(outbox.iterdir())
    assert len(copies) == len(READERS)
    test_send = re.sub(
        rb"Message-ID: <[^>]+>",
        b"Message-ID: <never-recorded@news.example.org>",
        copies[0].read_bytes(),
    )
    assert test_send != copies[0].read_bytes() and b"List-Id:" in test_send
    (outbox / "test-send").write_bytes(test_send)
    note = EmailMessage()
    note["From"] = "briefing@news.example.org"
    note["To"] = "desk@news.example.org"
    note["Subject"] = "A note from the sending address"
    note["Message-ID"] = "<note@news.example.org>"
    note.set_content("Not an edition.")
    (outbox / "note").write_bytes(note.as_bytes())
    (outbox / "reply").write_bytes(reader_reply(2, 2))
    code, out, _ = run(["feedback", "import", str(desk.tmp / "outbox")], capsys)
    assert code == 0
    assert "2 stored" in out
    assert "11 copies of our own outgoing mail skipped" in out
    assert sorted(row.subject or "" for row in desk.rows()) == [
        "A note from the sending address",
        "Re: Executive Summary for November 2nd",
    ]


def test_an_outbox_of_our_own_mail_only_files_nothing_and_fails(
    desk: Scenario, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["feedback", "import", str(desk.tmp / "outbox")], capsys)
    assert code == 1
    assert f"{len(READERS)} copies of our own outgoing mail skipped" in out
    assert "nothing was filed" in err
    assert desk.rows() == []
