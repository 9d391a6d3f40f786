"""Reading a self-hosted checkpoint store (``checkpoint_db``) through LangGraph's own
savers, so a team without the Platform API can migrate too: ``sqlite:///path.db`` with
``langgraph-checkpoint-sqlite``'s ``SqliteSaver``, ``postgresql://…`` with
``langgraph-checkpoint-postgres``'s ``PostgresSaver`` (the optional extra
``chatledger[langgraph-checkpoints]``). The savers decode the blobs (msgpack, delta
channels, pending sends); hand-parsing the tables would miss cases.

A saver knows checkpoints, not threads or graphs, so what the API would compute is
derived from the decoded checkpoint tuples:

- threads are the distinct ``thread_id`` of the ``checkpoints`` table (root namespace);
  a thread's metadata is its newest checkpoint's metadata without the per-checkpoint
  keys (the API copies thread metadata into every checkpoint's); ``created_at`` and
  ``updated_at`` are its oldest and newest checkpoint times;
- values are the checkpoint's channel values without the internal ``__…`` and
  ``branch:to:…`` channels, messages serialised as the API does (``model_dump``);
- ``next`` is ``["__start__"]`` for an input checkpoint, else the nodes whose
  ``branch:to:<node>`` channel the checkpoint holds (LangGraph ≥ 1.0 channel names);
- tasks are the checkpoint's pending writes grouped by task id, named after ``next``
  in order; a task's ``result`` is its writes to state channels.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Iterator
from typing import Any

from ledger.kit import ConfigError, PermanentError
from sources.langgraph.deployment import History
from sources.langgraph.options import LangGraphOptions, metadata_filter

BRANCH = "branch:to:"
START = "__start__"
CHECKPOINT_KEYS = {
    "source",
    "step",
    "parents",
    "writes",
    "run_id",
    "thread_id",
    "checkpoint_id",
    "checkpoint_ns",
}


def json_safe(value: Any) -> Any:
    """Decoded channel values (LangChain messages, dataclasses, sets) as JSON."""
    if hasattr(value, "model_dump"):
        return json_safe(value.model_dump())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return json_safe(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(item) for item in value]
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, bytes):
        return {"bytes": len(value)}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def _saver(url: str):
    try:
        if url.startswith("sqlite:///"):
            import sqlite3

            from langgraph.checkpoint.sqlite import SqliteSaver

            connection = sqlite3.connect(url[len("sqlite:///") :], check_same_thread=False)
            return SqliteSaver(connection), connection
        if url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
            import psycopg
            from langgraph.checkpoint.postgres import PostgresSaver
            from psycopg.rows import dict_row

            plain = "postgresql://" + url.split("://", 1)[1]
            connection = psycopg.connect(plain, autocommit=True, prepare_threshold=0, row_factory=dict_row)
            return PostgresSaver(connection), connection
    except ImportError:
        raise PermanentError(
            "langgraph: reading checkpoint databases needs pip install 'chatledger[langgraph-checkpoints]'"
        ) from None
    raise ConfigError("langgraph: checkpoint_db must be sqlite:///… or postgresql://…")


class CheckpointStore:
    def __init__(self, options: LangGraphOptions) -> None:
        self.options = options
        self.filter = metadata_filter(options) or {}
        self._saver = None
        self._connection = None
        self._lock = threading.Lock()  # one connection, shared by the fetching threads

    @property
    def saver(self):
        if self._saver is None:  # opened on first use (after the extraction's fork)
            self._saver, self._connection = _saver(self.options.checkpoint_db)
        return self._saver

    def _thread_ids(self) -> list[str]:
        query = "SELECT DISTINCT thread_id FROM checkpoints WHERE checkpoint_ns = '' ORDER BY thread_id"
        with self._lock:
            connection = self.saver.conn
            rows = connection.execute(query).fetchall()
        ids = [row["thread_id"] if isinstance(row, dict) else row[0] for row in rows]
        return [t for t in ids if not self.options.thread_ids or t in self.options.thread_ids]

    def _tuples(self, thread_id: str) -> list[Any]:
        """Checkpoint tuples of the root namespace, newest first."""
        with self._lock:
            return list(self.saver.list({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}))

    def threads(self) -> Iterator[dict[str, Any]]:
        listed = 0
        for thread_id in self._thread_ids():
            if self.options.limit is not None and listed >= self.options.limit:
                return
            tuples = self._tuples(thread_id)
            if not tuples:
                continue
            metadata = {
                k: v for k, v in json_safe(tuples[0].metadata or {}).items() if k not in CHECKPOINT_KEYS
            }
            if any(metadata.get(name) != value for name, value in self.filter.items()):
                continue
            listed += 1
            yield {
                "thread_id": thread_id,
                "created_at": tuples[-1].checkpoint.get("ts"),
                "updated_at": tuples[0].checkpoint.get("ts"),
                "metadata": metadata,
                "status": None,
            }

    def count(self) -> int:
        return sum(1 for _ in self.threads())

    def history(self, thread_id: str) -> History:
        tuples = self._tuples(thread_id)
        limit = self.options.history_limit
        partial = limit is not None and len(tuples) > limit
        states = [state_of(thread_id, item) for item in (tuples[:limit] if partial else tuples)]
        return History(states[::-1], not partial)

    def describe(self) -> dict[str, Any]:
        return {"checkpoint_db": self.options.checkpoint_db.split("://", 1)[0]}

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = self._saver = None


def state_of(thread_id: str, item: Any) -> dict[str, Any]:
    """One checkpoint tuple as the API's ThreadState would show it."""
    checkpoint, metadata = item.checkpoint, json_safe(item.metadata or {})
    channels = checkpoint.get("channel_values") or {}
    if metadata.get("source") == "input" or START in (checkpoint.get("updated_channels") or []):
        following = [START]
    else:
        following = sorted(name[len(BRANCH) :] for name in channels if name.startswith(BRANCH))
    values = {k: json_safe(v) for k, v in channels.items() if not k.startswith(("__", BRANCH))}
    checkpoint_id = item.config["configurable"]["checkpoint_id"]
    parent = (item.parent_config or {}).get("configurable", {}).get("checkpoint_id")
    config = {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": checkpoint_id}
    return {
        "values": values,
        "next": following,
        "tasks": _tasks(item.pending_writes or [], following, channels),
        "metadata": metadata,
        "created_at": checkpoint.get("ts"),
        "checkpoint": config,
        "parent_checkpoint": {**config, "checkpoint_id": parent} if parent else None,
        "checkpoint_id": checkpoint_id,
        "parent_checkpoint_id": parent,
        "interrupts": [],
    }


def _tasks(writes: list[tuple], following: list[str], channels: dict[str, Any]) -> list[dict[str, Any]]:
    by_task: dict[str, dict[str, Any]] = {}
    for task_id, channel, value in writes:
        results = by_task.setdefault(task_id, {})
        if not channel.startswith(("__", BRANCH)):
            results[channel] = json_safe(value)
    tasks = []
    for index, (task_id, result) in enumerate(by_task.items()):
        name = following[index] if index < len(following) else None
        if name == START:
            result = json_safe(channels.get(START)) if channels.get(START) is not None else result
        tasks.append(
            {
                "id": task_id,
                "name": name,
                "path": None,
                "result": result or None,
                "error": None,
                "interrupts": [],
            }
        )
    return tasks
