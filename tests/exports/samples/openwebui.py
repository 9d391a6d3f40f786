"""Open WebUI: chat rows (JSON export, a single-chat file, a ``webui.db``) and their users."""

from __future__ import annotations

import base64
import json
import sqlite3
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.exports.samples.expected import PDF, PNG, Expected


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
