"""What the reader hands the writer: a batch, and the counters both keep."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ledger.canonical import sha256_hex
from ledger.payloads import pack
from ledger.records import Reject

COUNTERS = ("read", "new", "changed", "unchanged", "deleted", "rejected", "bytes")
SCOPE_COUNTERS = ("listed", "read", "unchanged", "resumed", "vanished", "deletes_withheld")

# An encoded record is a plain tuple, cheap to pickle between processes: the reader
# sends (KIND, KEY, SCOPE, CONVERSATION, BODY), BODY being the canonical JSON, and the
# writer seals it: BODY's sha256 (``HASH``) and length (``SIZE``), and the payload as
# stored (``CODEC``, ``STORED``). The reader runs the source and the encoding, the larger
# share of an extraction's Python work, so hashing and compressing on the writer's side
# balances the two processes.
KIND, KEY, SCOPE, CONVERSATION, BODY = range(5)
HASH, SIZE, CODEC, STORED = range(4, 8)


def seal(record: tuple) -> tuple:
    """An encoded record with its hash, size and stored payload (KIND … STORED)."""
    body = record[BODY]
    return (*record[:BODY], sha256_hex(body), len(body), *pack(body))


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
    records: list[tuple] = field(default_factory=list)  # encoded, in key order: KIND..BODY
    rejects: list[tuple[Reject, str]] = field(default_factory=list)  # (reject, scope)
    cursors: dict[str, Any] = field(default_factory=dict)  # unfinished scopes
    done: list[ScopeDone] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)
    reader_stats: dict[str, Any] = field(default_factory=dict)  # a copy, for the run row
    commit: bool = True  # the last part of a ledger transaction (see Reader.hand_over)

    def __bool__(self) -> bool:
        return bool(self.records or self.rejects or self.cursors or self.done or self.vanished)
