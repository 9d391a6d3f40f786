"""structlog setup: readable lines on stderr, or JSON with ``--log-json``; secrets masked.

Run events (a run started, a run finished) are for machines: logged at info level with
``--log-json``, at debug level otherwise (``-v`` shows them), since a person reads the
command's own summary."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from ledger.redact import redact_value


def _redact(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    return {key: redact_value(value) for key, value in event.items()}


_run_events_level = logging.DEBUG


def run_event(event: str, **fields: Any) -> None:
    """Log one run event (``run started``, ``run finished``) with its fields."""
    structlog.get_logger("chatledger.run").log(_run_events_level, event, **fields)


def configure(*, json: bool = False, verbosity: int = 0) -> None:
    global _run_events_level
    _run_events_level = logging.INFO if json else logging.DEBUG
    level = logging.DEBUG if verbosity > 0 else logging.INFO
    renderer = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
