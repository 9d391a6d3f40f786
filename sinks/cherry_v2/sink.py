"""The ``cherry-v2`` sink: Cherry Studio v2's ``cherrystudio.sqlite``.

Replays a ``cherry`` stream (or any stream of conversations) the way upstream's
ChatMigrator writes v2, by its rules (:mod:`.plan`), but incrementally, exactly once,
verifiable and reversible:

- ``path``: an existing v2 database (written by the app), or a new file, created from
  the app's own schema (``schema_v2.sql``) on the first write — a dry run creates nothing;
- unit: a conversation (a topic with its virtual root, messages, pin and file refs);
  assistants and files are record units written before topics (a file: its
  ``file_entry`` row and its bytes where the app keeps them, :mod:`.files`; a file ref is
  written when its ``file_entry`` exists);
- one ``BEGIN IMMEDIATE`` transaction per batch, foreign keys on, with
  ``chatledger_markers`` rows inside the same database (a crash between this commit and
  the ledger's is healed from them);
- a row the app wrote (a topic or assistant with the same id that this sink never
  wrote) is left alone and the record skipped (``topics_existing_kept``,
  ``assistants_existing_kept``);
- ``--dry-run`` is upstream's ``prepare``: the counts and the rule counters the batch
  would produce (``preview``); ``verify`` is upstream's ``validate`` (no orphan, no
  dangling parent, one root per topic, active node a leaf, ``PRAGMA foreign_key_check``
  and ``integrity_check``: each problem reported as an unexpected ``validate`` entry)
  plus a fingerprint per unit of every row it wrote.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, delete, func, select

from ledger.kit import (
    ConfigError,
    Item,
    Markers,
    Outcome,
    Sink,
    SqlTarget,
    TargetUnreachable,
    Unit,
    canonical_text,
    chunks,
    digest,
    loads,
    marker_table,
    option,
    upsert,
)
from sinks.cherry_v2 import database, files
from sinks.cherry_v2.plan import (
    Lookups,
    Planner,
    TopicPlan,
    assistant_id,
    file_entry_id,
    mapped_id,
    order_key,
    topic_id_of,
)

KINDS = ("assistant", "file", "conversation", "message")
TABLES_OF_KIND = {
    "file": ["file_entry"],
    "assistant": ["assistant"],
    "conversation": ["topic", "pin"],
    "message": ["message", "file_ref"],
}


@dataclass
class CherryV2Options:
    path: Path = option(
        help="cherrystudio.sqlite: an existing Cherry Studio v2 database, or a new file to create."
    )
    markers: bool = option(True, help="Keep chatledger_markers in the database (exactly-once after crashes).")
    files: str = option(
        "",
        help="Where the app keeps attachments (empty: <userData>/Data/Files, found from the database's path).",
    )


class CherryV2Sink(SqlTarget, Sink):
    type_name = "cherry-v2"
    Options = CherryV2Options
    unit = "conversation"
    kinds = KINDS
    capabilities = frozenset({"transactions", "markers", "branches", "verify"})
    preview_kinds = ("conversation", "assistant")

    def __init__(self, options: CherryV2Options, context) -> None:
        super().__init__(options, context)
        self.metadata = MetaData()
        self.t = database.tables(self.metadata)
        self.markers = Markers(marker_table(self.metadata), self.target) if options.markers else None
        self.path = Path(options.path)
        self.files = Path(options.files) if options.files else files.files_folder(self.path)
        self._ready = False

    def describe(self) -> str:
        return f"cherry-v2 {self.path}"

    def tables(self, kind: str) -> list[str]:
        return TABLES_OF_KIND.get(kind, [kind])

    # -- lifecycle -------------------------------------------------------------------------------

    def open(self) -> None:
        if self.engine is not None:
            return
        exists = self.path.exists() and self.path.stat().st_size > 0
        if not exists and not self.path.parent.is_dir():
            raise ConfigError(f"{self.path}: its folder does not exist")
        self.engine = database.engine_for(self.path)
        if exists:
            with self.engine.connect() as conn:
                missing = database.missing_tables(conn)
            if missing:
                raise ConfigError(
                    f"{self.path}: not a Cherry Studio v2 database (no {', '.join(missing)} table)"
                )

    def check(self) -> list[str]:
        """Dry runs: a database that is not there yet is not opened (connecting would create
        the file); its folder must let the first write create it."""
        if self.path.exists() and self.path.stat().st_size > 0:
            return super().check()
        if not self.path.parent.is_dir():
            raise ConfigError(f"{self.path}: its folder does not exist")
        if not os.access(self.path.parent, os.W_OK):
            raise TargetUnreachable(
                f"target {self.target!r} ({self.describe()}): {self.path.parent} is not writable"
            )
        return [f"{self.path} does not exist yet: the first write creates it from the app's schema"]

    def _prepare(self) -> None:
        """On the first write: the app's schema for a new file; the markers table, with a
        copy of the FTS index as it is before chatledger writes anything (for ``settle``)."""
        if self._ready:
            return
        with self.engine.connect() as conn:
            new = database.missing_tables(conn) == list(database.REQUIRED)
        if new:
            database.create_schema(self.engine)
        if self.markers is not None:
            with self.engine.begin() as conn:
                if not conn.dialect.has_table(conn, self.markers.table.name):
                    database.save_baseline(conn)
                    self.markers.table.create(conn)
        self._ready = True

    def settle(self) -> None:
        """When no marker of any target says the database holds a record (the last run's
        writes were rolled back or removed), put the FTS index back as it was before the
        first write and drop the sink's tables: the database is as the app left it."""
        if self.markers is None or self.engine is None or not self.path.exists():
            return
        self.engine.dispose()  # FTS5 caches its index structure per connection: a fresh one
        table = self.markers.table
        with self.engine.begin() as conn:
            if not conn.dialect.has_table(conn, table.name):
                return
            if conn.scalar(select(func.count()).select_from(table).where(table.c.hash.is_not(None))):
                return
            folders = database.created_folders(conn)
            restored = database.restore_baseline(conn)
            table.drop(conn)
        files.remove_empty(folders)
        self.engine.dispose()
        self._ready = False
        self.count("markers_dropped")
        if restored is False:
            self.count("fts_index_not_restored")

    def reconcile(self, run_ids: Iterable[int]) -> Iterator[dict[str, Any]]:
        """Markers of these runs; none before the first write made the markers table."""
        if self.markers is None or not self.path.exists():
            return iter(())
        with self.engine.connect() as conn:
            if not conn.dialect.has_table(conn, self.markers.table.name):
                return iter(())
        return super().reconcile(run_ids)

    # -- lookups ---------------------------------------------------------------------------------

    def _lookups(self, conn, units: list[Unit]) -> tuple[Lookups, set[str]]:
        """What plans depend on, and the topic ids the database holds."""
        if not self._ready and (not self.path.exists() or database.missing_tables(conn)):
            return Lookups(), set()
        t = self.t
        native_ids, entry_ids, topics = set(), set(), set()
        for unit in units:
            for item in unit.items:
                if item.removed:
                    continue
                if item.kind == "message":
                    native_ids.add((item.data.get("metadata") or {}).get("native_id"))
                    for key in item.data.get("files") or []:
                        if isinstance(key, str):  # the native id, or the uuid5 it maps to
                            entry_ids.update({key.removeprefix("file:"), mapped_id(item.stream, key)})
                elif item.kind == "conversation":
                    topics.add(topic_id_of(item))
        lookups = Lookups(
            assistants={row[0] for row in conn.execute(select(t["assistant"].c.id))},
            models={row[0] for row in conn.execute(select(t["user_model"].c.id))},
        )
        entry = t["file_entry"]
        for chunk in chunks(sorted(entry_ids), 500):
            lookups.file_entries.update(
                row[0] for row in conn.execute(select(entry.c.id).where(entry.c.id.in_(chunk)))
            )
        message = t["message"]
        for chunk in chunks(sorted(i for i in native_ids if isinstance(i, str)), 500):
            rows = conn.execute(select(message.c.id, message.c.topic_id).where(message.c.id.in_(chunk)))
            lookups.message_topics.update(dict(rows.all()))
        held = set()
        for chunk in chunks(sorted(topics), 500):
            held.update(
                row[0] for row in conn.execute(select(t["topic"].c.id).where(t["topic"].c.id.in_(chunk)))
            )
        return lookups, held

    def _read_blob(self, sha256: str) -> bytes | None:
        return self.context.blobs.read(sha256) if self.context.blobs.has(sha256) else None

    # -- writing ---------------------------------------------------------------------------------

    def apply(self, units: list[Unit], run_id: int, *, truncate: bool = False) -> list[Outcome]:
        if truncate:
            raise ConfigError("cherry-v2 has no table set to truncate: the database belongs to the app")
        self._prepare()
        counts: dict[str, int] = {}

        def count(name: str, amount: int = 1) -> None:
            if amount:
                counts[name] = counts.get(name, 0) + amount

        versions = {(i.stream, i.key): (i.version, i.hash) for unit in units for i in unit.items}
        outcomes: list[Outcome] = []
        now = int(time.time() * 1000)
        placed: list[Path] = []  # files written for this batch: removed if it fails
        freed: list[str] = []  # files of removed entries: deleted once it commits
        try:
            with self.engine.begin() as conn:
                lookups, present_topics = self._lookups(conn, units)
                for unit in units:
                    if unit.kind == "assistant":
                        outcomes += self._assistant(conn, unit.items[0], lookups, now, count)
                    elif unit.kind == "file":
                        outcomes += self._file(conn, unit.items[0], lookups, now, count, placed, freed)
                    else:
                        outcomes += self._topic(conn, unit, lookups, present_topics, count)
                if self.markers is not None:  # a skip wrote nothing: no marker says the target holds it
                    self.markers.write(conn, [o for o in outcomes if o.action != "skip"], versions, run_id)
        except BaseException:
            for path in placed:
                path.unlink(missing_ok=True)
            raise
        for path in freed:
            Path(path).unlink(missing_ok=True)
        for name, amount in counts.items():  # only once the batch committed
            self.count(name, amount)
        return outcomes

    def _assistant(self, conn, item: Item, lookups: Lookups, now: int, count) -> list[Outcome]:
        table = self.t["assistant"]
        held = item.held_ref or {}
        if item.removed:
            if held.get("id"):
                conn.execute(delete(table).where(table.c.id == held["id"]))
            return [Outcome.written(item, None)] if item.held_hash is not None else []
        if not item.changed:
            return []
        row = assistant_row(item, lookups, now)
        exists = conn.execute(select(table.c.created_at).where(table.c.id == row["id"])).first()
        if exists is not None and not held.get("id"):
            lookups.assistants.add(row["id"])
            count("assistants_existing_kept")
            return [Outcome.skip(item, "the database already has this assistant (kept as the app wrote it)")]
        if exists is not None:
            row["created_at"] = exists[0]
        upsert(conn, table, [row], ["id"], [c for c in row if c not in ("id", "created_at")])
        lookups.assistants.add(row["id"])
        count("assistants_written")
        return [Outcome.written(item, {"id": row["id"]})]

    def _file(
        self, conn, item: Item, lookups: Lookups, now: int, count, placed: list[Path], freed: list[str]
    ) -> list[Outcome]:
        """A file with bytes → a ``file_entry`` row and the file where the app keeps it."""
        table = self.t["file_entry"]
        held = item.held_ref or {}
        if item.removed:
            if held.get("id"):
                conn.execute(delete(table).where(table.c.id == held["id"]))
                if held.get("wrote"):
                    freed.append(held["path"])
            return [Outcome.written(item, None)] if item.held_hash is not None else []
        if not item.changed:
            return []
        sha256 = item.data.get("sha256")
        if not sha256 or not self.context.blobs.has(sha256):
            count("files_without_bytes")
            why = item.data.get("missing") or "its bytes are not in the ledger's blob store"
            return [Outcome.skip(item, f"no file_entry without the file's bytes: {why}")]
        source = self.context.blobs.path(sha256)
        native = (item.data.get("metadata") or {}).get("native_id") or item.key.removeprefix("file:")
        app_has = set() if held.get("id") else {native}  # the app's own entry keeps the native id
        app_has &= {r[0] for r in conn.execute(select(table.c.id).where(table.c.id == native))}
        row = files.entry_row(item, file_entry_id(item.stream, native, app_has), source.stat().st_size, now)
        exists = conn.execute(select(table.c.created_at).where(table.c.id == row["id"])).first()
        if exists is not None and not held.get("id"):
            lookups.file_entries.add(row["id"])
            count("file_entries_existing_kept")
            return [Outcome.skip(item, "the database already has this file entry (kept as the app wrote it)")]
        target = self.files / files.physical_name(row)
        ours = bool(held.get("wrote")) and held.get("path") == str(target)
        if target.exists() and not ours and files.sha256_of(target) != sha256:
            count("files_path_taken")
            return [Outcome.skip(item, f"{target} holds another file (kept)")]
        fresh = not target.exists()
        wrote = ours or fresh
        if fresh or (ours and files.sha256_of(target) != sha256):
            database.note_folders(conn, files.make_folders(self.files))
            files.place(source, target)
            if fresh:
                placed.append(target)
        upsert(conn, table, [row], ["id"], [c for c in row if c != "id"])
        lookups.file_entries.add(row["id"])
        count("file_entries_written")
        return [Outcome.written(item, {"id": row["id"], "path": str(target), "wrote": wrote})]

    def _plan(self, unit: Unit, lookups: Lookups, present: set[str], count) -> TopicPlan:
        plan = Planner(lookups, self._read_blob, count).plan(unit)
        head = unit.head
        ours = head is not None and isinstance(head.held_ref, dict) and head.held_ref.get("topic")
        if plan.topic is not None and plan.topic_id in present and not ours:
            count("topics_existing_kept")
            plan = TopicPlan(plan.topic_id, "the database already has this topic (kept as the app wrote it)")
            plan.foreign = True
            plan.skipped = [(i, plan.skip) for i in unit.items if not i.removed]
        return plan

    def _topic(self, conn, unit: Unit, lookups: Lookups, present: set[str], count) -> list[Outcome]:
        plan = self._plan(unit, lookups, present, count)
        self._remove_held(conn, unit, plan)
        if plan.topic is not None:
            self._write(conn, plan, count)
        return self._outcomes(unit, plan)

    def _remove_held(self, conn, unit: Unit, plan: TopicPlan) -> None:
        """Rows this sink wrote for the unit that the plan no longer has."""
        t = self.t
        head = unit.head
        held = (head.held_ref or {}) if head is not None else {}
        keep = set(plan.message_ids()) | ({plan.root["id"]} if plan.root else set())
        gone = [
            i.held_ref["id"] for i in unit.items
            if i.kind == "message" and isinstance(i.held_ref, dict) and i.held_ref.get("id") not in keep | {None}
        ]  # fmt: skip
        refs = set(held.get("file_refs") or []) - {r["id"] for r in plan.file_refs}
        for chunk in chunks(sorted(refs), 500):
            conn.execute(delete(t["file_ref"]).where(t["file_ref"].c.id.in_(chunk)))
        for chunk in chunks(gone, 500):
            conn.execute(delete(t["file_ref"]).where(t["file_ref"].c.source_id.in_(chunk)))
            conn.execute(delete(t["message"]).where(t["message"].c.id.in_(chunk)))
        if held.get("pin") and (plan.pin is None or plan.pin["id"] != held["pin"]):
            conn.execute(delete(t["pin"]).where(t["pin"].c.id == held["pin"]))
        if held.get("topic") and plan.topic is None:  # the whole topic goes: messages cascade
            conn.execute(delete(t["message"]).where(t["message"].c.topic_id == held["topic"]))
            conn.execute(delete(t["topic"]).where(t["topic"].c.id == held["topic"]))

    def _write(self, conn, plan: TopicPlan, count) -> None:
        t = self.t
        topic = plan.topic
        upsert(conn, t["topic"], [topic], ["id"], [c for c in topic if c != "id"])
        rows = [plan.root, *_parents_first(plan)]
        columns = [c for c in database.MESSAGE_COLUMNS if c != "id"]
        for chunk in chunks(rows, 200):
            upsert(conn, t["message"], list(chunk), ["id"], columns)
        if plan.pin is not None:
            pin = t["pin"]
            taken = conn.execute(
                select(pin.c.id).where(pin.c.entity_type == "topic", pin.c.entity_id == plan.topic_id)
            ).first()
            if taken is None:
                conn.execute(pin.insert(), [plan.pin])
            elif taken[0] == plan.pin["id"]:
                conn.execute(
                    pin.update().where(pin.c.id == plan.pin["id"]).values(order_key=plan.pin["order_key"])
                )
        if plan.file_refs:
            upsert(conn, t["file_ref"], plan.file_refs, ["id"], ["created_at", "updated_at"])
        count("topics_written")
        count("messages_written", len(plan.messages))
        count("file_refs_written", len(plan.file_refs))

    def _outcomes(self, unit: Unit, plan: TopicPlan) -> list[Outcome]:
        outcomes = []
        ids = {item.key: row["id"] for item, row in plan.messages}
        parents = {item.key: row["parent_id"] for item, row in plan.messages}
        skipped = {item.key: reason for item, reason in plan.skipped}
        for item in unit.items:
            if not item.changed:
                continue
            if item.removed:
                if item.held_hash is not None:
                    outcomes.append(Outcome.written(item, item.held_ref))
            elif item.key in skipped or (item is unit.head and plan.skip):
                outcomes.append(Outcome.skip(item, skipped.get(item.key) or plan.skip))
            elif item is unit.head:
                ref = {
                    "topic": plan.topic_id,
                    "root": plan.root["id"],
                    "pin": plan.pin["id"] if plan.pin else None,
                    "file_refs": [r["id"] for r in plan.file_refs],
                    "active": plan.topic["active_node_id"],
                }
                outcomes.append(Outcome.written(item, ref))
            elif item.key in ids:
                ref = {"id": ids[item.key], "topic": plan.topic_id, "parent": parents[item.key]}
                outcomes.append(Outcome.written(item, ref))
        return outcomes

    # -- dry run: upstream's prepare -------------------------------------------------------------

    def preview(self, units: list[Unit]) -> dict[str, Any]:
        counts: dict[str, int] = {}

        def count(name: str, amount: int = 1) -> None:
            if amount:
                counts[name] = counts.get(name, 0) + amount

        lookups, present = Lookups(), set()
        if self.path.exists():  # a new database: connecting would create the file
            with self.engine.connect() as conn:
                lookups, present = self._lookups(conn, units)
        topics = messages = 0
        for unit in units:
            if unit.kind != "conversation":
                count("assistants")
                continue
            plan = self._plan(unit, lookups, present, count)
            topics += plan.topic is not None
            if plan.topic is not None:  # a dry run's units hold the conversations, not their messages
                messages += (unit.head.data.get("metadata") or {}).get("messages") or 0
        return {"topics": topics, "messages_estimate": messages, "rules": counts}

    # -- verifying: upstream's validate plus fingerprints ----------------------------------------

    def _plan_quietly(self, conn, unit: Unit) -> TopicPlan:
        lookups, present = self._lookups(conn, [unit])
        return self._plan(unit, lookups, present, lambda name, amount=1: None)

    def fingerprint(self, unit: Unit) -> str:
        if unit.kind == "file":
            item = unit.items[0]
            held = item.held_ref or {}
            if not held.get("id"):
                return "skipped"
            row = files.entry_row(item, held["id"], item.data.get("size") or 0, 0)
            return digest([_file_image(row), item.data.get("sha256")])
        with self.engine.connect() as conn:
            if unit.kind == "assistant":
                item = unit.items[0]
                held = item.held_ref or {}
                if not held.get("id"):
                    return "skipped"
                lookups, _ = self._lookups(conn, [unit])
                return digest(_assistant_image(assistant_row(item, lookups, 0)))
            return digest(_expected(self._plan_quietly(conn, unit)))

    def read_back(self, units: list[Unit]) -> dict[str, str | None]:
        found: dict[str, str | None] = {}
        t = self.t
        with self.engine.connect() as conn:
            for unit in units:
                if unit.kind == "file":
                    found[unit.key] = self._file_back(conn, unit.items[0])
                    continue
                if unit.kind == "assistant":
                    held = unit.items[0].held_ref or {}
                    if not held.get("id"):
                        found[unit.key] = "skipped"
                        continue
                    row = conn.execute(
                        select(t["assistant"]).where(t["assistant"].c.id == held["id"])
                    ).first()
                    found[unit.key] = digest(_assistant_image(dict(row._mapping))) if row else None
                    continue
                plan = self._plan_quietly(conn, unit)
                found[unit.key] = digest(_actual(conn, t, plan)) if plan.topic_id else digest(_expected(plan))
        return found

    def _file_back(self, conn, item: Item) -> str | None:
        """The entry's row and the sha256 of the file at its path (None: either is gone)."""
        held = item.held_ref or {}
        if not held.get("id"):
            return "skipped"
        row = conn.execute(
            select(self.t["file_entry"]).where(self.t["file_entry"].c.id == held["id"])
        ).first()
        path = Path(held.get("path") or "")
        if row is None or not path.is_file():
            return None
        return digest([_file_image(dict(row._mapping)), files.sha256_of(path)])

    def unexpected(self, streams: Iterable[str]) -> Iterator[tuple[str, str]]:
        if not self.path.exists():
            return
        with self.engine.connect() as conn:
            if database.missing_tables(conn):
                return
            marked = self.markers is not None and conn.dialect.has_table(conn, self.markers.table.name)
        topics: list[str] = []
        if marked:  # no table: nothing was written, or everything was rolled back
            with self.engine.connect() as conn:
                keys = self.markers.keys(conn, streams)
                refs = conn.execute(
                    select(self.markers.table.c.target_ref).where(
                        self.markers.table.c.target == self.target,
                        self.markers.table.c.record_key.like("conversation:%"),
                        self.markers.table.c.hash.is_not(None),
                    )
                )
                topics = sorted({_topic_of(ref) for (ref,) in refs} - {None})
            for stream, key in sorted(keys):
                if key.startswith(("conversation:", "assistant:", "file:")):
                    yield stream, key
        for problem in database.problems(self.engine, topics):
            yield "validate", problem


