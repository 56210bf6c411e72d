"""The schema has one owner: the migrations build exactly the models, on SQLite and PostgreSQL.

Alembic's ``compare_metadata`` reads the migrated database back and lists every
difference from the models (tables, columns, types, nullability, defaults, indexes,
keys). An empty list is the contract; a model changed without a migration fails here.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from sqlalchemy import Column, Connection, MetaData, String, text

from digest.database import MIGRATIONS, new_revision
from digest.migrations import include_object, metadata
from digest.schedule.scheduler import JOBS_TABLE
from subscribers.db import Database, open_database

Filter = Callable[[object, str | None, str, bool, object], bool]


def schema_diff(connection: Connection, models: MetaData, only: Filter = include_object) -> Any:
    """What a migration would have to do to make the database match ``models``."""
    context = MigrationContext.configure(
        connection,
        opts={"include_object": only, "compare_type": True, "compare_server_default": True},
    )
    return compare_metadata(context, models)


def copy_of_models() -> MetaData:
    """The models' tables in a metadata of their own, safe to change in a test."""
    copy = MetaData()
    for table in metadata().sorted_tables:
        table.to_metadata(copy)
    return copy


def test_the_migrations_build_exactly_the_models(db: Database) -> None:
    """Migrated to head, the database differs from the models in nothing at all."""
    with db.engine.connect() as connection:
        assert schema_diff(connection, metadata()) == []


def test_a_model_changed_without_a_migration_is_a_diff(db: Database) -> None:
    """A column added and a type narrowed in the models, but not migrated, are both reported."""
    models = copy_of_models()
    models.tables["subscribers"].append_column(Column("nickname", String(40)))
    models.tables["feedback"].c.origin.type = String(100)
    with db.engine.connect() as connection:
        diff = schema_diff(connection, models)
    added = [d for d in diff if isinstance(d, tuple)]
    modified = [m for d in diff if isinstance(d, list) for m in d]
    assert [(kind, table, column.name) for kind, _, table, column in added] == [
        ("add_column", "subscribers", "nickname")
    ]
    assert [(m[0], m[2], m[3], m[6].length) for m in modified] == [
        ("modify_type", "feedback", "origin", 100)
    ]


def test_the_job_table_is_the_one_apscheduler_defines(db: Database) -> None:
    """The migrated ``apscheduler_jobs`` matches the table APScheduler's job store would create."""
    store = SQLAlchemyJobStore(engine=db.engine, tablename=JOBS_TABLE)

    def only_jobs(obj: object, name: str | None, type_: str, *_: object) -> bool:
        return not include_object(obj, name, type_, False, None)

    with db.engine.connect() as connection:
        assert schema_diff(connection, store.jobs_t.metadata, only_jobs) == []


def test_a_developer_writes_the_next_revision_from_the_models(tmp_path: Path) -> None:
    """``new_revision`` numbers the next migration, which restores what the database lacks."""
    migrations = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, migrations, ignore=shutil.ignore_patterns("__pycache__"))
    head = max(int(p.name[:4]) for p in (MIGRATIONS / "versions").glob("[0-9]*.py"))
    url = f"sqlite:///{tmp_path / 'drifted.db'}"
    database = open_database(url, migrations=migrations)
    with database, database.engine.begin() as connection:  # at head, minus an index
        connection.execute(text("DROP INDEX ix_feedback_received"))
        assert schema_diff(connection, metadata()) != []
    written = new_revision("the received index", url, migrations)
    assert written == migrations / "versions" / f"{head + 1:04d}_the_received_index.py"
    script = written.read_text()
    assert f'down_revision = "{head:04d}"' in script and "ix_feedback_received" in script
    database = open_database(url, migrations=migrations)  # upgraded by the new script
    with database, database.engine.connect() as connection:
        assert schema_diff(connection, metadata()) == []
