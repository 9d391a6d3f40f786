"""A conversation unit as the Onyx rows it should become, and the fingerprint of a tree.

The write rules (``docs/librechat-onyx.md`` has the reasons):

- **One root.** Every session has exactly one root: ``SYSTEM``, ``message = ''``,
  ``token_count = 0``, ``parent NULL``, at the conversation's creation time. Messages
  whose parent is not in the conversation (orphans, several first messages) hang under
  it as siblings.
- **Types.** ``user`` and ``system`` messages are ``USER``; ``assistant`` and ``tool``
  messages are ``ASSISTANT`` (enum *names*, upper case).
- **Consecutive assistants.** Onyx refuses to continue a chat whose chain has two
  ASSISTANT messages in a row. Where an ASSISTANT message's parent is an ASSISTANT
  message (LibreChat's "+ add model" answers, "continue"), a *bridge* USER message with
  ``bridge_text`` (default "Continue.") is put between them, at the child's time. The
  bridge belongs to the child's record: it is written, updated and removed with it.
- **Text.** ``message`` is the text parts joined by blank lines, code parts fenced;
  reasoning parts go to ``reasoning_tokens`` (≥ 2.6), error parts (or an error status)
  to ``error``. Onyx's chat rows have no place for tool calls, tool results, images,
  citations, file parts and other parts: they stay in the ledger, and the sink counts
  each one it leaves out (:func:`unkept_parts`). ``token_count`` is
  ``usage.tokens``, else ``usage.output_tokens`` of an answer, else ⌈characters / 4⌉.
  NUL characters become U+FFFD (Postgres text cannot hold them). ``citations`` stays NULL.
- **Files.** A message's files that were uploaded become descriptors ``{id:
  file_record.file_id, type: ChatFileType, name, user_file_id}``; files without bytes
  have none.
- **Pointers.** Siblings are ordered by time. ``latest_child`` of each node on the active
  branch (root → ``active_leaf``, else the newest leaf: the kit's
  :class:`~ledger.kit.ConversationView` rule) points along it; every other node with
  children points at its newest child, so a sibling switched to in the UI shows its own
  thread.

The tree (parents, re-rooting of orphans and loops, the active branch) is the kit's
:class:`~ledger.kit.ConversationView`, so any source's conversation renders the same way.
- **Session.** ``description`` = title, ``deleted = false`` (archived chats stay
  visible), ``shared_status`` PUBLIC when the conversation was shared, else PRIVATE,
  ``onyxbot_flow = false``, the configured persona, source times, and ``prompt_override
  = {system_prompt}`` when the conversation had one.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

from ledger.kit import (
    EPOCH,
    ConversationView,
    Unit,
    digest,
    format_datetime,
    message_text,
    parse_time,
    parts_of,
)

ASSISTANT_ROLES = ("assistant", "tool")
#: part types a chat_message row holds: text and code in ``message``, reasoning in
#: ``reasoning_tokens`` (where the schema has it), errors in ``error``
HELD_PARTS = ("text", "code", "reasoning", "error")


@dataclass(frozen=True)
class FileRef:
    """An uploaded file as the target holds it (what a descriptor points at)."""

    key: str
    file_id: str
    user_file_id: str
    chat_file_type: str
    name: str

    def descriptor(self) -> dict[str, str]:
        return {
            "id": self.file_id,
            "type": self.chat_file_type,
            "name": self.name,
            "user_file_id": self.user_file_id,
        }


@dataclass(eq=False)
class Node:
    """One chat_message row, wanted (from the ledger) or found (read back)."""

    kind: str  # root, message, bridge (wanted), row (read back)
    message_type: str
    message: str
    token_count: int
    time_sent: dt.datetime
    key: str | None = None  # the message record (a bridge: the message after it)
    reasoning: str | None = None
    error: str | None = None
    files: list[Any] = field(default_factory=list)  # wanted: FileRefs; read back: [key, type, name, valid]
    file_keys: list[str] = field(default_factory=list)  # wanted: the message's file keys
    citations: Any = None
    feedback: tuple[bool, str | None] | None = None
    parent: Node | None = None
    children: list[Node] = field(default_factory=list)
    latest: Node | None = None
    row_id: int | None = None
    feedback_id: int | None = None

    def content(self) -> dict[str, Any]:
        files = [
            [f.key, f.chat_file_type, f.name, True] if isinstance(f, FileRef) else list(f) for f in self.files
        ]
        return {
            "type": self.message_type,
            "message": self.message,
            "tokens": self.token_count,
            "time": format_datetime(self.time_sent),
            "reasoning": self.reasoning,
            "error": self.error,
            "files": files,
            "citations": self.citations,
            "feedback": list(self.feedback) if self.feedback else None,
        }


@dataclass
class SessionPlan:
    session: dict[str, Any]
    root: Node
    nodes: list[Node]  # parents before children, the root first

    def release(self) -> None:
        """Unlink the tree (parents and children point at each other) so its memory is
        freed now: a plan drafted ahead lives long enough to reach the garbage
        collector's oldest generation, which is collected seldom, and a replay's plans
        piled up there (11k nodes left at the end of a 20k-message replay)."""
        for node in self.nodes:
            node.parent = node.latest = None
            node.children = []


def clean(text: str | None) -> str | None:
    return text.replace("\x00", "\ufffd") if isinstance(text, str) else text


def unkept_parts(data: dict[str, Any], *, reasoning: bool) -> list[str]:
    """The types of a message's parts Onyx cannot hold (one entry per part)."""
    held = HELD_PARTS if reasoning else tuple(kind for kind in HELD_PARTS if kind != "reasoning")
    return [str(part.get("type")) for part in parts_of(data) if part.get("type") not in held]


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def session_fields(data: dict[str, Any], persona_id: int, messages: list[Node]) -> dict[str, Any]:
    times = [node.time_sent for node in messages]
    created = parse_time(data.get("created_at")) or min(times, default=None) or EPOCH
    updated = max([parse_time(data.get("updated_at")) or created, *times])
    metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    prompt = data.get("system_prompt")
    return {
        "description": clean(data.get("title")) or "",
        "deleted": False,
        "shared_status": "PUBLIC" if metadata.get("shared") else "PRIVATE",
        "onyxbot_flow": False,
        "persona_id": persona_id,
        "time_created": created,
        "time_updated": updated,
        "prompt_override": {"system_prompt": clean(prompt)}
        if isinstance(prompt, str) and prompt.strip()
        else None,
    }


