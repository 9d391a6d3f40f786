"""The library behind the CLI: each command is one call here that tests can make directly.

The CLI parses arguments and prints; these functions open ledgers, build plug-ins from
configuration and flags, and run jobs.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ledger import config as configuration
from ledger import plugins
from ledger.extract import ExtractResult, ExtractSettings, extract
from ledger.options import build_options, masked, parse_flags
from ledger.progress import Progress
from ledger.source import Source, SourceContext
from ledger.store import Ledger


def open_ledger(config: configuration.Config, flag: str | None = None, blobs: str | None = None) -> Ledger:
    url = configuration.ledger_url(config, flag)
    return Ledger.open(url.value, blob_dir=configuration.blob_dir(config, blobs))


def resolve_stream(
    config: configuration.Config,
    name: str,
    flag_args: list[str] | None = None,
    *,
    stream_name: str | None = None,
    values: dict[str, Any] | None = None,
) -> tuple[configuration.Plugin, type]:
    """The stream named ``name`` (configured, or a source type with ``stream_name``),
    with ``--flag`` arguments and ``values`` overriding the file."""
    preliminary = configuration.stream(config, name, {}, stream_name)
    source_class = plugins.source_class(preliminary.type)
    flags = parse_flags(source_class.Options, flag_args or [], where=f"extract {name}")
    plugin = configuration.stream(config, name, {**(values or {}), **flags}, stream_name)
    configuration.check_literal_secrets(plugin, source_class.Options)
    return plugin, source_class


def build_source(ledger: Ledger, plugin: configuration.Plugin, source_class: type) -> Source:
    options = build_options(source_class.Options, plugin.values, where=plugin.origin)
    return source_class(options, SourceContext(plugin.name, ledger.blobs))


def extract_stream(
    ledger: Ledger,
    config: configuration.Config,
    name: str,
    flag_args: list[str] | None = None,
    *,
    stream_name: str | None = None,
    values: dict[str, Any] | None = None,
    settings: ExtractSettings | None = None,
    progress: Progress | None = None,
    parent_run_id: int | None = None,
) -> ExtractResult:
    """``chatledger extract NAME [--option value …]``."""
    plugin, source_class = resolve_stream(
        config, name, flag_args, stream_name=stream_name, values=values
    )
    source = build_source(ledger, plugin, source_class)
    settings = settings or ExtractSettings()
    args = {
        "source": {"type": plugin.type, "options": masked(source_class.Options, plugin.values)},
        "settings": {key: value for key, value in asdict(settings).items() if key != "dry_run"},
    }
    return extract(
        ledger, source, settings=settings, args=args, progress=progress, parent_run_id=parent_run_id
    )
