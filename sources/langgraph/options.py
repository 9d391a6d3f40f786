"""Options of the ``langgraph`` source: one input (a deployment's URL, a JSON export of
the ``langgraph-json`` sink, or a self-hosted checkpoint database), which threads, and
how much of their history."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.kit import ConfigError, option, parse_headers

#: the server refuses larger pages with 422
MAX_PAGE = 1000


@dataclass
class LangGraphOptions:
    url: str | None = option(None, help="A LangGraph Platform / Agent Server deployment (https://…).")
    api_key: str | None = option(
        None,
        help="The deployment's API key, as env:VAR (sent as x-api-key). Never read from ambient variables.",
        secret=True,
    )
    headers: list[str] = option(
        [],
        help="Extra request headers 'Name: value' for custom auth, each best given as env:VAR (repeatable).",
        secret=True,
    )
    export_file: Path | None = option(None, help="A JSON export written by the langgraph-json sink.")
    checkpoint_db: str | None = option(
        None,
        help="A self-hosted checkpoint store: sqlite:///path.db (langgraph-checkpoint-sqlite) or "
        "postgresql://… (langgraph-checkpoint-postgres), read through those libraries' savers.",
        secret=True,
    )
    metadata_filter: str | None = option(
        None, help='Only threads whose metadata contains this JSON object, e.g. {"owner": "alice"}.'
    )
    thread_ids: list[str] = option([], help="Only these threads (repeatable).")
    limit: int | None = option(
        None, help="At most this many threads (a trial run; a partial scope never deletes)."
    )
    history_limit: int | None = option(
        None, help="Only the newest N checkpoints of each thread (recorded as partial history)."
    )
    owner_key: str = option("owner", help="The thread metadata key naming the thread's owner.")
    concurrency: int = option(5, help="Threads whose history is fetched at the same time.")
    page_size: int = option(MAX_PAGE, help=f"Threads and checkpoints per request (at most {MAX_PAGE}).")
    timeout: float = option(60.0, help="Seconds to wait for one response.")


def check(options: LangGraphOptions) -> str:
    """Which input the options name (``api``, ``file`` or ``checkpoints``); exactly one."""
    given = [
        name
        for name, value in (
            ("api", options.url),
            ("file", options.export_file),
            ("checkpoints", options.checkpoint_db),
        )
        if value
    ]
    if len(given) != 1:
        raise ConfigError(
            f"langgraph: give exactly one input: url, export_file or checkpoint_db (got {', '.join(given) or 'none'})"
        )
    if not 1 <= options.page_size <= MAX_PAGE:
        raise ConfigError(f"langgraph: page_size must be between 1 and {MAX_PAGE}")
    if options.concurrency < 1:
        raise ConfigError("langgraph: concurrency must be at least 1")
    for name in ("limit", "history_limit"):
        value = getattr(options, name)
        if value is not None and value < 1:
            raise ConfigError(f"langgraph: {name} must be at least 1")
    metadata_filter(options)
    header_map(options)
    return given[0]


def metadata_filter(options: LangGraphOptions) -> dict[str, Any] | None:
    if options.metadata_filter is None:
        return None
    try:
        value = json.loads(options.metadata_filter)
    except ValueError as exc:
        raise ConfigError(f"langgraph: metadata_filter is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ConfigError("langgraph: metadata_filter must be a JSON object")
    return value


def header_map(options: LangGraphOptions) -> dict[str, str]:
    return parse_headers(options.headers, reserved=("x-api-key",), where="langgraph")
