"""Backups and analytics of LangGraph threads: a streaming JSON file and the public
``langgraph-threads-migration`` tool's two Postgres tables.

A thread is exported as the tool's backup file holds it: ``thread_id``, ``metadata``,
``values``, ``created_at``, ``updated_at``, ``status`` and ``history`` (the thread's
states newest first, as ``threads.get_history`` returns them: values, next, tasks,
metadata, created_at, the checkpoint and parent configs and ids).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    inspect,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB, insert

from ledger.kit import (
    ConfigError,
    Markers,
    Outcome,
    PermanentError,
    Sink,
    SqlTarget,
    Unit,
    canonical_bytes,
    digest,
    loads,
    marker_table,
    option,
    parse_time,
    target_engine,
)
from sinks.langgraph.threads import Thread, thread_of

FORMAT = "chatledger-langgraph-export/1"


def states_newest_first(thread: Thread) -> list[dict[str, Any]]:
    ids = {
        f"checkpoint:{thread.thread_id}/{state['checkpoint_id']}": state["checkpoint_id"]
        for state in thread.states
    }
    out = []
    for state in reversed(thread.states):
        parent_id = ids.get(state.get("parent")) or (state.get("parent") or "").rpartition("/")[2] or None
        namespace = state.get("checkpoint_ns", "")
        out.append(
            {
                "values": state.get("values"),
                "next": state.get("next") or [],
                "tasks": state.get("tasks") or [],
                "metadata": state.get("metadata") or {},
                "created_at": state.get("created_at"),
                "checkpoint": {
                    "thread_id": thread.thread_id,
                    "checkpoint_ns": namespace,
                    "checkpoint_id": state["checkpoint_id"],
                },
                "parent_checkpoint": {
                    "thread_id": thread.thread_id,
                    "checkpoint_ns": namespace,
                    "checkpoint_id": parent_id,
                }
                if parent_id
                else None,
                "checkpoint_id": state["checkpoint_id"],
                "parent_checkpoint_id": parent_id,
                "interrupts": state.get("interrupts") or [],
            }
        )
    return out


def thread_document(thread: Thread) -> dict[str, Any]:
    native = thread.native or {}
    return {
        "thread_id": thread.thread_id,
        "metadata": thread.metadata,
        "values": thread.values if thread.states else native.get("values"),
        "created_at": thread.created_at,
        "updated_at": thread.updated_at,
        "state_updated_at": native.get("state_updated_at"),
        "status": native.get("status"),
        "history_complete": thread.history_complete,
        "history": states_newest_first(thread),
    }


# -- the JSON file ---------------------------------------------------------------------


@dataclass
class JsonExportOptions:
    path: Path = option(
        help="The export file (JSON; written to a temporary file, renamed at the end of a run)."
    )
    source_url: str | None = option(None, help="The deployment the threads came from, recorded in the file.")


class JsonExportSink(Sink):
    """``langgraph-json``: one JSON file of every thread with its full history.

    The file is one object; its ``threads`` array holds one thread per line, so it is
    written and read a thread at a time (memory stays flat for multi-GB files) and
    stays plain JSON for any other reader. A run writes the threads it is handed to a
    temporary file beside the target as they come, then, when the run ends, copies the
    previous file's other threads line by line, writes the totals, and renames the
    temporary file over the old one. A run that is killed leaves the previous file
    untouched (``verify`` then reports the threads that run recorded as missing, and
    ``replay --policy replace`` writes them).
    """

    type_name = "langgraph-json"
    Options = JsonExportOptions
    unit = "conversation"
    kinds = ("conversation", "checkpoint", "message")
    capabilities = frozenset({"verify"})

    def __init__(self, options: JsonExportOptions, context) -> None:
        super().__init__(options, context)
        self._out = None
        self._temporary: Path | None = None
        self._done: set[str] = set()  # thread ids written or removed by this run
        self._totals = {"threads": 0, "checkpoints": 0}

    def describe(self) -> str:
        return f"langgraph-json {self.options.path}"

    def tables(self, kind: str) -> list[str]:
        return [self.options.path.name]

    def apply(self, units: list[Unit], run_id: int, *, truncate: bool = False) -> list[Outcome]:
        if truncate:
            raise PermanentError("langgraph-json: use --policy replace without --truncate")
        out = self._open_temporary()
        outcomes = []
        for unit in units:
            changed = [item for item in unit.items if item.changed]
            if not changed:
                continue
            thread = thread_of(unit)
            thread_id = unit.key.split(":", 1)[1]
            self._done.add(thread_id)
            if thread is not None:
                document = thread_document(thread)
                self._write_line(out, document)
            ref = {"thread_id": thread_id}
            outcomes += [Outcome.written(item, None if item.removed else ref) for item in changed]
        out.flush()
        return outcomes

    def _open_temporary(self):
        if self._out is None:
            path = self.options.path
            path.parent.mkdir(parents=True, exist_ok=True)
            self._temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
            self._out = open(self._temporary, "wb")  # noqa: SIM115 - closed when the run ends
            header = {"format": FORMAT, "source": self.options.source_url}
            self._out.write(canonical_bytes(header)[:-1] + b',"threads":[\n')
        return self._out

    def _write_line(self, out, document: dict[str, Any]) -> None:
        if self._totals["threads"]:
            out.write(b",\n")
        out.write(canonical_bytes(document))
        self._totals["threads"] += 1
        self._totals["checkpoints"] += len(document["history"])

    def close(self) -> None:
        """The end of a run: the previous file's other threads, the totals, the rename."""
        if self._out is None:
            return
        out, self._out = self._out, None
        try:
            for document in read_export(self.options.path) if self.options.path.exists() else ():
                if document["thread_id"] not in self._done:
                    self._write_line(out, document)
            footer = {
                "total_threads": self._totals["threads"],
                "total_checkpoints": self._totals["checkpoints"],
                "export_date": dt.datetime.now(dt.UTC).isoformat(),
            }
            out.write(b"\n]," + canonical_bytes(footer)[1:] + b"\n")
            out.flush()
            os.fsync(out.fileno())
            out.close()
            os.replace(self._temporary, self.options.path)
        except BaseException:
            out.close()
            self._temporary.unlink(missing_ok=True)
            raise

    # -- verifying ----------------------------------------------------------------------

    def fingerprint(self, unit: Unit) -> str:
        thread = thread_of(unit)
        return digest(thread_document(thread)) if thread is not None else "removed"

    def read_back(self, units: list[Unit]) -> dict[str, str | None]:
        wanted = {unit.key.split(":", 1)[1]: unit.key for unit in units}
        found: dict[str, str | None] = dict.fromkeys(wanted.values())
        if self.options.path.exists():
            for document in read_export(self.options.path):
                if document["thread_id"] in wanted:
                    found[wanted[document["thread_id"]]] = digest(document)
        return found

    def unexpected(self, streams: Iterable[str]) -> Iterator[tuple[str, str]]:
        return iter(())


