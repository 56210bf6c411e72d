"""readers' mail: feedback messages, raw and parsed, and IMAP read positions

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("origin", sa.String(length=300), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(length=998), nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("envelope_to", sa.Text(), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=True),
        sa.Column("problem", sa.Text(), nullable=True),
        sa.Column("from_email", sa.String(length=320), nullable=True),
        sa.Column("from_name", sa.String(length=300), nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("full_text", sa.Text(), nullable=True),
        sa.Column("permanent", sa.Boolean(), nullable=True),
        sa.Column("bounce_status", sa.String(length=16), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("linked_by", sa.String(length=40), nullable=True),
        sa.Column("edition_id", sa.Integer(), nullable=True),
        sa.Column("delivery_id", sa.Integer(), nullable=True),
        sa.Column("subscriber_id", sa.Integer(), nullable=True),
        sa.Column("effect", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["edition_id"], ["editions.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["delivery_id"], ["deliveries.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscribers.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sha256"),
        sa.UniqueConstraint("message_id"),
    )
    op.create_index("ix_feedback_received", "feedback", ["received_at"])
    op.create_index("ix_feedback_edition_kind", "feedback", ["edition_id", "kind"])
    op.create_index("ix_feedback_subscriber", "feedback", ["subscriber_id"])
    op.create_index("ix_feedback_unparsed", "feedback", ["kind"])
    op.create_table(
        "mailbox_state",
        sa.Column("mailbox", sa.String(length=500), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("last_uid", sa.BigInteger(), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("mailbox"),
    )


def downgrade() -> None:
    op.drop_table("mailbox_state")
    op.drop_index("ix_feedback_unparsed", table_name="feedback")
    op.drop_index("ix_feedback_subscriber", table_name="feedback")
    op.drop_index("ix_feedback_edition_kind", table_name="feedback")
    op.drop_index("ix_feedback_received", table_name="feedback")
    op.drop_table("feedback")
