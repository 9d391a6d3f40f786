"""Reading a threads export file back (``export_file``): the ``langgraph-json`` sink's
files, a thread per line, read a line at a time (only each thread's byte offset is kept
between listing and reading, so memory stays flat); and the public
``langgraph-threads-migration`` tool's ``--export-json`` files (one indented object),
which are parsed whole. A thread's ``history`` is newest first, as the API returns it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ledger.kit import PermanentError, loads
from sources.langgraph.deployment import History
from sources.langgraph.options import LangGraphOptions, metadata_filter

LINE_FORMAT = b'{"format":"chatledger-langgraph-export/'


class ExportFile:
    def __init__(self, options: LangGraphOptions) -> None:
        self.path = options.export_file
        self.options = options
        self.filter = metadata_filter(options) or {}
        self._offsets: dict[str, int] = {}  # thread id → where its line starts
        self._whole: dict[str, dict[str, Any]] | None = None  # a file that is one object

    def _documents(self) -> Iterator[tuple[dict[str, Any], int | None]]:
        try:
            handle = open(self.path, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise PermanentError(f"langgraph: cannot read {self.path}: {exc.strerror}") from None
        with handle:
            if not handle.readline().startswith(LINE_FORMAT):
                handle.seek(0)
                whole = loads(handle.read())
                if not isinstance(whole, dict) or not isinstance(whole.get("threads"), list):
                    raise PermanentError(f"{self.path}: not a LangGraph threads export (no 'threads' list)")
                self._whole = {
                    thread["thread_id"]: thread for thread in whole["threads"] if isinstance(thread, dict)
                }
                for thread in self._whole.values():
                    yield thread, None
                return
            while True:
                offset = handle.tell()
                line = handle.readline().strip()
                if not line or line.startswith(b"],"):
                    return
                yield self._parse(line, offset), offset

    def _parse(self, line: bytes, offset: int) -> dict[str, Any]:
        try:
            return loads(line.rstrip(b","))
        except ValueError as exc:
            raise PermanentError(f"{self.path} at byte {offset}: not a thread: {exc}") from None

    def _wanted(self, thread: dict[str, Any]) -> bool:
        metadata = thread.get("metadata") or {}
        if any(metadata.get(name) != value for name, value in self.filter.items()):
            return False
        return not self.options.thread_ids or thread.get("thread_id") in self.options.thread_ids

    def threads(self) -> Iterator[dict[str, Any]]:
        listed = 0
        for thread, offset in self._documents():
            if not self._wanted(thread) or (self.options.limit is not None and listed >= self.options.limit):
                continue
            listed += 1
            if offset is not None:
                self._offsets[thread["thread_id"]] = offset
            yield {name: value for name, value in thread.items() if name != "history"}

    def count(self) -> int:
        return sum(1 for thread, _ in self._documents() if self._wanted(thread))

    def history(self, thread_id: str) -> History:
        if self._whole is not None:
            thread = self._whole[thread_id]
        else:
            with open(self.path, "rb") as handle:
                handle.seek(self._offsets[thread_id])
                thread = self._parse(handle.readline().strip(), self._offsets[thread_id])
        states = list(reversed(thread.get("history") or []))
        complete = thread.get("history_complete", True) is not False
        limit = self.options.history_limit
        if limit is not None and len(states) > limit:
            return History(states[-limit:], False)
        return History(states, complete)

    def describe(self) -> dict[str, Any]:
        return {"export_file": str(self.path)}

    def close(self) -> None:
        self._offsets.clear()
        self._whole = None
