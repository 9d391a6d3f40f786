"""The plug-in kit: everything a source or sink may import from the core, and nothing else.

Sources and sinks (``sources/``, ``sinks/`` and third-party packages) import only this
module; a test walks their imports to hold them to it. What is here:

- **contracts**: :class:`Source`, :class:`Scope`, :class:`SourceContext`,
  :class:`Record`, :class:`Reject`; :class:`Sink`, :class:`SinkContext`, :class:`Unit`,
  :class:`Item`, :class:`Outcome` (``insert | update | delete | skip``), :class:`Repair`,
  the error classes (:class:`TransientError` retries, :class:`PermanentError` does not);
- **typed options**: :func:`option` fields on an ``Options`` dataclass;
- **canonical views**: :class:`ConversationView` (tree, active branch, order, files),
  :func:`message_text`, :func:`parts_of`, :func:`parse_time`, :func:`owner_of`;
- **hashing**: :func:`digest` (sha256 of canonical JSON), :func:`canonical_text`;
- **skeletons**: :class:`SqlTarget` (engine lifetime, markers written with the data, SQL
  error classes) with :func:`bulk_write`, :func:`upsert`, :func:`chunks`;
  :class:`Api` (HTTP with transient/permanent errors and retries);
- **retries**: :class:`RetryPolicy` (exponential backoff, full jitter).

See docs/plugins.md for the skeleton of a new source and a new sink.
"""

from __future__ import annotations

from typing import Any

from ledger.blobs import BlobStore, blob_ref
from ledger.canonical import (
    CanonicalError,
    canonical_bytes,
    canonical_text,
    format_datetime,
    ledger_text,
    loads,
    sha256_hex,
)
from ledger.conversation import (
    EPOCH,
    ConversationView,
    message_text,
    owner_of,
    parse_time,
    parts_of,
)
from ledger.errors import ChatledgerError, ConfigError, UsageError
from ledger.http import TRANSIENT_STATUS, Api
from ledger.options import option
from ledger.records import KINDS, MESSAGE_ROLES, MESSAGE_STATUSES, PART_TYPES, Record, Reject
from ledger.redact import redact, register_secret
from ledger.retry import RetryPolicy
from ledger.sink import (
    ACTIONS,
    CAPABILITIES,
    Item,
    Outcome,
    PermanentError,
    Repair,
    Sink,
    SinkContext,
    TargetFull,
    TransientError,
    Unit,
    out_of_space,
)
from ledger.source import Scope, Source, SourceContext
from ledger.sql import Statistics, bulk_write, chunks, upsert
from ledger.sqlsink import Markers, SqlTarget, classify_sql_error, marker_table, target_engine


def digest(*values: Any) -> str:
    """sha256 hex of the canonical JSON of ``values``: fingerprints, change tokens."""
    return sha256_hex(canonical_bytes(list(values) if len(values) != 1 else values[0]))


__all__ = [
    "ACTIONS",
    "CAPABILITIES",
    "EPOCH",
    "KINDS",
    "MESSAGE_ROLES",
    "MESSAGE_STATUSES",
    "PART_TYPES",
    "TRANSIENT_STATUS",
    "Api",
    "BlobStore",
    "CanonicalError",
    "ChatledgerError",
    "ConfigError",
    "ConversationView",
    "Item",
    "Markers",
    "Outcome",
    "PermanentError",
    "Record",
    "Reject",
    "Repair",
    "RetryPolicy",
    "Scope",
    "Sink",
    "SinkContext",
    "Source",
    "SourceContext",
    "SqlTarget",
    "Statistics",
    "TargetFull",
    "TransientError",
    "Unit",
    "UsageError",
    "blob_ref",
    "bulk_write",
    "canonical_bytes",
    "canonical_text",
    "chunks",
    "classify_sql_error",
    "digest",
    "format_datetime",
    "ledger_text",
    "loads",
    "marker_table",
    "message_text",
    "option",
    "out_of_space",
    "owner_of",
    "parse_time",
    "parts_of",
    "redact",
    "register_secret",
    "sha256_hex",
    "target_engine",
    "upsert",
]
