"""Content-addressed storage of attachment bytes: one file per sha256.

``<root>/ab/abcd…`` holds the bytes whose sha256 is ``abcd…``. Writes go to a temporary
file that is renamed into place, so a crash never leaves a partial blob under its name,
and a blob that exists is never written again. The directory is private (0700): blobs
hold users' files.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20


def blob_ref(sha256: str) -> str:
    """How records point at a blob (DESIGN §2: ``sha256:<hex>``)."""
    return f"sha256:{sha256}"


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.written = 0  # new blobs stored by this process
        self.written_bytes = 0
        self._made: set[str] = set()  # fan-out directories known to exist

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def read(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def put_bytes(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        if not self.has(digest):
            self.put_stream(io.BytesIO(data))
        return digest

    def put_stream(self, stream: BinaryIO) -> tuple[str, int]:
        """Store a file-like object's bytes; return (sha256, size)."""
        self._ensure_root()
        digest = hashlib.sha256()
        size = 0
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
            hexdigest = digest.hexdigest()
            if self.has(hexdigest):
                os.unlink(tmp)
            else:
                self._place(tmp, hexdigest, size)
            return hexdigest, size
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def put_file(self, path: Path) -> tuple[str, int]:
        with open(path, "rb") as handle:
            return self.put_stream(handle)

    def _ensure_root(self) -> None:
        if "" not in self._made:
            self.root.mkdir(parents=True, exist_ok=True)
            os.chmod(self.root, 0o700)
            self._made.add("")

    def _place(self, tmp: str, digest: str, size: int) -> None:
        final = self.path(digest)
        if digest[:2] not in self._made:  # metadata operations are slow next to fsyncs
            final.parent.mkdir(exist_ok=True)
            self._made.add(digest[:2])
        os.replace(tmp, final)
        self.written += 1
        self.written_bytes += size


class HashOnlyBlobStore(BlobStore):
    """For dry runs: computes what would be stored, writes nothing."""

    def __init__(self, real: BlobStore) -> None:
        super().__init__(real.root)

    def put_stream(self, stream: BinaryIO) -> tuple[str, int]:
        digest = hashlib.sha256()
        size = 0
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
        return digest.hexdigest(), size
