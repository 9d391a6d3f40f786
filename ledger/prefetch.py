"""Threads that overlap the ledger side of a replay or verify with its target side.

:class:`Prefetch` reads ahead: a replay's batches are read from the ledger (plan rows,
payloads, decoding, the sink's row building) while the previous batch is written to
the target. :class:`Behind` records behind: a batch the target committed gets its
ledger transaction while the next batch is written to the target. Both hand items over
bounded queues, so at most ``depth`` batches wait in memory; the drivers release the
GIL while they wait on the network or the disk, which is when the other threads run.
Order is kept: batches are read, written and recorded in turn, and a batch's ledger
transaction still follows its own target commit.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

T = TypeVar("T")

_DONE = object()
#: How long a blocked producer waits before it looks again whether it was stopped.
_POLL_SECONDS = 0.2


#: The interpreter's switch interval while the threads run (Python's default: 5 ms).
QUICK_SWITCH_SECONDS = 0.0005


@contextmanager
def quick_handoffs() -> Iterator[None]:
    """Shorten the interpreter's switch interval for the block. A thread back from the
    network or the disk (a COPY sent, a SQLite insert done, a worker's rows received)
    waits for the interpreter lock until the thread holding it is made to drop it, up to
    the switch interval, and these threads wait and wake thousands of times per batch
    (100k records into Postgres under load 6.6-8.9: 49.9-57.5 s at 0.5 ms, 67.8-71.6 s
    at Python's 5 ms, the same CPU time; on a quiet machine the gain is small)."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(QUICK_SWITCH_SECONDS)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class Prefetch(Generic[T]):
    """Iterate over ``produce()``, run in a thread of its own up to ``depth`` items ahead.

    ``produce`` is called in that thread, so the connections it opens belong to it. An
    exception there is raised here, in the consumer, at the item where it happened.
    Leaving the ``with`` block early (an error in the consumer, a signal) stops the
    producer and closes its generator in its own thread.
    """

    def __init__(self, produce: Callable[[], Iterator[T]], *, depth: int = 1, name: str = "prefetch") -> None:
        self._produce = produce
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def __enter__(self) -> Prefetch[T]:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        while self._thread.is_alive():  # unblock a producer waiting for room
            try:
                self._queue.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                pass
        self._thread.join()

    def __iter__(self) -> Iterator[T]:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        items = self._produce()
        try:
            for item in items:
                if not self._put(item):
                    return
            self._put(_DONE)
        except BaseException as error:  # handed to the consumer, raised there
            self._put(_Failed(error))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()


class Behind(Generic[T]):
    """Hand items to ``consume``, called in a thread of its own in the order submitted,
    with up to ``depth`` items waiting.

    An exception in ``consume`` stops the consuming (the items after it are dropped) and
    is raised by the next :meth:`submit` or by :meth:`close`. :meth:`close` waits until
    every item submitted before it was consumed.
    """

    def __init__(self, consume: Callable[[T], None], *, depth: int = 1, name: str = "behind") -> None:
        self._consume = consume
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: T) -> None:
        self._raise()
        self._queue.put(item)

    def close(self) -> None:
        """Wait for the items submitted, then raise what ``consume`` raised, if anything."""
        self._queue.put(_DONE)
        self._thread.join()
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while (item := self._queue.get()) is not _DONE:
            if self._error is not None:
                continue  # drained, so a submit waiting for room returns and raises
            try:
                self._consume(item)
            except BaseException as error:  # raised in the submitting thread
                self._error = error
