"""Claude.ai exports."""

from __future__ import annotations

import base64
import json
import sqlite3
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.exports.samples.expected import PDF, PNG, Expected


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
