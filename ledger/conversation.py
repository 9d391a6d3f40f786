"""Canonical views of a replay unit (DESIGN §2, §7): what every sink needs to read.

Sinks read canonical ``data`` only, so the rules for reading it live here once:

- :func:`parse_time` — a canonical timestamp (RFC 3339 text or a datetime) as an aware
  UTC datetime, or None for what is not one.
- :func:`message_text` — the text parts of a message joined by blank lines (code parts
  fenced when ``code`` is set).
- :func:`owner_of` — the owner key of a unit (a user itself, a conversation's or file's
  owner, or, for what is being removed, the owner the target's reference names).
- :class:`ConversationView` — one conversation unit as a tree: its messages by key,
  each message's parent (None where the parent is missing or the chain loops: such a
  message is re-rooted), children in time order, roots, the active branch from
  ``active_leaf`` (or, without one, the newest leaf), and parents-before-children order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ledger.sink import Item, Unit

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def parse_time(value: Any) -> dt.datetime | None:
    """An aware UTC datetime from a canonical timestamp; None when it is not one."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(dt.UTC) if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def parts_of(data: dict[str, Any], kind: str | None = None) -> list[dict[str, Any]]:
    """The message's parts (objects only), optionally of one part type."""
    parts = data.get("parts")
    if not isinstance(parts, list):
        return []
    return [p for p in parts if isinstance(p, dict) and (kind is None or p.get("type") == kind)]


def message_text(data: dict[str, Any], *, code: bool = False) -> str:
    """The text parts joined by blank lines; with ``code``, code parts fenced in order."""
    texts = []
    for part in parts_of(data):
        text = part.get("text")
        if not isinstance(text, str):
            continue
        if part.get("type") == "text":
            texts.append(text)
        elif code and part.get("type") == "code":
            texts.append(f"```{part.get('language') or ''}\n{text}\n```")
    return "\n\n".join(texts)


def owner_of(unit: Unit) -> str | None:
    """The owner key of a unit: the user itself, the conversation's or file's owner, or
    (for what is being removed) the owner named by the reference the target gave."""
    if unit.kind == "user":
        return unit.key
    head = unit.head or (unit.items[0] if unit.items else None)
    if head is not None and not head.removed and isinstance(head.data.get("owner"), str):
        return head.data["owner"] or None
    for item in unit.items:
        if isinstance(item.held_ref, dict) and item.held_ref.get("owner"):
            return item.held_ref["owner"]
    return None


def _time_key(item: Item) -> tuple[dt.datetime, str]:
    return parse_time(item.data.get("created_at")) or EPOCH, item.key


@dataclass
class ConversationView:
    """A conversation unit's live records read as a message tree."""

    unit: Unit
    messages: dict[str, Item] = field(init=False)

    def __post_init__(self) -> None:
        live = [i for i in self.unit.items if i.kind == "message" and not i.removed]
        self.messages = {item.key: item for item in sorted(live, key=_time_key)}

    @property
    def head(self) -> Item | None:
        """The conversation record itself (None when only its messages are in the unit)."""
        head = self.unit.head
        return head if head is not None and not head.removed else None

    @property
    def data(self) -> dict[str, Any]:
        return self.head.data if self.head else {}

    @property
    def owner(self) -> str | None:
        return owner_of(self.unit)

    @property
    def title(self) -> str | None:
        title = self.data.get("title")
        return title if isinstance(title, str) and title.strip() else None

    @cached_property
    def parents(self) -> dict[str, str | None]:
        """Message key → its parent's key; None for a first turn, a missing parent or a
        link that would close a loop (the message is re-rooted)."""
        declared = {key: item.data.get("parent") for key, item in self.messages.items()}
        out: dict[str, str | None] = {}
        for key, parent in declared.items():
            seen, cursor = {key}, parent
            while cursor in declared and cursor not in seen:
                seen.add(cursor)
                cursor = declared[cursor]
            looped = cursor in seen
            out[key] = parent if parent in self.messages and not looped else None
        return out

    @cached_property
    def children(self) -> dict[str | None, list[str]]:
        """Parent key (None: the roots) → child keys in time order."""
        out: dict[str | None, list[str]] = {}
        for key in self.messages:  # already in time order
            out.setdefault(self.parents[key], []).append(key)
        return out

    @property
    def roots(self) -> list[str]:
        return self.children.get(None, [])

    def missing_parents(self) -> list[str]:
        """Messages whose declared parent is not in the conversation (re-rooted)."""
        return sorted(
            key for key, item in self.messages.items()
            if item.data.get("parent") and item.data["parent"] not in self.messages
        )  # fmt: skip

    @cached_property
    def active_leaf(self) -> str | None:
        """``active_leaf`` when it is one of the messages, else the newest leaf."""
        named = self.data.get("active_leaf")
        if named in self.messages:
            return named
        leaves = [key for key in self.messages if not self.children.get(key)]
        return leaves[-1] if leaves else None

    @cached_property
    def active_branch(self) -> list[str]:
        """Keys from a root down to the active leaf."""
        branch: list[str] = []
        cursor = self.active_leaf
        while cursor is not None:
            branch.append(cursor)
            cursor = self.parents[cursor]
        return branch[::-1]

    def ordered(self) -> Iterator[Item]:
        """Every message, parents before children (depth-first, children in time order)."""
        stack = list(reversed(self.roots))
        while stack:
            key = stack.pop()
            yield self.messages[key]
            stack.extend(reversed(self.children.get(key, [])))

    def branch_points(self) -> list[str]:
        return sorted(key for key, kids in self.children.items() if key and len(kids) > 1)

    def files(self) -> list[str]:
        """File keys the messages reference, in first-use order."""
        found: dict[str, None] = {}
        for item in self.messages.values():
            for key in item.data.get("files") or []:
                if isinstance(key, str):
                    found.setdefault(key)
        return list(found)
