"""The ``bundle`` sink: a portable JSONL export, one folder per owner.

```
<path>/<owner>/summary.json          the owner, counts, time range, streams
<path>/<owner>/conversations.jsonl   one conversation per line, messages in order
<path>/<owner>/files_manifest.jsonl  one file per line: sha256, size, copy status
<path>/<owner>/records.jsonl         every record exactly as the ledger holds it
<path>/<owner>/files/<sha256>        the bytes, with copy_files = true
```

A ``conversations.jsonl`` line holds the conversation's metadata; ``messages`` in
chronological order; ``active_branch`` (root to ``active_leaf``); ``branch_points``
(messages with several children); ``missing_parents`` (messages whose parent is not in
the conversation); and ``files`` with the ``referenced`` and ``missing`` file keys.
Lines are sorted by creation time, then key, and written as canonical JSON, so a
re-run produces the same bytes.

``records.jsonl`` makes the bundle a backup as well as an export: one line per record
(``stream``, ``kind``, ``key``, ``data``, ``raw``, ``refs``: the ledger's record), the
owner's user first, then files, then each conversation followed by its messages. The
``bundle`` source restores a bundle from it, with the same record hashes; the other
files are projections for people and tools, which drop the native ``raw`` documents.

Every changed owner's files are rewritten whole: a temporary file, then a rename, never
an append. So re-runs never duplicate anything, and a rollback rewrites the previous
content. The unit is a conversation: a change to one message rewrites its conversation's
line.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.kit import (
    ChatledgerError,
    ConfigError,
    Item,
    Outcome,
    PermanentError,
    Sink,
    TransientError,
    Unit,
    canonical_bytes,
    loads,
    option,
    out_of_space,
    sha256_hex,
)
from ledger.kit import (
    bundle_layout as layout,
)

GROUP_ORDER = {"user": 0, "file": 1, "conversation": 2}
UNOWNED = "_unowned"
MESSAGE_FIELDS = (
    "parent", "role", "author", "model", "created_at", "updated_at", "status", "parts",
    "files", "sibling_group", "usage", "feedback", "metadata",
)  # fmt: skip
CONVERSATION_FIELDS = (
    "owner", "title", "created_at", "updated_at", "assistant", "model", "system_prompt",
    "pinned", "archived", "tags", "active_leaf", "metadata",
)  # fmt: skip


@dataclass
class BundleOptions:
    path: Path = option(help="The folder the bundle is written to.")
    copy_files: bool = option(False, help="Copy attachment bytes into <owner>/files/<sha256>.")


def owner_folder(owner: str | None) -> str:
    """A filesystem-safe, stable folder name for an owner key."""
    if not owner:
        return UNOWNED
    safe = re.sub(r"[^A-Za-z0-9._@-]+", "_", owner)[:80].strip("._") or "owner"
    if safe != owner:
        safe += "-" + hashlib.sha256(owner.encode()).hexdigest()[:8]
    return safe


def conversation_line(unit: Unit) -> dict[str, Any]:
    """The JSONL line of one conversation unit (only its own records)."""
    head = unit.head
    messages = [item for item in unit.items if item.kind == "message" and not item.removed]
    present = {item.key for item in messages}
    children: dict[str, int] = {}
    for item in messages:
        parent = item.data.get("parent")
        if parent:
            children[parent] = children.get(parent, 0) + 1
    ordered = sorted(messages, key=lambda item: (item.data.get("created_at") or "", item.key))
    data = head.data if head is not None and not head.removed else {}
    branch = []
    node = data.get("active_leaf")
    by_key = {item.key: item for item in messages}
    while node in by_key and node not in branch:
        branch.append(node)
        node = by_key[node].data.get("parent")
    referenced = sorted({key for item in messages for key in item.data.get("files") or []})
    return {
        "key": unit.key,
        "stream": unit.items[0].stream,
        **{name: data.get(name) for name in CONVERSATION_FIELDS},
        "conversation_record": head is not None and not head.removed,
        "messages": [
            {"key": item.key, **{name: item.data.get(name) for name in MESSAGE_FIELDS}} for item in ordered
        ],
        "active_branch": list(reversed(branch)),
        "branch_points": sorted(key for key, count in children.items() if count > 1),
        "missing_parents": sorted(
            item.key for item in messages if item.data.get("parent") and item.data["parent"] not in present
        ),
        "files": {"referenced": referenced},
    }


def unit_records(unit: Unit) -> list[dict[str, Any]]:
    """The ``records.jsonl`` lines of a unit: its records still present, the unit's own
    record first, messages by creation time."""
    present = [item for item in unit.items if not item.removed]
    present.sort(key=lambda item: (item.key != unit.key, item.data.get("created_at") or "", item.key))
    return [{name: item.document[name] for name in layout.RECORD_FIELDS} for item in present]


def _group_of(record: dict[str, Any]) -> str:
    """The unit a ``records.jsonl`` line belongs to: a message's conversation, else itself."""
    if record["kind"] == "message":
        return record["data"].get("conversation") or record["key"]
    return record["key"]


