"""Opening the database: the engine, its per-connection settings, and migrations.

SQLite (the embedded default) gets WAL, foreign keys, a busy timeout, secure
delete (freed bytes zeroed) and ``BEGIN IMMEDIATE`` for every transaction, so two
processes writing at once wait for each other instead of failing with "database is
locked". PostgreSQL is
reached through psycopg 3. The caller names the Alembic migrations to apply (the
one history lives with the application, which knows every model: ``digest.database``);
they run when the database is opened, under a lock so two processes starting together
migrate once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from subscribers.errors import DatabaseError

BUSY_TIMEOUT_MS = 30_000
_MIGRATION_LOCK = 74_201_117  # PostgreSQL advisory lock key for migrations


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` and use psycopg 3 for them."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _sqlite_settings(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA synchronous = NORMAL")
        # deleted and overwritten bytes are zeroed, not left in free space: an erased
        # person's data must not stay readable in the file (some builds have it off)
        cursor.execute("PRAGMA secure_delete = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


@dataclass(frozen=True)
class Database:
    """An opened, migrated database and a factory for sessions on it."""

    engine: Engine
    sessions: sessionmaker[Session]

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work is committed together, or not at all."""
        with self.sessions.begin() as session:
            yield session

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def alembic_config(connection: Any, migrations: Path) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations))
    config.attributes["connection"] = connection
    return config


def migrate(
    engine: Engine, migrations: Path, revision: str = "head", *, down: bool = False
) -> None:
    """Bring the schema to ``revision`` (or down to it) in one locked transaction."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        config = alembic_config(connection, migrations)
        if down:
            command.downgrade(config, revision)
        else:
            command.upgrade(config, revision)


def open_database(url: str, *, migrations: Path | None = None) -> Database:
    """Open the database at ``url``; with ``migrations``, create and migrate it as needed."""
    try:
        parsed = make_url(normalise_url(url))
    except ArgumentError as exc:
        raise DatabaseError(
            f"database URL {url!r} is not valid; use e.g. sqlite:///digest.db or "
            "postgresql://user@host/dbname"
        ) from exc
    options: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
    elif parsed.get_backend_name() != "postgresql":
        raise DatabaseError(
            f"unsupported database {parsed.get_backend_name()!r}: use SQLite or PostgreSQL"
        )
    else:
        options["pool_pre_ping"] = True
    try:
        engine = create_engine(parsed, **options)
    except (ArgumentError, ImportError) as exc:
        raise DatabaseError(f"cannot use database {url}: {exc}") from exc
    if engine.dialect.name == "sqlite":
        _sqlite_settings(engine)
    try:
        if migrations is not None:
            migrate(engine, migrations)
    except OperationalError as exc:
        engine.dispose()
        raise DatabaseError(
            f"cannot open database {parsed.render_as_string()}: {exc.orig}"
        ) from exc
    except SQLAlchemyError as exc:
        engine.dispose()
        raise DatabaseError(f"cannot migrate database {parsed.render_as_string()}: {exc}") from exc
    return Database(engine, sessionmaker(engine, expire_on_commit=False))
