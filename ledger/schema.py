"""The ledger's tables (DESIGN §4) as SQLAlchemy Core metadata.

Alembic owns the schema: ``alembic/versions`` creates these tables explicitly, and a test
compares the migrated database with this metadata so the two cannot drift apart.
JSON columns are plain text holding canonical JSON, the same on SQLite and Postgres.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    func,
)

metadata = MetaData()

# SQLite only auto-increments an INTEGER PRIMARY KEY, Postgres wants a BIGINT for logs.
_Id = BigInteger().with_variant(Integer(), "sqlite")

runs = Table(
    "runs",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("command", String(32), nullable=False),
    Column("stream", String(200)),
    Column("target", String(200)),
    Column("parent_run_id", _Id),  # a migrate's parts; the run a rollback undoes
    Column("args", Text, nullable=False),  # redacted JSON
    Column("tool_version", String(32), nullable=False),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("status", String(16), nullable=False),  # running/succeeded/failed/interrupted
    Column("stats", Text, nullable=False),  # JSON
    Column("error", Text),  # redacted
    Index("ix_runs_stream", "stream", "id"),
    Index("ix_runs_target", "target", "id"),
)

events = Table(
    "events",
    metadata,
    Column("seq", _Id, primary_key=True, autoincrement=True),
    Column("run_id", _Id, nullable=False),
    Column("stream", String(200), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("key", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("op", String(8), nullable=False),  # put/delete
    Column("hash", String(64)),  # null for delete
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("stream", "key", "version", name="uq_events_stream_key_version"),
)

payloads = Table(
    "payloads",
    metadata,
    Column("hash", String(64), primary_key=True),
    Column("codec", String(8), nullable=False),  # json or lz4
    Column("size", Integer, nullable=False),  # length of the canonical JSON
    Column("body", LargeBinary, nullable=False),
)

heads = Table(
    "heads",
    metadata,
    Column("stream", String(200), primary_key=True),
    Column("key", Text, primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("scope", Text, nullable=False),  # extraction scope the key was last read in
    Column("conversation", Text),  # the conversation it belongs to (replay unit)
    Column("version", Integer, nullable=False),
    Column("hash", String(64), nullable=False),  # of the latest put, kept after a delete
    Column("deleted", Boolean, nullable=False),
    Column("last_run", _Id, nullable=False),  # the run of the latest event
    # scope first: without statistics, Postgres would otherwise pick this index over the
    # primary key for key lookups and scan a whole stream per batch
    Index("ix_heads_scope", "scope", "stream"),
)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("stream", String(200), primary_key=True),
    Column("scope", Text, primary_key=True),
    Column("cursor", Text),  # JSON: where the last commit in this scope ended
    Column("complete", Boolean, nullable=False),  # the last pass read the whole scope
    Column("fingerprint", Text),  # the source's change token of that pass
    Column("records", Integer, nullable=False),  # records read in that pass
    Column("run_id", _Id, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

targets = Table(
    "targets",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("sink", String(64), nullable=False),
    Column("description", Text, nullable=False),  # redacted connection description
    Column("created_at", DateTime(timezone=True), nullable=False),
)

target_state = Table(
    "target_state",
    metadata,
    Column("target", String(200), primary_key=True),
    Column("stream", String(200), primary_key=True),
    Column("key", Text, primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("conversation", Text),
    Column("version", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("target_ref", Text),  # JSON: where the record lives in the target
    Column("run_id", _Id, nullable=False),
    # the sink deliberately did not write this version (writes.action = 'skip'): the
    # target holds nothing for it, and it is not replanned until it changes
    Column("skipped", Boolean, nullable=False, server_default=false()),
    Index("ix_target_state_conversation", "conversation", "target", "stream"),
)

writes = Table(
    "writes",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("run_id", _Id, nullable=False),
    Column("target", String(200), nullable=False),
    Column("stream", String(200), nullable=False),
    Column("key", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("hash", String(64)),
    Column("action", String(8), nullable=False),  # insert/update/delete/skip
    Column("target_ref", Text),
    Column("reason", Text),  # why a skip was a skip
    Column("prior_version", Integer),
    Column("prior_hash", String(64)),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_writes_run", "run_id", "id"),
    Index("ix_writes_key", "stream", "key"),
)

rejects = Table(
    "rejects",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("run_id", _Id, nullable=False),
    Column("stream", String(200)),
    Column("target", String(200)),
    Column("location", Text, nullable=False),  # file and line, collection and id, key
    Column("reason", Text, nullable=False),
    Column("input", Text),  # the offending input, or a pointer (blob sha256) when large
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # extraction rejects: one row per distinct bad input (stream, scope, location, reason,
    # input_hash), seen again by ``last_run``, until a pass over the whole scope no longer
    # finds it (``resolved_run``: the input was fixed or removed)
    Column("scope", Text),
    Column("input_hash", String(64)),  # sha256 of ``input`` as stored
    Column("last_run", _Id),
    Column("resolved_run", _Id),
    Index("ix_rejects_run", "run_id"),
    Index("ix_rejects_scope", "stream", "scope"),
)

locks = Table(
    "locks",
    metadata,
    Column("name", String(255), primary_key=True),  # stream:<name> or target:<name>
    Column("run_id", _Id),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("acquired_at", DateTime(timezone=True), nullable=False),
    Column("heartbeat_at", DateTime(timezone=True), nullable=False),
)

lookups = Table(
    "lookups",
    metadata,
    Column("namespace", String(100), primary_key=True),  # e.g. workos-user
    Column("key", Text, primary_key=True),
    Column("value", Text),  # canonical JSON of the answer; null: "not found" was the answer
    Column("fetched_at", DateTime(timezone=True), nullable=False),
)
