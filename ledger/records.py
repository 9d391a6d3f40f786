"""Canonical records (DESIGN §2) and what a source reports instead of a record: a reject."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ledger.canonical import SCHEMA_VERSION, canonical_bytes, sha256_hex

KINDS = (
    "user",
    "assistant",
    "conversation",
    "message",
    "file",
    "run",
    "run_event",
    "checkpoint",
)

#: Replay order of kinds (DESIGN §5): referenced records before the ones pointing at them.
REPLAY_ORDER = {
    "user": 0,
    "assistant": 1,
    "file": 2,
    "conversation": 3,
    "message": 4,
    "run": 5,
    "run_event": 6,
    "checkpoint": 7,
}

MESSAGE_ROLES = ("user", "assistant", "system", "tool")
MESSAGE_STATUSES = ("complete", "error", "aborted")
PART_TYPES = (
    "text",
    "reasoning",
    "tool_call",
    "tool_result",
    "file",
    "image",
    "citation",
    "code",
    "error",
    "other",
)


@dataclass(frozen=True, slots=True)
class Record:
    """One extracted object. ``key`` is stable: the same native object always has it."""

    stream: str
    kind: str
    key: str
    data: dict[str, Any]
    raw: Any = None
    refs: list[str] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        """The object whose canonical bytes are stored as the payload and hashed."""
        return {
            "v": SCHEMA_VERSION,
            "stream": self.stream,
            "kind": self.kind,
            "key": self.key,
            "data": self.data,
            "raw": self.raw,
            "refs": self.refs,
        }

    @property
    def conversation(self) -> str | None:
        """The conversation this record belongs to, which is the replay unit it joins."""
        if self.kind == "conversation":
            return self.key
        value = self.data.get("conversation")
        return value if isinstance(value, str) else None


def record_body(record: Record) -> bytes:
    """The record's canonical payload bytes (its document as canonical JSON)."""
    return canonical_bytes(record.document())


def encode_record(record: Record) -> tuple[bytes, str]:
    """Canonical payload bytes and their sha256 hex: the record's content hash."""
    body = record_body(record)
    return body, sha256_hex(body)


def record_hash(record: Record) -> str:
    return encode_record(record)[1]


@dataclass(frozen=True, slots=True)
class Reject:
    """Input a source could not turn into a record. Kept in the ledger, never dropped.

    ``location`` names the place (file and line, collection and id, record key),
    ``reason`` says what is wrong, ``input`` holds the offending input (JSON-safe or text).
    ``key`` is the record key the input would have had, when the source knows it: that
    key then still counts as present, so a bad new version never deletes the good one.
    """

    location: str
    reason: str
    input: Any = None
    key: str | None = None
