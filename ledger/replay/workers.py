"""Rows made in worker processes while the replay writes: the threads of a replay
(ledger/prefetch.py) take turns at one interpreter lock, and decoding payloads and
making rows is most of what they do.

A sink whose ``prepare`` is a function of one record at a time says so with
:meth:`Sink.record_preparer`. A large replay or verify then forks worker processes
before its threads start; the reader thread sends each batch's stored payloads to them
(compressed, as the ledger holds them) and the workers decompress, decode and prepare
each record, sending back only what ``prepare`` would have made (a COPY line, a row, a
fingerprint). Items reach the sink with that in ``prepared`` and a
:class:`~ledger.payloads.StoredDocument` that decodes only if the sink asks for it.

A record a worker cannot prepare comes back unprepared, as a failed ``prepare`` leaves
a batch (:func:`ledger.replay.plan.prepare_ahead`): the sink's ``apply`` meets the
failure itself, and only its unit is rejected. Workers ignore SIGINT and SIGTERM (the
parent handles a stop) and die with the parent (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any

from ledger.payloads import Stored, decode
from ledger.processes import die_with_parent

#: Replays and verifies smaller than this many records prepare in the reader thread:
#: forking the workers costs more than it saves.
WORKER_THRESHOLD = 20_000

Preparer = Callable[[str, str, dict[str, Any], int, str], Any]
#: (stream, key, version, hash, the payload as stored)
Record = tuple[str, str, int, str, Stored]

_preparer: Preparer | None = None  # the worker process's, set when it starts


def worker_count(records: int, wanted: int | None = None) -> int:
    """How many workers a replay of ``records`` gets: ``wanted`` when given (0: none),
    else one per core up to 4 (they wait on the reader and the writer as much as these
    wait on them: on 2 cores, 100k records, 2 workers 24.7–25.9 s, 3 25.8 s, 1 27.0 s,
    none 29.6 s), none for a small replay or a machine with one core; none where
    processes cannot fork."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return 0
    if wanted is not None:
        return max(0, wanted)
    if records < WORKER_THRESHOLD:
        return 0
    cores = os.cpu_count() or 1
    return min(4, cores) if cores > 1 else 0


@contextmanager
def preparing_workers(sink, records: int, wanted: int | None = None) -> Iterator[PreparingWorkers | None]:
    """Workers for a replay or verify of ``records`` into ``sink`` (opened), or None:
    too few records, ``wanted`` = 0, or a sink with no :meth:`Sink.record_preparer`."""
    count = worker_count(records, wanted)
    preparer = sink.record_preparer() if count else None
    if preparer is None:
        yield None
        return
    with PreparingWorkers(preparer, count) as workers:
        yield workers


class PreparingWorkers:
    """Worker processes making ``preparer``'s value of records; a context manager.

    Forked at ``__enter__``, which must run before the replay starts its threads: a fork
    copies only the thread that calls it."""

    def __init__(self, preparer: Preparer, count: int) -> None:
        self.preparer = preparer
        self.count = count
        self.pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> PreparingWorkers:
        self.pool = ProcessPoolExecutor(
            self.count,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_start_worker,
            initargs=(self.preparer,),
        )
        self.pool.submit(int).result()  # fork them all now, from this thread
        return self

    def __exit__(self, *_exc) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, records: Sequence[Record]) -> list[Future]:
        """The records' prepared values, in order, split across the workers."""
        size = -(-len(records) // self.count) if records else 1
        return [
            self.pool.submit(_prepare, records[start : start + size])
            for start in range(0, len(records), size)
        ]


def results(futures: list[Future]) -> Iterator[Any]:
    for future in futures:
        yield from future.result()


def _start_worker(preparer: Preparer) -> None:
    global _preparer
    _preparer = preparer
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    die_with_parent()
    gc.freeze()  # the parent's objects: never collected here, never copied by a collection


def _prepare(records: Sequence[Record]) -> list[Any]:
    """In a worker: each record's prepared value, or None where it could not be made."""
    made = []
    for stream, key, version, digest, stored in records:
        try:
            made.append(_preparer(stream, key, decode(stored), version, digest))
        except Exception:  # the sink's apply meets it again, in the parent, per unit
            made.append(None)
    return made
