"""Finding sources and sinks: the ``chatledger.sources`` and ``chatledger.sinks`` entry points.

The core never imports a plug-in module by name, so a third-party package adds a source
or sink by declaring an entry point.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from typing import Any

from ledger.errors import UsageError

SOURCE_GROUP = "chatledger.sources"
SINK_GROUP = "chatledger.sinks"


@cache
def _registry(group: str) -> dict[str, Any]:
    return {entry.name: entry for entry in entry_points(group=group)}


def source_types() -> list[str]:
    return sorted(_registry(SOURCE_GROUP))


def sink_types() -> list[str]:
    return sorted(_registry(SINK_GROUP))


def _load(group: str, name: str, what: str) -> type:
    entry = _registry(group).get(name)
    if entry is None:
        known = ", ".join(sorted(_registry(group))) or "none installed"
        raise UsageError(f"unknown {what} type {name!r} (known: {known})")
    return entry.load()


def source_class(name: str) -> type:
    return _load(SOURCE_GROUP, name, "source")


def sink_class(name: str) -> type:
    return _load(SINK_GROUP, name, "sink")