def _texts(data: dict[str, Any], kind: str) -> str:
    return "\n\n".join(part["text"] for part in parts_of(data, kind) if isinstance(part.get("text"), str))


def message_node(data: dict[str, Any], key: str) -> Node:
    error = _texts(data, "error") or (
        "The answer ended with an error." if data.get("status") == "error" else None
    )
    message = clean(message_text(data, code=True)) or ""
    role = data.get("role")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    tokens = usage.get("tokens")
    if not isinstance(tokens, int) and role in ASSISTANT_ROLES:
        tokens = usage.get("output_tokens")
    feedback = data.get("feedback") if isinstance(data.get("feedback"), dict) else None
    return Node(
        kind="message",
        key=key,
        message_type="ASSISTANT" if role in ASSISTANT_ROLES else "USER",
        message=message,
        token_count=tokens
        if isinstance(tokens, int) and not isinstance(tokens, bool) and tokens >= 0
        else estimate_tokens(message),
        time_sent=parse_time(data.get("created_at")) or EPOCH,
        reasoning=clean(_texts(data, "reasoning")) or None,
        error=clean(error),
        file_keys=list(dict.fromkeys(data.get("files") or [])),
        feedback=(feedback["rating"] == "up", clean(feedback.get("text")))
        if feedback and feedback.get("rating") in ("up", "down")
        else None,
    )


def plan_session(
    unit: Unit, *, persona_id: int, bridge_text: str, files: dict[str, FileRef], reasoning: bool
) -> SessionPlan:
    """The rows a live conversation unit should be (see the module doc)."""
    plan = draft_session(unit, persona_id=persona_id, bridge_text=bridge_text, reasoning=reasoning)
    attach_files(plan, files)
    return plan


