"""`digest subscribers import` as a real process: its worker processes die with it."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import wait_for

DIGEST = [sys.executable, "-c", "from digest.cli.app import main; main()"]


def _children(pid: int) -> set[int]:
    """The processes ``pid`` started, from Linux's /proc (empty once it is gone)."""
    found: set[int] = set()
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            text = Path(f"/proc/{pid}/task/{task}/children").read_text()
            found |= {int(child) for child in text.split()}
    except OSError:
        pass
    return found


def _start_time(pid: int) -> str | None:
    """A process's start time (field 22 of /proc/PID/stat), None once it has ended.

    A zombie counts as ended: it runs nothing, and who reaps it is pid 1's business.
    The start time tells a new process that got the same pid from the one we saw.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    return None if fields[0] in ("Z", "X") else fields[19]


def _subscribers(database: Path) -> int:
    """How many subscribers the import has committed so far (0 before its first batch)."""
    try:
        connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1)
    except sqlite3.Error:
        return 0
    try:
        return int(connection.execute("SELECT count(*) FROM subscribers").fetchone()[0])
    except sqlite3.Error:  # not created yet, or busy
        return 0
    finally:
        connection.close()


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux's /proc")
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one CPU: the import uses no worker")
def test_kill_9_of_a_big_import_leaves_no_worker_behind(tmp_path: Path) -> None:
    """SIGKILL of the importer while its address-checking worker runs: every process it
    started (the worker, multiprocessing's resource tracker) ends too."""
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8") as out:
        out.write("email,name\n")
        for n in range(200_000):
            out.write(f"reader.{n}@example.com,Reader Number {n}\n")
    assert path.stat().st_size > 1_000_000  # the size that starts a worker
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env |= {"DIGEST_DATABASE_URL": f"sqlite:///{tmp_path / 'digest.db'}"}
    env["DIGEST_SECRET_KEY"] = "import-processes-secret-0001"
    process = subprocess.Popen(
        [*DIGEST, "subscribers", "import", str(path), "--confirmed"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(
            lambda: any("spawn_main" in _command(c) for c in _children(process.pid)),
            "the import's worker process",
        )
        # and at work: a worker killed before it has read its task from the parent ends
        # on its own, so wait for a batch the worker checked to be committed
        wait_for(lambda: _subscribers(tmp_path / "digest.db") > 0, "the first batch")
        started = {pid: _start_time(pid) for pid in _children(process.pid)}
        assert process.poll() is None, "the import ended before it could be killed"
        process.send_signal(signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    started = {pid: when for pid, when in started.items() if when is not None}

    def running() -> list[int]:
        return [pid for pid, when in started.items() if _start_time(pid) == when]

    try:
        assert started
        wait_for(lambda: not running(), f"the import's processes {sorted(started)} to end")
    finally:
        for pid in running():  # left behind by a failure: not by the next test too
            os.kill(pid, signal.SIGKILL)
