"""The ``langgraph`` source: one scope per thread, read with bounded concurrency.

Scopes are threads (``thread:<id>``) in the input's stable order (oldest first). A
scope is complete (a checkpoint or message missing from it was deleted) unless
``history_limit`` cuts its history; the listing is exhaustive (a thread gone from the
deployment is deleted as a whole) unless ``metadata_filter``, ``thread_ids`` or
``limit`` narrow it. A scope's fingerprint is the thread's change token (its
``updated_at``, ``state_updated_at``, status and metadata, and the options that shape
records), so an unchanged thread is skipped without reading its history.

Concurrency: when the engine reads a thread, the histories of the next
``concurrency - 1`` listed threads are fetched in the background as well; a thread the
engine then skips as unchanged has its prefetch cancelled. Histories are thus fetched
``concurrency`` at a time during a first migration, and hardly at all on a re-run.

A thread whose history cannot be read completely becomes a reject with the reason (the
error after retries), never a partial thread; its earlier version in the ledger stays.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ledger.kit import ChatledgerError, Record, Reject, Scope, Source, digest
from sources.langgraph import mapping
from sources.langgraph.deployment import Deployment, History
from sources.langgraph.options import LangGraphOptions, check

#: Bump when the mapping's output changes, so fingerprints change with it.
MAPPING_VERSION = 1


class LangGraphSource(Source):
    type_name = "langgraph"
    Options = LangGraphOptions

    def __init__(self, options: LangGraphOptions, context) -> None:
        super().__init__(options, context)
        self.input = check(options)
        self.exhaustive = not (options.metadata_filter or options.thread_ids or options.limit)
        self._store = None
        self._pool: ThreadPoolExecutor | None = None
        self._threads: dict[str, dict[str, Any]] = {}  # scope name → listed thread
        self._upcoming: deque[str] = deque()  # listed scopes not yet handed out
        self._fetches: dict[str, Future] = {}
        self._tally = {"threads": 0, "checkpoints": 0, "messages": 0, "rejected": 0, "partial": 0}

    @property
    def store(self):
        """The input, opened on first use (after the fork into the reader process)."""
        if self._store is None:
            if self.input == "api":
                self._store = Deployment(self.options)
            elif self.input == "file":
                from sources.langgraph.exportfile import ExportFile

                self._store = ExportFile(self.options)
            else:
                from sources.langgraph.checkpoints import CheckpointStore

                self._store = CheckpointStore(self.options)
        return self._store

    # -- scopes -------------------------------------------------------------------------

    def scope_count(self) -> int | None:
        if self.options.thread_ids:
            return len(self.options.thread_ids[: self.options.limit])
        total = self.store.count()
        return total if self.options.limit is None else min(total, self.options.limit)

    def scopes(self) -> Iterator[Scope]:
        ahead = self.options.concurrency
        listing = iter(self.store.threads())
        previous = None
        while True:
            while len(self._upcoming) < ahead:
                thread = next(listing, None)
                if thread is None:
                    break
                name = f"thread:{thread['thread_id']}"
                self._threads[name] = thread
                self._upcoming.append(name)
            if not self._upcoming:
                break
            if previous is not None:
                self._forget(previous)  # skipped by the engine, or read already
            name = previous = self._upcoming.popleft()
            yield Scope(name, self.options.history_limit is None, self._fingerprint(self._threads[name]))
        if previous is not None:
            self._forget(previous)

    def _fingerprint(self, thread: dict[str, Any]) -> str | None:
        if "missing" in thread or not thread.get("updated_at"):
            return None
        return digest(
            MAPPING_VERSION,
            self.options.owner_key,
            self.options.history_limit,
            {
                name: thread.get(name)
                for name in ("thread_id", "updated_at", "state_updated_at", "status", "metadata")
            },
        )

    def _forget(self, name: str) -> None:
        self._threads.pop(name, None)
        future = self._fetches.pop(name, None)
        if future is not None:
            future.cancel()

    # -- reading ------------------------------------------------------------------------

    def read(self, scope: Scope, cursor: Any = None) -> Iterator[tuple[list[Record | Reject], Any]]:
        thread = self._threads[scope.name]
        if "missing" in thread:
            self._tally["rejected"] += 1
            yield (
                [
                    Reject(
                        f"thread {thread['thread_id']}", thread["missing"], {"thread_id": thread["thread_id"]}
                    )
                ],
                None,
            )
            return
        own = self._fetch(scope.name)
        for name in list(self._upcoming)[: self.options.concurrency - 1]:
            self._fetch(name)
        try:
            history: History = own.result()
        except ChatledgerError as exc:
            self._tally["rejected"] += 1
            reason = f"the thread's history could not be read completely: {exc}"
            yield [Reject(f"thread {thread['thread_id']}", reason, {"thread_id": thread["thread_id"]})], None
            return
        finally:
            self._fetches.pop(scope.name, None)
        records = mapping.thread_records(
            self.record, thread, history.states, complete=history.complete, owner_key=self.options.owner_key
        )
        self._tally["threads"] += 1
        self._tally["checkpoints"] += len(history.states)
        self._tally["messages"] += sum(1 for record in records if record.kind == "message")
        self._tally["partial"] += not history.complete
        yield records, None

    def _fetch(self, name: str) -> Future:
        if name not in self._fetches:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    self.options.concurrency, thread_name_prefix="langgraph-history"
                )
            thread = self._threads[name]
            self._fetches[name] = self._pool.submit(self.store.history, thread["thread_id"])
        return self._fetches[name]

    # -- facts --------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """Facts before reading: the input and how many threads are in scope."""
        return {"input": self.input, **self.store.describe(), "threads_in_scope": self.scope_count()}

    def close(self) -> None:
        if self._tally["threads"] or self._tally["rejected"]:
            retries = getattr(self._store, "retries", 0)
            self.context.log.info(
                "langgraph threads read", stream=self.stream, retries=retries, **self._tally
            )
        for future in self._fetches.values():
            future.cancel()
        self._fetches.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._store is not None:
            self._store.close()
            self._store = None
