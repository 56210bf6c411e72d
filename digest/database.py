"""The publisher's database: opened with the one migration history, which knows every model.

``subscribers.db`` opens engines and runs Alembic; the history itself lives here, in
``digest/migrations``, because only ``digest`` can see every model (``subscribers``
never imports ``digest``). ``metadata()`` gathers every table the migrations must
create, for ``env.py``'s autogenerate and the drift test.

:class:`DatabaseLock` is the one "only one of us at a time" for both engines: the
sender of an edition on SQLite, each sender's liveness on PostgreSQL, and the one
active scheduler. (Migrations lock inside their own transaction in ``subscribers.db``.)
"""

from __future__ import annotations

from pathlib import Path

from filelock import FileLock, Timeout
from sqlalchemy import Connection, Engine, MetaData, text

from subscribers import db as _db
from subscribers.db import Database

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def metadata() -> MetaData:
    """Every model's table: importing the model modules registers them on ``Base``."""
    import digest.assemble.reads
    import digest.feedback.models
    import digest.ledger.models  # noqa: F401
    from subscribers.models import Base

    return Base.metadata


#: Tables created by a migration but defined by another library (APScheduler's job store).
FOREIGN_TABLES = frozenset({"apscheduler_jobs"})


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Alembic's filter: compare only what our models define."""
    table = getattr(obj, "table", None)
    table_name = name if type_ == "table" else getattr(table, "name", None)
    return table_name not in FOREIGN_TABLES


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
    """

    def __init__(self, db: Database, name: str, key: int) -> None:
        self.db = db
        self.name = name
        self.key = key
        self._file: FileLock | None = None
        self._holder: Connection | None = None
        if db.is_sqlite:
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
            try:
                self._file.acquire(timeout=0)
            except Timeout:
                return False
            return True
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
