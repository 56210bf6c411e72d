"""The publisher's database: opened with the one migration history, which knows every model.

``subscribers.db`` opens engines and runs Alembic; the history itself lives here, in
``digest/migrations``, because only ``digest`` can see every model (``subscribers``
never imports ``digest``). ``metadata()`` gathers every table the migrations must
create, for ``env.py``'s autogenerate and the drift test (``tests/digest/test_schema.py``).

A developer who changed a model writes the matching migration with
``python -m digest.database "what changed"`` (see :func:`new_revision`).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData

from subscribers import db as _db
from subscribers.db import Database
from subscribers.errors import DatabaseError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def metadata() -> MetaData:
    """Every model's table: importing the model modules registers them on ``Base``."""
    import digest.assemble.queue
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


def new_revision(message: str, url: str | None = None, migrations: Path = MIGRATIONS) -> Path:
    """Write the next numbered migration: what the models have that head's schema lacks.

    The models are compared with the database at ``url`` (migrated to head first), or
    with a throw-away SQLite one. Read what it wrote before committing: autogenerate
    sees a rename as a drop and an add, and writes no data migration.
    """
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
