"""The writer: applies batches to the ledger in order, one transaction each (a batch
arrives in parts; the last one says ``commit``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, delete, select, update

from ledger import failpoints, locks, runs
from ledger.canonical import canonical_text, sha256_hex
from ledger.dialects import Statistics, bulk_write, chunks
from ledger.extract.batch import (
    CODEC,
    CONVERSATION,
    HASH,
    KEY,
    KIND,
    SCOPE,
    SIZE,
    STORED,
    Batch,
    Tally,
)
from ledger.extract.reader import json_or_repr
from ledger.records import Reject
from ledger.schema import checkpoints, events, heads, payloads, rejects
from ledger.store import Ledger

MAX_INLINE_REJECT = 1 << 20
EVENT_COLUMNS = ("run_id", "stream", "kind", "key", "version", "op", "hash")
HEAD_COLUMNS = (
    "stream",
    "key",
    "kind",
    "scope",
    "conversation",
    "version",
    "hash",
    "deleted",
    "last_run",
)
CHECKPOINT_COLUMNS = (
    "stream",
    "scope",
    "cursor",
    "complete",
    "fingerprint",
    "records",
    "run_id",
    "updated_at",
)


class Writer:
    def __init__(
        self,
        ledger: Ledger,
        stream: str,
        run_id: int | None,
        *,
        dry_run: bool,
        stats: Any,
    ) -> None:
        """``stats(reader_stats)`` gives the run's stats to save with each batch."""
        self.ledger = ledger
        self.stream = stream
        self.run_id = run_id
        self.dry_run = dry_run
        self.stats = stats
        self.lock = locks.stream_lock(stream)
        self.tally = Tally()
        self.events = 0
        self.statistics = Statistics([heads, events, payloads, checkpoints])
        self.conn: Connection | None = None  # in a transaction across a batch's parts
        self.rejects = RejectBook(stream, run_id)

    def apply(self, batch: Batch) -> None:
        """Apply one part of a ledger transaction; commit it when ``batch.commit``."""
        if self.dry_run:
            # a rehearsal (migrate --dry-run) takes the heads, for the replay's plan; its
            # transaction is rolled back afterwards
            context = self.ledger.write if self.ledger.rehearsing else self.ledger.read
            with context() as conn:
                self._apply(conn, batch, write=self.ledger.rehearsing)
            return
        if self.conn is None:
            failpoints.failpoint("extract.commit.before")
            self.conn = self.ledger.connect_writer()
            self.conn.begin()
        try:
            self._apply(self.conn, batch, write=True)
            if batch.commit:
                failpoints.failpoint("extract.commit.inside")
        except BaseException:
            self.abort()
            raise
        if batch.commit:
            self.finish()

    def finish(self) -> None:
        """Commit the open transaction, if any."""
        if self.conn is not None:
            conn, self.conn = self.conn, None
            try:
                conn.commit()
            finally:
                conn.close()
            failpoints.failpoint("extract.commit.after")

    def abort(self) -> None:
        """Roll the open transaction back, if any."""
        if self.conn is not None:
            conn, self.conn = self.conn, None
            conn.close()  # closing rolls back

    def _apply(self, conn: Connection, batch: Batch, *, write: bool) -> None:
        stream, run_id, add = self.stream, self.run_id or 0, self.tally.add
        records = batch.records  # in key order (the reader sorts them)
        current = _load_heads(conn, stream, [record[KEY] for record in records])
        new_events: list[tuple] = []
        head_rows: dict[str, tuple] = {}
        rescoped: list[dict[str, Any]] = []
        new_payloads: dict[str, tuple] = {}
        for record in records:
            kind, key, digest = record[KIND], record[KEY], record[HASH]
            # a head is (version, hash, deleted, scope), from the ledger or from this batch
            head = head_rows.get(key) or current.get(key)
            if head is not None and head[1] == digest and not head[2]:
                add(kind, "unchanged")
                if head[3] != record[SCOPE]:
                    rescoped.append({"b_key": key, "b_scope": record[SCOPE]})
                continue
            version = head[0] + 1 if head is not None else 1
            add(kind, "changed" if head is not None else "new")
            if digest not in new_payloads:
                new_payloads[digest] = (digest, record[CODEC], record[STORED], record[SIZE])
                add(kind, "bytes", record[SIZE])
            new_events.append((run_id, stream, kind, key, version, "put", digest))
            head_rows[key] = (version, digest, False, record[SCOPE], record)
        if write:
            bulk_write(
                conn,
                payloads,
                ("hash", "codec", "body", "size"),
                list(new_payloads.values()),
                conflict=("hash",),
            )
            bulk_write(conn, events, EVENT_COLUMNS, new_events)
            bulk_write(
                conn,
                heads,
                HEAD_COLUMNS,
                [
                    (stream, r[KEY], r[KIND], r[SCOPE], r[CONVERSATION], v, d, False, run_id)
                    for v, d, _, _, r in head_rows.values()
                ],
                conflict=("stream", "key"),
                update=HEAD_COLUMNS[2:],
            )
            if rescoped:
                conn.execute(
                    update(heads)
                    .where(heads.c.stream == stream, heads.c.key == bindparam("b_key"))
                    .values(scope=bindparam("b_scope")),
                    rescoped,
                )
        self.events += len(new_events)
        complete = {done.name: done.seen for done in batch.done if done.seen is not None}
        complete.update((scope, set()) for scope in batch.vanished)
        self._delete_missing(conn, complete, write)
        if not write or self.dry_run:
            return
        self._save_checkpoints(conn, batch)
        self.rejects.save(
            conn, [(scope, *self._reject_row(reject, scope)) for reject, scope in batch.rejects]
        )
        whole = [done.name for done in batch.done if done.whole]
        self.rejects.resolve(conn, whole + batch.vanished)
        self.statistics.wrote(conn, len(new_events))
        runs.save_stats(conn, self.run_id, self.stats(batch.reader_stats))
        locks.heartbeat(conn, self.lock, self.run_id)

    def _delete_missing(self, conn: Connection, seen: dict[str, set[str]], write: bool) -> None:
        """Delete events for live heads of the completed scopes ``seen`` maps to the keys
        read there. Heads this run wrote were read in this run, so they are not asked for:
        a first extraction reads nothing back."""
        gone = []
        for chunk in chunks(sorted(seen)):
            rows = conn.execute(
                select(heads.c.scope, heads.c.key, heads.c.kind, heads.c.version).where(
                    heads.c.stream == self.stream,
                    heads.c.scope.in_(chunk),
                    heads.c.deleted.is_(False),
                    heads.c.last_run != (self.run_id or 0),
                )
            )
            gone += [row for row in rows if row.key not in seen[row.scope]]
        for row in gone:
            self.tally.add(row.kind, "deleted")
        self.events += len(gone)
        if not write or not gone:
            return
        run_id, stream = self.run_id or 0, self.stream  # 0: a rehearsal's heads
        bulk_write(
            conn,
            events,
            EVENT_COLUMNS,
            [(run_id, stream, row.kind, row.key, row.version + 1, "delete", None) for row in gone],
        )
        conn.execute(
            update(heads)
            .where(heads.c.stream == stream, heads.c.key == bindparam("b_key"))
            .values(deleted=True, version=bindparam("b_version"), last_run=run_id),
            [{"b_key": row.key, "b_version": row.version + 1} for row in gone],
        )

    def _save_checkpoints(self, conn: Connection, batch: Batch) -> None:
        now = runs.utcnow()

        def row(name: str, cursor: Any, complete: bool, fingerprint, records: int) -> tuple:
            text = canonical_text(cursor) if cursor is not None else None
            return (self.stream, name, text, complete, fingerprint, records, self.run_id, now)

        rows = [row(name, cursor, False, None, 0) for name, cursor in batch.cursors.items()]
        rows += [row(done.name, done.cursor, True, done.fingerprint, done.records) for done in batch.done]
        bulk_write(
            conn,
            checkpoints,
            CHECKPOINT_COLUMNS,
            rows,
            conflict=("stream", "scope"),
            update=CHECKPOINT_COLUMNS[2:],
        )
        if batch.vanished:
            conn.execute(
                delete(checkpoints).where(
                    checkpoints.c.stream == self.stream, checkpoints.c.scope.in_(batch.vanished)
                )
            )

    def _reject_row(self, reject: Reject, scope: str) -> tuple[str, str, str | None]:
        """(location, reason, input as stored) of a reject."""
        return f"scope {scope}: {reject.location}", reject.reason, self._reject_input(reject.input)

    def _reject_input(self, value: Any) -> str | None:
        if value is None:
            return None
        text = value if isinstance(value, str) else json_or_repr(value)
        if len(text) <= MAX_INLINE_REJECT:
            return text
        digest = self.ledger.blobs.put_bytes(text.encode("utf-8"))
        return f"sha256:{digest} ({len(text)} characters, kept in the blob store)"


