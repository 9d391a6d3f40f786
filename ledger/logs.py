"""structlog setup: readable lines on stderr, or JSON with ``--log-json``; secrets masked.

Run events (a run started, a run finished) are for machines: logged at info level with
``--log-json``, at debug level otherwise (``-v`` shows them), since a person reads the
command's own summary.

Verbosity: -1 (``-q``) warnings and errors only; 0 info; 1 (``-v``) debug; 2 (``-vv``)
debug, and the libraries' standard-library logs too (SQLAlchemy's SQL, httpx's requests),
rendered and redacted the same way."""

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


def _level(verbosity: int) -> int:
    return logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO


def configure(*, json: bool = False, verbosity: int = 0) -> None:
    global _run_events_level
    _run_events_level = logging.INFO if json else logging.DEBUG
    level = _level(verbosity)
    renderer = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    chain = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        _redact,
    ]
    if verbosity >= 2:
        _show_library_logs(chain, renderer)
    structlog.configure(
        processors=[*chain, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def _show_library_logs(chain: list[Any], renderer: Any) -> None:
    """Send the standard-library loggers (SQLAlchemy, httpx, pymongo…) to stderr at info
    level through structlog's chain, so their lines are redacted like ours."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *chain],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)  # SQLAlchemy holds it at WARN
