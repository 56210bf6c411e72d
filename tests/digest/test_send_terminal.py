"""`digest send` at a terminal asks before mailing the list: the real command in a pseudo-terminal."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

from digest.ledger import FrozenEdition
from subscribers.db import Database
from tests.helpers import ROOT, add_subscribers, deliveries
from tests.mailserver import SMTPServer

DIGEST = Path(sys.executable).with_name("digest")  # the installed console script
QUESTION = "[y/N]:"


def _at_terminal(args: list[str], folder: Path, answer: str | None = None) -> tuple[int, str, str]:
    """Run `digest ARGS` as `digest ARGS | tee FILE` would: stdin and stderr a pseudo-terminal,
    stdout a file; type ``answer`` when asked. Returns the exit status, what the terminal
    showed (the question, errors) and stdout."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "COLUMNS": "200",
    }
    output = folder / "stdout.txt"
    controller, terminal = os.openpty()
    with output.open("w") as stdout:
        process = subprocess.Popen(
            [str(DIGEST), *args],
            stdin=terminal,
            stdout=stdout,
            stderr=terminal,
            cwd=folder,
            env=env,
        )
    os.close(terminal)
    shown = b""
    deadline = time.monotonic() + 120  # only turns a hang (an unanswered question) into a failure
    try:
        while True:
            assert time.monotonic() < deadline, f"no end in sight; the terminal shows {shown!r}"
            ready, _, _ = select.select([controller], [], [], 0.5)
            if not ready:
                continue
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: the command closed the terminal, it has ended
                break
            if not chunk:
                break
            shown += chunk
            if answer is not None and shown.decode(errors="replace").rstrip().endswith(QUESTION):
                os.write(controller, answer.encode() + b"\n")
                answer = None
    finally:
        os.close(controller)
    code = process.wait(timeout=120)
    return code, shown.decode(errors="replace").replace("\r\n", "\n"), output.read_text()


def _frozen(db: Database) -> int:
    with db.transaction() as session:
        return len(session.query(FrozenEdition).all())


def test_at_a_terminal_the_send_asks_first_and_no_freezes_nothing(
    desk: Path, db: Database, smtp_server: SMTPServer
) -> None:
    """ "n": nothing frozen, exit 1; "y": sent; resuming asks nothing; --include-new asks."""
    assert DIGEST.exists(), f"the digest command is not installed next to {sys.executable}"
    add_subscribers(db, desk, ["ann@example.org", "bo@example.org"])
    code, shown, out = _at_terminal(["send", "2017-11-02"], desk, answer="n")
    assert "Send the edition of 2017-11-02 to 2 readers now? [y/N]:" in shown
    assert code == 1 and "not sent; nothing was frozen" in shown
    assert _frozen(db) == 0 and deliveries(db) == [] and smtp_server.inbox.messages == []

    code, shown, out = _at_terminal(["send", "2017-11-02"], desk, answer="y")
    assert code == 0, shown
    assert "Send the edition of 2017-11-02 to 2 readers now? [y/N]:" in shown
    assert "froze the edition 2017-11-02: 2 deliveries queued" in out
    assert QUESTION not in out  # the question is on the terminal, not in the piped output
    assert sorted(r for m in smtp_server.inbox.messages for r in m.recipients) == [
        "ann@example.org",
        "bo@example.org",
    ]

    code, shown, out = _at_terminal(["send", "2017-11-02"], desk)  # resuming: no question
    assert code == 0 and QUESTION not in shown and "nothing left to send: 2 sent" in out

    add_subscribers(db, desk, ["cy@example.org"])
    code, shown, out = _at_terminal(["send", "2017-11-02", "--include-new"], desk, answer="n")
    assert "to the 1 reader who joined since it was frozen? [y/N]:" in shown
    assert code == 1 and "not sent; nobody was added" in shown and len(deliveries(db)) == 2
    code, shown, out = _at_terminal(["send", "2017-11-02", "--include-new"], desk, answer="y")
    assert code == 0 and "added 1 reader who joined since it was frozen" in out
    assert [m.recipients for m in smtp_server.inbox.messages][-1] == ["cy@example.org"]
    code, shown, out = _at_terminal(["send", "2017-11-02", "--include-new", "--yes"], desk)
    assert code == 0 and QUESTION not in shown and "nobody joined since" in out
    assert len(smtp_server.inbox.messages) == 3
