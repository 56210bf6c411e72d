"""recommended reads: queued by editors and feeds, and when each went out

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 10:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("url_key", sa.String(length=2048), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("origin", sa.String(length=300), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_on", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_reads_url_key", "reads", ["url_key"])
    op.create_index("ix_reads_used_on", "reads", ["used_on"])


def downgrade() -> None:
    op.drop_index("ix_reads_used_on", table_name="reads")
    op.drop_index("ix_reads_url_key", table_name="reads")
    op.drop_table("reads")