def read_export(path: Path) -> Iterator[dict[str, Any]]:
    """The threads of an export file, one at a time: a line each in files this sink
    wrote; other files (the public tool's, one indented object) are parsed whole."""
    with open(path, "rb") as handle:
        first = handle.readline()
        if not first.startswith(b'{"format":"chatledger-langgraph-export/'):
            handle.seek(0)
            document = loads(handle.read())
            if not isinstance(document, dict) or not isinstance(document.get("threads"), list):
                raise PermanentError(f"{path}: not a LangGraph threads export (no 'threads' list)")
            yield from document["threads"]
            return
        for number, line in enumerate(handle, start=2):
            line = line.strip()
            if line.startswith(b"],") or not line:
                return
            try:
                yield loads(line.rstrip(b","))
            except ValueError as exc:
                raise PermanentError(f"{path} line {number}: not a thread: {exc}") from None


# -- the public tool's Postgres tables -------------------------------------------------


def public_tables(metadata: MetaData) -> tuple[Table, Table]:
    """``langgraph_threads`` and ``langgraph_checkpoints`` as the tool's SQLAlchemy
    models declare them (langgraph_export/models.py)."""
    threads = Table(
        "langgraph_threads",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("thread_id", String(255), unique=True, nullable=False, index=True),
        Column("metadata", JSONB, nullable=False),
        Column("values", JSONB, nullable=False),
        Column("created_at", DateTime, nullable=True),
        Column("updated_at", DateTime, nullable=True),
        Column("source_url", Text, nullable=True),
        Column("exported_at", DateTime, nullable=False),
        Index("idx_threads_metadata", "metadata", postgresql_using="gin"),
        Index("idx_threads_source_url", "source_url"),
        Index("idx_threads_exported_at", "exported_at"),
    )
    checkpoints = Table(
        "langgraph_checkpoints",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column(
            "thread_id",
            String(255),
            ForeignKey("langgraph_threads.thread_id", ondelete="CASCADE"),
            nullable=False,
        ),
        Column("checkpoint_id", String(255), nullable=True),
        Column("parent_checkpoint_id", String(255), nullable=True),
        Column("checkpoint_data", JSONB, nullable=False),
        Column("values", JSONB, nullable=False),
        Column("metadata", JSONB, nullable=False),
        Column("created_at", DateTime, nullable=True),
        UniqueConstraint("thread_id", "checkpoint_id", name="uq_thread_checkpoint"),
        Index("idx_checkpoints_thread_id", "thread_id"),
        Index("idx_checkpoints_checkpoint_id", "checkpoint_id"),
        Index("idx_checkpoints_parent", "parent_checkpoint_id"),
    )
    return threads, checkpoints