def assistant_row(item: Item, lookups: Lookups, now: int) -> dict[str, Any]:
    data, meta = item.data, item.data.get("metadata") or {}
    native = meta.get("native_id") or item.key.removeprefix("assistant:")
    model = data.get("model")
    created = now
    return {
        "id": assistant_id(item.stream, native),
        "name": data.get("name") or "Assistant",
        "prompt": data.get("system_prompt") or "",
        "emoji": meta.get("emoji") or "",
        "description": meta.get("description") or "",
        "model_id": model if model in lookups.models else None,
        "settings": canonical_text(meta.get("settings") or {}),
        "created_at": created,
        "updated_at": created,
        "order_key": order_key(0, item.key),
    }


def _file_image(row: dict[str, Any]) -> list[Any]:
    return [row.get(c) for c in database.FILE_ENTRY_COLUMNS if c not in ("created_at", "updated_at")]


def _assistant_image(row: dict[str, Any]) -> list[Any]:
    return [row.get(c) for c in database.ASSISTANT_COLUMNS if c not in ("created_at", "updated_at")]


def _parents_first(plan: TopicPlan) -> list[dict[str, Any]]:
    rows = {row["id"]: row for _, row in plan.messages}
    done: set[str] = {plan.root["id"]}
    out: list[dict[str, Any]] = []

    def place(row: dict[str, Any]) -> None:
        chain = []
        while row["id"] not in done:
            chain.append(row)
            parent = rows.get(row["parent_id"])
            if parent is None:
                break
            row = parent
        for member in reversed(chain):
            done.add(member["id"])
            out.append(member)

    for _, row in plan.messages:
        place(row)
    return out


