"""The reader: walks the source's scopes, encodes and hashes records, fills batches."""

from __future__ import annotations

import time
from collections.abc import Callable
from operator import itemgetter
from typing import Any

import structlog

from ledger import failpoints
from ledger.canonical import CanonicalError, canonical_text, loads
from ledger.extract.batch import KEY, SCOPE_COUNTERS, Batch, ScopeDone, Tally
from ledger.progress import Progress
from ledger.records import KINDS, Record, Reject, record_body
from ledger.source import Scope, Source

log = structlog.get_logger("chatledger.extract")
_by_key = itemgetter(KEY)

#: A ledger transaction reaches the writer in parts of at most this many records, so
#: memory stays flat however large transactions are (a part of canonical bodies is
#: about 10 MB pickled).
PART_RECORDS = 5_000
#: ... and commits at least this often, so a slow source neither keeps its progress
#: uncommitted nor holds the ledger's write lock for long.
COMMIT_SECONDS = 5.0


class Reader:
    def __init__(
        self,
        source: Source,
        *,
        batch_size: int,
        full: bool,
        progress: Progress,
        submit: Callable[[Batch], None],
    ) -> None:
        self.source = source
        self.stream = source.stream
        self.batch_size = batch_size
        self.full = full
        self.progress = progress
        self.submit = submit
        self.tally = Tally()
        self.scopes = dict.fromkeys(SCOPE_COUNTERS, 0)
        self.rejects = 0
        self.batch = Batch()
        self.part_records = min(batch_size, PART_RECORDS)
        self.uncommitted = 0  # records handed over since the last commit
        self.committed_at = time.monotonic()

    def snapshot(self) -> dict[str, Any]:
        return {
            "kinds": {kind: dict(counts) for kind, counts in self.tally.kinds.items()},
            "scopes": dict(self.scopes),
            "rejects": self.rejects,
        }

    def hand_over(self, *, final: bool = False) -> None:
        """Send the batch as one part of a ledger transaction; ``commit`` ends it.

        Random keys and hashes spread each commit's index inserts over whole B-trees,
        and a commit writes every page it touched, so fewer, larger transactions write
        far less (``batch_size`` records, default 100,000), while parts keep memory flat.
        """
        if not self.batch:
            return
        self.batch.reader_stats = self.snapshot()
        # Key order: the writer's index inserts then walk the B-trees left to right
        # (a stable sort, so repeats of a key keep their order).
        self.batch.records.sort(key=_by_key)
        self.uncommitted += len(self.batch.records)
        now = time.monotonic()
        self.batch.commit = (
            final or self.uncommitted >= self.batch_size or now - self.committed_at >= COMMIT_SECONDS
        )
        if self.batch.commit:
            self.uncommitted, self.committed_at = 0, now
        batch, self.batch = self.batch, Batch()
        self.submit(batch)

    def run(self, saved: dict[str, Any], resumable_run: int | None) -> None:
        """Read every scope; ``saved`` maps scope names to their checkpoint rows."""
        listed: set[str] = set()
        for scope in self.source.scopes():
            listed.add(scope.name)
            self.scopes["listed"] += 1
            checkpoint = saved.get(scope.name)
            skip = self._skip_reason(scope, checkpoint, resumable_run)
            if skip:
                self.scopes[skip] += 1
                self.progress.advance(1, skipped=checkpoint["records"])
            else:
                read = self._read_scope(scope, checkpoint)
                self.progress.advance(1, records=read)
        if self.source.exhaustive:
            self.batch.vanished = sorted(set(saved) - listed)
            self.scopes["vanished"] = len(self.batch.vanished)
        self.hand_over(final=True)

    def _skip_reason(self, scope: Scope, checkpoint, resumable_run: int | None) -> str | None:
        if self.full or checkpoint is None or not checkpoint["complete"]:
            return None
        if not scope.complete:
            return None  # a partial scope continues from its cursor instead
        if scope.fingerprint is not None and checkpoint["fingerprint"] == scope.fingerprint:
            return "unchanged"
        if resumable_run is not None and checkpoint["run_id"] == resumable_run:
            return "resumed"
        return None

    def _read_scope(self, scope: Scope, checkpoint) -> int:
        failpoints.failpoint("extract.read.scope")
        self.scopes["read"] += 1
        cursor = None
        if not scope.complete and checkpoint is not None and checkpoint["cursor"] is not None:
            cursor = loads(checkpoint["cursor"])
        seen: set[str] | None = set() if scope.complete else None
        keyless_rejects = 0
        read = 0
        for items, cursor in self.source.read(scope, cursor):  # noqa: B020 (the cursor advances)
            for item in items:
                read += 1
                if isinstance(item, Reject):
                    self._reject(item, scope.name)
                    if item.key is None:
                        keyless_rejects += 1
                    elif seen is not None:
                        seen.add(item.key)
                    continue
                if seen is not None:
                    seen.add(item.key)
                self._encode(item, scope.name)
            self.batch.cursors[scope.name] = cursor
            if len(self.batch.records) >= self.part_records:
                self.hand_over()
        if seen is not None and keyless_rejects:
            # A bad input might be a record that still exists: deleting is not safe.
            self.scopes["deletes_withheld"] += 1
            seen = None
        self.batch.cursors.pop(scope.name, None)
        # The fingerprint is kept even when deletes were withheld: the same input would
        # give the same records and rejects, so reading it again would only repeat them.
        fingerprint = scope.fingerprint if scope.complete else None
        done = ScopeDone(scope.name, seen, read, cursor, fingerprint, whole=scope.complete)
        self.batch.done.append(done)
        return read

    def _encode(self, record: Record, scope: str) -> None:
        self.tally.add(record.kind, "read")
        problem = None
        if record.stream != self.stream:
            problem = f"record belongs to stream {record.stream!r}, not {self.stream!r}"
        elif record.kind not in KINDS:
            problem = f"unknown kind {record.kind!r} (kinds: {', '.join(KINDS)})"
        else:
            try:
                body = record_body(record)
            except CanonicalError as exc:
                problem = f"cannot be encoded: {exc}"
        if problem is not None:
            self.tally.add(record.kind, "rejected")
            location = f"{record.kind} {record.key}"
            self._reject(Reject(location, problem, record_input(record), record.key), scope)
            return
        self.batch.records.append((record.kind, record.key, scope, record.conversation, body))

    def _reject(self, reject: Reject, scope: str) -> None:
        self.rejects += 1
        self.batch.rejects.append((reject, scope))
        log.warning("rejected input", stream=self.stream, location=reject.location, reason=reject.reason)


def json_or_repr(value: Any) -> str:
    try:
        return canonical_text(value)
    except CanonicalError:
        return repr(value)


def record_input(record: Record) -> str:
    """The offending record as text for the rejects table."""
    return json_or_repr({"kind": record.kind, "key": record.key, "data": record.data, "raw": record.raw})
