"""A fresh database per test, on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from digest.database import migrate, open_database
from subscribers.db import Database, normalise_url
from tests.helpers import Clock, need_service


@contextmanager
def fresh_postgres(server_url: str) -> Iterator[str]:
    """A new, empty database on the server of ``server_url``, dropped afterwards."""
    name = f"digest_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(normalise_url(server_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield (
            make_url(normalise_url(server_url))
            .set(database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str | None]:
    """A throw-away database on the server named by DIGEST_TEST_POSTGRES_URL."""
    base = os.environ.get("DIGEST_TEST_POSTGRES_URL")
    if not base:
        yield None
        return
    with fresh_postgres(base) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, postgres_url: str | None) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'digest.db'}"
    need_service(postgres_url is not None, "PostgreSQL: set DIGEST_TEST_POSTGRES_URL")
    assert postgres_url is not None
    return postgres_url


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = open_database(db_url)
    yield database
    # leave PostgreSQL empty for the next test: down to nothing
    migrate(database.engine, "base", down=True)
    database.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()
