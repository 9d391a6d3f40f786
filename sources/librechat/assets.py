"""Finding a LibreChat file's bytes on disk, never outside the configured asset roots.

LibreChat stores local files under two prefixes (``api/server/services/Files/Local``):
``/images/<userId>/<name>`` (served from ``client/public/images``) and
``/uploads/<userId>/<file_id>__<name>``. An asset root is either such a folder itself
(its name is ``images`` or ``uploads``: docker-compose mounts ``./images`` and
``./uploads``) and then serves only that prefix, or a folder that contains ``images/``
and ``uploads/`` (e.g. ``client/public`` or a backup of both).

A candidate path is resolved (symlinks, ``..``) and must stay inside its root's resolved
path; otherwise the file is ``missing`` with the reason, as it is when the bytes live
elsewhere (``source`` s3/firebase/azure_blob/cloudfront: not fetched; openai, vectordb,
execute_code: LibreChat keeps no bytes) or were never found.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

PREFIXES = ("images", "uploads")
REMOTE_SOURCES = ("s3", "firebase", "azure", "azure_blob", "cloudfront")


class Assets:
    def __init__(self, roots: list[Path]) -> None:
        self.roots = [Path(os.path.realpath(root)) for root in roots]

    def locate(self, filepath: str) -> tuple[Path | None, str | None]:
        """(the file, None) or (None, why it cannot be read)."""
        prefix, _, rest = filepath.lstrip("/").partition("/")
        if not filepath.startswith("/") or prefix not in PREFIXES or not rest:
            return None, f"filepath {filepath!r} is not under /images/ or /uploads/"
        if not self.roots:
            return None, "no asset_roots configured"
        escaped = False
        for root in self.roots:
            if root.name in PREFIXES and root.name != prefix:
                continue  # an images/ root serves only /images/, and uploads/ only /uploads/
            base = root if root.name == prefix else root / prefix
            candidate = Path(os.path.realpath(base / rest))
            if not candidate.is_relative_to(root):
                escaped = True
                continue
            if candidate.is_file():
                return candidate, None
        if escaped:
            return None, f"filepath {filepath!r} escapes the asset roots"
        return None, f"not found under the asset roots: {filepath}"

    def fingerprint(self) -> str:
        """A change token of everything under the roots: names, sizes, modification times."""
        digest = hashlib.sha256()
        for root in self.roots:
            digest.update(f"root {root}\n".encode())
            for folder, dirs, files in os.walk(root):
                dirs.sort()
                for name in sorted(files):
                    path = os.path.join(folder, name)
                    try:
                        stat = os.stat(path)
                    except OSError:
                        continue
                    relative = os.path.relpath(path, root)
                    # a name that is not UTF-8 still counts, as its bytes
                    line = f"{relative}\0{stat.st_size}\0{stat.st_mtime_ns}\n"
                    digest.update(line.encode("utf-8", "surrogateescape"))
        return digest.hexdigest()

    def count(self) -> int:
        return sum(len(files) for root in self.roots for _, _, files in os.walk(root))


def unreadable_reason(document: dict) -> str | None:
    """Why a files document's bytes cannot be read locally (None: try the disk)."""
    source = document.get("source") or "local"
    if source == "local":
        return None
    if source in REMOTE_SOURCES:
        return f"stored in {source} ({document.get('filepath')}): only local files are read"
    return f"LibreChat keeps no bytes for source {source}"
