"""Reading a deployment through the official SDK (``langgraph_sdk.get_sync_client``).

- The key is passed explicitly (``api_key=None`` when there is none), so the SDK never
  falls back to ``LANGGRAPH_API_KEY`` / ``LANGSMITH_API_KEY`` from the environment: a
  source and a target in different organisations each use only their own key.
- Threads are listed by ``threads.search`` oldest first (``created_at`` ascending, so
  threads created while paging land after the pages already read), in pages of at most
  1000 (the server refuses more).
- History is paged newest first with the ``{"configurable": {"checkpoint_id": …}}``
  cursor. A server that refuses it (422 or 500) is asked again with the flat
  ``{thread_id, checkpoint_ns, checkpoint_id}`` form its OpenAPI schema describes, and
  the form that worked is kept for the rest of the run.
- Every request is retried on transient failures (connection errors such as the
  ``ReadError`` of a connection the server dropped after a 500, timeouts, 429, 5xx)
  with backoff and jitter, never on another 4xx.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ledger.kit import PermanentError, RetryPolicy, TransientError, call, http_status
from sources.langgraph.options import LangGraphOptions, header_map, metadata_filter

#: statuses after which the other cursor form is tried
CURSOR_REFUSED = {422, 500}
THREAD_FIELDS = [
    "thread_id",
    "created_at",
    "updated_at",
    "state_updated_at",
    "metadata",
    "status",
    "interrupts",
    "config",
]


@dataclass
class History:
    states: list[dict[str, Any]]  # oldest first
    complete: bool  # False: history_limit stopped the reading


def sdk_client(url: str, api_key: str | None, headers: dict[str, str], timeout: float):
    try:
        from langgraph_sdk import get_sync_client
    except ImportError:  # the optional extra
        raise PermanentError("langgraph: install the SDK: pip install 'chatledger[langgraph]'") from None
    return get_sync_client(url=url, api_key=api_key or None, headers=headers or None, timeout=timeout)


class Deployment:
    """The threads of one deployment, read with retries."""

    def __init__(self, options: LangGraphOptions, retry: RetryPolicy | None = None) -> None:
        self.options = options
        self.retry = retry or RetryPolicy(attempts=6, base_seconds=0.2, max_seconds=10)
        self.filter = metadata_filter(options)
        self.retries = 0
        self.cursor_form = "configurable"
        self._lock = threading.Lock()
        self._client = None

    @property
    def client(self):
        if self._client is None:  # after the extraction's fork
            options = self.options
            self._client = sdk_client(options.url, options.api_key, header_map(options), options.timeout)
        return self._client

    def _call(self, what: str, operation: Callable[[], Any]) -> Any:
        return call(what, operation, retry=self.retry, on_retry=self._count_retry)

    def _count_retry(self, error: BaseException) -> None:
        with self._lock:
            self.retries += 1

    # -- threads ------------------------------------------------------------------------

    def count(self) -> int:
        return self._call("threads.count", lambda: self.client.threads.count(metadata=self.filter))

    def threads(self) -> Iterator[dict[str, Any]]:
        """Threads in scope, oldest first; ``limit`` stops the listing."""
        if self.options.thread_ids:
            yield from self._named_threads()
            return
        offset, wanted = 0, self.options.limit
        while wanted is None or offset < wanted:
            size = self.options.page_size if wanted is None else min(self.options.page_size, wanted - offset)
            page = self._call(
                f"threads.search offset {offset}",
                lambda size=size, offset=offset: self.client.threads.search(
                    metadata=self.filter, limit=size, offset=offset, sort_by="created_at", sort_order="asc",
                    select=THREAD_FIELDS,
                ),
            )  # fmt: skip
            yield from page
            offset += len(page)
            if len(page) < size:
                return

    def _named_threads(self) -> Iterator[dict[str, Any]]:
        for thread_id in self.options.thread_ids[: self.options.limit]:
            try:
                yield self._call(f"threads.get {thread_id}", lambda t=thread_id: self.client.threads.get(t))
            except PermanentError as exc:
                if exc.status != 404:
                    raise
                yield {"thread_id": thread_id, "missing": "no such thread on the deployment (404)"}

    # -- history -----------------------------------------------------------------------

    def history(self, thread_id: str) -> History:
        """Every checkpoint of a thread (or the newest ``history_limit``), oldest first."""
        limit = self.options.history_limit
        states: list[dict[str, Any]] = []
        while limit is None or len(states) < limit:
            size = (
                self.options.page_size if limit is None else min(self.options.page_size, limit - len(states))
            )
            before = states[-1] if states else None
            page = self._page(thread_id, size, before)
            states += page
            if len(page) < size:
                return History(states[::-1], True)
        return History(states[::-1], False)

    def _page(self, thread_id: str, size: int, before: dict[str, Any] | None) -> list[dict[str, Any]]:
        what = f"threads.get_history {thread_id}"
        if before is None:
            return self._call(what, lambda: self.client.threads.get_history(thread_id, limit=size))
        try:
            return self._page_with(self.cursor_form, thread_id, size, before)
        except (PermanentError, TransientError) as exc:
            status = exc.status if isinstance(exc, PermanentError) else http_status(exc.__cause__)
            if status not in CURSOR_REFUSED:
                raise
            other = "flat" if self.cursor_form == "configurable" else "configurable"
            page = self._page_with(other, thread_id, size, before)
            self.cursor_form = other
            return page

    def _page_with(
        self, form: str, thread_id: str, size: int, before: dict[str, Any]
    ) -> list[dict[str, Any]]:
        cursor = (
            {"configurable": {"checkpoint_id": before["checkpoint_id"]}}
            if form == "configurable"
            else before.get("checkpoint")
            or {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": before["checkpoint_id"]}
        )
        return self._call(
            f"threads.get_history {thread_id} before {before['checkpoint_id']} ({form} cursor)",
            lambda: self.client.threads.get_history(thread_id, limit=size, before=cursor),
        )

    def describe(self) -> dict[str, Any]:
        return {"url": self.options.url}

    def close(self) -> None:
        if self._client is not None:
            self._client.http.client.close()
            self._client = None
