"""Cherry Studio v1 inputs built in code, covering every data-quality row and block type.

``rich()`` is a v5 ``data.json`` (as a dict) plus the attachment bytes; the writers put
it in every form the source reads (backup ZIP, folder, bare data.json, version 1's
``{key, value}`` array, version 3's pre-block messages, the v2 exporters' JSON).
"""

from __future__ import annotations

import base64
import copy
import zipfile
from pathlib import Path
from typing import Any

import orjson

GPT = {"id": "gpt-4o", "provider": "openai", "name": "GPT-4o", "group": "gpt"}
CLAUDE = {"id": "claude-3", "provider": "anthropic", "name": "Claude 3"}
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
ATTACHMENTS = {"f1.pdf": b"%PDF-1.4 tiny", "f2.png": PNG}


def iso(minute: int) -> str:
    return f"2024-03-01T10:{minute:02d}:00.000Z"


class Topic:
    """Builds one topic's messages and their blocks."""

    def __init__(self, topic_id: str, blocks: list[dict[str, Any]]) -> None:
        self.id = topic_id
        self.messages: list[dict[str, Any]] = []
        self.blocks = blocks
        self.minute = 0

    def message(self, ident: str, role: str, *blocks: dict[str, Any], **fields: Any) -> dict[str, Any]:
        self.minute += 1
        ids = []
        for number, block in enumerate(blocks):
            block_id = block.pop("id", f"{self.id}-{ident}-b{number}")
            ids.append(block_id)
            if not block.pop("missing", False):
                self.blocks.append(
                    {
                        "id": block_id,
                        "messageId": ident,
                        "createdAt": iso(self.minute),
                        "status": "success",
                        **block,
                    }
                )
        message = {
            "id": ident,
            "role": role,
            "assistantId": "a1",
            "topicId": self.id,
            "createdAt": iso(self.minute),
            "status": "success",
            "blocks": ids,
            **fields,
        }
        self.messages.append(message)
        return message

    def text(self, ident: str, role: str, text: str, **fields: Any) -> dict[str, Any]:
        return self.message(ident, role, {"type": "main_text", "content": text}, **fields)

    def row(self) -> dict[str, Any]:
        return {"id": self.id, "messages": self.messages}


