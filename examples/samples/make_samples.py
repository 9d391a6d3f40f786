"""Write the samples to try the real connectors on: chatgpt-export.zip, a tiny ChatGPT
data export (the `chatgpt` source), and librechat-export.json, one conversation as
LibreChat's "Export" button writes it (the `librechat` source with `export_paths`).

Run ``python examples/samples/make_samples.py [FOLDER]``; the output is the same bytes
every time (fixed ZIP timestamps), and a test checks the committed files equal it. Every
name, text and picture in them is made up here.

It has what a real export has: ``conversations.json`` (each conversation a ``mapping`` of
nodes with ``parent``/``children`` and a ``current_node``), ``user.json``, ``chat.html``,
and the attachments as ``file-<id>-<name>`` members. One conversation has a regenerated
answer (two branches), one an image and a text file attached, and one is archived.

The LibreChat export is ``recursive``: the message tree nested under ``messages``, each
reply in its parent's ``children``, with an edited question (two branches).
"""

from __future__ import annotations

import json
import struct
import sys
import zipfile
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
STAMP = (2025, 3, 1, 12, 0, 0)
START = 1_740_830_400.0  # 2025-03-01T12:00:00Z


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A one-colour PNG (the smallest valid picture to attach)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def node(ident, parent, children, role=None, content=None, seconds=0, **metadata):
    if role is None:
        return {"id": ident, "message": None, "parent": parent, "children": children}
    message = {
        "id": ident,
        "author": {"role": role, "name": None, "metadata": {}},
        "create_time": START + seconds,
        "update_time": None,
        "content": content,
        "status": "finished_successfully",
        "end_turn": True if role == "assistant" else None,
        "weight": 1.0,
        "metadata": metadata,
        "recipient": "all",
        "channel": None,
    }
    return {"id": ident, "message": message, "parent": parent, "children": children}


def text(*parts: str) -> dict:
    return {"content_type": "text", "parts": list(parts)}


def conversation(ident, title, seconds, current, nodes, **extra):
    return {
        "id": ident,
        "conversation_id": ident,
        "title": title,
        "create_time": START + seconds,
        "update_time": START + seconds + 600,
        "default_model_slug": "gpt-4o",
        "is_archived": False,
        "current_node": current,
        "mapping": {item["id"]: item for item in nodes},
        **extra,
    }


PICTURE = png(4, 4, (46, 139, 87))
NOTES = b"Shopping list\n- flour\n- eggs\n- basil\n"
MODEL = {"model_slug": "gpt-4o"}

CONVERSATIONS = [
    conversation(
        "5f1c0a9e-0001-4000-8000-000000000001",
        "Bread without yeast",
        0,
        "a1b",
        [
            node("root", None, ["u1"]),
            node("u1", "root", ["a1", "a1b"], "user", text("Can I bake bread without yeast?"), 10),
            node(
                "a1",
                "u1",
                [],
                "assistant",
                text("Yes: soda bread uses baking soda and buttermilk."),
                20,
                **MODEL,
            ),
            node(
                "a1b",
                "u1",
                ["u2"],
                "assistant",
                text("Yes. Try soda bread, flatbread, or a sourdough starter."),
                40,
                **MODEL,
            ),
            node("u2", "a1b", ["a2"], "user", text("How long does soda bread bake?"), 60),
            node("a2", "u2", [], "assistant", text("About 35–40 minutes at 200 °C."), 70, **MODEL),
        ],
    ),
    conversation(
        "5f1c0a9e-0002-4000-8000-000000000002",
        "What is in my picture?",
        3600,
        "a1",
        [
            node("root", None, ["u1"]),
            node(
                "u1",
                "root",
                ["a1"],
                "user",
                {
                    "content_type": "multimodal_text",
                    "parts": [
                        {
                            "content_type": "image_asset_pointer",
                            "asset_pointer": "file-service://file-Pic1",
                            "width": 4,
                            "height": 4,
                        },
                        "What colour is this, and what is on my list?",
                    ],
                },
                3610,
                attachments=[
                    {"id": "file-Txt2", "name": "list.txt", "mime_type": "text/plain", "size": len(NOTES)}
                ],
            ),
            node(
                "a1",
                "u1",
                [],
                "assistant",
                text("Sea green; your list has flour, eggs and basil."),
                3620,
                **MODEL,
            ),
        ],
    ),
    conversation(
        "5f1c0a9e-0003-4000-8000-000000000003",
        "Übersetzung: good morning",
        7200,
        "a1",
        [
            node("root", None, ["u1"]),
            node(
                "u1", "root", ["a1"], "user", text("Translate 'good morning' into German and Japanese."), 7210
            ),
            node("a1", "u1", [], "assistant", text("Guten Morgen — おはようございます"), 7220, **MODEL),
        ],
        is_archived=True,
    ),
]

MEMBERS = {
    "conversations.json": json.dumps(CONVERSATIONS, ensure_ascii=False, indent=1).encode(),
    "user.json": json.dumps(
        {"id": "user-Sample01", "email": "sam@example.org", "chatgpt_plus_user": False}
    ).encode(),
    "chat.html": b"<!DOCTYPE html><title>ChatGPT data export</title>",
    "file-Pic1-green.png": PICTURE,
    "file-Txt2-list.txt": NOTES,
}


NO_PARENT = "00000000-0000-0000-0000-000000000000"
LIBRECHAT_CONVERSATION = "7d2e5b10-0001-4000-8000-0000000000aa"


def librechat_message(ident, parent, sender, words, minute, children=(), **extra):
    return {
        "messageId": ident,
        "conversationId": LIBRECHAT_CONVERSATION,
        "parentMessageId": parent,
        "sender": sender,
        "text": words,
        "isCreatedByUser": sender == "User",
        "endpoint": "openAI",
        "model": None if sender == "User" else "gpt-4o-mini",
        "error": False,
        "unfinished": False,
        "createdAt": f"2025-03-02T09:{minute:02d}:00.000Z",
        "updatedAt": f"2025-03-02T09:{minute:02d}:00.000Z",
        **extra,
        "children": list(children),
    }


LIBRECHAT_EXPORT = {
    "conversationId": LIBRECHAT_CONVERSATION,
    "endpoint": "openAI",
    "title": "Plan a weekend hike",
    "exportAt": "2025-03-02T10:00:00.000Z",
    "branches": True,
    "recursive": True,
    "options": {"endpoint": "openAI", "model": "gpt-4o-mini", "promptPrefix": None},
    "messages": [
        librechat_message(
            "m-001",
            NO_PARENT,
            "User",
            "Suggest a 10 km hike near a lake.",
            1,
            [librechat_message("m-002", "m-001", "GPT-4o mini", "A loop around the lake, about 3 hours.", 2)],
        ),
        librechat_message(
            "m-003",
            NO_PARENT,
            "User",
            "Suggest a 10 km hike near a lake, with a café on the way.",
            5,
            [
                librechat_message(
                    "m-004",
                    "m-003",
                    "GPT-4o mini",
                    "The east shore trail passes a café at the halfway point.",
                    6,
                    [librechat_message("m-005", "m-004", "User", "Thanks!", 7)],
                )
            ],
        ),
    ],
}


def write(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    chatgpt = folder / "chatgpt-export.zip"
    with zipfile.ZipFile(chatgpt, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in MEMBERS.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=STAMP), body, zipfile.ZIP_DEFLATED)
    librechat = folder / "librechat-export.json"
    librechat.write_text(json.dumps(LIBRECHAT_EXPORT, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return [chatgpt, librechat]


if __name__ == "__main__":
    for path in write(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(path)
