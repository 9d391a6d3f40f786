"""The ``cherry`` source: a Cherry Studio v1 user's chats → the ledger.

Reads a v1 backup ZIP / folder / ``data.json`` / legacy ``.bak`` (versions 1–5), the v2 migration
exporters' JSON, or a v6 direct backup (see :mod:`sources.cherry.inputs`), indexes it on
disk once, and reads one scope per topic:

- ``library``: the user (with ``owner``), assistants (Redux ``assistants[]``,
  ``defaultAssistant``, ``presets[]``) and files (``files`` rows, with ``Data/Files/<id><ext>`` bytes in the blob store);
- ``topic:<id>``: the conversation and its messages, for every Dexie topic, and for every
  Redux topic with no Dexie row (a topic with no stored messages);
- ``invalid``: rejects for topic rows without an id or a messages array, and repeats of a
  topic id.

The topic's Redux metadata is the first assistant's entry for it (``assistants[]`` in
order, then ``defaultAssistant``), as upstream; presets' topics are not read. Messages
get a tree by upstream's rules (:mod:`sources.cherry.tree`) and their blocks as parts
(:mod:`sources.cherry.parts`). Nothing is dropped here: empty topics, block-less
messages and unknown blocks all become records, and the sink applies its rules to them.

A backup is a complete snapshot and the scope list is exhaustive; every scope's
fingerprint is the input's sha256 with the reader version.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.kit import Reject, Scope, Source, canonical_bytes, option
from sources.cherry.inputs import Index, build_index
from sources.cherry.legacy import is_pre_block, legacy_blocks
from sources.cherry.records import (
    assistant_record,
    conversation_record,
    file_record,
    message_key,
    message_record,
    user_key,
    user_record,
)
from sources.cherry.tree import Node, build_tree

READER_VERSION = 1
LIBRARY, INVALID = "library", "invalid"
CHUNK = 200  # records per chunk of a big topic


@dataclass
class CherryOptions:
    path: Path = option(
        help="A Cherry Studio v1 backup (ZIP, folder, data.json or a legacy gzip .bak), a v6 direct backup, "
        "or a folder of the v2 migration exporters' JSON (topics.json, message_blocks.json, files.json; "
        "assistants.json there or in redux/)."
    )
    owner: str = option(
        "",
        help="The install's user (an email or a name): one user record owning every conversation and file, "
        "for sinks that need an owner (Cherry Studio itself has no accounts).",
    )


class CherrySource(Source):
    type_name = "cherry"
    Options = CherryOptions
    exhaustive = True

    def __init__(self, options: CherryOptions, context) -> None:
        super().__init__(options, context)
        self._index: Index | None = None
        self._meta: dict[str, tuple[dict[str, Any], str]] | None = None
        self._facts: dict[str, Any] | None = None

    @property
    def owner(self) -> str | None:
        owner = (self.options.owner or "").strip()
        return user_key(owner.lower() if "@" in owner else owner) if owner else None

    @property
    def index(self) -> Index:
        if self._index is None:
            self._index = build_index(Path(self.options.path))
        return self._index

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None

    # -- the Redux assistants slice -------------------------------------------------------------

    def _assistants(self) -> list[tuple[dict[str, Any], str]]:
        state = self.index.redux_slice("assistants")
        if not isinstance(state, dict):
            return []
        found = [(a, "assistant") for a in state.get("assistants") or [] if isinstance(a, dict)]
        if isinstance(state.get("defaultAssistant"), dict):
            found.append((state["defaultAssistant"], "default"))
        found += [(p, "preset") for p in state.get("presets") or [] if isinstance(p, dict)]
        return [(a, role) for a, role in found if isinstance(a.get("id"), str) and a["id"]]

    @property
    def topic_meta(self) -> dict[str, tuple[dict[str, Any], str]]:
        """Topic id → (its Redux metadata, the assistant id): first assistant wins."""
        if self._meta is None:
            self._meta = {}
            for assistant, role in self._assistants():
                if role == "preset":
                    continue
                for topic in assistant.get("topics") or []:
                    if isinstance(topic, dict) and isinstance(topic.get("id"), str):
                        meta = {k: v for k, v in topic.items() if k != "messages"}
                        self._meta.setdefault(topic["id"], (meta, assistant["id"]))
        return self._meta

    # -- facts -----------------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        if self._facts is None:
            index = self.index
            path = Path(self.options.path)
            dexie_ids = {ident for _, ident, _ in index.topic_ids() if isinstance(ident, str)}
            self._facts = {
                "path": str(path),
                "format": index.format,
                "version": index.version,
                "sha256": _sha256(path),
                "source_topics": index.counts.get("topics", 0),
                "source_message_blocks": index.counts.get("message_blocks", 0),
                "source_files": index.counts.get("files", 0),
                "source_assistants": len(self._assistants()),
                "redux_topics": len(self.topic_meta),
                "redux_only_topics": len(set(self.topic_meta) - dexie_ids),
                "attachments": len(index.attachments.names),
                "other_tables": dict(index.other_tables),
                "has_redux_state": index.persist is not None or index.assistants is not None,
            }
        return self._facts

    def _fingerprint(self) -> str:
        token = {"reader": READER_VERSION, "input": self.describe()["sha256"]}
        return hashlib.sha256(canonical_bytes(token)).hexdigest()

    # -- scopes ----------------------------------------------------------------------------------

    def _topic_scopes(self) -> Iterator[tuple[str, int | None]]:
        seen: set[str] = set()
        for position, ident, listed in self.index.topic_ids():
            if isinstance(ident, str) and ident and listed and ident not in seen:
                seen.add(ident)
                yield ident, position
        for ident in self.topic_meta:
            if ident not in seen:
                yield ident, None

    def scopes(self) -> Iterator[Scope]:
        fingerprint = self._fingerprint()
        yield Scope(LIBRARY, True, fingerprint)
        for ident, _ in self._topic_scopes():
            yield Scope(f"topic:{ident}", True, fingerprint)
        yield Scope(INVALID, True, fingerprint)

    def scope_count(self) -> int | None:
        return None

    def read(self, scope: Scope, cursor: Any = None) -> Iterator[tuple[list, Any]]:
        if scope.name == LIBRARY:
            yield from self._read_library()
        elif scope.name == INVALID:
            yield self._invalid_topics(), None
        else:
            ident = scope.name.removeprefix("topic:")
            position = self._positions().get(ident)
            yield from self._read_topic(ident, position)

    def _positions(self) -> dict[str, int | None]:
        if not hasattr(self, "_position_map"):
            self._position_map = dict(self._topic_scopes())
        return self._position_map

    # -- the library: assistants and files -------------------------------------------------------

    def _read_library(self) -> Iterator[tuple[list, Any]]:
        seen: set[str] = set()
        items: list = [user_record(self.record, self.owner.removeprefix("user:"))] if self.owner else []
        for assistant, role in self._assistants():
            if assistant["id"] in seen:
                continue
            seen.add(assistant["id"])
            items.append(assistant_record(self.record, assistant, role))
        yield items, None
        items = []
        for row in self.index.all_rows("files"):
            items.append(self._file(row))
            if len(items) >= CHUNK:
                yield items, None
                items = []
        yield items, None

    def _file(self, row: dict[str, Any]):
        name = f"{row['id']}{row.get('ext') or ''}"
        with self.index.attachments.open(name) as handle:
            if handle is None:
                missing = f"Data/Files/{name} is not in the backup"
                return file_record(self.record, self.owner, row, None, None, missing)
            digest, size = self.context.blobs.put_stream(handle)
        return file_record(self.record, self.owner, row, digest, size, None)

    # -- topics ----------------------------------------------------------------------------------

    def _invalid_topics(self) -> list[Reject]:
        out, kept = [], set()
        for position, ident, listed in self.index.topic_ids():
            if isinstance(ident, str) and ident and listed and ident not in kept:
                kept.add(ident)
                continue
            where, topic = f"topics[{position - 1}]", self.index.topic(position)
            if not isinstance(ident, str) or not ident:
                out.append(Reject(where, "a topic row without an id", topic))
            elif not listed:
                out.append(Reject(where, f"topic {ident}: 'messages' is not an array", topic))
            else:
                out.append(Reject(where, f"topic {ident} appears again; the first row is kept", topic))
        return out

    def _read_topic(self, ident: str, position: int | None) -> Iterator[tuple[list, Any]]:
        topic = self.index.topic(position) if position is not None else {"id": ident, "messages": []}
        meta, assistant_id = self.topic_meta.get(ident, (None, None))
        messages = topic.get("messages") if isinstance(topic.get("messages"), list) else []
        items: list = []
        valid = []
        for number, message in enumerate(messages):
            if isinstance(message, dict) and isinstance(message.get("id"), str) and message["id"]:
                valid.append(message)
            else:
                items.append(Reject(f"topic {ident} messages[{number}]", "a message without an id", message))
        keys = self._keys(ident, position, valid)
        nodes = [
            Node(
                key,
                m["id"],
                m.get("role") or "",
                m.get("askId"),
                bool(m.get("foldSelected")),
                bool(m.get("useful")),
            )
            for (key, _), m in zip(keys, valid)
        ]
        tree = build_tree(nodes)
        block_ids = [b for m in valid if not is_pre_block(m) for b in m["blocks"]]
        blocks = self.index.rows("message_blocks", block_ids)
        put = self.context.blobs.put_bytes
        for number, ((key, duplicate), message) in enumerate(zip(keys, valid)):
            legacy = is_pre_block(message)
            wanted = [] if legacy else list(message["blocks"])
            found = legacy_blocks(message) if legacy else [blocks[b] for b in wanted if b in blocks]
            items.append(
                message_record(
                    self.record,
                    put,
                    ident,
                    key,
                    message,
                    found,
                    wanted,
                    parent=tree.parents[key],
                    group=tree.groups[key],
                    legacy=legacy,
                    duplicate=duplicate,
                    position=number,
                )
            )
            if len(items) >= CHUNK:
                yield items, None
                items = []
        conversation = conversation_record(
            self.record,
            self.owner,
            topic,
            meta,
            assistant_id or topic.get("assistantId"),
            tree.active,
            len(valid),
        )
        yield [*items, conversation], None

    def _keys(
        self, ident: str, position: int | None, messages: list[dict[str, Any]]
    ) -> list[tuple[str, bool]]:
        """Each message's key, and whether its id was used before (here or in an earlier topic)."""
        first_topic = self.index.first_topic_of(m["id"] for m in messages) if position is not None else {}
        seen: dict[str, int] = {}
        out = []
        for message in messages:
            native = message["id"]
            seen[native] = seen.get(native, 0) + 1
            key = message_key(ident, native if seen[native] == 1 else f"{native}#{seen[native]}")
            earlier = first_topic.get(native, position) != position
            out.append((key, seen[native] > 1 or earlier))
        return out


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    if path.is_dir():
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(str(file.relative_to(path)).encode())
            _feed(digest, file)
    else:
        _feed(digest, path)
    return digest.hexdigest()


def _feed(digest, file: Path) -> None:
    with open(file, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
