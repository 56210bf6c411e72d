"""`digest send` as real processes: killed with SIGKILL and resumed; two sharing PostgreSQL."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from digest.database import open_database
from digest.edition.files import EXAMPLE_EDITION
from digest.send.recording import UNRECORDED_AT_MOST
from subscribers.csv_import import import_csv
from subscribers.db import Database
from tests.helpers import Clock, need_service, wait_for
from tests.mailserver import SMTPServer


def _environment(
    folder: Path, db_url: str, smtp_server: SMTPServer, connections: int, processes: int = 1
) -> dict[str, str]:
    editions = folder / "editions"
    editions.mkdir(exist_ok=True)
    shutil.copy(EXAMPLE_EDITION, editions / "2017-11-02.md")
    return {
        **os.environ,
        "DIGEST_DATABASE_URL": db_url,
        "DIGEST_DELIVERY_URL": smtp_server.url,
        "DIGEST_WEB__PUBLIC_URL": "https://list.news.example.org",  # SMTP needs a real one
        "DIGEST_SECRET_KEY": "process-tests-secret-012345",
        "DIGEST_EDITIONS_DIR": str(editions),
        "DIGEST_DELIVERY__CONNECTIONS": str(connections),
        "DIGEST_DELIVERY__BATCH_SIZE": "50",
        "DIGEST_DELIVERY__PROCESSES": str(processes),
    }


def _helpers(pid: int) -> set[int]:
    """The sender processes ``pid`` started (multiprocessing's spawned children)."""
    found: set[int] = set()
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in children.read_text().split():
            try:
                command = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:  # ended meanwhile
                continue
            if b"spawn_main" in command:
                found.add(int(child))
    return found


def _gone(pids: set[int]) -> bool:
    """Whether every process of ``pids`` has ended (a zombie counts as ended)."""
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if state != "Z":
            return False
    return True


def _sender(
    folder: Path, env: dict[str, str], *, new_session: bool = False
) -> subprocess.Popen[str]:
    """`digest send`; ``new_session``: in a session of its own, so that a signal to its
    process group (as Ctrl-C sends) reaches only it and its helpers."""
    return subprocess.Popen(
        [sys.executable, "-c", "from digest.cli.app import main; main()", "send", "2017-11-02"],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=new_session,
    )


def _subscribe(db: Database, folder: Path, count: int) -> list[str]:
    emails = [f"reader{i:05d}@example.org" for i in range(count)]
    path = folder / "readers.csv"
    path.write_text("email\n" + "\n".join(emails) + "\n")
    assert import_csv(db, path, Clock(), confirmed=True).added == count
    return emails


def _mid_send(
    tmp_path: Path, smtp_server: SMTPServer, connections: int, processes: int
) -> tuple[list[str], dict[str, str], subprocess.Popen[str]]:
    """`digest send` to 3,000 readers on SQLite, once 900 have arrived: the readers,
    the environment to resume with, and the running process."""
    db_url = f"sqlite:///{tmp_path / 'digest.db'}"
    db = open_database(db_url)
    emails = _subscribe(db, tmp_path, 3000)
    db.close()
    env = _environment(tmp_path, db_url, smtp_server, connections, processes)
    process = _sender(tmp_path, env)
    deadline = time.monotonic() + 120
    while len(smtp_server.inbox.messages) < 900:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        assert time.monotonic() < deadline, "the sender made too little progress"
        time.sleep(0.01)
    return emails, env, process


@pytest.mark.parametrize("processes", [1, 2])
def test_sigkill_mid_send_then_resume_loses_nobody(
    tmp_path: Path, smtp_server: SMTPServer, processes: int
) -> None:
    """Kill -9 a sender of 3,000 mid-way; resumed, everyone has it, doubles ≤ the window.

    Accepted messages are recorded in small batches: at most ``UNRECORDED_AT_MOST`` per
    connection are not yet recorded at the kill, the only ones sent again. With sender
    processes, the kill of `digest send` ends them too, at once.
    """
    connections = 3
    emails, env, process = _mid_send(tmp_path, smtp_server, connections, processes)
    helpers = _helpers(process.pid)
    assert len(helpers) == processes - 1
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    wait_for(lambda: _gone(helpers), "the sender processes to end with digest send")
    at_kill = len(smtp_server.inbox.messages)
    assert at_kill < 3000

    resumed = _sender(tmp_path, env)
    output, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, output
    assert "resuming the edition 2017-11-02" in output
    received = Counter(r for m in smtp_server.inbox.messages for r in m.recipients)
    assert set(received) == set(emails)  # nobody missing
    doubles = sum(count - 1 for count in received.values())
    window = connections * (UNRECORDED_AT_MOST + 1)  # and the one in flight on each
    assert doubles <= window, f"{doubles} duplicates for {connections} connections"
    assert "the edition so far: 3,000 sent" in output


@pytest.mark.parametrize("processes", [1, 2])
def test_sigterm_mid_send_records_what_it_sent(
    tmp_path: Path, smtp_server: SMTPServer, processes: int
) -> None:
    """SIGTERM (systemd, docker stop) stops `digest send` like Ctrl-C: every accepted message
    is recorded before it exits, so the resumed send doubles at most one per connection;
    sender processes stop and record theirs too."""
    connections = 3
    emails, env, process = _mid_send(tmp_path, smtp_server, connections, processes)
    assert len(_helpers(process.pid)) == processes - 1
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 130, output  # interrupted, not killed
    assert "interrupted; `digest send 2017-11-02` resumes" in output

    resumed = _sender(tmp_path, env)
    output, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, output
    received = Counter(r for m in smtp_server.inbox.messages for r in m.recipients)
    assert set(received) == set(emails)
    doubles = sum(count - 1 for count in received.values())
    assert doubles <= connections, f"{doubles} duplicates for {connections} connections"


def test_two_senders_share_one_send_on_postgresql(
    postgres_url: str | None, smtp_server: SMTPServer, tmp_path: Path
) -> None:
    """Two `digest send` processes on one PostgreSQL database: each reader gets exactly one."""
    need_service(postgres_url is not None, "PostgreSQL: set DIGEST_TEST_POSTGRES_URL")
    assert postgres_url is not None
    from tests.databases import fresh_postgres

    with fresh_postgres(postgres_url) as db_url:
        db = open_database(db_url)
        emails = _subscribe(db, tmp_path, 2000)
        db.close()
        env = _environment(tmp_path, db_url, smtp_server, 2)
        first, second = _sender(tmp_path, env), _sender(tmp_path, env)
        outputs = [process.communicate(timeout=300)[0] for process in (first, second)]
        assert first.returncode == 0 and second.returncode == 0, outputs
    received = Counter(r for m in smtp_server.inbox.messages for r in m.recipients)
    assert received == Counter(emails)  # everyone exactly once
    shares = [int(out.split("this run: ")[1].split(" sent")[0].replace(",", "")) for out in outputs]
    assert sum(shares) == 2000 and min(shares) > 0, shares


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_sender_processes_reach_each_reader_once(
    kind: str, postgres_url: str | None, smtp_server: SMTPServer, tmp_path: Path
) -> None:
    """`digest send` with a helper process: every reader exactly once, all counted."""
    from contextlib import nullcontext

    from tests.databases import fresh_postgres

    if kind == "postgresql":
        need_service(postgres_url is not None, "PostgreSQL: set DIGEST_TEST_POSTGRES_URL")
        assert postgres_url is not None
    database = (
        fresh_postgres(postgres_url)
        if kind == "postgresql" and postgres_url
        else nullcontext(f"sqlite:///{tmp_path / 'digest.db'}")
    )
    with database as db_url:
        db = open_database(db_url)
        emails = _subscribe(db, tmp_path, 2000)
        db.close()
        process = _sender(tmp_path, _environment(tmp_path, db_url, smtp_server, 4, processes=2))
        seen: set[int] = set()
        while process.poll() is None and not seen:
            seen = _helpers(process.pid)
            time.sleep(0.01)
        output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    assert len(seen) == 1, output  # it did start one
    received = Counter(r for m in smtp_server.inbox.messages for r in m.recipients)
    assert received == Counter(emails)  # everyone exactly once
    assert "this run: 2,000 sent" in output and "the edition so far: 2,000 sent" in output