def _expected(plan: TopicPlan) -> list[Any]:
    if plan.topic is None:
        return ["skipped", plan.skip]
    return _image(plan.topic, [plan.root] + [row for _, row in plan.messages], plan.pin, plan.file_refs)


def _actual(conn, t: dict, plan: TopicPlan) -> list[Any] | None:
    if plan.topic is None:
        present = conn.execute(select(t["topic"].c.id).where(t["topic"].c.id == plan.topic_id)).first()
        return ["skipped", plan.skip] if present is None or plan.foreign else ["present"]
    topic = conn.execute(select(t["topic"]).where(t["topic"].c.id == plan.topic_id)).first()
    if topic is None:
        return None
    messages = [
        dict(r._mapping)
        for r in conn.execute(select(t["message"]).where(t["message"].c.topic_id == plan.topic_id))
    ]
    pin = conn.execute(
        select(t["pin"]).where(t["pin"].c.entity_type == "topic", t["pin"].c.entity_id == plan.topic_id)
    ).first()
    ids = [r["id"] for r in messages]
    refs = []
    for chunk in chunks(ids, 500):
        refs += [
            dict(r._mapping)
            for r in conn.execute(select(t["file_ref"]).where(t["file_ref"].c.source_id.in_(chunk)))
        ]
    return _image(dict(topic._mapping), messages, dict(pin._mapping) if pin else None, refs)


def _image(topic: dict, messages: list[dict], pin: dict | None, refs: list[dict]) -> list[Any]:
    return [
        [topic.get(c) for c in database.TOPIC_COLUMNS],
        sorted([[m.get(c) for c in database.MESSAGE_COLUMNS] for m in messages], key=lambda r: r[0]),
        [pin.get(c) for c in database.PIN_COLUMNS] if pin else None,
        sorted([[r.get(c) for c in database.FILE_REF_COLUMNS] for r in refs], key=lambda r: r[0]),
    ]


def _topic_of(ref: Any) -> str | None:
    value = loads(ref) if ref else None
    return value.get("topic") if isinstance(value, dict) else None
