"""ChatGPT exports: ``conversations.json`` (a mapping of nodes per conversation), zipped with its assets or alone."""

from __future__ import annotations

import base64
import json
import sqlite3
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.exports.samples.expected import PDF, PNG, Expected


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
