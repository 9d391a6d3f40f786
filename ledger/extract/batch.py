"""What the reader hands the writer: a batch, and the counters both keep."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ledger.records import Reject

COUNTERS = ("read", "new", "changed", "unchanged", "deleted", "rejected", "bytes")
SCOPE_COUNTERS = ("listed", "read", "unchanged", "resumed", "vanished", "deletes_withheld")

# An encoded record is a plain tuple, cheap to pickle between processes. The reader
# compresses the payload (``CODEC``, ``STORED``; ``SIZE`` is the canonical JSON's length)
# so that work runs on its core, and fewer bytes cross the pipe.
KIND, KEY, SCOPE, CONVERSATION, HASH, SIZE, CODEC, STORED = range(8)


class Tally:
    """Counters per kind: read, new, changed, unchanged, deleted, rejected, bytes."""

    def __init__(self, kinds: dict[str, dict[str, int]] | None = None) -> None:
        self.kinds: dict[str, dict[str, int]] = kinds if kinds is not None else {}

    def add(self, kind: str, name: str, amount: int = 1) -> None:
        counts = self.kinds.get(kind)
        if counts is None:
            counts = self.kinds[kind] = dict.fromkeys(COUNTERS, 0)
        counts[name] += amount

    def merged(self, other: Tally) -> dict[str, dict[str, int]]:
        out = {kind: dict(counts) for kind, counts in self.kinds.items()}
        for kind, counts in other.kinds.items():
            target = out.setdefault(kind, dict.fromkeys(COUNTERS, 0))
            for name, value in counts.items():
                target[name] += value
        return out


@dataclass
class ScopeDone:
    """A scope the reader finished, with the keys it saw (None: deletes not detectable).

    ``whole``: the pass read the scope from its start to its end, so a reject recorded
    for it before and not found again is resolved (the input was fixed or removed)."""

    name: str
    seen: set[str] | None
    records: int
    cursor: Any
    fingerprint: str | None
    whole: bool = False


@dataclass
class Batch:
    records: list[tuple] = field(default_factory=list)  # encoded, in key order: KIND..STORED
    rejects: list[tuple[Reject, str]] = field(default_factory=list)  # (reject, scope)
    cursors: dict[str, Any] = field(default_factory=dict)  # unfinished scopes
    done: list[ScopeDone] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)
    reader_stats: dict[str, Any] = field(default_factory=dict)  # a copy, for the run row
    commit: bool = True  # the last part of a ledger transaction (see Reader.hand_over)

    def __bool__(self) -> bool:
        return bool(self.records or self.rejects or self.cursors or self.done or self.vanished)
