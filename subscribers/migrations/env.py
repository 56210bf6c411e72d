"""Alembic environment: always run on the connection handed in by ``subscribers.db``."""

from __future__ import annotations

from alembic import context

from subscribers.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
context.run_migrations()
