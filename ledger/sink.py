"""The sink plug-in contract (DESIGN §7) and what the replay engine hands a sink.

A replay compares the ledger's ``heads`` with ``target_state`` and hands the sink
*units*: a single record (``unit = "record"``) or a whole conversation with all its
messages (``unit = "conversation"``), so trees and pointers are written consistently.
Each unit says, per record, what the ledger wants the target to hold (``document``, or
None to remove it) and what the target holds now according to the ledger
(``held_version``/``held_hash``/``held_ref``).

``apply(units)`` makes the target match in one target transaction where the target has
transactions, and returns one :class:`Outcome` per record it inserted, updated or
deleted. The engine then records ``writes`` and ``target_state`` in one ledger
transaction. A sink never reads a source's native format: it reads canonical ``data``
(``raw`` only for same-platform copies).
"""

from __future__ import annotations

import abc
import contextlib
import errno
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import structlog

from ledger.blobs import BlobStore
from ledger.canonical import canonical_text
from ledger.errors import ChatledgerError
from ledger.records import KINDS
from ledger.redact import redact


class TransientError(ChatledgerError):
    """A failure worth retrying: connection lost, timeout, HTTP 429 or 5xx."""


class PermanentError(ChatledgerError):
    """A failure retrying cannot fix: bad data, HTTP 4xx, a constraint violated.

    ``status`` carries an HTTP status where there is one (callers branch on 400 vs 404).
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TargetFull(ChatledgerError):
    """The target (or the disk under it) is out of space: the run stops, nothing of the
    batch is rejected, and running the command again once space is freed resumes it."""


class TargetUnreachable(ChatledgerError):
    """A dry run's check: the target cannot be reached, or refuses a right a run needs
    (the message names the target, never a secret)."""


#: OSError numbers that mean "no space": the disk is full, or the user's quota is used up
OUT_OF_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


def out_of_space(error: BaseException, where: str) -> TargetFull | None:
    """A TargetFull naming ``where`` if ``error`` is an out-of-space OSError, else None."""
    if isinstance(error, OSError) and error.errno in OUT_OF_SPACE:
        return TargetFull(
            f"{where} is out of space ({error.strerror}): free space there and run the "
            "command again; it continues where it stopped"
        )
    return None


def unreachable(sink: Sink, error: BaseException, what: str = "cannot reach it") -> TargetUnreachable:
    """The check's failure, naming the target and where it is (secrets masked)."""
    detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if len(detail) > 240:  # drivers append their whole state (pymongo: the topology)
        detail = detail[:240] + "…"
    return TargetUnreachable(
        redact(f"target {sink.target!r} ({sink.describe()}): {what}: {type(error).__name__}: {detail}")
    )


@contextlib.contextmanager
def checking(sink: Sink) -> Iterator[None]:
    """A dry run's check: the sink opened (read-only) for the block and closed after; any
    failure that is not already ours becomes :class:`TargetUnreachable` naming it."""
    try:
        sink.open()
        yield
    except ChatledgerError:
        raise
    except Exception as error:
        raise unreachable(sink, error) from error
    finally:
        sink.close()


def refuse(sink: Sink, problems: list[str]) -> None:
    """Fail a check on what the target would not allow (nothing when ``problems`` is empty)."""
    if problems:
        raise TargetUnreachable(redact(f"target {sink.target!r} ({sink.describe()}): {'; '.join(problems)}"))


@dataclass
class Item:
    """One record of a unit: the wanted state and the held state."""

    stream: str
    key: str
    kind: str
    version: int  # the ledger version wanted (for a delete: the delete's version)
    hash: str | None  # None when the record is to be removed
    document: dict[str, Any] | None  # {"data", "raw", "refs", ...}; None: remove it
    held_version: int | None = None
    held_hash: str | None = None
    held_ref: Any = None
    conversation: str | None = None  # the conversation it belongs to (its own key for one)
    force: bool = False  # rewrite even if the target holds this version (replace, resync)
    #: what the sink's ``prepare`` made of this item ahead of ``apply`` (e.g. its row)
    prepared: Any = field(default=None, repr=False, compare=False)

    @property
    def data(self) -> dict[str, Any]:
        return self.document["data"] if self.document else {}

    @property
    def removed(self) -> bool:
        return self.document is None

    @property
    def changed(self) -> bool:
        return self.force or self.hash != self.held_hash


@dataclass
class Unit:
    """What a sink applies atomically: one record, or one conversation and its messages."""

    key: str
    kind: str  # the record's kind; "conversation" for conversation units
    items: list[Item] = field(default_factory=list)
    #: what the sink's ``prepare`` made of the whole unit ahead of ``apply`` (e.g. its plan)
    prepared: Any = field(default=None, repr=False, compare=False)

    @property
    def removed(self) -> bool:
        """The unit's own record is to be removed (the whole conversation goes)."""
        head = self.head
        return head is not None and head.removed

    @property
    def head(self) -> Item | None:
        return next((item for item in self.items if item.key == self.key), None)

    def of_kind(self, kind: str) -> list[Item]:
        return [item for item in self.items if item.kind == kind]


