"""A source whose scopes and records a test spells out."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from ledger.blobs import BlobStore
from ledger.extract import ExtractResult, ExtractSettings, extract
from ledger.options import option
from ledger.payloads import load_documents
from ledger.records import Record, Reject
from ledger.schema import heads
from ledger.source import Scope, Source, SourceContext
from ledger.store import Ledger


@dataclass
class ListOptions:
    note: str = option("", help="unused")


@dataclass
class ListScope:
    items: list[Record | Reject] = field(default_factory=list)
    complete: bool = True
    fingerprint: str | None = None


class ListSource(Source):
    """Scopes given as ``{name: ListScope}``; reads them in chunks of ``chunk``."""

    type_name = "list"
    Options = ListOptions

    def __init__(
        self,
        stream: str,
        scopes: dict[str, ListScope],
        *,
        exhaustive: bool = True,
        chunk: int = 2,
        blobs: BlobStore | None = None,
    ) -> None:
        super().__init__(ListOptions(), SourceContext(stream, blobs or BlobStore(Path("/tmp/unused"))))
        self.scope_map = scopes
        self.exhaustive = exhaustive
        self.chunk = chunk

    def scopes(self) -> Iterator[Scope]:
        for name, scope in self.scope_map.items():
            yield Scope(name, scope.complete, scope.fingerprint)

    def read(self, scope: Scope, cursor: Any = None) -> Iterator[tuple[list, Any]]:
        items = self.scope_map[scope.name].items
        start = cursor or 0
        for position in range(start, len(items), self.chunk):
            end = min(position + self.chunk, len(items))
            yield items[position:end], end


def msg(stream: str, conversation: str, number: int, text: str = "hi") -> Record:
    return Record(
        stream,
        "message",
        f"message:{conversation}/{number}",
        {"conversation": f"conversation:{conversation}", "parts": [{"type": "text", "text": text}]},
        {"id": number, "text": text},
    )


def run(ledger: Ledger, source: Source, **settings: Any) -> ExtractResult:
    settings.setdefault("batch_size", 3)
    return extract(ledger, source, settings=ExtractSettings(**settings))


def totals(result: ExtractResult) -> dict[str, int]:
    """Counters summed over kinds."""
    out: dict[str, int] = {}
    for counts in result.stats["kinds"].values():
        for name, value in counts.items():
            out[name] = out.get(name, 0) + value
    return out


def live_records(ledger: Ledger, stream: str) -> dict[str, dict[str, Any]]:
    """key → the stored record document ({kind, key, data, raw, refs}) of every live head."""
    with ledger.read() as conn:
        rows = conn.execute(
            select(heads.c.key, heads.c.hash).where(heads.c.stream == stream, heads.c.deleted.is_(False))
        ).all()
        documents = load_documents(conn, [row.hash for row in rows])
    return {row.key: documents[row.hash] for row in rows}
