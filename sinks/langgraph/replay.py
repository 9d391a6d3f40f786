"""The faithful superstep replay of a checkpoint history (docs/langgraph.md).

Walking the source history oldest first, each checkpoint ``cur`` with predecessor
``prev`` becomes one superstep of ``threads.create(supersteps=…)``:

1. ``cur`` is an ``input`` checkpoint: one update ``as_node="__input__"`` with the run
   input, which is the ``result`` of ``cur``'s ``__start__`` task (``{}`` without one).
2. otherwise, one update per task of ``prev`` that has a result, ``as_node`` = the
   task's name; for a ``__start__`` task the values are instead the id-bearing delta
   between ``prev`` and ``cur`` (the raw input has no message ids; the delta does), and
   so for a lone task whose result holds messages without ids (pending writes read from
   a checkpoint store).
3. ``prev`` has no task results (an ``update_state`` checkpoint): one update with the
   values delta, ``as_node`` = ``prev.next[0]``; when ``prev.next`` is empty (an update
   after a finished run), the node that ran last, which is what the server itself picks
   for an ``update_state`` without ``as_node``.

The target then holds as many checkpoints as the source, with the same steps and
``next``; ``loop`` checkpoints become ``update`` ones and checkpoint ids are new.
A history whose oldest checkpoint is not an input one (``history_limit``) starts with
one update holding that checkpoint's values.
"""

from __future__ import annotations

from typing import Any

START, INPUT = "__start__", "__input__"


def supersteps(states: list[dict[str, Any]]) -> list[dict[str, Any]]:
    steps = []
    for index, cur in enumerate(states):
        prev = states[index - 1] if index else None
        if cur.get("source") == "input":
            start = next((task for task in cur.get("tasks") or [] if task.get("name") == START), None)
            result = start.get("result") if start else None
            steps.append(_superstep([(result if result is not None else {}, INPUT)]))
        elif prev is None:
            steps.append(_superstep([(cur.get("values") or {}, None)]))
        else:
            earlier = states[index - 2] if index >= 2 else None
            steps.append(_superstep(_updates(prev, cur, earlier)))
    return steps


def _updates(
    prev: dict[str, Any], cur: dict[str, Any], earlier: dict[str, Any] | None
) -> list[tuple[Any, str | None]]:
    following = prev.get("next") or []
    fallback_node = following[0] if following else last_node(earlier)
    tasks = prev.get("tasks") or []
    updates = []
    for task in tasks:
        if task.get("name") == START or (len(tasks) == 1 and _lacks_ids(task.get("result"))):
            updates.append((delta(prev.get("values"), cur.get("values")), task.get("name") or fallback_node))
        elif task.get("result") is not None:  # a task of unknown name: as rule 3 names it
            updates.append((task["result"], task.get("name") or fallback_node))
    if updates:
        return updates
    return [(delta(prev.get("values"), cur.get("values")), fallback_node)]


def last_node(state: dict[str, Any] | None) -> str | None:
    names = [task.get("name") for task in (state or {}).get("tasks") or [] if task.get("name") != START]
    return names[-1] if names else None


def _superstep(updates: list[tuple[Any, str | None]]) -> dict[str, Any]:
    # as_node None: the server picks the node, as for update_state without as_node
    return {"updates": [{"values": values, "as_node": as_node} for values, as_node in updates]}


def delta(before: Any, after: Any) -> dict[str, Any]:
    """What ``after`` adds to ``before``: list items with a new id or changed content
    (reducers such as ``add_messages`` merge by id), other keys when they changed."""
    before = before if isinstance(before, dict) else {}
    after = after if isinstance(after, dict) else {}
    out: dict[str, Any] = {}
    for name, value in after.items():
        old = before.get(name)
        if value == old:
            continue
        if isinstance(value, list) and isinstance(old, list) and _id_bearing(value):
            known = {item.get("id"): item for item in old if isinstance(item, dict)}
            added = [item for item in value if known.get(item.get("id")) != item]
            if added:
                out[name] = added
        else:
            out[name] = value
    return out


def _lacks_ids(result: Any) -> bool:
    """A result with list items (messages) that have no id yet: the reducer assigned
    them later, so the values delta is what carries the ids."""
    return isinstance(result, dict) and any(
        isinstance(value, list) and any(isinstance(item, dict) and not item.get("id") for item in value)
        for value in result.values()
    )


def _id_bearing(items: list[Any]) -> bool:
    return bool(items) and all(isinstance(item, dict) and item.get("id") for item in items)
