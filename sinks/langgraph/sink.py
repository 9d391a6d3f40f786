"""The ``langgraph`` sink: threads with their checkpoint history into another deployment.

The unit is a thread (a conversation with its checkpoints and messages). Per unit:

1. **Ownership.** The thread id is the source's. A thread that already exists on the
   target is ours when its metadata carries our marker (``chatledger: {stream, key}``,
   see ``marker``) or the ledger says we wrote it; otherwise it is skipped as
   "exists, not ours" (reported, counted), or overwritten with ``--policy replace``.
2. **Writing** (the kit's :class:`HttpTarget` protocol): a thread that already shows
   what the ledger wants is left alone (a re-run, or a crash after the write, writes
   nothing); otherwise it is deleted if present and created with its history as
   ``supersteps`` (the faithful replay, ``replay.py``), then read back. A 2xx is not
   proof: the read-back must show the expected chain and values.
3. **Fallback, per thread.** When the server refuses the supersteps (a 400/422, or a
   201 with ``detail``), the half-created thread is deleted and the thread is created
   with its final values in one ``update_state`` (``as_node = legacy_terminal_node``
   when given, so ``next`` is empty and the thread can be continued). Counted as
   ``fallbacks`` with the reason logged.
4. **Updates.** A thread that gained checkpoints in the source is deleted and created
   again with its whole history (new checkpoint ids are minted either way), as one
   unit. When the target thread has checkpoints the ledger did not write (someone
   continued it there), the update is skipped as "changed on the target" unless
   ``--policy replace``.

A graph the target does not serve is a rejected unit with the reason (nothing is
created). Removals (a thread deleted at the source with ``--propagate-deletes``, a
rollback of a run that created it) delete the thread; a rollback of an update recreates
the previous version.

Verify fingerprints a thread by its metadata, checkpoint count, chain of
(input/update, step, next) and final values, normalised for re-ingestion (``shape.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ledger.kit import (
    ConfigError,
    Item,
    Outcome,
    PermanentError,
    Sink,
    TransientError,
    Unit,
    classify_http,
    option,
    unreachable,
)
from sinks.langgraph import replay, shape
from sinks.langgraph.server import Threads, Wanted, sdk_client
from sinks.langgraph.threads import MARKER, Thread, target_thread_id, thread_of

TABLES = {"conversation": ["threads"], "checkpoint": ["thread history"], "message": ["thread values"]}
NOT_OURS = (
    "the thread exists on the target and was not written by chatledger (--policy replace overwrites it)"
)
CHANGED_THERE = (
    "the thread gained checkpoints on the target since chatledger wrote it (--policy replace overwrites it)"
)


@dataclass
class LangGraphSinkOptions:
    url: str = option(help="The target deployment (https://…).")
    api_key: str | None = option(
        None, help="The target's API key, as env:VAR (never read from ambient variables).", secret=True
    )
    headers: list[str] = option(
        [], help="Extra request headers 'Name: value', best as env:VAR (repeatable).", secret=True
    )
    legacy_terminal_node: str | None = option(
        None,
        help="Fallback threads: the update_state as_node (the graph's last node), so next == [] on the target.",
    )
    graph_id: str | None = option(None, help="The graph of threads whose source names none.")
    marker: bool = option(
        True, help="Mark written threads in their metadata (key 'chatledger') to tell them from others."
    )
    concurrency: int = option(5, help="Threads written at the same time.")
    timeout: float = option(60.0, help="Seconds to wait for one response.")


class LangGraphSink(Sink):
    type_name = "langgraph"
    Options = LangGraphSinkOptions
    unit = "conversation"
    kinds = ("conversation", "checkpoint", "message")
    capabilities = frozenset({"verify"})
    preview_kinds = ("conversation",)

    def __init__(self, options: LangGraphSinkOptions, context) -> None:
        super().__init__(options, context)
        if options.concurrency < 1:
            raise ConfigError("langgraph sink: concurrency must be at least 1")
        self._threads: Threads | None = None
        self._graphs: set[str] | None = None

    def describe(self) -> str:
        return f"langgraph {self.options.url}"

    def tables(self, kind: str) -> list[str]:
        return TABLES.get(kind, [kind])

    @property
    def threads(self) -> Threads:
        if self._threads is None:
            client = sdk_client(
                self.options.url, self.options.api_key, self.options.headers, self.options.timeout
            )
            self._threads = Threads(
                client,
                legacy_terminal_node=self.options.legacy_terminal_node,
                on_retry=lambda error: self.count("http_retries"),
            )
        return self._threads

    def graphs(self) -> set[str]:
        if self._graphs is None:
            self._graphs = self.threads.graphs()
        return self._graphs

    def check(self) -> list[str]:
        """Dry runs: the deployment answers an authenticated read (its graphs)."""
        try:
            self.graphs()
        except (TransientError, PermanentError) as error:
            raise unreachable(self, error) from error
        finally:
            self.close()
        return []

    def close(self) -> None:
        if self._threads is not None:
            self._threads.client.http.client.close()
            self._threads = None

    def classify(self, error: Exception):
        return classify_http(error)

    # -- writing ------------------------------------------------------------------------

    def apply(self, units: list[Unit], run_id: int, *, truncate: bool = False) -> list[Outcome]:
        if truncate:
            raise PermanentError(
                "the langgraph sink empties no deployment; use --policy replace without --truncate"
            )
        for unit in units:  # before anything is written, so a failing batch wrote nothing
            self._check_graph(unit)
        if self.options.concurrency == 1 or len(units) == 1:
            results = [self._apply_unit(unit) for unit in units]
        else:
            with ThreadPoolExecutor(min(self.options.concurrency, len(units))) as pool:
                results = list(pool.map(self._apply_unit, units))
        return [outcome for outcomes in results for outcome in outcomes]

    def _apply_unit(self, unit: Unit) -> list[Outcome]:
        changed = [item for item in unit.items if item.changed]
        if not changed:
            return []
        thread = thread_of(unit)
        if thread is None:
            self._remove(unit)
            self.count("threads_deleted")
            return [Outcome.written(item) for item in changed]
        wanted = self._wanted(unit, thread)
        existing = self.threads.find(wanted)
        refusal = self._refusal(unit, thread, existing, wanted) if existing is not None else None
        if refusal is not None:
            counter, reason = refusal
            self.count(counter)
            return [Outcome.skip(item, reason) for item in changed]
        wanted.mode = self._mode(unit, thread, existing, wanted)
        _, action = self.threads.ensure(wanted)
        self._count_write(thread, wanted, action)
        return self._outcomes(unit, changed, wanted)

    def _refusal(self, unit: Unit, thread: Thread, existing: dict[str, Any], wanted: Wanted):
        """(counter, reason) when an existing thread must not be overwritten (without
        ``--policy replace``): not ours, or continued on the target since we wrote it."""
        if unit.head.force:
            return None
        held = unit.head.held_hash is not None
        if not (held or self._marked(existing, thread)):
            return "skipped_not_ours", NOT_OURS
        written = (unit.head.held_ref or {}).get("checkpoints")
        if held and written is not None and len(wanted.history) > written:
            return "skipped_changed_on_target", CHANGED_THERE
        return None

    def _mode(self, unit: Unit, thread: Thread, existing: dict[str, Any] | None, wanted: Wanted) -> str:
        """``supersteps`` (the history), or ``fallback`` (final values only): for a
        conversation of another platform, a thread written so before, or one whose
        fallback write never reached the ledger."""
        if not thread.states and wanted.final_values:
            return "fallback"
        mode = (unit.head.held_ref or {}).get("mode", "supersteps")
        if (
            existing is not None
            and mode == "supersteps"
            and wanted.expected("fallback", existing, wanted.history)
        ):
            return "fallback"
        return mode

    def _count_write(self, thread: Thread, wanted: Wanted, action: str) -> None:
        if action != "existed":  # "existed": already whole (a re-run, or healed after a crash)
            self.count(f"threads_{action}")
            self.count("checkpoints_written", len(wanted.history))
        if not thread.states and wanted.final_values:
            self.count("threads_from_messages")
        elif wanted.mode == "fallback":  # counted by outcome: a failed attempt may have written it
            self.count("fallbacks")
        if wanted.refused:
            self.context.log.warning("langgraph: supersteps refused, wrote final values only",
                                     thread=thread.thread_id, reason=wanted.refused)  # fmt: skip

    def _check_graph(self, unit: Unit) -> None:
        thread = thread_of(unit) if any(item.changed for item in unit.items) else None
        graph_id = thread.graph_id if thread is not None else None
        if graph_id and graph_id not in self.graphs():
            raise PermanentError(
                f"thread {thread.thread_id}: graph {graph_id!r} is not deployed on the target "
                f"(graphs there: {', '.join(sorted(self.graphs())) or 'none'})"
            )

    def _wanted(self, unit: Unit, thread: Thread) -> Wanted:
        metadata = dict(thread.metadata)
        if self.options.marker:
            metadata[MARKER] = {"stream": thread.stream, "key": thread.key}
        graph_id = thread.graph_id or self.options.graph_id
        final = thread.values or _values_from_messages(thread)

        def expected(mode: str, found: dict[str, Any], history: list[dict[str, Any]]) -> bool:
            legacy = self.options.legacy_terminal_node
            return self._expected(thread, mode) == _fingerprint_of(found, history, mode, legacy)

        return Wanted(thread.thread_id, metadata, graph_id, replay.supersteps(thread.states), final, expected)

    def _marked(self, found: dict[str, Any], thread: Thread) -> bool:
        marker = (found.get("metadata") or {}).get(MARKER)
        return marker == {"stream": thread.stream, "key": thread.key}

    def _remove(self, unit: Unit) -> None:
        self.threads.remove(_thread_id(unit))

    def _outcomes(self, unit: Unit, changed: list[Item], wanted: Wanted) -> list[Outcome]:
        ids = [state["checkpoint_id"] for state in wanted.history]
        positions = {item.key: item.data.get("position") for item in unit.of_kind("checkpoint")}
        outcomes = []
        for item in changed:
            if item.removed:
                outcomes.append(Outcome.written(item))
                continue
            ref: dict[str, Any] = {"thread_id": wanted.thread_id}
            if item.kind == "conversation":
                ref.update(mode=wanted.mode, checkpoints=len(ids))
            elif item.kind == "checkpoint" and wanted.mode == "supersteps":
                position = positions.get(item.key)
                if isinstance(position, int) and position < len(ids):
                    ref["checkpoint_id"] = ids[position]
            outcomes.append(Outcome.written(item, ref))
        return outcomes

    # -- verifying ----------------------------------------------------------------------

    def _expected(self, thread: Thread, mode: str) -> str:
        metadata = {**thread.metadata, "graph_id": thread.graph_id or self.options.graph_id}
        metadata = {name: value for name, value in metadata.items() if value is not None}
        final = thread.values or _values_from_messages(thread)
        if mode == "fallback":
            links = [("update", None, [])] if final else []
        else:
            links = [
                (state.get("source"), state.get("step"), state.get("next") or []) for state in thread.states
            ]
        chain = _chain(links, mode, self.options.legacy_terminal_node)
        return shape.fingerprint(thread.thread_id, metadata, chain, final if links else None)

    def fingerprint(self, unit: Unit) -> str:
        thread = thread_of(unit)
        if thread is None:
            return "removed"
        mode = (unit.head.held_ref or {}).get("mode", "supersteps")
        return self._expected(thread, "fallback" if not thread.states and thread.messages else mode)

    def read_back(self, units: list[Unit]) -> dict[str, str | None]:
        found: dict[str, str | None] = {}
        for unit in units:
            ref = unit.head.held_ref if unit.head is not None and isinstance(unit.head.held_ref, dict) else {}
            thread_id = _thread_id(unit)
            thread = self.threads.get(thread_id)
            if thread is None:
                found[unit.key] = None
                continue
            history = self.threads.history(thread_id)
            mode = ref.get("mode", "supersteps")
            found[unit.key] = _fingerprint_of(thread, history, mode, self.options.legacy_terminal_node)
        return found

    def unexpected(self, streams: Iterable[str]) -> Iterator[tuple[str, str]]:
        if not self.options.marker:
            return
        for stream in streams:
            for thread in self.threads.marked({MARKER: {"stream": stream}}):
                yield stream, thread["metadata"][MARKER]["key"]

    # -- dry runs -----------------------------------------------------------------------

    def preview(self, units: list[Unit]) -> dict[str, Any]:
        """Per thread: create, update, skip (exists, not ours) or reject (graph missing)."""
        plan: dict[str, list[str]] = {"create": [], "update": [], "skip_not_ours": [], "graph_missing": []}
        for unit in units:
            thread = thread_of(unit)
            if thread is None:
                continue
            existing = self.threads.get(thread.thread_id)
            if thread.graph_id and thread.graph_id not in self.graphs():
                plan["graph_missing"].append(thread.thread_id)
            elif existing is None:
                plan["create"].append(thread.thread_id)
            elif unit.head.held_hash is None and not self._marked(existing, thread) and not unit.head.force:
                plan["skip_not_ours"].append(thread.thread_id)
            else:
                plan["update"].append(thread.thread_id)
        return {"threads": plan}


def _thread_id(unit: Unit) -> str:
    """The target thread of a unit: as written (held_ref), else as it would be written."""
    head = unit.head or unit.items[0]
    if isinstance(head.held_ref, dict) and head.held_ref.get("thread_id"):
        return head.held_ref["thread_id"]
    return target_thread_id(head.stream, unit.key.split(":", 1)[1])


def _fingerprint_of(
    thread: dict[str, Any], history: list[dict[str, Any]], mode: str, legacy: str | None
) -> str:
    """The fingerprint of a thread as the target shows it."""
    links = [
        (state["metadata"].get("source"), state["metadata"].get("step"), state.get("next") or [])
        for state in history
    ]
    values = history[-1].get("values") if history else None
    return shape.fingerprint(
        thread["thread_id"], thread.get("metadata") or {}, _chain(links, mode, legacy), values
    )


def _chain(links: list[tuple[Any, Any, list[str]]], mode: str, legacy: str | None) -> list[list[Any]]:
    """The chain compared: (input/update, step, next) per checkpoint; a fallback thread's
    single update is compared without its step, and its ``next`` only when
    ``legacy_terminal_node`` promised an empty one."""
    if mode == "fallback":
        return [shape.chain_link("update", None, following if legacy else []) for _, _, following in links]
    return [shape.chain_link(source, step, following) for source, step, following in links]


def _values_from_messages(thread: Thread) -> dict[str, Any] | None:
    """Final values for a thread from a stream of another platform: its messages."""
    if not thread.messages:
        return None
    types = {"user": "human", "assistant": "ai", "tool": "tool", "system": "system"}
    messages = []
    for message in thread.messages:
        text = "".join(
            part.get("text") or "" for part in message.get("parts") or [] if part.get("type") == "text"
        )
        messages.append(
            {"type": types.get(message.get("role"), "human"), "content": text, "id": message["key"]}
        )
    return {"messages": messages}
