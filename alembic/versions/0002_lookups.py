"""Lookups: answers of external services cached in the ledger.

A sink or source that asks an outside service (e.g. WorkOS for a user's email) keeps
the answer here, so re-runs and dry runs give the same result without asking again.

Revision ID: 0002_lookups
Revises: 0001_initial
Create Date: 2026-11-21
"""

import sqlalchemy as sa

from alembic import op

revision = "0002_lookups"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lookups",
        sa.Column("namespace", sa.String(100), primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Text),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("lookups")
