"""Rows made in worker processes while the replay writes: the threads of a replay
(ledger/prefetch.py) take turns at one interpreter lock, and decoding payloads and
making rows is most of what they do.

A sink whose ``prepare`` is a function of one record at a time says so with
:meth:`Sink.record_preparer`; one whose ``prepare`` is a function of one unit at a time
(a conversation's plan) with :meth:`Sink.unit_preparer`. A large replay or verify then
forks worker processes before its threads start, and the reader thread sends each
batch's jobs to them: per record, its stored payload (compressed, as the ledger holds
it); per unit, the unit with its items' payloads as stored. The workers decompress,
decode and prepare, sending back only what ``prepare`` would have made (a COPY line, a
row, a fingerprint, a plan). Items reach the sink with that in ``Item.prepared`` (or
``Unit.prepared``) and a :class:`~ledger.payloads.StoredDocument` that decodes only if
the sink asks for it. A unit's value may refer to the unit's items: it is pickled with
each item as its position in the unit, and comes back naming the parent's own items.

A record or unit a worker cannot prepare comes back unprepared, as a failed ``prepare``
leaves a batch (:func:`ledger.replay.plan.prepare_ahead`): the sink's ``apply`` meets
the failure itself, and only its unit is rejected. Workers ignore SIGINT and SIGTERM
(the parent handles a stop) and die with the parent (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import copyreg
import gc
import io
import multiprocessing
import os
import pickle
import signal
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, fields
from operator import attrgetter
from typing import Any

from ledger.payloads import Stored, StoredDocument, decode
from ledger.processes import die_with_parent
from ledger.sink import Item, Unit

#: Replays and verifies smaller than this many records prepare in the reader thread:
#: forking the workers costs more than it saves.
WORKER_THRESHOLD = 20_000

RecordPreparer = Callable[[str, str, dict[str, Any], int, str], Any]
UnitPreparer = Callable[[Unit], Any]
#: (stream, key, version, hash, the payload as stored)
Record = tuple[str, str, int, str, Stored]


class PerRecord:
    """Jobs of one record each: the stored payloads of a batch's items, whose values go
    to ``Item.prepared``."""

    def __init__(self, preparer: RecordPreparer) -> None:
        self.preparer = preparer

    @staticmethod
    def jobs(units: list[Unit]) -> tuple[list[Item], list[Record]]:
        items = [item for unit in units for item in unit.items if isinstance(item.document, StoredDocument)]
        return items, [
            (item.stream, item.key, item.version, item.hash, item.document.stored) for item in items
        ]

    def make(self, record: Record) -> Any:
        stream, key, version, digest, stored = record
        return self.preparer(stream, key, decode(stored), version, digest)

    @staticmethod
    def put(item: Item, value: Any) -> None:
        item.prepared = value


class PerUnit:
    """Jobs of one unit each, whose values go to ``Unit.prepared``, with the unit's
    items in them as the parent's own."""

    def __init__(self, preparer: UnitPreparer) -> None:
        self.preparer = preparer

    @staticmethod
    def jobs(units: list[Unit]) -> tuple[list[Unit], list[UnitJob]]:
        return units, [_unit_job(unit) for unit in units]

    def make(self, job: UnitJob) -> bytes | None:
        unit = _unit_of(job)
        value = self.preparer(unit)
        return None if value is None else _pickled(value, unit.items)

    @staticmethod
    def put(unit: Unit, value: bytes | None) -> None:
        unit.prepared = None if value is None else _unpickled(value, unit.items)


#: what a unit's job carries of each item besides its document (sent as stored): not
#: what was prepared
ITEM_FIELDS = tuple(field.name for field in fields(Item) if field.name not in ("document", "prepared"))
_item_fields = attrgetter(*ITEM_FIELDS)
#: (unit key, kind, per item: its document as stored (or None), its other fields) —
#: plain tuples: a dataclass, or a StoredDocument, pickles several times slower
UnitJob = tuple[str, str, list[tuple[Stored | dict[str, Any] | None, tuple]]]


def _unit_job(unit: Unit) -> UnitJob:
    return unit.key, unit.kind, [(_as_stored(item.document), _item_fields(item)) for item in unit.items]


def _as_stored(document: Any) -> Any:
    return document.stored if isinstance(document, StoredDocument) else document