def rich() -> dict[str, Any]:
    blocks: list[dict[str, Any]] = []
    t1 = Topic("t1", blocks)  # multi-model groups
    t1.text("u1", "user", "hello")
    t1.text("a1", "assistant", "hi there", askId="u1", model=GPT)
    t1.text("u2", "user", "compare yourselves")
    t1.text("a2", "assistant", "answer A", askId="u2", model=GPT)
    t1.text("a3", "assistant", "answer B", askId="u2", model=CLAUDE, foldSelected=True)
    t1.text("a4", "assistant", "answer C", askId="u2", model=GPT)
    t1.text("u3", "user", "continue")  # upstream: parent a2 (before the first foldSelected)
    t1.text("a5", "assistant", "continued", askId="u3", model=GPT)
    t1.text("u4", "user", "again, two of you")
    t1.text("b1", "assistant", "first view", askId="u4", model=GPT, useful=False)
    t1.text("b2", "assistant", "second view", askId="u4", model=CLAUDE, useful=True)
    t1.text("u5", "user", "go on with the useful one")  # parent b2 (useful), upstream: b2 (last) too
    t1.text("u6", "user", "and now three")
    t1.text("c1", "assistant", "one", askId="u6", model=GPT, useful=True)
    t1.text("c2", "assistant", "two", askId="u6", model=CLAUDE)
    t1.text("c3", "assistant", "three", askId="u6", model=GPT)
    t1.text("u7", "user", "the last")  # useful c1; upstream would take c3

    t2 = Topic("t2", blocks)  # resends under the first turn, a block-less message mid-chain
    t2.text("r1", "assistant", "answer to a deleted question", askId="gone", model=GPT)
    t2.text("r2", "assistant", "second answer to it", askId="gone", model=CLAUDE)
    t2.text("v1", "user", "first question")
    t2.text("v2", "assistant", "reply", askId="v1", model=GPT)
    t2.message(
        "v3",
        "user",
        {"type": "main_text", "content": "lost", "missing": True},
        {"type": "main_text", "missing": True},
    )
    t2.text("v4", "assistant", "reply to the lost one", askId="v3", model=GPT)
    t2.text("v5", "user", "after the hole")
    t2.message(
        "v6",
        "assistant",
        {"type": "main_text", "content": "partly here"},
        {"type": "thinking", "missing": True},
        askId="v5",
    )

    t3 = Topic("t3", blocks)  # every block type, odd timestamps and statuses
    t3.text("w1", "user", "show me everything", mentions=[GPT, CLAUDE], createdAt=1709287200000)
    t3.message(
        "w2",
        "assistant",
        {"type": "thinking", "content": "let me think", "thinking_millsec": 1234},
        {
            "type": "main_text",
            "content": "Here is all of it [1]",
            "citationReferences": [{"citationBlockId": "w2-cite"}],
        },
        {
            "id": "w2-cite",
            "type": "citation",
            "response": {
                "source": "tavily",
                "results": [{"title": "Doc", "url": "https://example.com/doc", "content": "c"}],
            },
            "knowledge": [{"id": 1, "content": "kb text", "sourceUrl": "file:///kb.md", "type": "file"}],
            "memories": [{"id": "m1", "memory": "likes tea", "score": 0.9}],
        },
        {
            "type": "tool",
            "toolId": "call-ok",
            "toolName": "search",
            "arguments": {"q": "x"},
            "content": {"content": [{"type": "text", "text": "found"}], "isError": False},
            "metadata": {
                "rawMcpToolResponse": {
                    "id": "call-ok",
                    "tool": {
                        "id": "s1",
                        "name": "search",
                        "serverId": "srv",
                        "serverName": "web",
                        "type": "mcp",
                    },
                    "status": "done",
                }
            },
        },
        {
            "type": "tool",
            "toolId": "call-bad",
            "toolName": "fetch",
            "arguments": {"url": "y"},
            "content": {"content": [{"type": "text", "text": "MCP error -32000: boom"}], "isError": True},
            "metadata": {
                "rawMcpToolResponse": {
                    "id": "call-bad",
                    "tool": {
                        "id": "s2",
                        "name": "fetch",
                        "serverId": "srv",
                        "serverName": "web",
                        "type": "mcp",
                    },
                    "status": "error",
                }
            },
        },
        {"type": "image", "url": "data:image/png;base64," + base64.b64encode(PNG).decode()},
        {
            "type": "image",
            "file": {
                "id": "f2",
                "path": "/home/u/.config/CherryStudio/Data/Files/f2.png",
                "name": "f2.png",
                "origin_name": "chart.png",
                "ext": ".png",
                "type": "image",
                "size": len(PNG),
            },
        },
        {
            "type": "file",
            "file": {
                "id": "f1",
                "path": "/home/u/.config/CherryStudio/Data/Files/f1.pdf",
                "name": "f1.pdf",
                "origin_name": "paper.pdf",
                "ext": ".pdf",
                "type": "document",
                "size": 13,
            },
        },
        {
            "type": "file",
            "file": {
                "id": "f3",
                "name": "f3.txt",
                "origin_name": "gone.txt",
                "ext": ".txt",
                "type": "text",
                "size": 4,
            },
        },
        {"type": "code", "content": "print(1)", "language": "python"},
        {"type": "translation", "content": "Bonjour", "targetLanguage": "fr", "sourceLanguage": "en"},
        {"type": "video", "url": "https://example.com/v.mp4"},
        {"type": "compact", "content": "summary", "compactedContent": "the long original"},
        {"type": "error", "error": {"name": "APIError", "message": "rate limited"}},
        {"type": "unknown"},
        askId="w1",
        model=GPT,
        usage={"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30, "cost": 0.01},
        metrics={
            "completion_tokens": 20,
            "time_completion_millsec": 900,
            "time_first_token_millsec": 100,
            "time_thinking_millsec": 1234,
        },
        createdAt="not a date",
        status="processing",
    )
    t3.text("w3", "system", "", type="clear")
    t3.text("w4", "user", "wrong topic id", topicId="elsewhere")
    t3.message(
        "w4", "user", {"id": "w4-again", "type": "main_text", "content": "the same id again"}
    )  # a repeat
    t3.message("w5", "assistant", {"type": "unknown"}, status="paused", askId="w4")  # only unknown blocks

    t4 = Topic("t4", blocks)  # no Redux metadata, a missing assistant, an id used in t1
    t4.text("u1", "user", "same id as in t1")
    t4.text("x2", "assistant", "ok", askId="u1", status="error", error={"message": "x"})

    topics = [t1.row(), t2.row(), t3.row(), t4.row()]
    topics[3]["assistantId"] = "ghost"
    topics += [
        {"id": "t-empty-intent", "messages": []},  # prompt in Redux: kept
        {"id": "t-empty", "messages": []},  # no intent: dropped
        {"messages": []},  # no id
        {"id": "bad", "messages": "nope"},
        {"id": "t1", "messages": []},  # a repeat of t1
    ]
    files = [
        {
            "id": "f1",
            "name": "f1.pdf",
            "origin_name": "paper.pdf",
            "path": "/Data/Files/f1.pdf",
            "size": 13,
            "ext": ".pdf",
            "type": "document",
            "created_at": iso(0),
            "count": 1,
        },
        {
            "id": "f2",
            "name": "f2.png",
            "origin_name": "chart.png",
            "path": "/Data/Files/f2.png",
            "size": len(PNG),
            "ext": ".png",
            "type": "image",
            "created_at": iso(0),
            "count": 1,
        },
    ]
    assistants = {
        "assistants": [
            {
                "id": "a1",
                "name": "Helper",
                "prompt": "be brief",
                "emoji": "🤖",
                "type": "assistant",
                "model": GPT,
                "topics": [
                    {
                        "id": "t1",
                        "assistantId": "a1",
                        "name": "Groups",
                        "createdAt": iso(0),
                        "updatedAt": iso(40),
                        "pinned": True,
                        "messages": [],
                    },
                    {
                        "id": "t2",
                        "assistantId": "a1",
                        "name": "Resends",
                        "createdAt": iso(0),
                        "updatedAt": iso(30),
                        "messages": [],
                    },
                    {
                        "id": "t-empty-intent",
                        "assistantId": "a1",
                        "name": "Poems",
                        "prompt": "You are a poet",
                        "createdAt": iso(0),
                        "updatedAt": iso(1),
                        "messages": [],
                    },
                    {
                        "id": "t-empty",
                        "assistantId": "a1",
                        "name": "Nothing",
                        "createdAt": iso(0),
                        "updatedAt": iso(2),
                        "messages": [],
                    },
                    {
                        "id": "t-redux-only",
                        "assistantId": "a1",
                        "name": "Pinned idea",
                        "pinned": True,
                        "createdAt": iso(0),
                        "updatedAt": iso(3),
                        "messages": [],
                    },
                ],
            },
            {
                "id": "a2",
                "name": "Other",
                "prompt": "",
                "type": "assistant",
                "topics": [
                    {"id": "t1", "assistantId": "a2", "name": "Not this name", "messages": []},
                ],
            },
        ],
        "defaultAssistant": {
            "id": "default",
            "name": "Default Assistant",
            "prompt": "",
            "type": "assistant",
            "topics": [
                {
                    "id": "t3",
                    "assistantId": "default",
                    "name": "",
                    "createdAt": 1709287200000,
                    "updatedAt": "garbage",
                    "messages": [],
                }
            ],
        },
        "presets": [{"id": "p1", "name": "Translator", "prompt": "translate", "type": "agent", "topics": []}],
    }
    persist = {
        "assistants": orjson.dumps(assistants).decode(),
        "settings": "{}",
        "_persist": '{"version":207,"rehydrated":true}',
    }
    return {
        "time": 1709290000000,
        "version": 5,
        "localStorage": {"persist:cherry-studio": orjson.dumps(persist).decode(), "language": "en"},
        "indexedDB": {
            "topics": topics,
            "message_blocks": blocks,
            "files": files,
            "settings": [{"id": "image://avatar", "value": "x"}],
            "knowledge_notes": [],
        },
    }


def assistants_of(data: dict[str, Any]) -> dict[str, Any]:
    persist = orjson.loads(data["localStorage"]["persist:cherry-studio"])
    return orjson.loads(persist["assistants"])


def write_zip(path: Path, data: dict[str, Any], attachments: dict[str, bytes] = ATTACHMENTS) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data.json", orjson.dumps(data))
        archive.writestr("Data/", b"")
        for name, body in attachments.items():
            archive.writestr(f"Data/Files/{name}", body)
    return path


def write_folder(path: Path, data: dict[str, Any], attachments: dict[str, bytes] = ATTACHMENTS) -> Path:
    (path / "Data" / "Files").mkdir(parents=True)
    (path / "data.json").write_bytes(orjson.dumps(data))
    for name, body in attachments.items():
        (path / "Data" / "Files" / name).write_bytes(body)
    return path


def write_exporter(path: Path, data: dict[str, Any]) -> Path:
    """The v2 migration exporters' files: one JSON array per Dexie table in ``dexie/``, the
    Redux slice beside it in ``redux/assistants.json``; returns the Dexie folder."""
    dexie, redux = path / "dexie", path / "redux"
    dexie.mkdir(parents=True)
    redux.mkdir()
    for table in ("topics", "message_blocks", "files"):
        (dexie / f"{table}.json").write_bytes(orjson.dumps(data["indexedDB"][table]))
    (redux / "assistants.json").write_bytes(orjson.dumps(assistants_of(data)))
    return dexie


def version1(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1: ``indexedDB`` is an array of ``{key, value}`` with pre-block messages."""
    pre = version3(data)
    entries = [{"key": f"topic:{t['id']}", "value": t} for t in pre["indexedDB"]["topics"] if t.get("id")]
    entries.append({"key": "image://avatar", "value": "data:image/png;base64,AAAA"})
    return {**pre, "version": 1, "indexedDB": entries}


def version3(data: dict[str, Any]) -> dict[str, Any]:
    """Version 3: messages before blocks (``content``, ``reasoning_content``, ``metadata``)."""
    out = copy.deepcopy(data)
    blocks = {b["id"]: b for b in out["indexedDB"].pop("message_blocks")}
    for topic in out["indexedDB"]["topics"]:
        if not isinstance(topic.get("messages"), list):
            continue
        for message in topic["messages"]:
            found = [blocks[b] for b in message.pop("blocks") if b in blocks]
            for block in found:
                if block["type"] == "main_text":
                    message["content"] = message.get("content", "") + block["content"]
                elif block["type"] == "thinking":
                    message["reasoning_content"] = block["content"]
                elif block["type"] == "tool":
                    raw = block["metadata"]["rawMcpToolResponse"]
                    tools = message.setdefault("metadata", {}).setdefault("mcpTools", [])
                    tools.append({**raw, "args": block["arguments"], "response": block["content"]})
                elif block["type"] == "citation":
                    message.setdefault("metadata", {})["webSearch"] = block["response"]
                    message["metadata"]["knowledge"] = block["knowledge"]
                elif block["type"] in ("file", "image") and block.get("file"):
                    message.setdefault("files", []).append(block["file"])
                elif block["type"] == "translation":
                    message["translatedContent"] = block["content"]
    out["version"] = 3
    return out


def big(topics: int, messages_per_topic: int) -> dict[str, Any]:
    """A plain backup with many topics: alternating user / assistant text messages."""
    blocks: list[dict[str, Any]] = []
    rows, metas = [], []
    for number in range(topics):
        topic = Topic(f"topic-{number:06d}", blocks)
        for turn in range(messages_per_topic):
            role = "user" if turn % 2 == 0 else "assistant"
            fields = {"askId": f"topic-{number:06d}-m{turn - 1}", "model": GPT} if role == "assistant" else {}
            topic.text(f"topic-{number:06d}-m{turn}", role, f"message {turn} of topic {number}", **fields)
        rows.append(topic.row())
        metas.append(
            {
                "id": topic.id,
                "assistantId": "a1",
                "name": f"Topic {number}",
                "createdAt": iso(0),
                "updatedAt": iso(number % 60),
                "messages": [],
            }
        )
    assistants = {
        "assistants": [
            {"id": "a1", "name": "Helper", "prompt": "", "type": "assistant", "model": GPT, "topics": metas}
        ]
    }
    persist = {"assistants": orjson.dumps(assistants).decode()}
    return {
        "time": 1709290000000,
        "version": 5,
        "localStorage": {"persist:cherry-studio": orjson.dumps(persist).decode()},
        "indexedDB": {"topics": rows, "message_blocks": blocks, "files": []},
    }


def mixed(topics: int) -> dict[str, Any]:
    """``rich()`` plus plain topics up to ``topics`` in all, under the same assistant."""
    out = rich()
    extra = big(topics - len(out["indexedDB"]["topics"]), 4)
    out["indexedDB"]["topics"] += extra["indexedDB"]["topics"]
    out["indexedDB"]["message_blocks"] += extra["indexedDB"]["message_blocks"]
    assistants = assistants_of(out)
    assistants["assistants"][0]["topics"] += assistants_of(extra)["assistants"][0]["topics"]
    persist = orjson.loads(out["localStorage"]["persist:cherry-studio"])
    persist["assistants"] = orjson.dumps(assistants).decode()
    out["localStorage"]["persist:cherry-studio"] = orjson.dumps(persist).decode()
    return out
