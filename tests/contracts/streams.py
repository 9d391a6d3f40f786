"""Every source's stream the contract suite replays (a ``StreamCase`` each).

Each case extracts a small, realistic input of its source into a ledger and returns the
stream name. The inputs are the ones the source's own tests build (real formats).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ledger.extract import ExtractResult, ExtractSettings, extract
from ledger.kit import SourceContext
from ledger.lookups import Lookups
from sources.convex import ConvexOptions, ConvexSource
from sources.librechat import LibreChatSource
from sources.librechat.options import LibreChatOptions
from sources.synthetic import SyntheticOptions, SyntheticSource
from tests.convex_laravel import data as convex_data
from tests.convex_laravel.exports import write_export
from tests.librechat_onyx import fixtures as librechat_fixtures


@dataclass
class StreamCase:
    name: str
    #: (ledger, folder for inputs, stream name, **options) → the extraction's result
    extract: Callable[..., ExtractResult]


def _run(ledger, source) -> ExtractResult:
    return extract(ledger, source, settings=ExtractSettings(parallel=False))


def synthetic(ledger, folder: Path, stream: str, **options) -> ExtractResult:
    options = {"users": 3, "seed": 11, **options}
    return _run(ledger, SyntheticSource(SyntheticOptions(**options), SourceContext(stream, ledger.blobs)))


def librechat(ledger, folder: Path, stream: str, **options) -> ExtractResult:
    assets = librechat_fixtures.write_assets(folder / "librechat-assets")
    dump = librechat_fixtures.write_dump(folder / "librechat-dump")
    source = LibreChatSource(
        LibreChatOptions(dump_path=dump, asset_roots=[assets], **options),
        SourceContext(stream, ledger.blobs, lookups=Lookups(ledger)),
    )
    return _run(ledger, source)


def convex(ledger, folder: Path, stream: str, **options) -> ExtractResult:
    folder.mkdir(parents=True, exist_ok=True)
    path = write_export(folder / "convex-export.zip", convex_data.original())
    return _run(ledger, ConvexSource(ConvexOptions(path=path, **options), SourceContext(stream, ledger.blobs)))


CASES: dict[str, StreamCase] = {
    case.name: case
    for case in [
        StreamCase("synthetic", synthetic),
        StreamCase("librechat", librechat),
        StreamCase("convex", convex),
    ]
}
#: a quick subset for local runs: CHATLEDGER_CONTRACT_STREAMS=synthetic
SELECTED = [name for name in os.environ.get("CHATLEDGER_CONTRACT_STREAMS", "").split(",") if name] or list(CASES)
