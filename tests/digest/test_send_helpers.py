"""Sender processes at the edges: stopped after one has ended, a pause, an early Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

from digest.database import open_database
from digest.send.recording import UNRECORDED_AT_MOST
from tests.digest.test_send_processes import _environment, _helpers, _sender, _subscribe
from tests.helpers import wait_for
from tests.mailserver import SMTPServer


def _ready(tmp_path: Path, count: int) -> str:
    db_url = f"sqlite:///{tmp_path / 'digest.db'}"
    db = open_database(db_url)
    _subscribe(db, tmp_path, count)
    db.close()
    return db_url


def _started(
    tmp_path: Path, smtp_server: SMTPServer, connections: int, processes: int
) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """`digest send` to 3,000 readers in a session of its own, once a helper has started."""
    env = _environment(tmp_path, _ready(tmp_path, 3000), smtp_server, connections, processes)
    process = _sender(tmp_path, env, new_session=True)
    wait_for(lambda: bool(_helpers(process.pid)) or process.poll() is not None, "a helper")
    return process, env


def test_a_stop_after_a_helper_has_ended_stops_the_send(
    tmp_path: Path, smtp_server: SMTPServer
) -> None:
    """The first process claims every row; its helper ends at once; SIGTERM still stops it."""
    env = _environment(tmp_path, _ready(tmp_path, 3000), smtp_server, 2, processes=2)
    env["DIGEST_DELIVERY__BATCH_SIZE"] = "3000"
    process = _sender(tmp_path, env, new_session=True)
    wait_for(lambda: bool(_helpers(process.pid)), "the helper to start")
    wait_for(lambda: not _helpers(process.pid) and process.poll() is None, "it to end first")
    wait_for(lambda: len(smtp_server.inbox.messages) >= 100, "the send to go on")
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)  # it used to hang here for good
    assert process.returncode == 130, output
    assert "interrupted" in output


def test_a_pause_with_a_helper_is_reported_as_a_pause(
    tmp_path: Path, smtp_server: SMTPServer
) -> None:
    """Every recipient deferred: the send pauses, and says so, as with one process."""
    env = _environment(tmp_path, _ready(tmp_path, 600), smtp_server, 2, processes=2)
    env["DIGEST_DELIVERY__PAUSE_AFTER_ERRORS"] = "5"
    smtp_server.inbox.defer_all = True
    process = _sender(tmp_path, env, new_session=True)
    output, _ = process.communicate(timeout=120)
    assert process.returncode != 0, output
    assert "the send paused: 5 failures in a row" in output, output
    assert "sending stopped" not in output and "ended unexpectedly" not in output


def test_ctrl_c_to_the_group_while_a_helper_starts_is_an_interruption(
    tmp_path: Path, smtp_server: SMTPServer
) -> None:
    """Ctrl-C reaches every process of the group, a helper still importing too."""
    process, env = _started(tmp_path, smtp_server, 2, 2)
    time.sleep(0.15)
    os.killpg(process.pid, signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 130, output
    assert "interrupted" in output and "Traceback" not in output, output
    resumed = _sender(tmp_path, env, new_session=True)
    output, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, output
    received = Counter(r for m in smtp_server.inbox.messages for r in m.recipients)
    assert len(received) == 3000
    assert sum(count - 1 for count in received.values()) <= 2 * (UNRECORDED_AT_MOST + 1)


def test_sigterm_to_digest_send_while_its_helpers_start_stops_the_send(
    tmp_path: Path, smtp_server: SMTPServer
) -> None:
    """`kill PID` (timeout, docker stop) as the helpers are being started is not lost."""
    process, _ = _started(tmp_path, smtp_server, 4, 4)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 130, output
    assert "interrupted" in output


def test_a_process_that_is_not_a_helper_keeps_its_ctrl_c() -> None:
    """The flag a helper starts with, inherited by any other process, changes nothing there."""
    import sys

    from digest import HELPER_STARTING

    done = subprocess.run(
        [sys.executable, "-c", "import digest, signal; print(signal.getsignal(signal.SIGINT))"],
        env={**os.environ, HELPER_STARTING: "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert "default_int_handler" in done.stdout, done.stdout
