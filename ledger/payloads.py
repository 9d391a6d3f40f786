"""Payload storage: the canonical JSON of each record version, once per hash.

Payloads above a few hundred bytes are lz4-compressed (codec ``lz4``): it halves the
ledger's size and write volume at about 2 µs per payload, and releases the GIL while it
works. ``size`` always holds the length of the canonical JSON.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import lz4.block
from sqlalchemy import Connection, select

from ledger.canonical import loads
from ledger.dialects import chunks
from ledger.schema import payloads

COMPRESS_ABOVE = 256


def pack(body: bytes) -> tuple[str, bytes]:
    """(codec, stored bytes) for a canonical JSON body."""
    if len(body) > COMPRESS_ABOVE:
        return "lz4", lz4.block.compress(body, store_size=False)
    return "json", body


def unpack(codec: str, stored: bytes, size: int) -> bytes:
    if codec == "lz4":
        return lz4.block.decompress(stored, uncompressed_size=size)
    return bytes(stored)


Stored = tuple[str, bytes, int]  # (codec, stored bytes, size): a payload as the ledger keeps it


def load_stored(conn: Connection, hashes: Iterable[str]) -> dict[str, Stored]:
    """hash → the payload as stored, not decoded.

    The hashes are looked up in key order, so each chunk walks the payloads index from
    one end to the other instead of jumping around it."""
    found: dict[str, Stored] = {}
    for chunk in chunks(sorted(set(hashes))):
        rows = conn.execute(
            select(payloads.c.hash, payloads.c.codec, payloads.c.body, payloads.c.size).where(
                payloads.c.hash.in_(chunk)
            )
        )
        for digest, codec, body, size in rows:
            found[digest] = (codec, body, size)
    return found


def decode(stored: Stored) -> dict[str, Any]:
    return loads(unpack(*stored))


def load_documents(conn: Connection, hashes: Iterable[str]) -> dict[str, dict[str, Any]]:
    """hash → the stored record document ({v, stream, kind, key, data, raw, refs})."""
    return {digest: decode(stored) for digest, stored in load_stored(conn, hashes).items()}


class StoredDocument(Mapping):
    """A record document decoded on first use. A replay whose rows are made in worker
    processes (:mod:`ledger.replay.workers`) hands items these: the sink's ``apply``
    normally needs only what the workers prepared, and decodes nothing."""

    __slots__ = ("_document", "stored")

    def __init__(self, stored: Stored) -> None:
        self.stored = stored
        self._document: dict[str, Any] | None = None

    @property
    def document(self) -> dict[str, Any]:
        if self._document is None:
            self._document = decode(self.stored)
        return self._document

    def __getitem__(self, name: str) -> Any:
        return self.document[name]

    def __iter__(self):
        return iter(self.document)

    def __len__(self) -> int:
        return len(self.document)
