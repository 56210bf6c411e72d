"""The one lock helper: a file lock on SQLite, an advisory lock on PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from digest.database import DatabaseLock, held_elsewhere, open_database
from subscribers.db import Database

KEY = 74_201_199


def test_a_second_holder_is_refused_until_the_first_lets_go(db: Database) -> None:
    """While one holder has the lock another is refused (never made to wait); then it gets it."""
    first, second = DatabaseLock(db, "test", KEY), DatabaseLock(db, "test", KEY)
    assert first.acquire() and first.held
    assert not second.acquire() and not second.held
    assert first.acquire()  # asking again while holding it is harmless
    first.release()
    assert second.acquire()
    assert not first.acquire()
    second.release()


def test_a_standby_can_try_again_and_again(db: Database) -> None:
    """The scheduler's standby polls one lock object; each failed try leaves nothing behind."""
    leader, standby = (
        DatabaseLock(db, "scheduler-test", KEY),
        DatabaseLock(db, "scheduler-test", KEY),
    )
    with leader as led:
        assert led
        assert [standby.acquire() for _ in range(3)] == [False, False, False]
    with standby as took_over:
        assert took_over


def test_different_locks_do_not_block_each_other(db: Database) -> None:
    """Two names (SQLite) or two keys (PostgreSQL) are two locks: senders of two editions."""
    with DatabaseLock(db, "send-1", KEY) as one, DatabaseLock(db, "send-2", KEY + 1) as two:
        assert one and two


def test_a_dead_holder_leaves_the_lock_free(db: Database) -> None:
    """A process that dies holding the lock does not block the next holder."""
    url = db.engine.url.render_as_string(hide_password=False)
    code = (
        "import os, sys\n"
        "from digest.database import DatabaseLock, open_database\n"
        f"lock = DatabaseLock(open_database({url!r}), 'test', {KEY})\n"
        "assert lock.acquire()\n"
        "from sqlalchemy import text\n"
        "holder = lock._holder\n"
        "backend = holder.execute(text('SELECT pg_backend_pid()')).scalar() if holder else 0\n"
        "print('held', backend, flush=True)\n"
        "sys.stdin.readline()\n"
        "os._exit(9)  # dies without releasing\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdin is not None
    said, backend = holder.stdout.readline().split()
    assert said == "held"
    mine = DatabaseLock(db, "test", KEY)
    assert not mine.acquire()
    if not db.is_sqlite:
        assert held_elsewhere(db, KEY)
    holder.stdin.write("\n")
    holder.stdin.flush()
    assert holder.wait() == 9
    if not db.is_sqlite:
        _wait_until_gone(db, int(backend))  # the server ends the session just after the client
    assert mine.acquire()
    if not db.is_sqlite:
        assert not held_elsewhere(db, KEY + 1)
    mine.release()


def _wait_until_gone(db: Database, backend: int) -> None:
    """Until PostgreSQL has ended the dead client's session (which drops its locks)."""
    gone = threading.Event()
    for _ in range(600):
        with db.engine.connect() as connection:
            alive = connection.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p"), {"p": backend}
            ).scalar()
        if not alive:
            return
        gone.wait(0.05)
    raise AssertionError(f"PostgreSQL session {backend} outlived its client")


def test_the_lock_file_goes_with_its_holder(db: Database, tmp_path: Path) -> None:
    """SQLite: the file beside the database is there while the lock is held, gone after."""
    if not db.is_sqlite:
        pytest.skip("PostgreSQL locks leave no file")
    lock = DatabaseLock(db, "send-7", KEY)
    assert lock.acquire()
    assert [p.name for p in tmp_path.glob("*.lock")] == ["digest.db.send-7.lock"]
    lock.release()
    assert list(tmp_path.glob("*.lock")) == []
    assert lock.acquire()  # and is made again by the next holder
    lock.release()


_CONTENDER = """
import os, sys
from digest.database import DatabaseLock, open_database
lock = DatabaseLock(open_database(sys.argv[1]), "send-1", 1)
inside = sys.argv[2]
print("ready", flush=True)
sys.stdin.readline()
held = 0
for _ in range(int(sys.argv[3])):
    if not lock.acquire():
        continue
    try:  # nobody else may be inside: creating the marker fails if someone is
        os.close(os.open(inside, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        print("two holders at once", flush=True)
        sys.exit(1)
    os.unlink(inside)
    held += 1
    lock.release()
print("held", held, flush=True)
"""


def test_removing_the_file_never_lets_two_hold_the_lock(tmp_path: Path) -> None:
    """Processes racing to take and let go of one lock (whose file each holder removes) are
    never inside together: a lock won on a file just removed does not count."""
    url = f"sqlite:///{tmp_path / 'race.db'}"
    open_database(url).close()
    inside = tmp_path / "inside"
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", _CONTENDER, url, str(inside), "400"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    for racer in racers:  # all imported and ready: then off together
        assert racer.stdout is not None and racer.stdout.readline() == "ready\n"
    for racer in racers:
        assert racer.stdin is not None
        racer.stdin.write("go\n")
        racer.stdin.flush()
    said = [racer.communicate(timeout=120)[0] for racer in racers]
    assert [racer.returncode for racer in racers] == [0, 0, 0, 0], said
    assert all(out.startswith("held ") for out in said), said
    assert sum(int(out.split()[1]) for out in said) > 0
    assert list(tmp_path.glob("*.lock")) == []
