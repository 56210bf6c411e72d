"""The publisher's database: opened with the one migration history, which knows every model.

``subscribers.db`` opens engines and runs Alembic; the history itself lives here, in
``digest/migrations``, because only ``digest`` can see every model (``subscribers``
never imports ``digest``). ``digest.migrations.metadata()`` gathers every table the
migrations must create, for ``env.py``'s autogenerate and the drift test (``tests/digest/test_schema.py``).

A developer who changed a model writes the matching migration with
``python -m digest.database "what changed"`` (see :func:`new_revision`).

:class:`DatabaseLock` is the one "only one of us at a time" for both engines: the
sender of an edition on SQLite, each sender's liveness on PostgreSQL, and the one
active scheduler. (Migrations lock inside their own transaction in ``subscribers.db``.)
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, text

from subscribers import db as _db
from subscribers.db import Database
from subscribers.errors import DatabaseError

if TYPE_CHECKING:  # Alembic and filelock load when they are used, not on every open
    from filelock import FileLock

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_TRIES = 3  # attempts of one DatabaseLock.acquire on SQLite (none of them waits)


def open_database(url: str, *, apply_migrations: bool = True) -> Database:
    """Open the database at ``url``, creating and migrating it as needed."""
    return _db.open_database(url, migrations=MIGRATIONS if apply_migrations else None)


def migrate(engine: Engine, revision: str = "head", *, down: bool = False) -> None:
    """Bring the schema to ``revision`` (or down to it) in one locked transaction."""
    _db.migrate(engine, MIGRATIONS, revision, down=down)


class DatabaseLock:
    """One holder at a time: a file lock beside a SQLite database, an advisory lock on PostgreSQL.

    Both vanish when the holding process dies, however it dies (the kernel drops
    the file lock; PostgreSQL drops a session's advisory locks with its
    connection), so a crashed holder never blocks the next one. ``name`` names
    the file (``digest.db.NAME.lock``); ``key`` is the advisory lock's key. The
    PostgreSQL lock lives on a connection this object keeps open while it holds
    the lock, so one object can be tried again and again (a standby polling).

    The holder removes the lock file when it lets go (one file per edition sent
    would otherwise pile up beside the database), and removes it *while still
    holding it*. A contender that opened the file just before it was removed may
    then get the lock of a file no longer in the folder: filelock (3.21 and
    later) checks for that after locking (an unlinked file, ``st_nlink == 0``)
    and does not count it as held, so two holders never coexist; that contender just tries again, on the
    file now at the path. (Only a holder killed outright leaves its file; the next
    holder of that name removes it.)
    """

    def __init__(self, db: Database, name: str, key: int) -> None:
        self.db = db
        self.name = name
        self.key = key
        self._file: FileLock | None = None
        self._holder: Connection | None = None
        if db.is_sqlite:
            from filelock import FileLock

            database = Path(db.engine.url.database or "digest.db").resolve()
            self._file = FileLock(f"{database}.{name}.lock")

    @property
    def held(self) -> bool:
        return self._file.is_locked if self._file is not None else self._holder is not None

    def acquire(self) -> bool:
        """Take the lock if no one holds it; never waits. True if this object holds it now."""
        if self.held:
            return True
        if self._file is not None:
            from filelock import Timeout

            for _ in range(_TRIES):  # a miss may be a file its holder removed as we opened it
                try:
                    self._file.acquire(timeout=0)
                except Timeout:
                    continue
                return True
            return False
        connection = self.db.engine.connect()
        try:
            got = bool(
                connection.execute(
                    text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}
                ).scalar()
            )
            connection.commit()
        except BaseException:
            connection.close()
            raise
        if not got:
            connection.close()
            return False
        self._holder = connection
        return True

    def release(self) -> None:
        """Let the next holder in; nothing if not held."""
        if self._file is not None:
            if self._file.is_locked:
                with suppress(OSError):  # removed while held (see above); else only left behind
                    Path(self._file.lock_file).unlink(missing_ok=True)
                self._file.release()
            return
        holder, self._holder = self._holder, None
        if holder is not None:
            try:
                holder.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                holder.commit()
            finally:
                holder.close()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def held_elsewhere(db: Database, key: int) -> bool:
    """PostgreSQL: whether another session holds the advisory lock ``key`` (a live holder)."""
    probe = DatabaseLock(db, f"probe-{key}", key)
    if probe.acquire():
        probe.release()
        return False
    return True


def new_revision(message: str, url: str | None = None, migrations: Path = MIGRATIONS) -> Path:
    """Write the next numbered migration: what the models have that head's schema lacks.

    The models are compared with the database at ``url`` (migrated to head first), or
    with a throw-away SQLite one. Read what it wrote before committing: autogenerate
    sees a rename as a drop and an add, and writes no data migration.
    """
    from alembic import command
    from alembic.script import ScriptDirectory

    with tempfile.TemporaryDirectory() as scratch:
        database = _db.open_database(
            url or f"sqlite:///{Path(scratch) / 'head.db'}", migrations=migrations
        )
        try:
            with database.engine.begin() as connection:
                config = _db.alembic_config(connection, migrations)
                config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
                if importlib.util.find_spec("ruff") is not None:  # the project's format
                    config.set_section_option("post_write_hooks", "hooks", "ruff")
                    config.set_section_option("post_write_hooks", "ruff.type", "module")
                    config.set_section_option("post_write_hooks", "ruff.module", "ruff")
                    config.set_section_option(
                        "post_write_hooks", "ruff.options", "format REVISION_SCRIPT_FILENAME"
                    )
                head = ScriptDirectory.from_config(config).get_current_head() or "0"
                script = command.revision(
                    config, message, autogenerate=True, rev_id=f"{int(head) + 1:04d}"
                )
        finally:
            database.close()
    if script is None or isinstance(script, list):
        raise DatabaseError(f"{migrations} has several heads; merge them before a new revision")
    return Path(script.path)


def main(argv: list[str] | None = None) -> int:
    """``python -m digest.database MESSAGE [DATABASE_URL]``: write the next migration."""
    parser = argparse.ArgumentParser(
        prog="python -m digest.database",
        description="Write the next migration in digest/migrations/versions from the models.",
    )
    parser.add_argument("message", help='what changed, e.g. "subscribers: a nickname"')
    parser.add_argument("url", nargs="?", help="compare with this database (default: SQLite)")
    args = parser.parse_args(argv)
    try:
        path = new_revision(args.message, args.url)
    except DatabaseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {path}: read it, correct it, then run the schema tests")
    return 0


if __name__ == "__main__":
    sys.exit(main())