def _owner_of(unit: Unit) -> str | None:
    """The owner key of a unit: the user itself, or the conversation's or file's owner,
    or (for what is being removed) the owner whose folder holds it."""
    if unit.kind == "user":
        return unit.key
    head = unit.head or unit.items[0]
    if not head.removed and head.data.get("owner"):
        return head.data["owner"]
    for item in unit.items:
        if isinstance(item.held_ref, dict) and item.held_ref.get("owner"):
            return item.held_ref["owner"]
    return None


class _Owner:
    """One owner's folder, loaded, changed in memory and written back atomically."""

    def __init__(self, folder: Path, owner: str | None) -> None:
        self.owner = owner
        self.folder = folder
        self.lines = {line["key"]: line for line in self._read_jsonl(layout.CONVERSATIONS)}
        self.files = {entry["key"]: entry for entry in self._read_jsonl(layout.MANIFEST)}
        self.records: dict[str, list[dict[str, Any]]] = {}  # unit key → its records
        for record in self._read_jsonl(layout.RECORDS):
            self.records.setdefault(_group_of(record), []).append(record)
        summary = self._read_json(layout.SUMMARY) or {}
        self.user = summary.get("user")
        if owner is None:  # a folder read to find what it holds: its summary names the owner
            self.owner = summary.get("owner")

    def _read_jsonl(self, name: str) -> list[dict[str, Any]]:
        path = self.folder / name
        if not path.exists():
            return []
        return [loads(line) for line in path.read_bytes().splitlines() if line.strip()]

    def _read_json(self, name: str) -> dict[str, Any] | None:
        path = self.folder / name
        return loads(path.read_bytes()) if path.exists() else None

    def summary(self) -> dict[str, Any]:
        times = [
            value
            for line in self.lines.values()
            for value in [line.get("created_at"), line.get("updated_at")]
            + [message.get("created_at") for message in line["messages"]]
            if value
        ]
        return {
            "owner": self.owner,
            "user": self.user,
            "counts": {
                "conversations": len(self.lines),
                "messages": sum(len(line["messages"]) for line in self.lines.values()),
                "files": len(self.files),
                "files_missing": sum(1 for entry in self.files.values() if entry["status"] == "missing"),
            },
            "time_range": {"first": min(times), "last": max(times)} if times else None,
            "streams": sorted(
                {line["stream"] for line in self.lines.values()}
                | {entry["stream"] for entry in self.files.values()}
            ),
        }

    def empty(self) -> bool:
        return not self.user and not self.lines and not self.files and not self.records

    def write(self) -> None:
        """Write the folder back; an owner left with nothing loses its folder, and
        attachment copies no manifest entry lists any more are removed (a rollback of
        the run that made an owner leaves no trace of it)."""
        if self.empty():
            if self.folder.exists():
                shutil.rmtree(self.folder)
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        for line in self.lines.values():
            known = {key for key, entry in self.files.items() if entry["status"] != "missing"}
            line["files"]["missing"] = [key for key in line["files"]["referenced"] if key not in known]
        ordered = sorted(self.lines.values(), key=lambda line: (line.get("created_at") or "", line["key"]))
        _atomic_write(
            self.folder / layout.CONVERSATIONS, b"".join(canonical_bytes(line) + b"\n" for line in ordered)
        )
        manifest = [self.files[key] for key in sorted(self.files)]
        _atomic_write(
            self.folder / layout.MANIFEST, b"".join(canonical_bytes(entry) + b"\n" for entry in manifest)
        )
        _atomic_write(
            self.folder / layout.RECORDS,
            b"".join(canonical_bytes(record) + b"\n" for group in self._groups() for record in group),
        )
        _atomic_write(self.folder / layout.SUMMARY, canonical_bytes(self.summary()) + b"\n")
        self._drop_unlisted_copies()

    def _groups(self) -> list[list[dict[str, Any]]]:
        """The records grouped by unit: the user, the files by key, then conversations in
        the order of ``conversations.jsonl``."""
        position = {
            key: (line.get("created_at") or "", key) for key, line in self.lines.items()
        }  # a conversation's group sorts as its line does
        return [
            self.records[key]
            for key in sorted(
                self.records,
                key=lambda key: (
                    GROUP_ORDER.get(self.records[key][0]["kind"], 2),
                    position.get(key, ("", key)),
                ),
            )
        ]

    def _drop_unlisted_copies(self) -> None:
        copies = self.folder / "files"
        if not copies.is_dir():
            return
        listed = {entry["sha256"] for entry in self.files.values() if entry["status"] == "copied"}
        for path in copies.iterdir():
            if path.name not in listed:
                path.unlink()
        if not any(copies.iterdir()):
            copies.rmdir()