def _unit_of(job: UnitJob) -> Unit:
    """In a worker: the unit, its documents decoded as the preparer reads them."""
    key, kind, items = job
    return Unit(
        key,
        kind,
        [
            Item(
                document=StoredDocument(document) if isinstance(document, tuple) else document,
                **dict(zip(ITEM_FIELDS, values, strict=True)),
            )
            for document, values in items
        ],
    )


Way = PerRecord | PerUnit

_way: Way | None = None  # the worker process's, set when it starts


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


def way_of(sink) -> Way | None:
    """How ``sink`` (opened) is prepared in workers: per unit, per record, or not at all."""
    unit_preparer = sink.unit_preparer()
    if unit_preparer is not None:
        return PerUnit(unit_preparer)
    record_preparer = sink.record_preparer()
    return PerRecord(record_preparer) if record_preparer is not None else None


@contextmanager
def preparing_workers(sink, records: int, wanted: int | None = None) -> Iterator[PreparingWorkers | None]:
    """Workers for a replay or verify of ``records`` into ``sink`` (opened), or None:
    too few records, ``wanted`` = 0, or a sink with neither preparer."""
    count = worker_count(records, wanted)
    way = way_of(sink) if count else None
    if way is None:
        yield None
        return
    with PreparingWorkers(way, count) as workers:
        yield workers


@dataclass
class Sent:
    """A batch's jobs in the workers: where each value goes, and the futures making them."""

    targets: list[Item] | list[Unit]
    futures: list[Future]


class PreparingWorkers:
    """Worker processes making a sink's prepared values; a context manager.

    Forked at ``__enter__``, which must run before the replay starts its threads: a fork
    copies only the thread that calls it."""

    def __init__(self, way: Way, count: int) -> None:
        self.way = way
        self.count = count
        self.pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> PreparingWorkers:
        self.pool = ProcessPoolExecutor(
            self.count,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_start_worker,
            initargs=(self.way,),
        )
        self.pool.submit(int).result()  # fork them all now, from this thread
        return self

    def __exit__(self, *_exc) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def send(self, units: list[Unit]) -> Sent:
        """Start preparing a batch (built with stored documents), split across the workers."""
        targets, jobs = self.way.jobs(units)
        size = -(-len(jobs) // self.count) if jobs else 1
        return Sent(
            targets,
            [self.pool.submit(_prepare, jobs[start : start + size]) for start in range(0, len(jobs), size)],
        )

    def receive(self, sent: Sent) -> None:
        """Wait for a sent batch and put its values on its items or units."""
        values = (value for future in sent.futures for value in future.result())
        for target, value in zip(sent.targets, values, strict=True):
            self.way.put(target, value)


def _start_worker(way: Way) -> None:
    global _way
    _way = way
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    die_with_parent()
    gc.freeze()  # the parent's objects: never collected here, never copied by a collection


def _prepare(jobs: Sequence[Record] | Sequence[UnitJob]) -> list[Any]:
    """In a worker: each job's prepared value, or None where it could not be made."""
    made = []
    for job in jobs:
        try:
            made.append(_way.make(job))
        except Exception:  # the sink's apply meets it again, in the parent, per unit
            made.append(None)
    return made


def _pickled(value: Any, items: list[Item]) -> bytes:
    """A unit's value, pickled with each of the unit's items as a call of
    :func:`_item_at` with its position (a reducer looked up by type: a ``persistent_id``
    would be called for every object of the value)."""
    positions = {id(item): position for position, item in enumerate(items)}
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = copyreg.dispatch_table | {Item: lambda item: (_item_at, (positions[id(item)],))}
    pickler.dump(value)
    return buffer.getvalue()


def _item_at(position: int) -> Item:
    """Stands for an item in a pickled value; :class:`_ItemUnpickler` resolves it."""
    raise RuntimeError("a unit's item is resolved only while its prepared value is read")


class _ItemUnpickler(pickle.Unpickler):
    """Reads a value :func:`_pickled` made, each position becoming the unit's item."""

    def __init__(self, data: bytes, items: list[Item]) -> None:
        super().__init__(io.BytesIO(data))
        self.items = items

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == (__name__, _item_at.__name__):
            return self.items.__getitem__
        return super().find_class(module, name)


def _unpickled(data: bytes, items: list[Item]) -> Any:
    return _ItemUnpickler(data, items).load()
