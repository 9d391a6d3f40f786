"""Rejects recorded once per distinct input, and resolved when the input is fixed.

An extraction used to add the same reject row on every run that read the same bad file,
and nothing ever said the file had been fixed. Now a reject row carries its ``scope`` and
the sha256 of its input (``input_hash``); a later run that finds the same input (stream,
scope, location, reason, input hash) sets ``last_run`` instead of adding a row, and a run
that reads the whole scope without finding it again sets ``resolved_run``.

Revision ID: 0005_reject_identity
Revises: 0004_skip_outcomes (to be rebased onto 0004 when merged)
Create Date: 2026-12-01
"""

import sqlalchemy as sa

from alembic import op

revision = "0005_reject_identity"
down_revision = "0004_skip_outcomes"
branch_labels = None
depends_on = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("rejects", sa.Column("scope", sa.Text()))
    op.add_column("rejects", sa.Column("input_hash", sa.String(64)))
    op.add_column("rejects", sa.Column("last_run", _Id))
    op.add_column("rejects", sa.Column("resolved_run", _Id))
    op.create_index("ix_rejects_scope", "rejects", ["stream", "scope"])


def downgrade() -> None:
    op.drop_index("ix_rejects_scope", table_name="rejects")
    with op.batch_alter_table("rejects") as batch:
        for column in ("resolved_run", "last_run", "input_hash", "scope"):
            batch.drop_column(column)
