"""`digest new`'s sample text never goes out: check refuses it and so does every send path."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import time_machine

from digest.edition.files import EXAMPLE_EDITION
from digest.edition.parse import normalised
from digest.edition.skeleton import skeleton_problems
from digest.schedule import jobs
from subscribers.db import Database
from tests.helpers import add_subscribers, deliveries, run
from tests.mailserver import SMTPServer, text_part

EDITOR = "desk@news.example.org"
#: What `digest new 2017-11-03` wrote before the sample text was recognised.
OLD_SKELETON = """---
date: 2017-11-03
title: Executive Summary for November 3rd
summary: "Ministers met; the port reopened."
reads: []
---
## A headline that says what happened

Two or three short paragraphs: what happened, why it matters, what comes next.
Name your sources and link them, [like this](https://example.org/source).
"""


def test_sample_text_is_found_by_line_however_it_is_wrapped() -> None:
    """Re-wrapped sample sentences, a sample link anywhere, CRLF and a BOM: the right lines."""
    text = (
        "\ufeff---\r\ndate: 2017-11-03\r\nreads:\r\n"
        "  - {title: T, url: 'https://EXAMPLE.invalid./x'}\r\n---\r\n## Port\r\n\r\n"
        "Cranes moved. Two or three\r\nshort paragraphs: what happened, why it\r\n"
        "matters, what   comes next. See <https://example.invalid/y>.\r\n"
    )
    found = skeleton_problems(normalised(text), "e.md")
    assert [(p.line, p.message.split(" from ")[0]) for p in found] == [
        (4, "sample link https://EXAMPLE.invalid./x"),
        (8, "sample text ('Two or three short paragraphs…')"),
        (10, "sample link https://example.invalid/y"),
    ]
    example = EXAMPLE_EDITION.read_text(encoding="utf-8")
    assert skeleton_problems(example) == []  # example.org links of a real edition are fine
    story = (
        "## A headline that says what happened at the port\n\nWe asked what happened, why it "
        "matters, what comes next; two or three short paragraphs could not hold it.\n"
    )
    assert skeleton_problems(story) == []  # the words in a real story, not the sample


@pytest.fixture
def newsroom(desk: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CLI's desk with a secret and an editor to tell."""
    monkeypatch.setenv("DIGEST_SECRET_KEY", "skeleton-tests-secret-0123")
    monkeypatch.setenv("DIGEST_SCHEDULE__EDITORS", json.dumps([EDITOR]))
    return desk


def only_the_dek_written(folder: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """`digest new 2017-11-03`, then the summary filled in and nothing else."""
    code, _, err = run(["new", "2017-11-03"], capsys)
    assert code == 0, err
    path = folder / "editions" / "2017-11-03.md"
    text = path.read_text(encoding="utf-8")
    assert 'summary: ""' in text
    path.write_text(text.replace('summary: ""', 'summary: "Ministers met; the port reopened."'))
    return path


def test_check_refuses_sample_text_naming_each_line(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only the dek filled: an error per sample line, never "OK"; preview shows it with a warning."""
    path = only_the_dek_written(clean_env, capsys)
    code, out, err = run(["check", "2017-11-03", "--strict"], capsys)
    assert code == 1 and "OK" not in out
    assert "error: the edition has 3 problems:" in err
    for line in (7, 9, 10):
        assert f"editions/2017-11-03.md:{line}: sample text (" in err
    assert "never sent" in err

    # partly filled: the headline and the paragraph written, the sample link left
    text = path.read_text(encoding="utf-8")
    text = text.replace("A headline that says what happened", "The port reopens")
    text = text.replace(
        "Two or three short paragraphs: what happened, why it matters, what comes next.",
        "Cranes moved again at dawn after nine days.",
    )
    text = text.replace("Name your sources and link them, ", "The union's statement is ")
    path.write_text(text)
    code, out, err = run(["check", "2017-11-03"], capsys)
    assert code == 1 and "error: the edition has 1 problem:" in err
    assert "editions/2017-11-03.md:10: sample link https://example.invalid/" in err

    # a skeleton an earlier version wrote is recognised by its sentences and link too
    path.write_text(OLD_SKELETON)
    code, _, err = run(["check", "editions/2017-11-03.md"], capsys)
    assert code == 1 and "the edition has 3 problems:" in err and ":10: sample text" in err

    code, out, err = run(["preview", "2017-11-03", "--format", "text"], capsys)
    assert code == 0 and "Two or three short paragraphs" in out
    assert "warning: editions/2017-11-03.md:9: sample text (" in err

    code, out, _ = run(["reads", "list", "--date", "2017-11-03"], capsys)
    assert code == 0 and "0 reads for the edition of 2017-11-03" in out


def test_no_send_path_mails_sample_text(
    newsroom: Path,
    db: Database,
    smtp_server: SMTPServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Test send, send, schedule (now and when it fires), the daily send and draft all refuse."""
    add_subscribers(db, newsroom, ["ann@example.org", "bo@example.org"])
    path = only_the_dek_written(newsroom, capsys)

    code, _, err = run(["send", "2017-11-03", "--to", EDITOR], capsys)
    assert code == 1 and "editions/2017-11-03.md:9: sample text" in err
    code, _, err = run(["send", "2017-11-03"], capsys)
    assert code == 1 and "editions/2017-11-03.md:9: sample text" in err
    assert deliveries(db) == []
    with time_machine.travel(datetime(2017, 11, 2, 12, 0, tzinfo=UTC), tick=True):
        code, _, err = run(["schedule", "2017-11-03", "--at", "2017-11-03 07:00"], capsys)
        assert code == 1 and "editions/2017-11-03.md:9: sample text" in err
        code, out, _ = run(["schedule", "list", "--format", "json"], capsys)
        assert json.loads(out) == []
    assert smtp_server.inbox.messages == []

    # scheduled while the file was fine, then the file went back to the sample: refused on firing
    jobs.scheduled_send(edition="2017-11-03", source=str(path))
    with time_machine.travel(datetime(2017, 11, 3, 7, 0, tzinfo=UTC), tick=True):
        jobs.daily_send()
        monkeypatch.setenv("DIGEST_SCHEDULE__POLICY", "approval")
        jobs.daily_draft()
    notices = smtp_server.inbox.messages
    assert [str(m.message["Subject"]).split("] ", 1)[1] for m in notices] == [
        "the scheduled send of 2017-11-03 did not go out",
        "no edition sent for 2017-11-03",
        "no draft for 2017-11-03",
    ]
    assert all(m.recipients == [EDITOR] for m in notices)
    assert all("2017-11-03.md:9: sample text" in text_part(m.message) for m in notices)
    assert deliveries(db) == []
