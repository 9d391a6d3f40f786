"""Backups: the ``langgraph-json`` file (streamed, atomic, read back by the source, then
imported into another real server with no access to the original) and the public
tool's Postgres tables (real PostgreSQL, idempotent)."""

from __future__ import annotations

import json

import psycopg
import pytest

from ledger.replay import replay
from ledger.replay.verify import verify
from sinks.langgraph import JsonExportSink, PostgresExportSink
from sinks.langgraph.exports import JsonExportOptions, PostgresExportOptions
from tests.langgraph import harness
from tests.langgraph.deployment import Deployment, chain, history

BASE = '{"suite": "base"}'


@pytest.fixture
def ledger(tmp_path):
    opened = harness.open_ledger(tmp_path)
    yield opened
    opened.close()


def json_sink(ledger, path):
    return JsonExportSink(
        JsonExportOptions(path=path, source_url="http://prod"), harness.sink_context(ledger, "backup")
    )


def test_json_export_round_trip_into_another_server(ledger, tmp_path, deployment, target):
    harness.run_extract(ledger, url=deployment.url, metadata_filter=BASE)
    path = tmp_path / "out" / "threads.json"
    first = replay(ledger, json_sink(ledger, path), [harness.STREAM])
    assert first.status == "succeeded"
    exported = json.loads(path.read_text())  # plain JSON for any reader
    client = deployment.client()
    assert exported["total_threads"] == len(exported["threads"]) == len(deployment.threads)
    assert exported["total_checkpoints"] == sum(len(history(client, t)) for t in deployment.threads.values())
    by_id = {thread["thread_id"]: thread for thread in exported["threads"]}
    long = deployment.threads["long"]
    assert [s["checkpoint_id"] for s in by_id[long]["history"]] == [
        s["checkpoint_id"] for s in reversed(history(client, long))
    ]
    assert not list(path.parent.glob(".*partial"))

    before = path.read_bytes()
    again = replay(ledger, json_sink(ledger, path), [harness.STREAM])
    assert again.stats["written"] == 0 and path.read_bytes() == before
    assert verify(ledger, json_sink(ledger, path), [harness.STREAM]).matches

    # the file alone: read back by the source, then imported into the target server
    harness.run_extract(ledger, "restored", export_file=path)
    original, restored = harness.records(ledger), harness.records(ledger, "restored")
    assert {k: d["data"] for k, d in restored.items() if d["kind"] != "conversation"} == {
        k: d["data"] for k, d in original.items() if d["kind"] != "conversation"
    }
    sink = harness.lg_sink(ledger, target.url, legacy_terminal_node="agent")
    sink.context.source_types["restored"] = "langgraph"
    replay(ledger, sink, ["restored"])
    there = Deployment(target.url).client()
    for name in ("long", "tools", "edited", "small-0"):
        thread_id = deployment.threads[name]
        assert chain(there, thread_id) == chain(client, thread_id), name


def test_public_tool_export_file_is_read(ledger, tmp_path, deployment):
    """A file in the shape of langgraph-threads-migration's --export-json (one indented
    object, history newest first as get_history returns it)."""
    client = deployment.client()
    threads = []
    for name in ("tools", "empty"):
        thread = client.threads.get(deployment.threads[name])
        states = list(reversed(history(client, thread["thread_id"])))
        threads.append(
            {key: thread[key] for key in ("thread_id", "metadata", "values", "created_at", "updated_at")}
            | {"history": states}
        )
    path = tmp_path / "threads_backup.json"
    path.write_text(
        json.dumps(
            {
                "export_date": "2026-12-01T00:00:00",
                "source": deployment.url,
                "total_threads": 2,
                "threads": threads,
            },
            indent=2,
        )
    )
    harness.run_extract(ledger, export_file=path)
    found = harness.records(ledger)
    tools = deployment.threads["tools"]
    assert len(harness.of_kind(found, "checkpoint")) == len(history(client, tools))
    assert harness.of_kind(found, "conversation")[f"thread:{tools}"]["data"]["owner"] == "user:bob"


def test_postgres_export_tables_idempotent(ledger, postgres_database, deployment):
    harness.run_extract(ledger, url=deployment.url, metadata_filter=BASE)

    def sink():
        options = PostgresExportOptions(db_url=postgres_database, source_url="http://prod")
        return PostgresExportSink(options, harness.sink_context(ledger, "pg"))

    replay(ledger, sink(), [harness.STREAM])
    url = postgres_database.replace("postgresql+psycopg://", "postgresql://")

    def rows():
        with psycopg.connect(url) as conn:
            threads = conn.execute(
                "SELECT thread_id, metadata, source_url FROM langgraph_threads ORDER BY thread_id"
            ).fetchall()
            checkpoints = conn.execute(
                "SELECT thread_id, checkpoint_id, parent_checkpoint_id FROM langgraph_checkpoints ORDER BY id"
            ).fetchall()
        return threads, checkpoints

    threads, checkpoints = rows()
    client = deployment.client()
    assert len(threads) == len(deployment.threads)
    assert len(checkpoints) == sum(len(history(client, t)) for t in deployment.threads.values())
    long = deployment.threads["long"]
    assert [c[1] for c in checkpoints if c[0] == long] == [
        s["checkpoint_id"] for s in reversed(history(client, long))
    ]
    again = replay(ledger, sink(), [harness.STREAM], settings=None)
    assert again.stats["written"] == 0
    from ledger.replay import ReplaySettings

    replay(ledger, sink(), [harness.STREAM], settings=ReplaySettings(policy="replace"))
    assert rows() == (threads, checkpoints)  # rewritten, never duplicated
    with psycopg.connect(url) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_name LIKE 'langgraph_%' ORDER BY table_name, ordinal_position"
        ).fetchall()
    assert [(t, c) for t, c, _ in columns] == [
        ("langgraph_checkpoints", name)
        for name in (
            "id",
            "thread_id",
            "checkpoint_id",
            "parent_checkpoint_id",
            "checkpoint_data",
            "values",
            "metadata",
            "created_at",
        )
    ] + [
        ("langgraph_threads", name)
        for name in (
            "id",
            "thread_id",
            "metadata",
            "values",
            "created_at",
            "updated_at",
            "source_url",
            "exported_at",
        )
    ]
    assert verify(ledger, sink(), [harness.STREAM]).matches
