"""Self-hosted checkpoint stores written by the real ``langgraph-checkpoint-sqlite`` and
``-postgres`` savers (the test graph run in-process with each), read by the source
through those savers, compared with the library's own ``get_state_history``, and one
store migrated into the real target server."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest

from ledger.replay import replay
from sinks.langgraph.shape import values_shape
from sinks.langgraph.threads import target_thread_id
from tests.langgraph import harness
from tests.langgraph.deployment import Deployment, chain

sys.path.insert(0, str(Path(__file__).parent / "app"))
import graph as test_graph  # the graph the servers serve

THREADS = {"t-alpha": ["hi", "weather Oslo,Lima"], "t-beta": ["one", "two", "three"]}


@pytest.fixture
def ledger(tmp_path):
    opened = harness.open_ledger(tmp_path)
    yield opened
    opened.close()


def run_threads(saver) -> object:
    app = test_graph.agent_builder.compile(checkpointer=saver)
    for thread_id, texts in THREADS.items():
        config = {"configurable": {"thread_id": thread_id}}
        for text in texts:
            app.invoke({"messages": [{"role": "user", "content": text}]}, config)
        app.update_state(config, {"messages": [{"type": "ai", "content": "noted"}]}, as_node="agent")
    return app


def library_view(app, thread_id):
    """(checkpoint id, next, values) oldest first, as LangGraph itself reports them."""
    states = reversed(list(app.get_state_history({"configurable": {"thread_id": thread_id}})))
    return [
        (
            s.config["configurable"]["checkpoint_id"],
            list(s.next),
            {"messages": [m.model_dump() for m in s.values.get("messages", [])]},
        )
        for s in states
    ]


def extracted_view(ledger, thread_id, stream=harness.STREAM):
    found = harness.records(ledger, stream)
    states = sorted(
        (d["data"] for k, d in found.items() if k.startswith(f"checkpoint:{thread_id}/")),
        key=lambda data: data["position"],
    )
    return [(s["checkpoint_id"], s["next"], s["values"] or {"messages": []}) for s in states]


def test_sqlite_store_read_exactly_and_migrated(ledger, tmp_path, target):
    from langgraph.checkpoint.sqlite import SqliteSaver

    path = tmp_path / "checkpoints.db"
    connection = sqlite3.connect(path, check_same_thread=False)
    saver = SqliteSaver(connection)
    saver.setup()
    app = run_threads(saver)
    result = harness.run_extract(ledger, checkpoint_db=f"sqlite:///{path}")
    assert result.status == "succeeded" and result.stats["rejects"] == 0
    for thread_id in THREADS:
        assert extracted_view(ledger, thread_id) == [
            (cid, following, {"messages": messages["messages"]})
            for cid, following, messages in library_view(app, thread_id)
        ]
    # self-hosted → a LangGraph server: the same chain of (input/update, step, next)
    sink = harness.lg_sink(ledger, target.url, graph_id="agent")
    assert replay(ledger, sink, [harness.STREAM]).status == "succeeded"
    there = Deployment(target.url).client()
    for thread_id in THREADS:
        local = [
            ("input" if s.metadata["source"] == "input" else "update", s.metadata["step"], list(s.next))
            for s in reversed(list(app.get_state_history({"configurable": {"thread_id": thread_id}})))
        ]
        migrated = target_thread_id(harness.STREAM, thread_id)  # the server takes UUIDs only
        assert chain(there, migrated) == local
        expected = {
            "messages": [
                m.model_dump()
                for m in app.get_state({"configurable": {"thread_id": thread_id}}).values["messages"]
            ]
        }
        found = there.threads.get(migrated)
        assert values_shape(found["values"]) == values_shape(expected)
        assert found["metadata"]["source_thread_id"] == thread_id
    connection.close()


def test_postgres_store_read_exactly(ledger, postgres_database):
    import psycopg
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg.rows import dict_row

    plain = "postgresql://" + postgres_database.split("://", 1)[1]
    with psycopg.connect(plain, autocommit=True, prepare_threshold=0, row_factory=dict_row) as connection:
        saver = PostgresSaver(connection)
        saver.setup()
        app = run_threads(saver)
        views = {thread_id: library_view(app, thread_id) for thread_id in THREADS}
    result = harness.run_extract(ledger, checkpoint_db=postgres_database, metadata_filter=None)
    assert result.status == "succeeded"
    for thread_id, view in views.items():
        assert extracted_view(ledger, thread_id) == [
            (cid, following, values) for cid, following, values in view
        ]
    limited = harness.run_extract(ledger, "newest", checkpoint_db=postgres_database, history_limit=2)
    assert limited.status == "succeeded"
    assert len(harness.of_kind(harness.records(ledger, "newest"), "checkpoint")) == 2 * len(THREADS)
