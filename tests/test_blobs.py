"""The content-addressed blob store."""

from __future__ import annotations

import hashlib
import io
import stat

from ledger.blobs import BlobStore, HashOnlyBlobStore


def test_blobs_are_stored_once_under_their_sha256(tmp_path):
    store = BlobStore(tmp_path / "blobs")
    data = "héllo 🌍".encode() * 1000
    digest = store.put_bytes(data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert store.read(digest) == data and store.written == 1
    assert store.put_bytes(data) == digest and store.written == 1
    assert store.put_stream(io.BytesIO(data)) == (digest, len(data)) and store.written == 1
    assert stat.S_IMODE((tmp_path / "blobs").stat().st_mode) == 0o700
    assert not list((tmp_path / "blobs").glob(".incoming-*"))


def test_a_hash_only_store_writes_nothing(tmp_path):
    store = HashOnlyBlobStore(BlobStore(tmp_path / "blobs"))
    digest, size = store.put_stream(io.BytesIO(b"abc"))
    assert digest == hashlib.sha256(b"abc").hexdigest() and size == 3
    assert store.put_bytes(b"xyz") == hashlib.sha256(b"xyz").hexdigest()
    assert not (tmp_path / "blobs").exists()
