from __future__ import annotations

from sqlalchemy import inspect

from digest.database import migrate, open_database
from subscribers.db import Database

TABLES = {
    "subscribers",
    "consents",
    "status_changes",
    "suppressions",
    "editions",
    "deliveries",
    "reads",
    "apscheduler_jobs",
    "approvals",
    "feedback",
    "mailbox_state",
}


def tables(db: Database) -> set[str]:
    return set(inspect(db.engine).get_table_names()) - {"alembic_version"}


def test_empty_to_head_and_back(db: Database) -> None:
    """Opening creates every table; migrating down removes them; up again restores them."""
    assert tables(db) == TABLES
    migrate(db.engine, "base", down=True)
    assert tables(db) == set()
    migrate(db.engine)
    assert tables(db) == TABLES


def test_reopening_keeps_data(db_url: str) -> None:
    """Opening an up-to-date database again migrates nothing and loses nothing."""
    from datetime import UTC, datetime

    from subscribers import audience
    from subscribers.addresses import parse_address
    from subscribers.models import ConsentMethod

    first = open_database(db_url)
    with first.transaction() as session:
        audience.join(
            session,
            parse_address("keep@example.org"),
            datetime.now(UTC),
            audience.ConsentEvidence(ConsentMethod.editor),
            confirmed=True,
        )
    first.close()
    second = open_database(db_url)
    try:
        with second.transaction() as session:
            assert audience.get(session, "keep@example.org").email == "keep@example.org"
    finally:
        migrate(second.engine, "base", down=True)
        second.close()
