"""The SQLite files are private, and a database URL's password is never shown."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import text

from digest.database import open_database
from subscribers import db as subscribers_db
from subscribers.db import redact
from subscribers.errors import DatabaseError

SUFFIXES = ("", "-wal", "-shm")


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def modes_while_open(path: Path, mode: int | None = None) -> dict[str, int]:
    """The modes of the database, its WAL and its shared memory, with a write in the WAL."""
    url = f"sqlite:///{path}"
    opened = (
        open_database(url)
        if mode is None
        else subscribers_db.open_database(url, migrations=None, file_mode=mode)
    )
    with opened as db, db.engine.connect() as connection:
        connection.execute(text("CREATE TABLE IF NOT EXISTS probe (x INTEGER)"))
        connection.execute(text("INSERT INTO probe VALUES (1)"))
        connection.commit()
        return {suffix: stat.S_IMODE(os.stat(f"{path}{suffix}").st_mode) for suffix in SUFFIXES}


def test_a_new_database_and_its_wal_and_shm_are_owner_only(tmp_path: Path) -> None:
    """Even under umask 000, the new database file, -wal and -shm are created 0600."""
    with umask(0):
        modes = modes_while_open(tmp_path / "new" / "digest.db")
    assert modes == {"": 0o600, "-wal": 0o600, "-shm": 0o600}


def test_an_existing_database_keeps_its_mode_and_the_wal_follows(tmp_path: Path) -> None:
    """chmod 640 on the database lets a group read it: its -wal and -shm get 0640 too."""
    path = tmp_path / "digest.db"
    modes_while_open(path)
    path.chmod(0o640)
    with umask(0o077):
        assert modes_while_open(path) == {"": 0o640, "-wal": 0o640, "-shm": 0o640}


def test_file_mode_is_exact_whatever_the_umask(tmp_path: Path) -> None:
    """A file_mode of 0640 gives 0640 files under umask 077, which would narrow os.open's."""
    with umask(0o077):
        modes = modes_while_open(tmp_path / "group.db", 0o640)
    assert modes == {"": 0o640, "-wal": 0o640, "-shm": 0o640}


def test_an_uncreatable_database_is_a_clear_error(tmp_path: Path) -> None:
    """A database file that cannot be created is a DatabaseError naming it, not OSError."""
    (tmp_path / "file").write_text("")
    with pytest.raises(DatabaseError, match=r"cannot create the database .*file/digest\.db"):
        open_database(f"sqlite:///{tmp_path / 'file' / 'digest.db'}")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:secret@host:5432/db", "postgresql://u:***@host:5432/db"),
        ("postgresql://u:se@cr/et@host/db", "postgresql://u:***@host/db"),
        ("postgresql//u:secret@host/db", "postgresql//u:***@host/db"),
        ("postgresql:/u:secret@host/db", "postgresql:/u:***@host/db"),
        ("postgresql://a/b:pa//ss@host", "postgresql://a/b:***@host"),
        ("postgresql://u@host/db", "postgresql://u@host/db"),
        ("sqlite:////srv/me:you@corp/digest.db", "sqlite:////srv/me:you@corp/digest.db"),
    ],
)
def test_redact_hides_the_password_even_of_a_malformed_url(url: str, shown: str) -> None:
    """The password, up to the last '@', becomes ***; a URL without one is unchanged."""
    assert redact(url) == shown