def _fingerprint(shown: Any, records: list[dict[str, Any]]) -> str:
    return sha256_hex(canonical_bytes([shown, records]))


def _atomic_write(path: Path, content: bytes) -> None:
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


class BundleSink(Sink):
    type_name = "bundle"
    Options = BundleOptions
    unit = "conversation"
    capabilities = frozenset({"branches", "verify"})
    kinds = ("user", "file", "conversation", "message")

    def describe(self) -> str:
        return f"bundle {self.options.path}"

    def tables(self, kind: str) -> list[str]:
        return {
            "user": [layout.SUMMARY],
            "file": [layout.MANIFEST],
            "conversation": [layout.CONVERSATIONS],
            "message": [layout.CONVERSATIONS],
        }.get(kind, [kind])

    def open(self) -> None:
        path = self.options.path
        if path.exists() and not path.is_dir():
            raise ConfigError(f"bundle path {path} is a file, not a folder: name a folder")
        if self.context.read_only:  # verify, dry runs: a missing folder reads as empty
            return
        path.mkdir(parents=True, exist_ok=True)

    def classify(self, error: Exception) -> type[ChatledgerError] | None:
        if isinstance(error, (BlockingIOError, InterruptedError, TimeoutError)):
            return TransientError
        if isinstance(error, OSError):
            return PermanentError
        return None

    def _owner(self, owners: dict[str | None, _Owner], key: str | None) -> _Owner:
        if key not in owners:
            owners[key] = _Owner(self.options.path / owner_folder(key), key)
        return owners[key]

    # -- writing -----------------------------------------------------------------------

    def apply(self, units: list[Unit], run_id: int, *, truncate: bool = False) -> list[Outcome]:
        try:
            return self._apply(units, truncate)
        except OSError as error:
            # a full disk is the run's failure, not a reject of every unit that follows
            full = out_of_space(error, f"the bundle folder {self.options.path}")
            if full is None:
                raise
            raise full from error

    def _apply(self, units: list[Unit], truncate: bool) -> list[Outcome]:
        if truncate:
            for child in self.options.path.iterdir():
                if child.is_dir():
                    shutil.rmtree(child)
        owners: dict[str | None, _Owner] = {}
        outcomes: list[Outcome] = []
        for unit in units:
            owner_key = _owner_of(unit)
            if owner_key is None and unit.removed:
                owner_key = self._holder_of(unit.key)
            owner = self._owner(owners, owner_key)
            reference = {"owner": owner_key, "folder": owner.folder.name}
            if unit.kind == "user":
                self._apply_user(owner, unit.items[0])
            elif unit.kind == "file":
                self._apply_file(owner, unit.items[0])
            else:
                self._apply_conversation(owner, unit)
            records = unit_records(unit)
            if records:
                owner.records[unit.key] = records
            else:
                owner.records.pop(unit.key, None)
            for item in unit.items:
                if not item.changed or (item.removed and item.held_hash is None):
                    continue
                action = "delete" if item.removed else "insert" if item.held_hash is None else "update"
                outcomes.append(Outcome(item.stream, item.key, action, reference))
        for owner in owners.values():
            owner.write()
        return outcomes

    def _holder_of(self, key: str) -> str | None:
        """The owner whose folder holds ``key``, for a removal whose owner the ledger does
        not know (a forced rollback): a scan of the folders, rare enough to afford."""
        root = self.options.path
        folders = sorted(path for path in root.iterdir() if path.is_dir()) if root.is_dir() else []
        for folder in folders:
            found = _Owner(folder, None)
            if key in found.lines or key in found.files or key in found.records:
                return found.owner
        return None

    def _apply_user(self, owner: _Owner, item: Item) -> None:
        owner.user = None if item.removed else {"key": item.key, **item.data}

    def _apply_file(self, owner: _Owner, item: Item) -> None:
        if item.removed:
            owner.files.pop(item.key, None)
            return
        data = item.data
        status = "missing" if not data.get("sha256") else "listed"
        if data.get("sha256") and self.options.copy_files:
            status = self._copy(owner, data["sha256"])
        owner.files[item.key] = {
            "key": item.key,
            "stream": item.stream,
            "filename": data.get("filename"),
            "mime": data.get("mime"),
            "size": data.get("size"),
            "sha256": data.get("sha256"),
            "status": status,
            "missing": data.get("missing"),
        }

    def _copy(self, owner: _Owner, digest: str) -> str:
        source = self.context.blobs.path(digest)
        if not source.is_file():
            return "missing"
        target = owner.folder / "files" / digest
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(source, "rb") as handle:
                content = handle.read()
            if sha256_hex(content) != digest:
                raise PermanentError(f"blob {digest} in the ledger's blob store is corrupt")
            _atomic_write(target, content)
        return "copied"

    def _apply_conversation(self, owner: _Owner, unit: Unit) -> None:
        if unit.removed or not any(not item.removed for item in unit.items):
            owner.lines.pop(unit.key, None)
        else:
            owner.lines[unit.key] = conversation_line(unit)

    # -- verifying -----------------------------------------------------------------------

    def fingerprint(self, unit: Unit) -> str:
        """What the bundle should hold for ``unit``: its projection and its records."""
        if unit.kind == "user":
            shown: Any = {"key": unit.key, **unit.items[0].data}
        elif unit.kind == "file":
            item = unit.items[0]
            shown = {"key": item.key, "sha256": item.data.get("sha256"), "size": item.data.get("size")}
        else:
            shown = conversation_line(unit)
        return _fingerprint(shown, unit_records(unit))

    def read_back(self, units: list[Unit]) -> dict[str, str | None]:
        found: dict[str, str | None] = {}
        owners: dict[str | None, _Owner] = {}
        for unit in units:
            owner_key = _owner_of(unit)
            owner = self._owner(owners, owner_key)
            records = owner.records.get(unit.key, [])
            if unit.kind == "user":
                shown: Any = owner.user
            elif unit.kind == "file":
                entry = owner.files.get(unit.key)
                shown = {k: entry.get(k) for k in ("key", "sha256", "size")} if entry else None
            else:
                line = owner.lines.get(unit.key)
                shown = dict(line, files={"referenced": line["files"]["referenced"]}) if line else None
            found[unit.key] = _fingerprint(shown, records) if shown else None
        return found

    def count_by_kind(self, streams: list[str]) -> dict[str, int] | None:
        """Messages and files, from each owner's ``summary.json`` (users are not counted:
        a summary does not say which stream its user came from; conversations neither: a
        line may stand for messages whose conversation record is absent). None when a
        folder holds a stream not asked for (its counts cannot be split by stream)."""
        counts = {"message": 0, "file": 0}
        root = self.options.path
        folders = sorted(path for path in root.iterdir() if path.is_dir()) if root.is_dir() else []
        for folder in folders:
            path = folder / layout.SUMMARY
            if not path.is_file():
                continue
            summary = loads(path.read_bytes())
            if not set(summary["streams"]) <= set(streams):
                return None
            counts["message"] += summary["counts"]["messages"]
            counts["file"] += summary["counts"]["files"]
        return counts

    def unexpected(self, streams: Iterable[str]) -> Iterator[tuple[str, str]]:
        wanted = set(streams)
        root = self.options.path
        if not root.is_dir():
            return
        for folder in sorted(path for path in root.iterdir() if path.is_dir()):
            owner = _Owner(folder, None)
            for line in owner.lines.values():
                if line["stream"] in wanted:
                    yield line["stream"], line["key"]
            for entry in owner.files.values():
                if entry["stream"] in wanted:
                    yield entry["stream"], entry["key"]
