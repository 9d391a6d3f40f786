"""Attachments as the v2 app keeps them: a ``file_entry`` row and the bytes at
``<userData>/Data/Files/<id>.<ext>``.

Upstream (``FileMigrator``, the path registry's ``feature.files.data``, FileManager's
internal path ``{id}{.ext}``): v1 file ids are kept (ids that are not UUIDs, from other
platforms, become uuid5s: :func:`~sinks.cherry_v2.plan.file_entry_id`), ``origin = 'internal'``, ``ext``
without its leading dot (trailing dots and spaces dropped; empty → NULL), ``name`` the
original file name without its extension, ``size`` in bytes. The database sits in
``<userData>`` (the v2 layout at ``3425fbd9b``) or in ``<userData>/Data`` (later
commits); either way the files folder is ``<userData>/Data/Files``.

Files are written before the batch's transaction (to a temporary name, then renamed) and
removed again if it fails; the files a removal frees are deleted only after the
transaction commits, so a row never names a file that is gone. Folders the sink had to
create are noted in ``chatledger_baseline`` and removed, when empty, with it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from ledger.kit import Item
from sinks.cherry_v2.plan import millis


def files_folder(database: Path) -> Path:
    """Where the app keeps internal files, from where its database is."""
    parent = database.resolve().parent
    return parent / "Files" if parent.name == "Data" else parent / "Data" / "Files"


def normal_ext(ext: Any) -> str | None:
    if not isinstance(ext, str):
        return None
    stripped = re.sub(r"[\s.]+$", "", ext.strip().removeprefix("."))
    return stripped or None


def entry_row(item: Item, ident: str, size: int, now: int) -> dict[str, Any]:
    data, meta = item.data, item.data.get("metadata") or {}
    ext = normal_ext(meta.get("ext")) or normal_ext(PurePosixPath(data.get("filename") or "").suffix)
    base = PureWindowsPath(PurePosixPath(str(data.get("filename") or "")).name).name  # either separator
    stem = base[: base.rfind(".")] if base.rfind(".") > 0 else base
    created = millis(data.get("created_at")) or now
    return {
        "id": ident,
        "origin": "internal",
        "name": stem.strip() or ident,
        "ext": ext,
        "size": size,
        "external_path": None,
        "created_at": created,
        "updated_at": created,
        "deleted_at": None,
    }


def physical_name(entry: dict[str, Any]) -> str:
    return f"{entry['id']}.{entry['ext']}" if entry["ext"] else entry["id"]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def make_folders(folder: Path) -> list[str]:
    """Create ``folder`` and its missing parents; the ones created, deepest first."""
    made = []
    current = folder
    while not current.exists():
        made.append(current)
        current = current.parent
    folder.mkdir(parents=True, exist_ok=True)
    return [str(p) for p in made]


def place(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` through a temporary file in the same folder."""
    handle, temporary = tempfile.mkstemp(prefix=".chatledger-", dir=target.parent)
    os.close(handle)
    try:
        shutil.copyfile(source, temporary)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def remove_empty(folders: list[str]) -> None:
    """Remove the folders this sink created, deepest first, while they are empty."""
    for folder in sorted(folders, key=len, reverse=True):
        try:
            Path(folder).rmdir()
        except OSError:  # not empty (files of the app's own) or gone: kept
            continue
