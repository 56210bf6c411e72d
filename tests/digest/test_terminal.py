"""Text from outside reaches the operator's terminal as text: never markup, never escapes.

Anyone can name themselves through the sign-up form, and readers, mail servers
and feeds write the rest; what the CLI prints of it must neither crash Rich nor
be run by the terminal (a clear-screen, an OSC 8 link, a right-to-left override).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import update

from digest.cli.options import VisibleFormatter, visible
from digest.feedback.store import Incoming
from subscribers.db import Database
from subscribers.models import Subscriber
from tests.helpers import (
    Scenario,
    message_id,
    permanent_bounce,
    run,
    scenario_settings,
    send_scenario,
)

#: Names as a stranger may type them into the form, and how each must be shown.
NAMES = {
    "[/]": "[/]",
    "[link=https://evil.example]click[/link]": "[link=https://evil.example]click[/link]",
    "\x1b]8;;https://evil.example\x07x\x1b]8;;\x07": (
        "\\x1b]8;;https://evil.example\\x07x\\x1b]8;;\\x07"
    ),
    "\x1b[2J": "\\x1b[2J",
    "\u202egnp.exe": "\\u202egnp.exe",
}
#: What a terminal would act on rather than show.
RUN_BY_A_TERMINAL = ("\x1b", "\x07", "\u202e")


def assert_shown(out: str, expected: list[str]) -> None:
    """Each of ``expected`` is in ``out`` as typed, and nothing a terminal would run."""
    for hidden in RUN_BY_A_TERMINAL:
        assert hidden not in out, f"{hidden!r} reached the terminal"
    for text in expected:
        assert text in out, f"{text!r} not shown"


@pytest.fixture
def named(
    clean_env: Path,
    db: Database,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> dict[str, str]:
    """Subscribers 1–5, each with one of NAMES; their addresses by name."""
    monkeypatch.setenv("DIGEST_DATABASE_URL", db_url)
    monkeypatch.setenv("COLUMNS", "400")  # one line per table row
    addresses = {name: f"reader{n}@example.org" for n, name in enumerate(NAMES, start=1)}
    for name, email in addresses.items():
        code, _, err = run(["subscribers", "add", email, "--name", name, "--confirmed"], capsys)
        assert code == 0, err
    # Names lose control characters where they enter now; a database written by an earlier
    # version (or any other outside text) may still hold them, and must still be shown safely.
    with db.transaction() as session:
        for name, email in addresses.items():
            session.execute(update(Subscriber).where(Subscriber.email == email).values(name=name))
    return addresses


def run_quietly(args: list[str]) -> tuple[int, str, str]:
    """The `digest` command in a child process, its output captured through pipes."""
    done = subprocess.run(_command(args), capture_output=True, text=True, env=os.environ.copy())
    return done.returncode, done.stdout, done.stderr


def _command(args: list[str]) -> list[str]:
    return [sys.executable, "-c", "from digest.cli.app import main; main()", *args]


def on_a_terminal(args: list[str]) -> bytes:
    """What the `digest` command writes to stdout when stdout is a terminal (a pty)."""
    leader, follower = pty.openpty()
    try:
        child = subprocess.Popen(
            _command(args), stdin=subprocess.DEVNULL, stdout=follower, env=os.environ.copy()
        )
    finally:
        os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed its end of the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert child.wait() == 0
    return b"".join(chunks)


def test_visible_names_what_a_terminal_would_act_on() -> None:
    """Controls, DEL, C1, bidi controls and lone carriage returns are written out; text stays."""
    assert visible("a\tb\r\nc\rd\x7f\x9b\u2066é😀[/]") == "a\tb\r\nc\\x0dd\\x7f\\x9b\\u2066é😀[/]"


def test_subscribers_named_by_strangers_are_listed_as_typed(
    named: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """`subscribers list` and `show --format table` print every name literally, without crash."""
    code, out, err = run(["subscribers", "list"], capsys)
    assert code == 0, err
    assert_shown(out, list(NAMES.values()))
    assert "5 subscribers" in out
    for name, email in named.items():
        code, out, err = run(["subscribers", "show", email, "--format", "table"], capsys)
        assert code == 0, err
        assert_shown(out, [NAMES[name]])


def test_json_to_anywhere_escapes_what_a_terminal_would_run(
    named: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """JSON writes U+202E as \\u202e: the same data to a JSON reader, nothing a terminal runs."""
    code, out, _ = run(["subscribers", "list", "--format", "json"], capsys)
    assert code == 0 and "\\u202egnp.exe" in out
    assert [row["name"] for row in json.loads(out)] == list(NAMES)
    for hidden in RUN_BY_A_TERMINAL:
        assert hidden not in out
    code, out, _ = run(["subscribers", "show", named["\u202egnp.exe"]], capsys)
    assert code == 0 and "\u202e" not in out and json.loads(out)["name"] == "\u202egnp.exe"


def test_csv_shows_escapes_on_a_terminal_and_keeps_them_in_a_pipe(named: dict[str, str]) -> None:
    """CSV to a terminal shows ESC as \\x1b; into a pipe it is the data exactly."""
    for args in (["subscribers", "list", "--format", "csv"], ["subscribers", "export"]):
        screen = on_a_terminal(args).decode()
        assert_shown(screen, list(NAMES.values()))
        code, piped, err = run_quietly(args)
        assert code == 0, err
        names = [row["name"] for row in csv.DictReader(io.StringIO(piped, newline=""))]
        assert names == list(NAMES), args


def test_an_error_quoting_outside_text_shows_it_literally(
    named: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The error handler prints a file name with markup and escapes in it as typed."""
    missing = "[/]\x1b[2J\u202evsc.exe"
    code, _, err = run(["subscribers", "import", missing], capsys)
    assert code == 1 and err.splitlines()[1].startswith("error: ")  # after the settings notice
    assert_shown(err, ["[/]\\x1b[2J\\u202evsc.exe does not exist"])


