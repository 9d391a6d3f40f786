"""The plug-in kit: everything a source or sink may import from the core, and nothing else.

Sources and sinks (``sources/``, ``sinks/`` and third-party packages) import only this
module; a test walks their imports to hold them to it. What is here:

- **contracts**: :class:`Source`, :class:`Scope`, :class:`SourceContext`,
  :class:`Record`, :class:`Reject`; :class:`Sink`, :class:`SinkContext`, :class:`Unit`,
  :class:`Item`, :class:`Outcome` (``insert | update | delete | skip``), :class:`Repair`
  (a sink's context also says which users own something to migrate),
  the error classes (:class:`TransientError` retries, :class:`PermanentError` does not;
  :class:`TargetUnreachable`, built by :func:`unreachable`, fails a dry run's ``check``);
- **typed options**: :func:`option` fields on an ``Options`` dataclass;
- **canonical views**: :class:`ConversationView` (tree, active branch, order, files),
  :func:`message_text`, :func:`parts_of`, :func:`parse_time`, :func:`owner_of`;
- **hashing**: :func:`digest` (sha256 of canonical JSON), :func:`canonical_text`;
- **formats shared by two plug-ins**: :mod:`bundle_layout` (the files of a bundle folder,
  written by the bundle sink and read back by the bundle source);
- **inputs**: :func:`describe_export` / :func:`export_format` (which chat export a JSON
  document looks like, for a reject), :func:`name_problem` / :func:`printable_path`
  (file names that are not UTF-8 become one reject, not a crash);
- **skeletons**: :class:`SqlTarget` (engine lifetime, markers written with the data in
  :data:`MARKER_TABLE`, SQL error classes) with :func:`bulk_write`, :func:`copy_line` / :func:`copy_lines` (COPY of rows formatted
  ahead; :func:`copy_text` / :func:`copy_json` format one field), :func:`upsert`, :func:`chunks`;
  :class:`Api` (HTTP with transient/permanent errors and retries); :class:`HttpTarget`
  (check-before-create, read-back, delete-and-recreate of half-created objects) with
  :func:`call` (one SDK or HTTP operation retried on transient errors only) and
  :func:`classify_http`;
  :class:`DocumentTarget` (MongoDB: deterministic ``_id`` from :func:`document_id`,
  upserts, markers inside the documents via :func:`marker`, pymongo error classes);
- **retries**: :class:`RetryPolicy` (exponential backoff, full jitter);
- **export files**: :class:`ExportSource` (one scope per file, sha256 fingerprints,
  rejects naming the file and the format it looks like), :class:`Package` (a JSON file
  or a ZIP streamed member by member), :class:`JsonValues` (a top-level array one
  element at a time), :func:`moment`, :func:`build_tree`, :func:`format_name`.

See docs/plugins.md for the skeleton of a new source and a new sink.
"""

from __future__ import annotations

from typing import Any

from ledger import bundle_layout
from ledger.blobs import BlobStore, blob_ref
from ledger.canonical import (
    CanonicalError,
    canonical_bytes,
    canonical_text,
    format_datetime,
    ledger_json,
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
from ledger.dialects import (
    COPY_NULL,
    Statistics,
    bulk_write,
    chunks,
    copy_json,
    copy_line,
    copy_lines,
    copy_text,
    upsert,
)
from ledger.document_target import (
    MARKER_FIELD,
    DocumentTarget,
    classify_mongo_error,
    document_id,
    marker,
)
from ledger.errors import ChatledgerError, ConfigError, UsageError
from ledger.exports import (
    ExportError,
    ExportSource,
    JsonValues,
    MessageTree,
    Package,
    build_tree,
    export_files,
    file_sha256,
    guess_mime,
    json_document,
    moment,
)
from ledger.formats import (
    FORMAT_LABELS,
    describe_export,
    export_format,
    format_name,
    name_problem,
    printable_path,
)
from ledger.http import TRANSIENT_STATUS, Api
from ledger.http_target import HttpTarget, call, classify_http, http_status, parse_headers
from ledger.lookups import OwnerMap
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
    TargetUnreachable,
    TransientError,
    Unit,
    out_of_space,
    unreachable,
)
from ledger.source import Scope, Source, SourceContext
from ledger.sql_target import (
    MARKER_TABLE,
    Markers,
    SqlTarget,
    classify_sql_error,
    marker_table,
    target_engine,
)


def digest(*values: Any) -> str:
    """sha256 hex of the canonical JSON of ``values``: fingerprints, change tokens."""
    return sha256_hex(canonical_bytes(list(values) if len(values) != 1 else values[0]))


__all__ = [
    "ACTIONS",
    "CAPABILITIES",
    "COPY_NULL",
    "EPOCH",
    "FORMAT_LABELS",
    "KINDS",
    "MARKER_FIELD",
    "MARKER_TABLE",
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
    "DocumentTarget",
    "ExportError",
    "ExportSource",
    "HttpTarget",
    "Item",
    "JsonValues",
    "Markers",
    "MessageTree",
    "Outcome",
    "OwnerMap",
    "Package",
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
    "TargetUnreachable",
    "TransientError",
    "Unit",
    "UsageError",
    "blob_ref",
    "build_tree",
    "bulk_write",
    "bundle_layout",
    "call",
    "canonical_bytes",
    "canonical_text",
    "chunks",
    "classify_http",
    "classify_mongo_error",
    "classify_sql_error",
    "copy_json",
    "copy_line",
    "copy_lines",
    "copy_text",
    "describe_export",
    "digest",
    "document_id",
    "export_files",
    "export_format",
    "file_sha256",
    "format_datetime",
    "format_name",
    "guess_mime",
    "http_status",
    "json_document",
    "ledger_json",
    "ledger_text",
    "loads",
    "marker",
    "marker_table",
    "message_text",
    "moment",
    "name_problem",
    "option",
    "out_of_space",
    "owner_of",
    "parse_headers",
    "parse_time",
    "parts_of",
    "printable_path",
    "redact",
    "register_secret",
    "sha256_hex",
    "target_engine",
    "unreachable",
    "upsert",
]
