"""The one migration history, and every model's tables for it to be compared with.

Kept out of ``digest.database`` so that opening the database (which every stage does)
does not import every stage's models: only Alembic's ``env.py`` and the drift test
need them all.
"""

from __future__ import annotations

from sqlalchemy import MetaData


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