@pytest.fixture
def mail(db: Database, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Scenario:
    """The edition of 2017-11-02 sent to ten readers, the CLI pointed at its database."""
    settings = scenario_settings(tmp_path, db_url)
    send_scenario(db, settings, tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DIGEST_DATABASE_URL", db_url)
    monkeypatch.setenv("DIGEST_SECRET_KEY", "feedback-corpus-secret-0001")
    monkeypatch.setenv("DIGEST_EDITIONS_DIR", str(tmp_path / "editions"))
    monkeypatch.setenv("COLUMNS", "400")
    return Scenario(db, settings, tmp_path)


def test_status_shows_a_bounce_diagnostic_as_written(
    mail: Scenario, capsys: pytest.CaptureFixture[str]
) -> None:
    """A remote server's `[/]` and escapes in a bounce do not crash or reach `status`."""
    bounce = permanent_bounce(mail, 6, "<bounce@mx.example.net>").replace(
        b"550 5.2.2 refused", b"550 5.2.2 [/] \x1b[2J \x1b]8;;https://evil.example\x07 refused"
    )
    assert mail.filer().file([Incoming(bounce, "bounce")]).stored == 1
    code, out, err = run(["status", "2017-11-02"], capsys)
    assert code == 0, err
    assert_shown(out, ["5.2.2 [/] \\x1b[2J \\x1b]8;;https://evil.example\\x07 refused"])


def test_feedback_show_and_list_print_a_subject_as_written(
    mail: Scenario, capsys: pytest.CaptureFixture[str]
) -> None:
    """A reader's subject with `[/]`, ESC and U+202E is printed literally by show and list."""
    raw = (
        "From: ana.lima@gmail.com\nTo: desk@news.example.org\n"
        "Subject: [/] =?utf-8?q?=E2=80=AEfdp=2Eexe?= [link=https://evil.example]x[/link]\n"
        f"Message-ID: <subject@mail.example.com>\nIn-Reply-To: {message_id(1)}\n\n"
        "Thanks.\n"
    ).encode()
    raw = raw.replace(b"Subject: [/]", b"Subject: [/] \x1b[2J")
    assert mail.filer().file([Incoming(raw, "reply")]).stored == 1
    subject = "[/] \\x1b[2J \\u202efdp.exe [link=https://evil.example]x[/link]"
    for args in (["feedback", "show", "1"], ["feedback", "list"]):
        code, out, err = run(args, capsys)
        assert code == 0, err
        assert_shown(out, [subject])


def test_check_prints_titles_as_written(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`check` shows a title and a read's title (a feed's, say) with markup in them as typed."""
    monkeypatch.setenv("COLUMNS", "400")
    (clean_env / "2017-11-02.md").write_text(
        '---\ndate: 2017-11-02\ntitle: "[/] \\u202eexe"\nreads:\n'
        '  - title: "[link=https://evil.example]x[/link]"\n    url: https://example.org/a\n'
        "---\n## Head\n\nText.\n",
        encoding="utf-8",
    )
    code, out, err = run(["check", "2017-11-02.md"], capsys)
    assert code == 0, err
    assert_shown(out, ["[/] \\u202eexe", "[link=https://evil.example]x[/link] <https"])
    assert (
        re.search(r"^\d+ warnings?:$", out, re.M) and "  warning: " in out
    )  # our own styling is not lost


def test_log_lines_show_what_they_quote(capsys: pytest.CaptureFixture[str]) -> None:
    """`digest run`'s log lines make an escape in a quoted SMTP reply visible."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(VisibleFormatter("%(levelname)s: %(message)s"))
    log = logging.getLogger("tests.terminal")
    log.addHandler(handler)
    try:
        log.error("could not tell the editors: %s", "550 [/] \x1b[2J\u202e")
    finally:
        log.removeHandler(handler)
    assert capsys.readouterr().err == "ERROR: could not tell the editors: 550 [/] \\x1b[2J\\u202e\n"
