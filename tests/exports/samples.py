"""Generated chat exports, each with the tree it must become (the tests' oracle).

Every builder writes files in the format's real shape (see
/work/shared/reference/chat-export-formats.md and the real samples in
tests/data/exports/) and returns an :class:`Expected`: per conversation key, every message
key with its parent key, and the active leaf — spelled out by hand here, never computed
by the code under test. Conversations that must be rejected are listed by key.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
PDF = b"%PDF-1.4\n% Bericht \xc3\x9cberblick\n%%EOF\n"


@dataclass
class Expected:
    #: conversation key → {message key: parent key or None}
    trees: dict[str, dict[str, str | None]] = field(default_factory=dict)
    #: conversation key → active leaf message key (None for an empty conversation)
    leaves: dict[str, str | None] = field(default_factory=dict)
    rejected: set[str] = field(default_factory=set)  # conversation keys rejected whole
    users: set[str] = field(default_factory=set)

    def add(self, conversation: str, chain: list[tuple[str, str | None]], leaf: str | None) -> None:
        self.trees[conversation] = dict(chain)
        self.leaves[conversation] = leaf

    @property
    def messages(self) -> int:
        return sum(len(tree) for tree in self.trees.values())


# -- ChatGPT --------------------------------------------------------------------------------


def _node(node_id, parent, children, role=None, content=None, **message):
    if role is None:
        return {"id": node_id, "message": None, "parent": parent, "children": children}
    body = {
        "id": node_id,
        "author": {"role": role, "name": message.pop("name", None), "metadata": {}},
        "create_time": message.pop("create_time", 1_700_000_000.0),
        "update_time": None,
        "content": content,
        "status": message.pop("status", "finished_successfully"),
        "end_turn": message.pop("end_turn", None),
        "weight": 1.0,
        "metadata": message.pop("metadata", {}),
        "recipient": message.pop("recipient", "all"),
        "channel": message.pop("channel", None),
    }
    return {"id": node_id, "message": body, "parent": parent, "children": children}


def _text(*parts):
    return {"content_type": "text", "parts": list(parts)}


def _mapping(*nodes):
    return {node["id"]: node for node in nodes}


def chatgpt_conversations() -> tuple[list[Any], Expected, dict[str, bytes]]:
    """(conversations.json value, expected trees, ZIP attachment files by name)."""
    expected = Expected(users={"user:user-Ab12"})

    def key(conv, node):
        return f"message:{conv}/{node}"

    branches = "c0000001-branches"
    hidden = {"is_visually_hidden_from_conversation": True}
    conversations = [
        {
            "id": branches,
            "conversation_id": branches,
            "title": "Überblick 🌍 — 日本語のテスト",
            "create_time": 1_700_000_000.5,
            "update_time": 1_700_000_900.25,
            "default_model_slug": "gpt-4o",
            "is_archived": True,
            "current_node": "a2b",
            "mapping": _mapping(
                _node("root", None, ["sys"]),
                _node("sys", "root", ["ctx"], "system", _text(""), metadata=hidden),
                _node(
                    "ctx",
                    "sys",
                    ["u1"],
                    "user",
                    {
                        "content_type": "user_editable_context",
                        "user_profile": "I am Zoë.",
                        "user_instructions": "Answer in Deutsch.",
                    },
                    create_time=None,
                    metadata={**hidden, "is_user_system_message": True},
                ),
                _node(
                    "u1", "ctx", ["a1", "a1b"], "user", _text("Grüß dich! 👋"), create_time=1_700_000_010.0
                ),
                _node(
                    "a1",
                    "u1",
                    ["u2"],
                    "assistant",
                    _text("Hallo!"),
                    create_time=1_700_000_020.0,
                    metadata={"model_slug": "gpt-4o"},
                ),
                _node(
                    "a1b",
                    "u1",
                    [],
                    "assistant",
                    _text("Servus! (regenerated)"),
                    create_time=1_700_000_030.0,
                    metadata={"model_slug": "gpt-4o-mini"},
                ),
                _node("u2", "a1", ["a2", "a2b"], "user", _text("Wie spät ist es?")),
                _node("a2", "u2", [], "assistant", _text("Zeit für Tee ☕"), create_time=1_700_000_050.0),
                _node(
                    "a2b",
                    "u2",
                    [],
                    "assistant",
                    _text("Es ist 12 Uhr."),
                    create_time=1_700_000_060.0,
                    status="in_progress",
                    end_turn=True,
                ),
            ),
        },
    ]
    expected.add(
        f"conversation:{branches}",
        [
            (key(branches, "u1"), None),
            (key(branches, "a1"), key(branches, "u1")),
            (key(branches, "a1b"), key(branches, "u1")),
            (key(branches, "u2"), key(branches, "a1")),
            (key(branches, "a2"), key(branches, "u2")),
            (key(branches, "a2b"), key(branches, "u2")),
        ],
        key(branches, "a2b"),
    )

    tools = "c0000002-tools"
    citation = {
        "start_ix": 12,
        "end_ix": 22,
        "citation_format_type": "tether_og",
        "metadata": {"type": "webpage", "title": "Ledger docs", "url": "https://example.org/ledger"},
    }
    reference = {
        "matched_text": "【6†source】",
        "start_idx": 30,
        "end_idx": 40,
        "type": "grouped_webpages",
        "items": [{"title": "Second source", "url": "https://example.org/2"}],
    }
    conversations.append(
        {
            "conversation_id": tools,
            "title": "Tools, reasoning, citations",
            "create_time": 1_710_000_000,
            "default_model_slug": "o3",
            "current_node": "final",
            "mapping": _mapping(
                _node("client-created-root", None, ["q"]),
                _node(
                    "q", "client-created-root", ["think"], "user", _text("Plot the sine 📈 and cite sources")
                ),
                _node(
                    "think",
                    "q",
                    ["recap"],
                    "assistant",
                    {
                        "content_type": "thoughts",
                        "thoughts": [{"summary": "Planning", "content": "I should run python."}],
                    },
                    channel="analysis",
                    metadata={"finished_duration_sec": 4, "reasoning_status": "reasoning_ended"},
                ),
                _node(
                    "recap",
                    "think",
                    ["code"],
                    "assistant",
                    {"content_type": "reasoning_recap", "content": "Thought for 4s"},
                ),
                _node(
                    "code",
                    "recap",
                    ["out"],
                    "assistant",
                    {
                        "content_type": "code",
                        "language": "unknown",
                        "text": "import math\nprint(math.sin(1))",
                    },
                    recipient="python",
                ),
                _node(
                    "out",
                    "code",
                    ["search"],
                    "tool",
                    {"content_type": "execution_output", "text": "0.8414709848078965"},
                    name="python",
                ),
                _node(
                    "search", "out", ["browse"], "assistant", _text('search("ledger")'), recipient="browser"
                ),
                _node(
                    "browse",
                    "search",
                    ["quote"],
                    "tool",
                    {
                        "content_type": "tether_browsing_display",
                        "result": "# 【0†Ledger docs†example.org】",
                        "summary": None,
                    },
                    name="browser",
                ),
                _node(
                    "quote",
                    "browse",
                    ["final"],
                    "tool",
                    {
                        "content_type": "tether_quote",
                        "url": "https://example.org/ledger",
                        "domain": "example.org",
                        "title": "Ledger docs",
                        "text": "An append-only log.",
                    },
                    name="browser",
                ),
                _node(
                    "final",
                    "quote",
                    [],
                    "assistant",
                    _text("The sine of 1 is 0.84【0†source】 and 【6†source】."),
                    metadata={"model_slug": "o3", "citations": [citation], "content_references": [reference]},
                ),
            ),
        }
    )
    chain = ["q", "think", "recap", "code", "out", "search", "browse", "quote", "final"]
    expected.add(
        f"conversation:{tools}",
        [(key(tools, n), key(tools, chain[i - 1]) if i else None) for i, n in enumerate(chain)],
        key(tools, "final"),
    )

    files = "c0000003-files"
    conversations.append(
        {
            "id": files,
            "title": "Attachments",
            "create_time": 1_720_000_000.0,
            "current_node": "seen",
            "mapping": _mapping(
                _node("r", None, ["pic"]),
                _node(
                    "pic",
                    "r",
                    ["seen"],
                    "user",
                    {
                        "content_type": "multimodal_text",
                        "parts": [
                            {
                                "content_type": "image_asset_pointer",
                                "asset_pointer": "file-service://file-Cat1",
                                "width": 1,
                                "height": 1,
                            },
                            {
                                "content_type": "image_asset_pointer",
                                "asset_pointer": "sediment://file_00gone",
                            },
                            "What is in these?",
                        ],
                    },
                    metadata={
                        "attachments": [
                            {
                                "id": "file-Rep9",
                                "name": "Bericht_Überblick.pdf",
                                "mime_type": "application/pdf",
                                "size": len(PDF),
                            }
                        ]
                    },
                ),
                _node("seen", "pic", [], "assistant", _text("A cat, and a report.")),
            ),
        }
    )
    expected.add(
        f"conversation:{files}",
        [(key(files, "pic"), None), (key(files, "seen"), key(files, "pic"))],
        key(files, "seen"),
    )

    empty = "c0000004-empty"
    conversations.append(
        {"id": empty, "title": "", "current_node": "r", "mapping": _mapping(_node("r", None, []))}
    )
    expected.add(f"conversation:{empty}", [], None)

    conversations.append({"id": "c0000005-corrupt", "title": "no mapping", "create_time": 1_730_000_000})
    expected.rejected.add("conversation:c0000005-corrupt")
    conversations.append("not a conversation")

    odd = "c0000006-odd"
    conversations.append(
        {
            "id": odd,
            "title": "Dangling pointers",
            "current_node": "gone-node",
            "mapping": _mapping(
                _node("x1", None, ["x2"], "user", _text("first"), create_time=1_740_000_100.0),
                _node(
                    "x2", "x1", [], "assistant", _text("older than its parent"), create_time=1_740_000_000.0
                ),
                _node("x3", "missing-parent", [], "assistant", _text("orphan, newest"), create_time=None),
                _node("x4", "x1", [], "assistant", _text("newest leaf"), create_time=1_740_000_200.0),
            ),
        }
    )
    expected.add(
        f"conversation:{odd}",
        [
            (key(odd, "x1"), None),
            (key(odd, "x2"), key(odd, "x1")),
            (key(odd, "x3"), None),
            (key(odd, "x4"), key(odd, "x1")),
        ],
        key(odd, "x4"),
    )
    assets = {"file-Cat1-cat.png": PNG, "file-Rep9-Bericht_Überblick.pdf": PDF}
    return conversations, expected, assets


def chatgpt_zip(folder: Path) -> tuple[Path, Expected]:
    conversations, expected, assets = chatgpt_conversations()
    path = folder / "chatgpt-export.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("conversations.json", json.dumps(conversations, ensure_ascii=False))
        archive.writestr("user.json", json.dumps({"id": "user-Ab12", "email": "Zoe@Example.org"}))
        archive.writestr("chat.html", "<html></html>")
        for name, body in assets.items():
            archive.writestr(name, body)
    return path, expected


def chatgpt_json(folder: Path) -> tuple[Path, Expected]:
    """The bare conversations.json: no user.json, no attachments beside it."""
    conversations, expected, _ = chatgpt_conversations()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "conversations.json"
    path.write_text(json.dumps(conversations, ensure_ascii=False), encoding="utf-8")
    return path, expected


# -- Claude.ai --------------------------------------------------------------------------------


def _claude_message(uuid, sender, created, content=None, text="", **extra):
    message = {"uuid": uuid, "sender": sender, "text": text, "created_at": created, "updated_at": created}
    if content is not None:
        message["content"] = content
    message.update(extra)
    return message


def claude_export(folder: Path) -> tuple[Path, Expected]:
    account = "acc-7f3e"
    expected = Expected(users={f"user:{account}"})

    def key(conv, msg):
        return f"message:{conv}/{msg}"

    linear = "cl-linear"
    messages = [
        _claude_message(
            "m1",
            "human",
            "2025-01-02T10:00:00.000000Z",
            [{"type": "text", "text": "Résumé bitte 📄"}],
            attachments=[
                {
                    "file_name": "notes.txt",
                    "file_size": 12,
                    "file_type": "txt",
                    "extracted_content": "Ünïcödé notes",
                },
                {"file_name": "", "file_size": 3, "file_type": "", "extracted_content": "big paste"},
            ],
            files=[{"file_name": "diagram.png"}],
        ),
        _claude_message(
            "m2",
            "assistant",
            "2025-01-02T10:00:05.123456Z",
            [
                {
                    "type": "thinking",
                    "thinking": "The user wants a summary.",
                    "summaries": [{"summary": "Summarising"}],
                    "cut_off": False,
                },
                {"type": "tool_use", "id": "toolu_1", "name": "web_search", "input": {"query": "résumé"}},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "name": "web_search",
                    "content": [{"type": "text", "text": "3 results"}],
                    "is_error": False,
                },
                {
                    "type": "text",
                    "text": "Here it is.",
                    "citations": [
                        {
                            "uuid": "c1",
                            "start_index": 0,
                            "end_index": 4,
                            "details": {"type": "web_search_citation", "url": "https://example.org/r"},
                        }
                    ],
                },
            ],
        ),
        _claude_message("m3", "human", None, text="fallback text only"),
        _claude_message("m4", "assistant", "2025-01-02T09:00:00Z", [], text="inverted time, empty content"),
        _claude_message(
            "m5",
            "assistant",
            "2025-01-02T10:10:00Z",
            [
                {"type": "thinking", "thinking": "cut", "summaries": [], "cut_off": True},
                {"type": "voice_note", "title": "x"},
            ],
        ),
        {"sender": "human", "text": "no uuid"},
    ]
    chain = ["m1", "m2", "m3", "m4", "m5"]
    conversations = [
        {
            "uuid": linear,
            "name": "Zusammenfassung ✨",
            "created_at": "2025-01-02T10:00:00Z",
            "updated_at": None,
            "account": {"uuid": account},
            "chat_messages": messages,
        },
    ]
    expected.add(
        f"conversation:{linear}",
        [(key(linear, n), key(linear, chain[i - 1]) if i else None) for i, n in enumerate(chain)],
        key(linear, "m5"),
    )
    tree = "cl-tree"
    root = "00000000-0000-4000-8000-000000000000"
    conversations.append(
        {
            "uuid": tree,
            "name": "",
            "created_at": "2025-02-01T00:00:00Z",
            "updated_at": "2025-02-01T01:00:00Z",
            "account": {"uuid": account},
            "current_leaf_message_uuid": "t3",
            "chat_messages": [
                _claude_message(
                    "t1",
                    "human",
                    "2025-02-01T00:00:01Z",
                    [{"type": "text", "text": "Q"}],
                    parent_message_uuid=root,
                ),
                _claude_message(
                    "t2",
                    "assistant",
                    "2025-02-01T00:00:02Z",
                    [{"type": "text", "text": "A (first)"}],
                    parent_message_uuid="t1",
                ),
                _claude_message(
                    "t3",
                    "assistant",
                    "2025-02-01T00:00:03Z",
                    [{"type": "text", "text": "A (retry)"}],
                    parent_message_uuid="t1",
                ),
                _claude_message(
                    "t4",
                    "human",
                    "2025-02-01T00:00:04Z",
                    [{"type": "text", "text": "follow-up on first"}],
                    parent_message_uuid="t2",
                ),
            ],
        }
    )
    expected.add(
        f"conversation:{tree}",
        [
            (key(tree, "t1"), None),
            (key(tree, "t2"), key(tree, "t1")),
            (key(tree, "t3"), key(tree, "t1")),
            (key(tree, "t4"), key(tree, "t2")),
        ],
        key(tree, "t3"),
    )
    conversations.append(
        {
            "uuid": "cl-empty",
            "name": "",
            "created_at": "2025-03-01T00:00:00Z",
            "updated_at": "2025-03-01T00:00:00Z",
            "account": {"uuid": account},
            "chat_messages": [],
        }
    )
    expected.add("conversation:cl-empty", [], None)
    conversations.append(
        {
            "uuid": "cl-corrupt",
            "name": "broken",
            "account": {"uuid": account},
            "chat_messages": {"not": "a list"},
        }
    )
    expected.rejected.add("conversation:cl-corrupt")
    path = folder / "claude-export.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("conversations.json", json.dumps(conversations, ensure_ascii=False))
        archive.writestr(
            "users.json",
            json.dumps(
                [
                    {
                        "uuid": account,
                        "full_name": "Zoë Ämter",
                        "email_address": "Zoe@Example.org",
                        "verified_phone_number": None,
                    }
                ]
            ),
        )
        archive.writestr("projects.json", "[]")
    return path, expected


# -- Open WebUI --------------------------------------------------------------------------------


def _owui_message(ident, parent, children, role, content, timestamp, **extra):
    return {
        "id": ident,
        "parentId": parent,
        "childrenIds": children,
        "role": role,
        "content": content,
        "timestamp": timestamp,
        **extra,
    }


def openwebui_rows(user_id: str = "u-owner-1") -> tuple[list[dict[str, Any]], Expected]:
    expected = Expected(users={f"user:{user_id}"})

    def key(chat, msg):
        return f"message:{chat}/{msg}"

    branchy = "ow-branches"
    data_url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    messages = {
        "u1": _owui_message(
            "u1",
            None,
            ["a1", "a1b"],
            "user",
            "Vergleiche bitte 🤖",
            1_700_000_000,
            models=["llama3", "qwen"],
            files=[
                {"type": "image", "url": data_url},
                {
                    "type": "file",
                    "id": "f-up-1",
                    "name": "daten.csv",
                    "size": 40,
                    "file": {"id": "f-up-1", "meta": {"content_type": "text/csv"}},
                },
                {"type": "collection", "id": "kb-1", "name": "Knowledge"},
            ],
        ),
        "a1": _owui_message(
            "a1",
            "u1",
            ["u2"],
            "assistant",
            "Antwort A",
            1_700_000_010,
            model="llama3",
            modelName="Llama 3",
            modelIdx=0,
            usage={"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            annotation={"rating": 1},
        ),
        "a1b": _owui_message(
            "a1b", "u1", [], "assistant", "Antwort B", 1_700_000_011, model="qwen", modelIdx=1, done=False
        ),
        "u2": _owui_message("u2", "a1", ["a2"], "user", "Weiter", 1_700_000_020),
        "u2b": _owui_message("u2b", "a1", ["a2b"], "user", "Edited follow-up", 1_700_000_021),
        "a2": _owui_message(
            "a2", "u2", [], "assistant", "", 1_700_000_030, model="llama3", error={"content": "Ollama: 500"}
        ),
        "a2b": _owui_message("a2b", "u2b", [], "assistant", "Final ✅", 1_700_000_031, model="llama3"),
    }
    rows = [
        {
            "id": branchy,
            "user_id": user_id,
            "title": "Verzweigungen",
            "chat": {
                "id": "",
                "title": "Verzweigungen",
                "models": ["llama3", "qwen"],
                "params": {"system": "Sei knapp."},
                "history": {"currentId": "a2b", "messages": messages},
                "messages": [],
                "tags": ["old-tag"],
                "timestamp": 1_700_000_000_000,
            },
            "created_at": 1_700_000_000,
            "updated_at": 1_700_000_031,
            "share_id": None,
            "archived": True,
            "pinned": True,
            "meta": {"tags": ["work", "démo"]},
            "folder_id": "folder-9",
        },
    ]
    expected.add(
        f"conversation:{branchy}",
        [
            (key(branchy, "u1"), None),
            (key(branchy, "a1"), key(branchy, "u1")),
            (key(branchy, "a1b"), key(branchy, "u1")),
            (key(branchy, "u2"), key(branchy, "a1")),
            (key(branchy, "u2b"), key(branchy, "a1")),
            (key(branchy, "a2"), key(branchy, "u2")),
            (key(branchy, "a2b"), key(branchy, "u2b")),
        ],
        key(branchy, "a2b"),
    )

    details = "ow-details"
    tool_block = (
        '<details type="tool_calls" done="true" id="call_7" name="get_time" arguments="{&quot;tz&quot;: &quot;UTC&quot;}" '
        'result="&quot;12:00&quot;"><summary>Tool Executed</summary></details>'
    )
    reasoning_block = '<details type="reasoning" done="true" duration="2">\n<summary>Thought for 2 seconds</summary>\n&gt; Need the time.\n&gt; Use the tool.\n</details>\n'
    rows.append(
        {
            "id": details,
            "user_id": user_id,
            "title": "Old details blocks",
            "chat": {
                "title": "Old details blocks",
                "models": ["gpt-4o"],
                "history": {
                    "currentId": "d2",
                    "messages": {
                        "d1": _owui_message("d1", None, ["d2"], "user", "Wie spät?", 1_700_100_000),
                        "d2": _owui_message(
                            "d2",
                            "d1",
                            [],
                            "assistant",
                            reasoning_block + tool_block + "\nEs ist 12:00.",
                            1_700_100_005,
                            model="gpt-4o",
                            sources=[
                                {
                                    "source": {"name": "clock.example", "url": "https://clock.example"},
                                    "document": ["12:00"],
                                    "metadata": [{"source": "https://clock.example"}],
                                }
                            ],
                        ),
                    },
                },
            },
            "created_at": 1_700_100_000,
            "updated_at": 1_700_100_005,
            "archived": False,
            "pinned": False,
            "meta": {},
            "folder_id": None,
        }
    )
    expected.add(
        f"conversation:{details}",
        [(key(details, "d1"), None), (key(details, "d2"), key(details, "d1"))],
        key(details, "d2"),
    )

    odd = "ow-odd"
    rows.append(
        {
            "id": odd,
            "user_id": user_id,
            "title": "No current id",
            "chat": {
                "history": {
                    "messages": {
                        "o1": _owui_message("o1", None, ["o2"], "user", "hi", 1_700_200_000),
                        "o2": _owui_message("o2", "o1", [], "assistant", "older leaf", 1_700_200_001),
                        "o3": _owui_message(
                            "o3", "ghost", [], "assistant", "orphan, newest leaf", 1_700_200_009
                        ),
                        "bad": "not an object",
                    }
                }
            },
            "created_at": 1_700_200_000,
            "updated_at": 1_700_200_009,
            "archived": False,
            "pinned": False,
            "meta": {},
            "folder_id": None,
        }
    )
    expected.add(
        f"conversation:{odd}",
        [(key(odd, "o1"), None), (key(odd, "o2"), key(odd, "o1")), (key(odd, "o3"), None)],
        key(odd, "o3"),
    )

    rows.append(
        {
            "id": "ow-empty",
            "user_id": user_id,
            "title": "Empty",
            "chat": {"history": {"messages": {}, "currentId": None}},
            "created_at": 1_700_300_000,
            "updated_at": 1_700_300_000,
            "archived": False,
            "pinned": False,
            "meta": {},
        }
    )
    expected.add("conversation:ow-empty", [], None)
    rows.append(
        {
            "id": "ow-corrupt",
            "user_id": user_id,
            "title": "Corrupt",
            "chat": {"title": "no history"},
            "created_at": 1_700_400_000,
            "updated_at": 1_700_400_000,
            "archived": False,
            "pinned": False,
            "meta": {},
        }
    )
    expected.rejected.add("conversation:ow-corrupt")
    return rows, expected


def openwebui_single_chat(folder: Path) -> tuple[Path, Expected]:
    """A bare chat document (no row): the ``owner`` option names its owner."""
    expected = Expected()
    chat = {
        "id": "ow-single",
        "title": "Einzeln",
        "history": {
            "currentId": "s2",
            "messages": {
                "s1": _owui_message("s1", None, ["s2"], "user", "eins", 1_700_500_000),
                "s2": _owui_message("s2", "s1", [], "assistant", "zwei", 1_700_500_001),
            },
        },
    }
    expected.add(
        "conversation:ow-single",
        [("message:ow-single/s1", None), ("message:ow-single/s2", "message:ow-single/s1")],
        "message:ow-single/s2",
    )
    path = folder / "chat-export-1700500001000.json"
    path.write_text(json.dumps(chat, ensure_ascii=False), encoding="utf-8")
    return path, expected


OWUI_CHAT_COLUMNS = (
    "id",
    "user_id",
    "title",
    "chat",
    "created_at",
    "updated_at",
    "share_id",
    "archived",
    "pinned",
    "meta",
    "folder_id",
)


def openwebui_sqlite(path: Path, rows: list[dict[str, Any]], users: list[dict[str, Any]]) -> Path:
    """A webui.db with the ``chat`` and ``user`` tables (old layout: DATETIME columns
    storing epoch seconds) and a shared copy that must be skipped."""
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE chat (id VARCHAR(255) PRIMARY KEY, user_id VARCHAR(255), title TEXT, chat TEXT, "
            "created_at DATETIME, updated_at DATETIME, share_id VARCHAR(255), archived BOOLEAN, pinned BOOLEAN, "
            "meta JSON, folder_id TEXT)"
        )
        conn.execute(
            'CREATE TABLE "user" (id VARCHAR(255) PRIMARY KEY, name VARCHAR(255), email VARCHAR(255), role VARCHAR(255), '
            "profile_image_url TEXT, created_at BIGINT, api_key VARCHAR(255))"
        )
        for row in [*rows, shared_copy(rows[0])]:
            values = [
                json.dumps(row.get(c)) if c in ("chat", "meta") else row.get(c) for c in OWUI_CHAT_COLUMNS
            ]
            conn.execute(f"INSERT INTO chat VALUES ({', '.join('?' * len(values))})", values)
        for user in users:
            conn.execute(
                'INSERT INTO "user" VALUES (?, ?, ?, ?, ?, ?, ?)',
                [
                    user[c]
                    for c in ("id", "name", "email", "role", "profile_image_url", "created_at", "api_key")
                ],
            )
    return path


def shared_copy(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "id": "shared-copy-1", "user_id": f"shared-{row['id']}"}


OWUI_USERS = [
    {
        "id": "u-owner-1",
        "name": "Zoë",
        "email": "Zoe@Example.org",
        "role": "user",
        "profile_image_url": "/user.png",
        "created_at": 1_699_000_000,
        "api_key": "sk-never-copied",
    },
]


# -- Chatbot UI --------------------------------------------------------------------------------


def chatbotui_files(folder: Path) -> tuple[list[Path], Expected]:
    """A v1 (bare array) file and a v2 (unversioned, numeric folders) file."""
    owner = "zoe@example.org"
    expected = Expected(users={f"user:{owner}"})
    v1 = [
        {
            "id": 1,
            "name": "Erste 🙂",
            "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hallo"}],
        },
        {"id": 2, "name": "broken", "messages": "nope"},
    ]
    expected.add(
        f"conversation:{owner}/1",
        [(f"message:{owner}/1/0", None), (f"message:{owner}/1/1", f"message:{owner}/1/0")],
        f"message:{owner}/1/1",
    )
    expected.rejected.add(f"conversation:{owner}/2")
    v2 = {
        "history": [
            {
                "id": "v2-a",
                "name": "Zweite",
                "model": {"id": "gpt-3.5-turbo", "name": "GPT-3.5"},
                "prompt": "Be brief.",
                "folderId": 7,
                "messages": [
                    {"role": "user", "content": "eins"},
                    {"role": "assistant", "content": 42},
                    {"role": "assistant", "content": "drei"},
                ],
            },
            {"id": "v2-empty", "name": "", "messages": []},
        ],
        "folders": [{"id": 7, "name": "Arbeit"}],
    }
    # the middle message is rejected (content is not text); the next hangs from the one before it
    expected.add(
        f"conversation:{owner}/v2-a",
        [(f"message:{owner}/v2-a/0", None), (f"message:{owner}/v2-a/2", f"message:{owner}/v2-a/0")],
        f"message:{owner}/v2-a/2",
    )
    expected.add(f"conversation:{owner}/v2-empty", [], None)
    paths = [folder / "chatbot_ui_history_v1.json", folder / "chatbot_ui_history_v2.json"]
    paths[0].write_text(json.dumps(v1, ensure_ascii=False), encoding="utf-8")
    paths[1].write_text(json.dumps(v2, ensure_ascii=False), encoding="utf-8")
    return paths, expected