@dataclass
class PostgresExportOptions:
    db_url: str = option(
        help="The PostgreSQL database of the export (postgresql://…), best as env:VAR.", secret=True
    )
    source_url: str | None = option(None, help="Written to langgraph_threads.source_url.")
    markers: bool = option(
        True, help="Keep chatledger's marker table in the database (exactly-once after a crash)."
    )


class PostgresExportSink(SqlTarget, Sink):
    """``langgraph-postgres``: the tool's tables, created when missing. A thread is
    written in one transaction with its marker rows: its row upserted by ``thread_id``,
    its checkpoint rows replaced (deleted, then inserted), so a re-run or an update
    never duplicates a checkpoint row. The tool's ``uq_thread_checkpoint`` does not
    prevent duplicates by itself where ``checkpoint_id`` is NULL (Postgres treats NULLs
    as distinct); this sink never writes one."""

    type_name = "langgraph-postgres"
    Options = PostgresExportOptions
    unit = "conversation"
    kinds = ("conversation", "checkpoint", "message")
    capabilities = frozenset({"transactions", "markers", "verify"})

    def __init__(self, options: PostgresExportOptions, context) -> None:
        super().__init__(options, context)
        metadata = MetaData()
        self.threads_table, self.checkpoints_table = public_tables(metadata)
        self.markers = Markers(marker_table(metadata), self.target) if options.markers else None
        self.metadata = metadata

    def describe(self) -> str:
        return "langgraph-postgres"

    def tables(self, kind: str) -> list[str]:
        return ["langgraph_threads"] if kind == "conversation" else ["langgraph_checkpoints"]

    def open(self) -> None:
        if self.engine is not None:
            return
        self.engine = target_engine(self.options.db_url)
        if self.engine.dialect.name != "postgresql":
            raise ConfigError("langgraph-postgres: db_url must be a PostgreSQL database")
        missing = [t for t in self.metadata.sorted_tables if not inspect(self.engine).has_table(t.name)]
        if missing:
            self.metadata.create_all(self.engine, tables=missing)

    def apply(self, units: list[Unit], run_id: int, *, truncate: bool = False) -> list[Outcome]:
        outcomes: list[Outcome] = []
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        with self.engine.begin() as conn:
            if truncate:
                conn.execute(delete(self.checkpoints_table))
                conn.execute(delete(self.threads_table))
                if self.markers is not None:
                    self.markers.clear(conn)
            for unit in units:
                changed = [item for item in unit.items if item.changed]
                if changed:
                    outcomes += self._write(conn, unit, changed, now)
            if self.markers is not None:
                versions = {(i.stream, i.key): (i.version, i.hash) for u in units for i in u.items}
                self.markers.write(conn, outcomes, versions, run_id)
        return outcomes

    def _write(self, conn, unit: Unit, changed, now) -> list[Outcome]:
        thread_id = unit.key.split(":", 1)[1]
        threads, checkpoints = self.threads_table, self.checkpoints_table
        conn.execute(delete(checkpoints).where(checkpoints.c.thread_id == thread_id))
        thread = thread_of(unit)
        if thread is None:
            conn.execute(delete(threads).where(threads.c.thread_id == thread_id))
            return [Outcome.written(item) for item in changed]
        document = thread_document(thread)
        row = {
            "thread_id": thread_id,
            "metadata": document["metadata"],
            "values": document["values"] or {},
            "created_at": _naive(document["created_at"]),
            "updated_at": _naive(document["updated_at"]),
            "source_url": self.options.source_url,
            "exported_at": now,
        }
        statement = insert(threads).values(row)
        update = {
            name: statement.excluded[name]
            for name in ("metadata", "values", "created_at", "updated_at", "source_url", "exported_at")
        }
        conn.execute(statement.on_conflict_do_update(index_elements=["thread_id"], set_=update))
        rows = [
            {
                "thread_id": thread_id,
                "checkpoint_id": state["checkpoint_id"],
                "parent_checkpoint_id": state["parent_checkpoint_id"],
                "checkpoint_data": state["checkpoint"],
                "values": state["values"] or {},
                "metadata": state["metadata"],
                "created_at": _naive(state["created_at"]),
            }
            for state in document["history"]
        ]
        if rows:
            conn.execute(insert(checkpoints), rows)
        ref = {"thread_id": thread_id}
        return [Outcome.written(item, None if item.removed else ref) for item in changed]

    # -- verifying ----------------------------------------------------------------------

    def fingerprint(self, unit: Unit) -> str:
        thread = thread_of(unit)
        if thread is None:
            return "removed"
        document = thread_document(thread)
        chain = [(s["checkpoint_id"], s["parent_checkpoint_id"]) for s in document["history"]]
        return digest(document["metadata"], document["values"] or {}, chain)

    def read_back(self, units: list[Unit]) -> dict[str, str | None]:
        threads, checkpoints = self.threads_table, self.checkpoints_table
        wanted = {unit.key.split(":", 1)[1]: unit.key for unit in units}
        found: dict[str, str | None] = dict.fromkeys(wanted.values())
        with self.engine.connect() as conn:
            rows = conn.execute(select(threads).where(threads.c.thread_id.in_(list(wanted)))).all()
            chains: dict[str, list] = {}
            for row in conn.execute(
                select(
                    checkpoints.c.thread_id, checkpoints.c.checkpoint_id, checkpoints.c.parent_checkpoint_id
                )
                .where(checkpoints.c.thread_id.in_(list(wanted)))
                .order_by(checkpoints.c.id)
            ):
                chains.setdefault(row.thread_id, []).append((row.checkpoint_id, row.parent_checkpoint_id))
        for row in rows:
            found[wanted[row.thread_id]] = digest(row.metadata, row.values, chains.get(row.thread_id, []))
        return found

    def unexpected(self, streams: Iterable[str]) -> Iterator[tuple[str, str]]:
        if self.markers is None:
            return iter(())
        with self.engine.connect() as conn:
            return iter(sorted(self.markers.keys(conn, streams)))


def _naive(value: Any) -> dt.datetime | None:
    """The tool's columns are ``timestamp`` without zone: UTC, naive."""
    moment = parse_time(value)
    return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment else None
