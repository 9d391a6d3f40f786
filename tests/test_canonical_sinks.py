"""Every sink carries every source: the synthetic stream (not Convex, not LibreChat) into
the ``laravel`` sink on SQLite, Postgres and MariaDB and into the ``onyx`` sink (Postgres
with Onyx's real DDL; the HTTP API is the simulated server of tests/librechat_onyx).

Each run must land with 0 rejected units; the rows read back from the target must match
what the ledger says was written, per kind; a second replay writes nothing; and the audit
trail must agree with the target: every ``insert``/``update`` in ``writes`` names a row that
exists, and what a sink left out is a ``skip`` with its reason, never an insert.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ledger.canonical import loads
from ledger.extract import ExtractSettings, extract
from ledger.lookups import Lookups
from ledger.records import Record
from ledger.replay import replay
from ledger.replay.verify import verify
from ledger.schema import heads, writes
from ledger.sink import SinkContext
from ledger.source import SourceContext
from ledger.store import Ledger
from sinks.laravel import LaravelOptions, LaravelSink
from sinks.laravel.identity import placeholder_workos_id
from sources.synthetic import SyntheticOptions, SyntheticSource
from tests.convex_laravel.harness import create_tables, database_url, rows
from tests.helpers import ListScope, ListSource
from tests.librechat_onyx.harness import query
from tests.librechat_onyx.harness import sink as onyx_sink
from tests.librechat_onyx.onyx import OnyxApi, load_onyx

STREAM = "syn"
SMALL = {"users": 6, "conversations_per_user": 3, "turns": 3, "attachment_rate": 0.3}


@pytest.fixture
def ledger(tmp_path):
    opened = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}", blob_dir=tmp_path / "blobs")
    extract(
        opened,
        SyntheticSource(SyntheticOptions(**SMALL), SourceContext(STREAM, opened.blobs)),
        settings=ExtractSettings(parallel=False),
    )
    yield opened
    opened.close()


def live_heads(ledger: Ledger, stream: str = STREAM) -> Counter[str]:
    with ledger.read() as conn:
        found = conn.execute(
            select(heads.c.kind).where(heads.c.stream == stream, heads.c.deleted.is_(False))
        ).scalars()
        return Counter(found)


def live_keys(ledger: Ledger, kind: str, stream: str = STREAM) -> list[str]:
    with ledger.read() as conn:
        return list(
            conn.execute(
                select(heads.c.key).where(
                    heads.c.stream == stream, heads.c.kind == kind, heads.c.deleted.is_(False)
                )
            ).scalars()
        )


def run_writes(ledger: Ledger, run_id: int) -> list[dict[str, Any]]:
    with ledger.read() as conn:
        found = conn.execute(select(writes).where(writes.c.run_id == run_id)).mappings().all()
    return [{**row, "target_ref": loads(row["target_ref"]) if row["target_ref"] else None} for row in found]


def kind_of(key: str) -> str:
    return key.split(":", 1)[0]


def assert_honest_skips(written: list[dict[str, Any]]) -> None:
    """A skip is a skip with its reason; nothing written claims to be skipped."""
    for row in written:
        ref = row["target_ref"]
        assert not (isinstance(ref, dict) and "skipped" in ref), row
        if row["action"] == "skip":
            assert row.get("reason", "skip") and ref is None, row


def assert_clean_run(result) -> None:
    assert result.status == "succeeded", result.stats
    assert result.stats["rejected_units"] == 0, result.stats


# -- laravel ---------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def laravel_url(request, tmp_path) -> str:
    return create_tables(database_url(request, tmp_path, request.param))


def laravel(ledger: Ledger, url: str) -> LaravelSink:
    return LaravelSink(LaravelOptions(url=url), SinkContext("app", ledger.blobs, lookups=Lookups(ledger)))


def laravel_row_exists(url: str, key: str, ref: dict[str, Any]) -> bool:
    """The row a laravel target ref names is in the target."""
    kind = kind_of(key)
    if kind == "user":
        return rows(url, "SELECT count(*) FROM users WHERE id = :i AND workos_id = :w",
                    i=ref["id"], w=ref["workos_id"]) == [(1,)]  # fmt: skip
    if kind == "conversation":
        return all(
            rows(url, f"SELECT count(*) FROM {table} WHERE id = :i", i=ref["thread"]) == [(1,)]
            for table in ("threads", "agent_conversations")
        )
    message = ref.get("message") or ref.get("folded_into")
    return all(
        rows(url, f"SELECT count(*) FROM {table} WHERE id = :i", i=message) == [(1,)]
        for table in ("messages", "agent_conversation_messages")
    )


def test_synthetic_into_laravel(ledger, laravel_url):
    first = replay(ledger, laravel(ledger, laravel_url), [STREAM])
    assert_clean_run(first)
    written = run_writes(ledger, first.run_id)
    assert_honest_skips(written)
    live = live_heads(ledger)

    # the audit trail agrees with the target: every insert names a row that is there
    for row in written:
        if row["action"] in ("insert", "update"):
            assert laravel_row_exists(laravel_url, row["key"], row["target_ref"]), row

    # every user landed with the documented placeholder WorkOS id (none has a real one)
    placeholders = {placeholder_workos_id(STREAM, key) for key in live_keys(ledger, "user")}
    assert {workos for (workos,) in rows(laravel_url, "SELECT workos_id FROM users")} == placeholders
    assert len(placeholders) == live["user"]
    assert rows(laravel_url, "SELECT count(*) FROM threads") == [(live["conversation"],)]
    assert rows(laravel_url, "SELECT count(*) FROM agent_conversations") == [(live["conversation"],)]

    # messages: one row per message written; every message of the ledger is written,
    # folded into its assistant's row (tool messages) or skipped with a reason
    by_action = Counter(
        (row["action"], next(iter(row["target_ref"] or {"-": 0}))) for row in written
        if kind_of(row["key"]) == "message"
    )  # fmt: skip
    assert sum(by_action.values()) == live["message"]
    message_rows = by_action[("insert", "message")]
    assert rows(laravel_url, "SELECT count(*) FROM messages") == [(message_rows,)]
    assert rows(laravel_url, "SELECT count(*) FROM agent_conversation_messages") == [(message_rows,)]
    assert set(by_action) <= {("insert", "message"), ("insert", "folded_into"), ("skip", "-")}
    skipped = [row for row in written if row["action"] == "skip" and kind_of(row["key"]) == "message"]
    assert skipped and {row["reason"] for row in skipped} == {"not on the active branch"}
    counters = first.stats["sink"]
    assert counters["messages_skipped_off_branch"] == len(skipped)
    assert counters["users_workos_id_placeholder"] == live["user"]
    assert counters["parts_not_kept_reasoning"] > 0  # said and counted, not silently dropped
    # file records: the chat tables hold no attachments (a kind the sink does not carry),
    # so each is a visible skip, never an insert
    assert "file" not in LaravelSink.kinds
    assert {row["action"] for row in written if kind_of(row["key"]) == "file"} == {"skip"}

    # the titles are the conversations' own, the times their created_at
    assert rows(laravel_url, "SELECT count(*) FROM threads WHERE title LIKE 'Conversation %'") == [(0,)]

    assert verify(ledger, laravel(ledger, laravel_url), [STREAM]).matches
    second = replay(ledger, laravel(ledger, laravel_url), [STREAM])
    assert_clean_run(second)
    assert second.stats["written"] == 0
    assert run_writes(ledger, second.run_id) == []


# -- onyx ------------------------------------------------------------------------------------


@pytest.fixture
def onyx_url(postgres_database):
    load_onyx(postgres_database)
    return postgres_database


def onyx_row_exists(url: str, key: str, ref: dict[str, Any]) -> bool:
    kind = kind_of(key)
    if kind == "user":
        return query(url, 'SELECT count(*) FROM "user" WHERE id = %s', (ref["user_id"],)) == [(1,)]
    if kind == "file":
        return query(url, "SELECT count(*) FROM user_file WHERE id::text = %s", (ref["user_file_id"],)) == [
            (1,)
        ]
    if kind == "conversation":
        return query(
            url, "SELECT count(*) FROM chat_session WHERE id::text = %s", (ref["chat_session"],)
        ) == [(1,)]
    return query(url, "SELECT count(*) FROM chat_message WHERE id = %s", (ref["chat_message"],)) == [(1,)]


def test_synthetic_into_onyx(ledger, onyx_url, tmp_path):
    credentials = tmp_path / "credentials.jsonl"
    with OnyxApi(onyx_url) as server:
        first = replay(ledger, onyx_sink(ledger, onyx_url, server, credentials_file=credentials), [STREAM])
        assert_clean_run(first)
        written = run_writes(ledger, first.run_id)
        assert_honest_skips(written)
        live = live_heads(ledger)
        for row in written:
            if row["action"] in ("insert", "update"):
                assert onyx_row_exists(onyx_url, row["key"], row["target_ref"]), row

        # one account per user (each owns conversations), one session per conversation,
        # one chat_message per message (+ the root and bridges)
        assert server.calls["POST /api/auth/register"] == live["user"]
        sessions = query(onyx_url, "SELECT count(*) FROM chat_session")[0][0]
        assert sessions == live["conversation"]
        messages = query(
            onyx_url,
            "SELECT count(*) FROM chat_message WHERE message_type <> 'SYSTEM' AND message <> 'Continue.'",
        )[0][0]
        assert messages == live["message"]
        uploads = query(onyx_url, "SELECT count(*) FROM file_record WHERE file_metadata ? 'chatledger'")[0][0]
        file_writes = [row for row in written if kind_of(row["key"]) == "file"]
        assert uploads == sum(1 for row in file_writes if row["action"] == "insert")
        assert len(file_writes) == live["file"]
        assert {row["reason"] for row in file_writes if row["action"] == "skip"} <= {
            "expired temporary upload"
        }
        counters = first.stats["sink"]
        # Onyx rows have no place for tool calls and results: said and counted, one each
        assert counters["parts_not_kept_tool_call"] == counters["parts_not_kept_tool_result"] > 0

        assert verify(
            ledger, onyx_sink(ledger, onyx_url, server, credentials_file=credentials), [STREAM]
        ).matches
        second = replay(ledger, onyx_sink(ledger, onyx_url, server, credentials_file=credentials), [STREAM])
        assert_clean_run(second)
        assert second.stats["written"] == 0


def test_onyx_makes_no_account_for_an_owner_with_nothing_to_migrate(tmp_path, onyx_url):
    """Issue 10, item 3: a user whose input was all rejected owns no chat: no account."""
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'solo.db'}", blob_dir=tmp_path / "blobs")
    user = Record("solo", "user", "user:nobody", {"email": "nobody@example.com", "name": "No Chats"}, {}, [])
    extract(ledger, ListSource("solo", {"only": ListScope([user])}))
    with OnyxApi(onyx_url) as server:
        result = replay(
            ledger, onyx_sink(ledger, onyx_url, server, credentials_file=tmp_path / "c.jsonl"), ["solo"]
        )
        assert server.calls["POST /api/auth/register"] == 0
    assert_clean_run(result)
    assert query(onyx_url, 'SELECT count(*) FROM "user" WHERE email = %s', ("nobody@example.com",)) == [(0,)]
    assert result.stats["sink"]["users_skipped_no_chats"] == 1
    [row] = run_writes(ledger, result.run_id)
    assert (row["key"], row["action"], row["target_ref"]) == ("user:nobody", "skip", None)
    assert not (tmp_path / "c.jsonl").exists()
    ledger.close()


# -- the kit is the only door into the core -------------------------------------------------


@pytest.mark.parametrize("package", ["laravel", "onyx"])
def test_the_sink_imports_only_the_kit_from_the_core(package):
    root = Path(__file__).resolve().parent.parent
    offending = []
    for path in sorted((root / "sinks" / package).glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                core = name == "ledger" or name.startswith("ledger.")
                other_plugin = name.startswith("sources") or (
                    name.startswith("sinks") and not name.startswith(f"sinks.{package}")
                )
                if (core and name != "ledger.kit") or other_plugin:
                    offending.append(f"{path.name}: {name}")
    assert offending == []
