"""Drop ``ix_heads_conversation``: no query filters heads by conversation.

The replay planner orders by conversation but reads whole streams, so the index was
never used, and keeping it up to date cost a random-order B-tree insert per extracted
record (about a tenth of extraction time on SQLite).

Revision ID: 0003_heads_no_conv_index
Revises: 0002_lookups
Create Date: 2026-11-21
"""

from alembic import op

revision = "0003_heads_no_conv_index"
down_revision = "0002_lookups"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_heads_conversation", table_name="heads")


def downgrade() -> None:
    op.create_index("ix_heads_conversation", "heads", ["conversation", "stream"])
