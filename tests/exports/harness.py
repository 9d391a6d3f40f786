"""Extract an export into a ledger, replay it into the ``sql`` sink, read the target back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import create_engine, select, text

from ledger.extract import ExtractResult, ExtractSettings, extract
from ledger.replay import replay
from ledger.schema import rejects
from ledger.sink import SinkContext
from ledger.source import SourceContext
from ledger.store import Ledger, normalize_url
from sinks.sql import SqlOptions, SqlSink
from tests.exports.samples import Expected


@dataclass
class Target:
    url: str
    schema: str | None = None

    def sink(self, ledger: Ledger) -> SqlSink:
        return SqlSink(SqlOptions(url=self.url, schema=self.schema), SinkContext("out", ledger.blobs))

    def rows(self, table: str, columns: str, stream: str) -> list[tuple]:
        name = f"{self.schema}.{table}" if self.schema else table
        engine = create_engine(normalize_url(self.url))
        try:
            with engine.connect() as conn:
                query = text(f"SELECT {columns} FROM {name} WHERE stream = :stream")
                return [tuple(row) for row in conn.execute(query, {"stream": stream})]
        finally:
            engine.dispose()


def run_extract(ledger: Ledger, source_class, options, stream: str, **settings: Any) -> ExtractResult:
    source = source_class(options, SourceContext(stream, ledger.blobs))
    try:
        return extract(ledger, source, settings=ExtractSettings(parallel=False, **settings))
    finally:
        source.close()


def migrate(ledger: Ledger, target: Target, source_class, options, stream: str):
    """(extract result, replay result) of one pass."""
    extracted = run_extract(ledger, source_class, options, stream)
    replayed = replay(ledger, target.sink(ledger), [stream])
    assert replayed.status == "succeeded", replayed.stats
    return extracted, replayed


def reject_rows(ledger: Ledger, run_id: int) -> list[tuple[str, str]]:
    """(location, reason) of a run's rejects; the location without the writer's
    ``scope <name>: `` prefix."""
    with ledger.read() as conn:
        query = select(rejects.c.location, rejects.c.reason).where(rejects.c.run_id == run_id)
        return [(location.split(": ", 1)[-1], reason) for location, reason in conn.execute(query)]


def assert_target(target: Target, stream: str, expected: Expected) -> None:
    """Every expected message is in the target with its parent, nothing else is, and each
    conversation's active leaf is the file's."""
    messages: dict[str, dict[str, str | None]] = {}
    for key, parent, conversation in target.rows("messages", "key, parent, conversation", stream):
        messages.setdefault(conversation, {})[key] = parent
    leaves = dict(target.rows("conversations", "key, active_leaf", stream))
    for conversation, tree in expected.trees.items():
        assert conversation in leaves, f"{conversation} is not in the target"
        assert messages.get(conversation, {}) == tree, conversation
        assert leaves[conversation] == expected.leaves[conversation], conversation
    assert set(messages) <= set(expected.trees), set(messages) - set(expected.trees)
    for conversation in expected.rejected:
        assert conversation not in leaves
    users = {key for (key,) in target.rows("users", "key", stream)}
    assert expected.users <= users, expected.users - users
    total = sum(len(tree) for tree in messages.values())
    assert total == expected.messages
