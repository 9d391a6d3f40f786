"""A conversation's message tree, LibreChat's way (``client/src/utils/buildTree.ts``,
``MultiMessage.tsx``).

- The tree is ``parentMessageId → messageId``. ``NO_PARENT`` (or no parent) marks a first
  message.
- A message whose parent is not in the conversation is an *orphan*: LibreChat shows it
  as a root, and so do we (``parent`` None), keeping the lost parent id so it is
  reported. Messages caught in a parent cycle are re-rooted the same way at the oldest
  one of the cycle.
- The displayed branch is, at every level from the roots down, the sibling created last
  (ties: the later one in the input order, which is ``createdAt`` then ``_id``).
  ``active_leaf`` is where that walk ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sources.librechat.native import NO_PARENT


@dataclass
class Tree:
    parents: dict[str, str | None] = field(default_factory=dict)  # id → parent id (None: root)
    orphans: dict[str, str] = field(default_factory=dict)  # id → the parent id not found
    active_leaf: str | None = None
    branch_points: int = 0


def build_tree(messages: Sequence[tuple[str, object]]) -> Tree:
    """``messages`` are (messageId, parentMessageId) in display order (oldest first)."""
    tree = Tree()
    present = {message_id for message_id, _ in messages}
    for message_id, parent in messages:
        if parent in (None, "", NO_PARENT):
            tree.parents[message_id] = None
        elif not isinstance(parent, str) or parent == message_id or parent not in present:
            tree.parents[message_id] = None
            tree.orphans[message_id] = str(parent)
        else:
            tree.parents[message_id] = parent
    order = [message_id for message_id, _ in messages]
    children = _children(tree, order)
    _reroot_cycles(tree, order, children)
    children = _children(tree, order)
    roots = [message_id for message_id in order if tree.parents[message_id] is None]
    tree.branch_points = sum(1 for kids in children.values() if len(kids) > 1) + (len(roots) > 1)
    if roots:
        node = roots[-1]
        while children.get(node):
            node = children[node][-1]
        tree.active_leaf = node
    return tree


def _children(tree: Tree, order: list[str]) -> dict[str, list[str]]:
    children: dict[str, list[str]] = {}
    for message_id in order:
        parent = tree.parents[message_id]
        if parent is not None:
            children.setdefault(parent, []).append(message_id)
    return children


def _reroot_cycles(tree: Tree, order: list[str], children: dict[str, list[str]]) -> None:
    """Every message must hang under a root; the oldest message of a cycle becomes one."""
    reached: set[str] = set()

    def reach(start: str) -> None:
        stack = [start]
        while stack:
            node = stack.pop()
            if node not in reached:
                reached.add(node)
                stack.extend(children.get(node, ()))

    for message_id in order:
        if tree.parents[message_id] is None:
            reach(message_id)
    position = {message_id: index for index, message_id in enumerate(order)}
    for message_id in order:
        if message_id in reached:
            continue
        path: list[str] = []  # unreached: walking up must end in a cycle, not at a root
        node = message_id
        while node not in path:
            path.append(node)
            node = tree.parents[node]
        oldest = min(path[path.index(node) :], key=position.__getitem__)
        tree.orphans[oldest] = str(tree.parents[oldest])
        tree.parents[oldest] = None
        reach(oldest)
