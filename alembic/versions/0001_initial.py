"""The ledger: runs, events, payloads, heads, checkpoints, targets, target_state,
writes, rejects, locks.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-21
"""

import sqlalchemy as sa

from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Moment = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("command", sa.String(32), nullable=False),
        sa.Column("stream", sa.String(200)),
        sa.Column("target", sa.String(200)),
        sa.Column("parent_run_id", Id),
        sa.Column("args", sa.Text, nullable=False),
        sa.Column("tool_version", sa.String(32), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started_at", Moment, nullable=False),
        sa.Column("finished_at", Moment),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("stats", sa.Text, nullable=False),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_runs_stream", "runs", ["stream", "id"])
    op.create_index("ix_runs_target", "runs", ["target", "id"])

    op.create_table(
        "events",
        sa.Column("seq", Id, primary_key=True, autoincrement=True),
        sa.Column("run_id", Id, nullable=False),
        sa.Column("stream", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("op", sa.String(8), nullable=False),
        sa.Column("hash", sa.String(64)),
        sa.Column("recorded_at", Moment, nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("stream", "key", "version", name="uq_events_stream_key_version"),
    )

    op.create_table(
        "payloads",
        sa.Column("hash", sa.String(64), primary_key=True),
        sa.Column("codec", sa.String(8), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
    )

    op.create_table(
        "heads",
        sa.Column("stream", sa.String(200), primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("conversation", sa.Text),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("last_run", Id, nullable=False),
    )
    op.create_index("ix_heads_scope", "heads", ["scope", "stream"])
    op.create_index("ix_heads_conversation", "heads", ["conversation", "stream"])

    op.create_table(
        "checkpoints",
        sa.Column("stream", sa.String(200), primary_key=True),
        sa.Column("scope", sa.Text, primary_key=True),
        sa.Column("cursor", sa.Text),
        sa.Column("complete", sa.Boolean, nullable=False),
        sa.Column("fingerprint", sa.Text),
        sa.Column("records", sa.Integer, nullable=False),
        sa.Column("run_id", Id, nullable=False),
        sa.Column("updated_at", Moment, nullable=False),
    )

    op.create_table(
        "targets",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("sink", sa.String(64), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("created_at", Moment, nullable=False),
    )

    op.create_table(
        "target_state",
        sa.Column("target", sa.String(200), primary_key=True),
        sa.Column("stream", sa.String(200), primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("conversation", sa.Text),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("target_ref", sa.Text),
        sa.Column("run_id", Id, nullable=False),
    )
    op.create_index("ix_target_state_conversation", "target_state", ["conversation", "target", "stream"])

    op.create_table(
        "writes",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("run_id", Id, nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("stream", sa.String(200), nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("hash", sa.String(64)),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("target_ref", sa.Text),
        sa.Column("prior_version", sa.Integer),
        sa.Column("prior_hash", sa.String(64)),
        sa.Column("at", Moment, nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_writes_run", "writes", ["run_id", "id"])
    op.create_index("ix_writes_key", "writes", ["stream", "key"])

    op.create_table(
        "rejects",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("run_id", Id, nullable=False),
        sa.Column("stream", sa.String(200)),
        sa.Column("target", sa.String(200)),
        sa.Column("location", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("input", sa.Text),
        sa.Column("at", Moment, nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_rejects_run", "rejects", ["run_id"])

    op.create_table(
        "locks",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("run_id", Id),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("acquired_at", Moment, nullable=False),
        sa.Column("heartbeat_at", Moment, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "locks",
        "rejects",
        "writes",
        "target_state",
        "targets",
        "checkpoints",
        "heads",
        "payloads",
        "events",
        "runs",
    ):
        op.drop_table(table)