def attach_files(plan: SessionPlan, files: dict[str, FileRef]) -> None:
    """Give a plan's messages the descriptors of their uploaded files (file key → FileRef)."""
    for node in plan.nodes:
        node.files = [files[key] for key in node.file_keys if key in files]


def draft_session(unit: Unit, *, persona_id: int, bridge_text: str, reasoning: bool) -> SessionPlan:
    """The rows of ``plan_session`` without their file descriptors (``attach_files``): all
    a plan needs from the ledger alone, so it can be made ahead of the target's answers."""
    view = ConversationView(unit)
    nodes = {key: message_node(item.data, key) for key, item in view.messages.items()}
    if not reasoning:
        for node in nodes.values():
            node.reasoning = None
    messages = sorted(nodes.values(), key=lambda n: (n.time_sent, n.key))
    session = session_fields(view.data, persona_id, messages)
    root = Node("root", "SYSTEM", "", 0, session["time_created"])
    for node in messages:
        parent = view.parents[node.key]
        node.parent = nodes[parent] if parent is not None else root
    for node in messages:
        node.parent.children.append(node)
    _bridge(root, bridge_text)
    ordered = _point(root, _path_to(nodes.get(view.active_leaf) or root))
    return SessionPlan(session, root, ordered)


def _bridge(root: Node, text: str) -> None:
    """Put a USER bridge between every ASSISTANT child and its ASSISTANT parent."""
    stack = [root]
    while stack:
        node = stack.pop()
        for index, child in enumerate(node.children):
            if node.message_type == "ASSISTANT" and child.message_type == "ASSISTANT":
                bridge = Node("bridge", "USER", text, estimate_tokens(text), child.time_sent, key=child.key,
                              parent=node, children=[child])  # fmt: skip
                child.parent = bridge
                node.children[index] = bridge
            stack.append(child)


def _path_to(leaf: Node) -> set[int]:
    """ids of the nodes from the root down to ``leaf``, bridges included."""
    path = set()
    node: Node | None = leaf
    while node is not None:
        path.add(id(node))
        node = node.parent
    return path


def _point(root: Node, active: set[int]) -> list[Node]:
    """Sort siblings, set latest-child pointers; the nodes parents first."""
    ordered = []
    stack = [root]
    while stack:
        node = stack.pop()
        ordered.append(node)
        node.children.sort(key=lambda n: (n.time_sent, n.key or "", n.kind))
        if node.children:
            on_path = [child for child in node.children if id(child) in active]
            node.latest = on_path[0] if on_path else node.children[-1]
        stack.extend(reversed(node.children))
    return ordered


def tree_shape(roots: list[Node]) -> list[list[Any]]:
    """A tree as a flat list in canonical depth-first order: [parent position, content
    digest, position of the latest child among the sorted children (-1: none, -2: a
    pointer to something that is not a child)]. Wanted trees and trees read back from
    Onyx compare equal exactly when rows, structure and pointers all match."""
    digests: dict[int, str] = {}

    def content_digest(node: Node) -> str:
        if id(node) not in digests:
            digests[id(node)] = digest(node.content())
        return digests[id(node)]

    def order(nodes: list[Node]) -> list[Node]:
        return sorted(nodes, key=lambda n: (n.time_sent, content_digest(n)))

    out: list[list[Any]] = []
    stack = [(node, -1) for node in reversed(order(roots))]
    while stack:
        node, parent_position = stack.pop()
        position = len(out)
        children = order(node.children)
        latest = (
            -1 if node.latest is None else next((i for i, c in enumerate(children) if c is node.latest), -2)
        )
        out.append([parent_position, content_digest(node), latest])
        stack.extend((child, position) for child in reversed(children))
    return out


def session_digest(session: dict[str, Any], user_id: str | None, roots: list[Node]) -> str:
    shown = {
        "description": session["description"],
        "deleted": session["deleted"],
        "shared_status": session["shared_status"],
        "onyxbot_flow": session["onyxbot_flow"],
        "persona_id": session["persona_id"],
        "user_id": user_id,
        "time_created": format_datetime(session["time_created"]),
        "prompt_override": session["prompt_override"],
    }
    return digest({"session": shown, "tree": tree_shape(roots)})
