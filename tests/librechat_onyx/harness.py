"""Running the librechat source and the onyx sink from tests, and reading results back."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import psycopg

from ledger.extract import ExtractResult, ExtractSettings, extract
from ledger.lookups import Lookups
from ledger.ownership import content_owners
from ledger.sink import SinkContext
from ledger.source import SourceContext
from ledger.store import Ledger
from sinks.onyx import OnyxSink
from sinks.onyx.options import OnyxOptions
from sources.librechat import LibreChatSource
from sources.librechat.options import LibreChatOptions
from tests.helpers import live_records
from tests.librechat_onyx.onyx import API_KEY, plain_url

STREAM = "lc"
#: Onyx tables a migration writes, for before/after snapshots
ONYX_TABLES = (
    "chat_session",
    "chat_message",
    "chat_feedback",
    "user_file",
    "file_record",
    "file_content",
    '"user"',
)


def source(ledger: Ledger, stream: str = STREAM, **options: Any) -> LibreChatSource:
    return LibreChatSource(
        LibreChatOptions(**options), SourceContext(stream, ledger.blobs, lookups=Lookups(ledger))
    )


def run_extract(ledger: Ledger, stream: str = STREAM, *, full: bool = False, **options: Any) -> ExtractResult:
    return extract(
        ledger, source(ledger, stream, **options), settings=ExtractSettings(batch_size=50, full=full)
    )


def records(ledger: Ledger, stream: str = STREAM) -> dict[str, dict[str, Any]]:
    """key → the stored record document of every live head of the stream."""
    return live_records(ledger, stream)


def sink(ledger: Ledger, db_url: str, api=None, target: str = "onyx", **options: Any) -> OnyxSink:
    defaults: dict[str, Any] = {"db_url": db_url}
    if api is not None:
        defaults.update(api_base=api.base, api_key=API_KEY)
    context = SinkContext(
        target, ledger.blobs, lookups=Lookups(ledger), content_owners=partial(content_owners, ledger)
    )
    return OnyxSink(OnyxOptions(**{**defaults, **options}), context)


def query(db_url: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(plain_url(db_url)) as conn:
        return conn.execute(sql, params).fetchall()


def execute(db_url: str, sql: str, params: tuple = ()) -> None:
    with psycopg.connect(plain_url(db_url), autocommit=True) as conn:
        conn.execute(sql, params)


def snapshot(db_url: str) -> dict[str, list[tuple]]:
    """Every row of the tables a migration writes (sorted, as text), plus large objects."""
    out = {}
    for table in ONYX_TABLES:
        rows = query(db_url, f"SELECT * FROM {table}")
        out[table] = sorted(tuple(str(value) for value in row) for row in rows)
    out["large objects"] = query(db_url, "SELECT count(*) FROM pg_largeobject_metadata")
    return out


def credentials(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
