"""Running the langgraph source and sinks from tests, and reading results back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ledger.extract import ExtractResult, ExtractSettings, extract
from ledger.lookups import Lookups
from ledger.sink import SinkContext
from ledger.source import SourceContext
from ledger.store import Ledger
from sources.langgraph import LangGraphSource
from sources.langgraph.options import LangGraphOptions
from tests.helpers import live_records

STREAM = "lg"


def open_ledger(tmp_path: Path) -> Ledger:
    return Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}", blob_dir=tmp_path / "blobs")


def source(ledger: Ledger, stream: str = STREAM, **options: Any) -> LangGraphSource:
    return LangGraphSource(
        LangGraphOptions(**options), SourceContext(stream, ledger.blobs, lookups=Lookups(ledger))
    )


def run_extract(ledger: Ledger, stream: str = STREAM, *, full: bool = False, **options: Any) -> ExtractResult:
    return extract(
        ledger, source(ledger, stream, **options), settings=ExtractSettings(batch_size=200, full=full)
    )


def records(ledger: Ledger, stream: str = STREAM) -> dict[str, dict[str, Any]]:
    """key → the stored record document of every live head of the stream."""
    return live_records(ledger, stream)


def of_kind(found: dict[str, dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {key: document for key, document in found.items() if document["kind"] == kind}


def sink_context(ledger: Ledger, target: str, source_type: str = "langgraph") -> SinkContext:
    return SinkContext(target, ledger.blobs, lookups=Lookups(ledger), source_types={STREAM: source_type})


def lg_sink(ledger: Ledger, url: str, target: str = "lg-target", **options: Any):
    from sinks.langgraph import LangGraphSink
    from sinks.langgraph.sink import LangGraphSinkOptions

    return LangGraphSink(LangGraphSinkOptions(url=url, **options), sink_context(ledger, target))
