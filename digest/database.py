"""The publisher's database: opened with the one migration history, which knows every model.

``subscribers.db`` opens engines and runs Alembic; the history itself lives here, in
``digest/migrations``, because only ``digest`` can see every model (``subscribers``
never imports ``digest``). ``metadata()`` gathers every table the migrations must
create, for ``env.py``'s autogenerate and the drift test.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, MetaData

from subscribers import db as _db
from subscribers.db import Database

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
