"""A v1 topic's flat message list → a tree, by the upstream ChatMigrator's rules.

v1 has no parent pointers: order is the array order, and assistant messages answering
the same user message share its id in ``askId``. The rules (``buildMessageTree``):

- an ``askId`` answered more than once is a multi-model group; groups are numbered 1, 2, …
  per topic in order of first appearance (single answers keep 0);
- a group member's parent is its ``askId`` when that message is in the topic, else the
  message before the group's first member (all members share it);
- a user message right after a group continues from the member v1 put in the LLM
  context: the one marked ``useful`` (upstream ignores ``useful`` — issue #19678 —
  and that choice is counted as ``useful_context_kept``); without one, upstream's rule:
  the last member seen before the first ``foldSelected`` member, else the
  ``foldSelected`` member, else the last member;
- anything else hangs under the previous array element (a single reply with ``askId``
  too, as upstream does).

The active message is upstream's ``findActiveNodeId``: the last message, or, when it
belongs to a group with a ``foldSelected`` member, that member.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Node:
    key: str
    native_id: str
    role: str
    ask_id: str | None
    fold_selected: bool
    useful: bool


@dataclass
class Tree:
    parents: dict[str, str | None] = field(default_factory=dict)
    groups: dict[str, int] = field(default_factory=dict)
    active: str | None = None
    useful_choices: int = 0  # user turns whose parent is the useful member


def build_tree(nodes: list[Node]) -> Tree:
    tree = Tree()
    key_of_id: dict[str, str] = {}
    for node in nodes:
        key_of_id.setdefault(node.native_id, node.key)
    answers: dict[str, int] = {}
    for node in nodes:
        if node.ask_id:
            answers[node.ask_id] = answers.get(node.ask_id, 0) + 1
    numbers: dict[str, int] = {}
    for node in nodes:
        if node.ask_id and answers[node.ask_id] > 1 and node.ask_id not in numbers:
            numbers[node.ask_id] = len(numbers) + 1

    previous: str | None = None
    last_plain: str | None = None  # lastNonGroupMessageId
    fallback: str | None = None  # lastGroupFallbackId
    has_fold = False
    useful: str | None = None
    after_group = False
    shared_parent: dict[str, str | None] = {}
    for node in nodes:
        group = numbers.get(node.ask_id or "", 0)
        if group:
            if node.ask_id in key_of_id:
                parent = key_of_id[node.ask_id]
            else:
                parent = shared_parent.setdefault(node.ask_id, previous)
            if node.fold_selected:
                last_plain, has_fold = node.key, True
            elif not has_fold:
                fallback = node.key
            if node.useful and useful is None:
                useful = node.key
            after_group = True
        else:
            if node.role == "user" and after_group:
                parent = useful or fallback or last_plain
                tree.useful_choices += useful is not None and useful != (fallback or last_plain)
            else:
                parent = previous
            last_plain, fallback, has_fold, useful, after_group = node.key, None, False, None, False
        tree.parents[node.key] = parent
        tree.groups[node.key] = group
        previous = node.key
    tree.active = _active(nodes, numbers)
    return tree


def _active(nodes: list[Node], numbers: dict[str, int]) -> str | None:
    if not nodes:
        return None
    last = nodes[-1]
    if last.ask_id and last.ask_id in numbers:
        chosen = [n for n in nodes if n.ask_id == last.ask_id and n.fold_selected]
        if chosen:
            return chosen[0].key
    return last.key