class RejectBook:
    """The extraction rejects of one stream: each distinct bad input once.

    A reject's identity is (scope, location, reason, sha256 of its input). One already
    open in the ledger is not added again: its ``last_run`` says this run found it too.
    When a pass reads a whole scope (or the scope vanished), the open rejects of that
    scope it did not find again are resolved: ``resolved_run`` is this run. ``counts``
    has ``new``, ``seen_again`` and ``resolved`` for the run's stats.
    """

    def __init__(self, stream: str, run_id: int | None) -> None:
        self.stream = stream
        self.run_id = run_id
        self.open: dict[str, dict[tuple, int]] = {}  # scope → identity → row id (ledger)
        self.found: dict[str, set[tuple]] = {}  # scope → identities this run found
        self.counts = {"new": 0, "seen_again": 0, "resolved": 0}

    def _load(self, conn: Connection, scopes: list[str]) -> None:
        wanted = sorted(set(scopes) - set(self.open))
        for chunk in chunks(wanted):
            for scope in chunk:
                self.open[scope] = {}
            rows = conn.execute(
                select(
                    rejects.c.id, rejects.c.scope, rejects.c.location, rejects.c.reason, rejects.c.input_hash
                ).where(
                    rejects.c.stream == self.stream,
                    rejects.c.scope.in_(chunk),
                    rejects.c.resolved_run.is_(None),
                )
            )
            for row in rows:
                self.open[row.scope][(row.location, row.reason, row.input_hash)] = row.id

    def save(self, conn: Connection, found: list[tuple[str, str, str, str | None]]) -> None:
        """Record (scope, location, reason, input) rejects that are not open already."""
        if not found:
            return
        self._load(conn, [scope for scope, *_ in found])
        new, again = [], []
        for scope, location, reason, text in found:
            identity = (location, reason, sha256_hex((text or "").encode("utf-8")))
            seen = self.found.setdefault(scope, set())
            if identity in seen:
                continue  # the same input twice in one pass is one reject
            seen.add(identity)
            row_id = self.open[scope].get(identity)
            if row_id is not None:
                again.append(row_id)
                continue
            new.append(
                {
                    "run_id": self.run_id,
                    "stream": self.stream,
                    "scope": scope,
                    "location": location,
                    "reason": reason,
                    "input": text,
                    "input_hash": identity[2],
                    "last_run": self.run_id,
                }
            )
        if new:
            conn.execute(rejects.insert(), new)
        for chunk in chunks(again):
            conn.execute(update(rejects).where(rejects.c.id.in_(chunk)).values(last_run=self.run_id))
        self.counts["new"] += len(new)
        self.counts["seen_again"] += len(again)

    def resolve(self, conn: Connection, scopes: list[str]) -> None:
        """Resolve the open rejects of ``scopes`` (read whole, or vanished) not found again."""
        if not scopes:
            return
        self._load(conn, scopes)
        gone = []
        for scope in scopes:
            found = self.found.get(scope, set())
            gone += [row_id for identity, row_id in self.open[scope].items() if identity not in found]
        for chunk in chunks(gone):
            conn.execute(update(rejects).where(rejects.c.id.in_(chunk)).values(resolved_run=self.run_id))
        self.counts["resolved"] += len(gone)


def _load_heads(conn: Connection, stream: str, keys: list[str]) -> dict[str, tuple]:
    """key → (version, hash, deleted, scope) for the keys that have a head."""
    found: dict[str, tuple] = {}
    for chunk in chunks(list(dict.fromkeys(keys))):
        rows = conn.execute(
            select(heads.c.key, heads.c.version, heads.c.hash, heads.c.deleted, heads.c.scope).where(
                heads.c.stream == stream, heads.c.key.in_(chunk)
            )
        )
        for key, version, digest, deleted, scope in rows:
            found[key] = (version, digest, deleted, scope)
    return found