ACTIONS = ("insert", "update", "delete", "skip")


@dataclass(frozen=True)
class Outcome:
    """What a sink did to one record: ``insert``, ``update``, ``delete`` or ``skip``.

    ``skip`` means the sink deliberately did not write the record (a rule of the target,
    a kind it cannot carry); ``reason`` says why. It is recorded as a skip, never as a
    write, and the record is not replanned until it changes.
    """

    stream: str
    key: str
    action: str
    target_ref: Any = None
    reason: str | None = None
    #: ``target_ref`` as the ledger and the markers store it (canonical JSON), made once
    #: with the outcome: both record every outcome
    target_ref_text: str | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown outcome action {self.action!r} (one of {', '.join(ACTIONS)})")
        if self.action == "skip" and not self.reason:
            raise ValueError(f"a skip of {self.key} needs a reason")
        reference = canonical_text(self.target_ref) if self.target_ref is not None else None
        object.__setattr__(self, "target_ref_text", reference)  # frozen

    @classmethod
    def skip(cls, item: Item, reason: str) -> Outcome:
        return cls(item.stream, item.key, "skip", None, reason)

    @classmethod
    def written(cls, item: Item, target_ref: Any = None) -> Outcome:
        """The outcome of writing ``item``: delete when removed, insert when the target
        held nothing, else update."""
        if item.removed:
            action = "delete"
        else:
            action = "insert" if item.held_hash is None else "update"
        return cls(item.stream, item.key, action, target_ref)


@dataclass
class SinkContext:
    target: str
    blobs: BlobStore
    log: Any = field(default_factory=lambda: structlog.get_logger("chatledger.sink"))
    lookups: Any = None  # ledger.lookups.Lookups: answers of outside services, cached
    #: stream → the source type that extracted it, so a sink may read ``raw`` only when
    #: the stream came from its own platform (DESIGN §7)
    source_types: dict[str, str] = field(default_factory=dict)
    #: stream → the user keys owning a live conversation or file in it
    #: (:func:`ledger.ownership.content_owners`); None where no ledger can say
    content_owners: Callable[[str], frozenset[str]] | None = None
    _owners: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)
    #: verify and dry runs: ``open`` must create nothing (no tables, folders, files) and
    #: the sink writes nothing; what is absent reads as missing
    read_only: bool = False

    def source_type(self, stream: str) -> str | None:
        return self.source_types.get(stream)

    def owners_with_content(self, stream: str) -> frozenset[str] | None:
        """User keys that own something to migrate in ``stream`` (read once per stream);
        None when unknown (a sink then treats every user as an owner)."""
        if self.content_owners is None:
            return None
        if stream not in self._owners:
            self._owners[stream] = self.content_owners(stream)
        return self._owners[stream]


class Repair(abc.ABC):
    """A named, deterministic fix-up: desired state from the ledger, actual state from the
    target, and only the difference written. Running it twice writes nothing.

    ``run`` gets batches of the units the ledger believes the target holds. It may fix the
    target directly, or hand units to ``rewrite`` (the replay path, which records writes).
    """

    name: ClassVar[str]
    help: ClassVar[str]

    @abc.abstractmethod
    def run(
        self, sink: Sink, units: list[Unit], *, dry_run: bool, rewrite: Callable[[list[Unit]], None]
    ) -> list[dict[str, Any]]:
        """Fix ``units``; return one entry per fix made (or that would be, when dry)."""

    def finish(self, sink: Sink, *, dry_run: bool) -> list[dict[str, Any]]:
        """After the held units: fix what else the target holds (rows other tools wrote);
        return one entry per fix. Default: nothing."""
        return []


#: What a sink can declare it does (``Sink.capabilities``); the contract suites test each.
CAPABILITIES = (
    "transactions",  # a batch is one target transaction
    "markers",  # exactly-once rests on markers written with the data
    "truncate",  # replace --truncate empties a documented table set
    "branches",  # every branch of a message tree is kept
    "verify",  # fingerprint / read_back are implemented
)


