"""Skip outcomes: ``writes.reason`` and ``target_state.skipped``.

A sink may deliberately not write a record (a rule of the target, a kind it cannot
carry). That is recorded as ``writes.action = 'skip'`` with its reason, never as an
insert, and ``target_state`` remembers the skipped version so an unchanged record is not
replanned on every replay while verify knows the target holds nothing for it.

Revision ID: 0004_skip_outcomes
Revises: 0003_heads_no_conv_index
Create Date: 2026-12-01
"""

import sqlalchemy as sa

from alembic import op

revision = "0004_skip_outcomes"
down_revision = "0003_heads_no_conv_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("writes", sa.Column("reason", sa.Text()))
    op.add_column(
        "target_state", sa.Column("skipped", sa.Boolean(), nullable=False, server_default=sa.false())
    )


def downgrade() -> None:
    with op.batch_alter_table("target_state") as batch:
        batch.drop_column("skipped")
    with op.batch_alter_table("writes") as batch:
        batch.drop_column("reason")
