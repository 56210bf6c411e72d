"""Opening the database: the engine, its per-connection settings, and migrations.

SQLite (the embedded default) gets WAL, foreign keys, a busy timeout, secure
delete (freed bytes zeroed) and ``BEGIN IMMEDIATE`` for every transaction, so two
processes writing at once wait for each other instead of failing with "database is
locked". PostgreSQL is
reached through psycopg 3. The caller names the Alembic migrations to apply (the
one history lives with the application, which knows every model: ``digest.database``);
they run when the database is opened, under a lock so two processes starting together
migrate once.

A new SQLite file is created ``0600`` (owner only, whatever the umask) before SQLite
opens it: it holds every subscriber's address, and SQLite gives the ``-wal`` and
``-shm`` files it makes the main file's mode. An existing file keeps its mode, so
``chmod 640`` once lets a group (a backup user) read the database and its WAL too.
The URL is never shown with its password: errors name it through :func:`redact`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from subscribers.errors import DatabaseError

if TYPE_CHECKING:  # Alembic loads only when a database is behind its migrations
    from alembic.config import Config

BUSY_TIMEOUT_MS = 30_000
_MIGRATION_LOCK = 74_201_117  # PostgreSQL advisory lock key for migrations
#: Mode of a new SQLite database file (and so of its -wal and -shm files).
PRIVATE_FILE_MODE = 0o600


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` and use psycopg 3 for them."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


#: A URL's scheme and the slashes after it, however many the URL got right.
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:/{0,2}")


def _split_password(url: str) -> tuple[str, str, str]:
    """``url`` as (up to the password, the password, after it); the password may be "".

    The user information is what comes before the *last* ``@`` (after the scheme), and
    the password all of it after its first ``:``. So a password holding an unencoded
    ``@`` or ``/``, or a URL too malformed to parse, is hidden too much, never too little.
    """
    head, at, _ = url.rpartition("@")
    if not at or url.lower().startswith("sqlite"):  # SQLite: a path, never a password
        return url, "", ""
    scheme = _SCHEME.match(head)
    colon = head.find(":", scheme.end() if scheme else 0)
    if colon < 0:
        return url, "", ""
    return url[: colon + 1], head[colon + 1 :], url[len(head) :]


def redact(url: str) -> str:
    """``url`` with its password, if any, shown as ``***``, even when it cannot be parsed."""
    before, password, after = _split_password(url)
    return f"{before}***{after}" if password else url


def _failure(message: str, url: str) -> DatabaseError:
    """A ``DatabaseError`` whose text cannot carry the password, whatever a driver put in it."""
    password = _split_password(url)[1]
    for secret in {password, unquote(password)}:
        if len(secret) >= 4:  # a shorter one would blank unrelated text
            message = message.replace(secret, "***")
    return DatabaseError(message)


def _create_private(parsed: URL, mode: int) -> URL:
    """Create the SQLite file of ``parsed`` with ``mode`` if it is new; the URL to open.

    The path is the one SQLite opens (relative to the working directory), with ``~``
    expanded; its folder is created too.
    """
    database = parsed.database
    if not database or database == ":memory:" or "uri" in parsed.query:
        return parsed  # in memory, or a URI filename only SQLite interprets
    path = Path(os.path.abspath(Path(database).expanduser()))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        except FileExistsError:
            return parsed.set(database=str(path))
    except OSError as exc:
        raise DatabaseError(
            f"cannot create the database {path}: {exc.strerror}; check that its folder "
            "exists or can be created, and is writable"
        ) from exc
    try:
        os.fchmod(descriptor, mode)  # exactly ``mode``: os.open's is narrowed by the umask
    finally:
        os.close(descriptor)
    return parsed.set(database=str(path))


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
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations))
    config.attributes["connection"] = connection
    return config


def migrate(
    engine: Engine, migrations: Path, revision: str = "head", *, down: bool = False
) -> None:
    """Bring the schema to ``revision`` (or down to it) in one locked transaction."""
    from alembic import command

    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        config = alembic_config(connection, migrations)
        if down:
            command.downgrade(config, revision)
        else:
            command.upgrade(config, revision)


#: ``revision = "0008"`` and ``down_revision = "0007"`` (or ``None``) in a migration script.
_REVISION_LINE = re.compile(
    r"^(down_revision|revision)\s*(?::[^=\n]*)?=\s*(None|\"[^\"\n]*\"|'[^'\n]*')\s*$", re.M
)


def single_head(migrations: Path) -> str | None:
    """The one revision the scripts in ``migrations/versions`` chain up to, read from their
    ``revision`` and ``down_revision`` lines; ``None`` when it takes Alembic to say (a
    merge, several heads, a script that names its revisions otherwise)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (migrations / "versions").glob("*.py"):
        if script.name == "__init__.py" or script.name.startswith((".", "#")):
            continue  # as Alembic: editors' lock and backup files are no scripts
        try:
            lines = _REVISION_LINE.findall(script.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):  # unreadable: Alembic says what is wrong
            return None
        found = {key: value.strip("\"'") for key, value in lines}
        if len(lines) != 2 or set(found) != {"revision", "down_revision"}:
            return None
        revisions.add(found["revision"])
        if found["down_revision"] != "None":
            parents.add(found["down_revision"])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def at_head(engine: Engine, migrations: Path) -> bool:
    """Whether the database already records the one head of ``migrations``.

    Opening a database that is up to date then neither loads Alembic nor takes the
    migration lock: a command that reads the ledger starts in a fraction of the time.
    Anything else (a new or older database, a table that can't be read, a history
    with branches) is left to :func:`migrate`, which also reports what went wrong.
    """
    head = single_head(migrations)
    if head is None:
        return False
    with engine.connect() as connection:  # a database that can't be reached says so here
        try:
            stamped = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        except SQLAlchemyError:  # no such table yet, or unreadable: migrate() tells which
            return False
    return [row[0] for row in stamped] == [head]


def open_database(
    url: str, *, migrations: Path | None = None, file_mode: int = PRIVATE_FILE_MODE
) -> Database:
    """Open the database at ``url``; with ``migrations``, create and migrate it as needed.

    A new SQLite file is created with ``file_mode``; see the module docstring.
    """
    shown = redact(url)
    try:
        parsed = make_url(normalise_url(url))
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is not a number
        why = " (its port is not a number)" if isinstance(exc, ValueError) else ""
        raise _failure(
            f"database URL {shown!r} is not valid{why}; use e.g. sqlite:///digest.db or "
            "postgresql://user:password@host:5432/dbname",
            url,
        ) from exc
    options: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        parsed = _create_private(parsed, file_mode)
    elif parsed.get_backend_name() != "postgresql":
        raise DatabaseError(
            f"unsupported database {parsed.get_backend_name()!r}: use SQLite or PostgreSQL"
        )
    else:
        options["pool_pre_ping"] = True
    try:
        engine = create_engine(parsed, **options)
    except (ArgumentError, ImportError, ValueError) as exc:
        raise _failure(f"cannot use database {shown}: {exc}", url) from exc
    if engine.dialect.name == "sqlite":
        _sqlite_settings(engine)
    try:
        if migrations is not None and not at_head(engine, migrations):
            migrate(engine, migrations)
    except OperationalError as exc:
        engine.dispose()
        raise _failure(f"cannot open database {shown}: {exc.orig}", url) from exc
    except SQLAlchemyError as exc:
        engine.dispose()
        raise _failure(f"cannot migrate database {shown}: {exc}", url) from exc
    return Database(engine, sessionmaker(engine, expire_on_commit=False))