class Sink(abc.ABC):
    """Subclasses set ``type_name``, ``Options``, ``unit``, ``kinds`` and ``capabilities``."""

    type_name: ClassVar[str]
    Options: ClassVar[type]
    unit: ClassVar[str] = "record"  # or "conversation"
    #: The kinds this sink carries; records of other kinds are skipped, with the reason,
    #: by the engine (never handed to ``apply``).
    kinds: ClassVar[tuple[str, ...]] = KINDS
    #: What the sink does, from CAPABILITIES.
    capabilities: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, options: Any, context: SinkContext) -> None:
        self.options = options
        self.context = context
        self.target = context.target
        #: sink-specific counters a run reports under "sink" (e.g. users_created)
        self.counters: dict[str, int] = {}

    def count(self, name: str, amount: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + amount

    # -- description -------------------------------------------------------------------

    def describe(self) -> str:
        """Where this sink writes, for the ``targets`` table (no secrets)."""
        return self.type_name

    def tables(self, kind: str) -> list[str]:
        """The target tables (or files, endpoints) records of ``kind`` land in, for plans."""
        return [kind]

    # -- lifecycle ---------------------------------------------------------------------

    def open(self) -> None:
        """Connect, check the target's schema, create the sink's own tables; with
        ``context.read_only``, connect and check only (nothing is created)."""

    def close(self) -> None:
        """Release connections."""

    def settle(self) -> None:
        """A writing run's every batch is recorded in the ledger (not called after a
        failure): tidy what only healing a crash between the two commits needed, e.g. a
        marker table nothing in the target refers to any more."""

    def check(self) -> list[str]:
        """Dry runs: prove without writing what can be proven that a run could write
        here: the target answers, and grants what a run needs (tables present or
        creatable, write rights; for an HTTP service a read with the credentials).
        Raises :class:`TargetUnreachable` (or ConfigError) naming the target; returns
        notes on what it could not check. Default: ``open`` read-only, then ``close``
        (the kit's SqlTarget and DocumentTarget check more)."""
        with checking(self):
            return []

    def reconcile(self, run_ids: Iterable[int]) -> Iterator[dict[str, Any]]:
        """Markers the target holds from these runs (``stream, key, version, hash,
        run_id, target_ref``): writes that may not have reached the ledger; empty without
        markers."""
        return iter(())

    def marker_count(self) -> int | None:
        """How many markers the target holds for this target name (None: the sink keeps
        none). A target the ledger believes holds records but that has no markers is a
        different, new or restored database."""
        return None

    # -- writing -----------------------------------------------------------------------

    @abc.abstractmethod
    def apply(self, units: list[Unit], run_id: int, *, truncate: bool = False) -> list[Outcome]:
        """Make the target hold what ``units`` want, atomically where it can; return one
        :class:`Outcome` per changed item (``skip`` with a reason for what it left out).

        ``truncate`` (``replace --truncate``): first empty the sink's documented table set,
        in the same transaction. A sink without a truncatable table set raises
        PermanentError for it.
        """

    def prepare(self, units: list[Unit]) -> None:
        """Work on a batch ahead of ``apply`` (or ``fingerprint``), e.g. building its
        rows into ``Item.prepared``. Replay and verify call it in their reader thread
        while the previous batch is being written or read back, so it must only compute:
        no target I/O, nothing that ``apply`` or ``read_back`` change. Default: nothing."""

    def record_preparer(self) -> Callable[[str, str, dict[str, Any], int, str], Any] | None:
        """What ``prepare`` makes of one record, as a function of its stream, key,
        document, version and hash, when ``prepare`` is no more than that. A large
        replay or verify then runs it in worker processes (:mod:`ledger.replay.workers`),
        and items reach ``apply`` with ``prepared`` set (None where it raised) and a
        document decoded only if the sink reads it. Called after ``open``. Default: None
        (``prepare`` runs in the reader thread)."""
        return None

    def unit_preparer(self) -> Callable[[Unit], Any] | None:
        """What ``prepare`` makes of one unit (put in ``Unit.prepared``), as a function
        of the unit, when ``prepare`` is no more than that: for a sink that works on
        whole units (a conversation's plan) what :meth:`record_preparer` is for one that
        works on records. A large replay or verify then runs it in worker processes, on
        a copy of the unit whose documents decode on first use there; the value must
        pickle and may refer to the unit's items (they come back as the parent's own).
        Units reach ``apply`` with ``prepared`` set (None where it raised) and documents
        decoded only if the sink reads them. Called after ``open``; preferred over
        :meth:`record_preparer`. Default: None."""
        return None

    def classify(self, error: Exception) -> type[ChatledgerError] | None:
        """Map a driver exception to TransientError or PermanentError (None: a bug)."""
        return None

    # -- verifying -----------------------------------------------------------------------

    def fingerprint(self, unit: Unit) -> str:
        """The fingerprint the target should show for ``unit`` (from the ledger)."""
        raise NotImplementedError

    def read_back(self, units: list[Unit]) -> dict[str, str | None]:
        """unit key → the fingerprint the target shows now (None: not there)."""
        raise NotImplementedError

    def count_by_kind(self, streams: list[str]) -> dict[str, int] | None:
        """kind → how many records of these streams the target holds, for the kinds the
        sink can count cheaply (e.g. one ``SELECT count(*)`` per table); None when it
        cannot count. A re-run's cheap verify compares these with the ledger's counts."""
        return None

    def unexpected(self, streams: Iterable[str]) -> Iterator[tuple[str, str]]:
        """(stream, unit key) of every unit the target holds for these streams, as far as
        the sink can tell; verify reports those the ledger does not know."""
        return iter(())

    repairs: ClassVar[dict[str, type[Repair]]] = {}

    # -- dry runs ------------------------------------------------------------------------

    #: the kinds whose changed units a dry run shows to ``preview`` (none by default)
    preview_kinds: ClassVar[tuple[str, ...]] = ()

    def preview(self, units: list[Unit]) -> dict[str, Any]:
        """What the sink would do beyond the plan's counts (e.g. which accounts it would
        create), read from the target without writing; merged over batches."""
        return {}
