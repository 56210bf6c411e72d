"""Two `digest run` services on one database: one schedules; killed, the other takes over."""

from __future__ import annotations

import mailbox
import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from digest.database import open_database
from digest.edition.files import EXAMPLE_EDITION
from tests.databases import fresh_postgres
from tests.helpers import add_subscribers, need_service, wait_for
from tests.mailserver import SMTPServer

READERS = ["ann@example.org", "bo@example.org", "cy@example.org"]


@contextmanager
def database(kind: str, tmp_path: Path, postgres_url: str | None) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'digest.db'}"
        return
    need_service(postgres_url is not None, "PostgreSQL: set DIGEST_TEST_POSTGRES_URL")
    assert postgres_url is not None
    with fresh_postgres(postgres_url) as url:
        yield url


def _service(folder: Path, env: dict[str, str], name: str) -> subprocess.Popen[bytes]:
    log = (folder / f"{name}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-c", "from digest.cli.app import main; main()", "run", "--no-web"],
        cwd=folder,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _received(outbox: Path) -> Counter[tuple[str, str]]:
    # the service makes new/ before cur/ and tmp/: read only once all three exist
    if not all((outbox / part).is_dir() for part in ("new", "cur", "tmp")):
        return Counter()
    return Counter(
        (str(m["Delivered-To"]), str(m["Message-ID"]).split(".")[0])
        for m in mailbox.Maildir(outbox, create=False)
    )


#: The installed CLI, run from the test's Python.
DIGEST = [sys.executable, "-c", "from digest.cli.app import main; main()"]


def _schedule(day: str, seconds: int, folder: Path, env: dict[str, str]) -> None:
    """`digest schedule DAY --at now+SECONDS`. On a loaded machine the command can take
    longer than SECONDS to start, and then refuses a time in the past: try again later."""
    for ahead in (seconds, seconds * 4, seconds * 16):
        at = (datetime.now(UTC) + timedelta(seconds=ahead)).isoformat(timespec="seconds")
        done = subprocess.run(
            [*DIGEST, "schedule", day, "--at", at],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode == 0:
            return
        assert "is in the past" in done.stderr, done.stderr
    raise AssertionError(f"could not schedule {day}: {done.stderr}")


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_standby_takes_over_after_sigkill_and_nobody_gets_two(
    kind: str, tmp_path: Path, postgres_url: str | None
) -> None:
    """One service sends the first edition; killed, the standby sends the next; once each."""
    editions = tmp_path / "editions"
    editions.mkdir()
    shutil.copy(EXAMPLE_EDITION, editions / "2017-11-02.md")
    text = EXAMPLE_EDITION.read_text().replace("date: 2017-11-02", "date: 2017-11-03")
    (editions / "2017-11-03.md").write_text(text)
    with database(kind, tmp_path, postgres_url) as db_url:
        db = open_database(db_url)
        add_subscribers(db, tmp_path, READERS)
        db.close()
        env = {
            **os.environ,
            "DIGEST_DATABASE_URL": db_url,
            "DIGEST_SECRET_KEY": "run-tests-secret-0123456789",
            "DIGEST_EDITIONS_DIR": str(editions),
        }
        first = _service(tmp_path, env, "first")
        wait_for(lambda: "scheduling:" in (tmp_path / "first.log").read_text(), "the leader")
        second = _service(tmp_path, env, "second")
        try:
            wait_for(lambda: "standing by" in (tmp_path / "second.log").read_text(), "standby")
            outbox = tmp_path / "outbox"

            def schedule(day: str, seconds: int) -> None:
                _schedule(day, seconds, tmp_path, env)

            schedule("2017-11-02", 6)
            wait_for(lambda: sum(_received(outbox).values()) >= 3, "the first edition")
            os.kill(first.pid, signal.SIGKILL)
            first.wait()
            schedule("2017-11-03", 6)
            wait_for(lambda: sum(_received(outbox).values()) >= 6, "the second edition")
            # Both services gone (the first killed, the second stopped): nothing more can
            # arrive in the outbox, which they write themselves, so what is there is final.
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=15) == 0
            received = _received(outbox)
            assert received == Counter(
                (reader, f"<{day}") for reader in READERS for day in ("20171102", "20171103")
            )
            assert "scheduling:" in (tmp_path / "second.log").read_text()  # it took over
            assert "stopping" in (tmp_path / "second.log").read_text()
        finally:
            for process in (first, second):
                if process.poll() is None:
                    process.kill()
                    process.wait()


def test_sigterm_mid_send_stops_cleanly_and_the_next_start_finishes_it(
    tmp_path: Path, smtp_server: SMTPServer
) -> None:
    """SIGTERM during a send of 1,500: exit 0 within seconds; restarted, it sends the rest once."""
    editions = tmp_path / "editions"
    editions.mkdir()
    shutil.copy(EXAMPLE_EDITION, editions / "2017-11-02.md")
    db_url = f"sqlite:///{tmp_path / 'digest.db'}"
    readers = [f"r{i:04d}@example.org" for i in range(1500)]
    db = open_database(db_url)
    add_subscribers(db, tmp_path, readers)
    db.close()
    env = {
        **os.environ,
        "DIGEST_DATABASE_URL": db_url,
        "DIGEST_DELIVERY_URL": smtp_server.url,
        "DIGEST_WEB__PUBLIC_URL": "https://list.news.example.org",  # SMTP needs a real one
        "DIGEST_SECRET_KEY": "run-tests-secret-0123456789",
        "DIGEST_EDITIONS_DIR": str(editions),
        "DIGEST_DELIVERY__CONNECTIONS": "2",
    }
    first = _service(tmp_path, env, "first")
    try:
        wait_for(lambda: "scheduling:" in (tmp_path / "first.log").read_text(), "the service")
        _schedule("2017-11-02", 6, tmp_path, env)
        wait_for(lambda: len(smtp_server.inbox.messages) >= 300, "the send to start")
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=15) == 0
        stopped_at = len(smtp_server.inbox.messages)
        assert stopped_at < 1500
        # The process is gone; once the server has closed its connections nothing more
        # of it can be delivered, so a message the server finishes after the exit shows.
        wait_for(lambda: smtp_server.inbox.open_sessions == 0, "its connections to close")
        assert len(smtp_server.inbox.messages) == stopped_at  # nothing after the stop
        second = _service(tmp_path, env, "second")
        try:
            wait_for(lambda: len(smtp_server.inbox.messages) >= 1500, "the rest", 120)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=15)
        # Stopped, connections closed: the count below is final (a double would show).
        wait_for(lambda: smtp_server.inbox.open_sessions == 0, "its connections to close")
        received = Counter(r for m in smtp_server.inbox.messages for r in m.recipients)
        assert set(received) == set(readers) and max(received.values()) == 1
        assert "resuming the unfinished send of 2017-11-02" in (tmp_path / "second.log").read_text()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
