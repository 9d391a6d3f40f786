"""A target deployment through the official SDK: threads found, created, removed and
read back, with retries on transient failures only and the server's traps detected.

Traps (docs/langgraph.md): ``POST /threads`` answers **201 with a ``detail`` body** when
its supersteps failed (the empty thread exists); a 400 after the thread row was written
leaves a **half-created thread** behind. Both are failures here, and
:meth:`Threads.ensure` (the kit's :class:`HttpTarget` protocol) deletes what a failed
create left and creates it again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ledger.kit import HttpTarget, PermanentError, RetryPolicy, call, parse_headers

PAGE = 1000


class Refused(PermanentError):
    """The server refused the history (supersteps): a fallback may still work."""


@dataclass
class Wanted:
    """What one thread should be on the target, and what writing it took."""

    thread_id: str
    metadata: dict[str, Any]
    graph_id: str | None
    supersteps: list[dict[str, Any]]
    final_values: dict[str, Any] | None
    expected: Callable[[str, dict[str, Any], list[dict[str, Any]]], bool]  # (mode, thread, history) → whole
    mode: str = "supersteps"  # or "fallback", when the server refused the supersteps
    refused: str | None = None  # why the supersteps were refused
    history: list[dict[str, Any]] = field(default_factory=list)  # the read-back, oldest first

    def __str__(self) -> str:
        return f"thread {self.thread_id}"


def sdk_client(url: str, api_key: str | None, headers: list[str], timeout: float):
    try:
        from langgraph_sdk import get_sync_client
    except ImportError:  # the optional extra
        raise PermanentError("langgraph: install the SDK: pip install 'chatledger[langgraph]'") from None
    extra = parse_headers(headers, reserved=("x-api-key",), where="langgraph sink")
    # api_key=None, not omitted: the SDK would otherwise read LANGGRAPH_API_KEY & co.
    return get_sync_client(url=url, api_key=api_key or None, headers=extra or None, timeout=timeout)


class Threads(HttpTarget[Wanted]):
    def __init__(
        self,
        client,
        *,
        legacy_terminal_node: str | None,
        on_retry: Callable[[BaseException], None] | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.client = client
        self.legacy_terminal_node = legacy_terminal_node
        self.on_retry = on_retry
        self.retry = retry or RetryPolicy(attempts=6, base_seconds=0.2, max_seconds=10)

    def _call(self, what: str, operation: Callable[[], Any]) -> Any:
        return call(what, operation, retry=self.retry, on_retry=self.on_retry)

    # -- reading ------------------------------------------------------------------------

    def get(self, thread_id: str) -> dict[str, Any] | None:
        try:
            return self._call(f"threads.get {thread_id}", lambda: self.client.threads.get(thread_id))
        except PermanentError as exc:
            if exc.status == 404:
                return None
            raise

    def history(self, thread_id: str) -> list[dict[str, Any]]:
        """The whole history, oldest first."""
        states: list[dict[str, Any]] = []
        while True:
            before = {"configurable": {"checkpoint_id": states[-1]["checkpoint_id"]}} if states else None
            page = self._call(
                f"threads.get_history {thread_id}",
                lambda before=before: self.client.threads.get_history(thread_id, limit=PAGE, before=before),
            )
            states += page
            if len(page) < PAGE:
                return states[::-1]

    def graphs(self) -> set[str]:
        assistants = self._call("assistants.search", lambda: self.client.assistants.search(limit=1000))
        return {assistant["graph_id"] for assistant in assistants}

    def marked(self, marker: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Threads whose metadata contains ``marker``."""
        offset = 0
        while True:
            page = self._call(
                "threads.search",
                lambda offset=offset: self.client.threads.search(
                    metadata=marker, limit=PAGE, offset=offset, sort_by="created_at", sort_order="asc",
                    select=["thread_id", "metadata"],
                ),
            )  # fmt: skip
            yield from page
            offset += len(page)
            if len(page) < PAGE:
                return

    def count(self, marker: dict[str, Any]) -> int:
        return self._call("threads.count", lambda: self.client.threads.count(metadata=marker))

    # -- the HttpTarget protocol ----------------------------------------------------------

    def find(self, ref: Wanted) -> dict[str, Any] | None:
        thread = self.get(ref.thread_id)
        if thread is not None:
            ref.history = self.history(ref.thread_id)
        return thread

    def whole(self, ref: Wanted, found: dict[str, Any]) -> bool:
        return ref.expected(ref.mode, found, ref.history)

    def remove(self, ref: Wanted | str) -> None:
        thread_id = ref if isinstance(ref, str) else ref.thread_id
        try:
            self._call(f"threads.delete {thread_id}", lambda: self.client.threads.delete(thread_id))
        except PermanentError as exc:
            if exc.status != 404:
                raise

    def create(self, ref: Wanted) -> None:
        if ref.mode == "supersteps":
            try:
                self._create(ref, ref.supersteps)
                return
            except Refused as exc:
                ref.refused = str(exc)
            if not ref.final_values:
                raise PermanentError(f"{ref}: {ref.refused}")
            ref.mode = "fallback"
            self._clean_up(ref)  # the half-created thread
        self._create(ref, [])
        if ref.final_values:
            as_node = self.legacy_terminal_node
            self._call(
                f"threads.update_state {ref.thread_id}",
                lambda: self.client.threads.update_state(ref.thread_id, ref.final_values, as_node=as_node),
            )

    def _create(self, ref: Wanted, supersteps: list[dict[str, Any]]) -> None:
        what = f"threads.create {ref.thread_id}"
        try:
            response = self._call(
                what,
                lambda: self.client.threads.create(
                    thread_id=ref.thread_id, metadata=ref.metadata, graph_id=ref.graph_id,
                    supersteps=supersteps or None, if_exists="raise",
                ),
            )  # fmt: skip
        except PermanentError as exc:
            if supersteps and exc.status in (400, 422):
                raise Refused(str(exc), exc.status) from exc
            raise
        if (
            not isinstance(response, dict)
            or "detail" in response
            or response.get("thread_id") != ref.thread_id
        ):
            detail = response.get("detail") if isinstance(response, dict) else response
            raise (Refused if supersteps else PermanentError)(
                f"{what}: the server answered 2xx but: {detail}"
            )
