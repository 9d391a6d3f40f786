"""The source plug-in contract (DESIGN §7).

A source lists its *scopes* (e.g. one per user) and reads each as a stream of chunks
``(items, cursor)``, where items are :class:`~ledger.records.Record` or
:class:`~ledger.records.Reject`. The engine owns everything else: hashing, the append
rule, batching, checkpoints, deletes and the run.

- ``Scope.complete`` says the pass reads the whole scope, so keys missing from it were
  deleted at the source. Filters and limits make a scope partial: it never deletes.
- ``Source.exhaustive`` says ``scopes()`` lists every scope there is, so a scope seen
  before and missing now was deleted as a whole.
- ``Scope.fingerprint`` is an optional cheap change token (a file's sha256, the newest
  ``updatedAt``, a generator's seed): a complete scope whose fingerprint equals the one
  of its last complete pass is skipped without reading it. ``extract --full`` ignores
  fingerprints. A source whose tokens cannot prove "unchanged" returns None.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import structlog

from ledger.blobs import BlobStore
from ledger.records import Record, Reject

Item = Record | Reject


@dataclass(frozen=True)
class Scope:
    name: str
    complete: bool = True
    fingerprint: str | None = None


@dataclass
class SourceContext:
    stream: str
    blobs: BlobStore
    log: Any = field(default_factory=lambda: structlog.get_logger("chatledger.source"))
    lookups: Any = None  # ledger.lookups.Lookups: answers of outside services, cached


class Source(abc.ABC):
    """Subclasses set ``type_name`` and ``Options`` (a dataclass of :func:`option` fields)."""

    type_name: ClassVar[str]
    Options: ClassVar[type]
    exhaustive: bool = True

    def __init__(self, options: Any, context: SourceContext) -> None:
        self.options = options
        self.context = context
        self.stream = context.stream

    def record(
        self,
        kind: str,
        key: str,
        data: dict[str, Any],
        raw: Any = None,
        refs: Sequence[str] = (),
    ) -> Record:
        return Record(self.stream, kind, key, data, raw, [ref for ref in refs if ref])

    @abc.abstractmethod
    def scopes(self) -> Iterator[Scope]:
        """Every scope to read, in order."""

    @abc.abstractmethod
    def read(self, scope: Scope, cursor: Any = None) -> Iterator[tuple[list[Item], Any]]:
        """Chunks of one scope from ``cursor`` (None: the start).

        Each chunk comes with the cursor where it ended (JSON-safe). The engine passes a
        stored cursor only to partial scopes; a complete scope that was interrupted is read
        again from its start, so its deletes are still detected.
        """

    def scope_count(self) -> int | None:
        """How many scopes ``scopes()`` will list, when cheap to know (for progress)."""
        return None

    def describe(self) -> dict[str, Any]:
        """Facts about the input to keep in the run (sizes, checksums, counts)."""
        return {}

    def close(self) -> None:
        """Release connections and files."""
