"""LibreChat fixture data, shaped like LibreChat 0.8 documents, and writers for it.

Two users whose message ids collide (Bob's conversation reuses Ada's message ids, and
even one of Ada's conversationIds), and a third with nothing. Ada has:

- ``EDITS``: a regenerated answer, an edited question, feedback, token counts, an
  agent answer made of content parts (think, text ``{value}``, tool_call, image_file,
  agent_update), a shared link, pinned, tagged, a system prompt;
- ``FILES``: a message using a local upload, an image, an s3 file, an openai file, a
  file id without any files document, and a path that escapes the roots; an error
  answer and an orphan whose parent is gone; archived;
- ``TEMPORARY``: a temporary chat (skipped by default);
- ``MULTI``: an assistant answer whose parent is another assistant answer (LibreChat's
  multi-conversation "+ add model") and an unfinished answer.

Bob has ``BOB_CONVERSATION`` (= Ada's FILES conversationId) and stray messages whose
conversation document is gone.
"""

from __future__ import annotations

import copy
import datetime as dt
import gzip
import json
import uuid
from pathlib import Path
from typing import Any

import bson
from bson import ObjectId

NO_PARENT = "00000000-0000-0000-0000-000000000000"
ADA = ObjectId("64b000000000000000000001")
BOB = ObjectId("64b000000000000000000002")
CAROL = ObjectId("64b000000000000000000003")
T0 = dt.datetime(2024, 3, 1, 9, 0, tzinfo=dt.UTC)


def uid(name: str) -> str:
    """A fixed UUID per name, so tests can name ids."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"librechat-fixture:{name}"))


EDITS, FILES, TEMPORARY, MULTI = uid("c-edits"), uid("c-files"), uid("c-temporary"), uid("c-multi")
BOB_CONVERSATION = FILES
STRAY = uid("c-stray")
PNG = b"\x89PNG\r\n\x1a\n" + b"fixture-image-bytes" * 4
PDF = b"%PDF-1.4\nfixture report\n%%EOF\n"
IMAGE_ID, UPLOAD_ID, S3_ID, OPENAI_ID, EXPIRED_ID, ESCAPE_ID, AGENT_IMAGE_ID = (
    uid(f"file-{name}") for name in ("image", "upload", "s3", "openai", "expired", "escape", "agent-image")
)


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def object_id(minutes: float, *names: str) -> ObjectId:
    """An ObjectId created at fixture time ``minutes``, unique per ``names``."""
    return ObjectId(
        f"{int(at(minutes).timestamp()):08x}{uuid.uuid5(uuid.NAMESPACE_OID, '/'.join(names)).hex[:16]}"
    )


def message(
    user: ObjectId, conversation: str, name: str, parent: str, minutes: float, **fields: Any
) -> dict[str, Any]:
    created = at(minutes)
    document = {
        "_id": object_id(minutes, str(user), conversation, name),
        "messageId": uid(name),
        "conversationId": conversation,
        "user": str(user),
        "parentMessageId": parent,
        "sender": "User" if fields.get("isCreatedByUser") else "GPT-4o",
        "text": "",
        "isCreatedByUser": False,
        "model": None if fields.get("isCreatedByUser") else "gpt-4o",
        "endpoint": "openAI",
        "error": False,
        "unfinished": False,
        "createdAt": created,
        "updatedAt": created,
        "__v": 0,
    }
    document.update(fields)
    return document


def user_turn(user, conversation, name, parent, minutes, text, **fields):
    return message(user, conversation, name, parent, minutes, text=text, isCreatedByUser=True, **fields)


def conversation(
    user: ObjectId, conversation_id: str, title: str, minutes: float, **fields: Any
) -> dict[str, Any]:
    document = {
        "_id": object_id(minutes, conversation_id, str(user)),
        "conversationId": conversation_id,
        "user": str(user),
        "title": title,
        "endpoint": "openAI",
        "model": "gpt-4o",
        "isArchived": False,
        "tags": [],
        "files": [],
        "createdAt": at(minutes),
        "updatedAt": at(minutes + 30),
        "__v": 0,
    }
    document.update(fields)
    return document


def file_document(
    user: ObjectId, file_id: str, filename: str, mime: str, filepath: str, size: int, **fields
) -> dict[str, Any]:
    document = {
        "_id": object_id(0, "file", file_id),
        "user": user,
        "file_id": file_id,
        "bytes": size,
        "filename": filename,
        "filepath": filepath,
        "object": "file",
        "type": mime,
        "source": "local",
        "context": "message_attachment",
        "usage": 1,
        "createdAt": T0,
        "updatedAt": T0,
    }
    document.update(fields)
    return document


def ada_edits() -> list[dict[str, Any]]:
    c = EDITS
    return [
        user_turn(ADA, c, "u1", NO_PARENT, 1, "Hello 👋", tokenCount=3),
        message(ADA, c, "a1", uid("u1"), 2, text="Hi!", tokenCount=2),
        message(ADA, c, "a1b", uid("u1"), 3, text="Hi again (regenerated).", tokenCount=5),
        user_turn(
            ADA,
            c,
            "u2",
            uid("a1b"),
            4,
            "Tell me more",
            files=[
                {
                    "file_id": IMAGE_ID,
                    "filepath": f"/images/{ADA}/photo.png",
                    "type": "image/png",
                    "width": 8,
                    "height": 8,
                }
            ],
        ),
        message(
            ADA,
            c,
            "a2",
            uid("u2"),
            5,
            text="More details.",
            tokenCount=12,
            feedback={"rating": "thumbsUp", "tag": {"key": "accurate"}, "text": "nice"},
        ),
        user_turn(ADA, c, "u2e", uid("a1b"), 6, "Tell me more, but shorter", isEdited=True),
        message(
            ADA,
            c,
            "a2e",
            uid("u2e"),
            7,
            text="",
            sender="Research Agent",
            endpoint="agents",
            content=[
                {"type": "think", "think": "The user wants brevity."},
                {"type": "text", "text": {"value": "Short answer.", "annotations": []}},
                {
                    "type": "tool_call",
                    "tool_call": {
                        "id": "call_1",
                        "name": "web_search",
                        "args": '{"q": "x"}',
                        "output": "3 results",
                        "type": "tool_call",
                    },
                },
                {
                    "type": "image_file",
                    "image_file": {
                        "file_id": AGENT_IMAGE_ID,
                        "filename": "chart.png",
                        "filepath": f"/images/{ADA}/chart.png",
                    },
                },
                {
                    "type": "agent_update",
                    "agent_update": {"index": 1, "runId": "run-1", "agentId": "agent_x"},
                },
            ],
        ),
    ]


def ada_files() -> list[dict[str, Any]]:
    c = FILES
    return [
        user_turn(
            ADA,
            c,
            "u1",
            NO_PARENT,
            61,
            "Please read these",
            files=[
                {
                    "file_id": UPLOAD_ID,
                    "filepath": f"/uploads/{ADA}/{UPLOAD_ID}__report.pdf",
                    "type": "application/pdf",
                },
                {"file_id": S3_ID},
                {"file_id": OPENAI_ID},
                {"file_id": EXPIRED_ID},
                {"file_id": ESCAPE_ID},
            ],
        ),
        message(ADA, c, "a1", uid("u1"), 62, text="Upstream error: 529 overloaded", error=True),
        message(ADA, c, "orphan", uid("gone"), 63, text="My parent was deleted."),
    ]


def ada_multi() -> list[dict[str, Any]]:
    c = MULTI
    return [
        user_turn(ADA, c, "u1", NO_PARENT, 121, "Compare two models"),
        message(ADA, c, "a1", uid("u1"), 122, text="Model one says A."),
        message(
            ADA,
            c,
            "a1-added",
            uid("a1"),
            123,
            text="Model two says B.",
            addedConvo=True,
            model="claude-3",
            sender="Claude",
        ),
        user_turn(ADA, c, "u2", uid("a1-added"), 124, "Thanks"),
        message(ADA, c, "a2", uid("u2"), 125, text="You're welc", unfinished=True),
    ]


def dataset() -> dict[str, list[dict[str, Any]]]:
    """Every collection of the fixture LibreChat database."""
    users = [
        {
            "_id": ADA,
            "name": "Ada Lovelace",
            "username": "ada",
            "email": "Ada@Example.com",
            "emailVerified": True,
            "password": "$2a$10$fixture-bcrypt-hash",
            "totpSecret": "FIXTURETOTP",
            "backupCodes": [{"codeHash": "x"}],
            "provider": "local",
            "role": "USER",
            "avatar": "https://example.com/ada.png",
            "createdAt": T0 - dt.timedelta(days=30),
        },
        {
            "_id": BOB,
            "name": "Bob",
            "username": "bob",
            "email": "bob@example.com",
            "provider": "google",
            "googleId": "g-123",
            "role": "USER",
            "createdAt": T0 - dt.timedelta(days=20),
        },
        {
            "_id": CAROL,
            "name": "Carol",
            "username": "carol",
            "email": "carol@example.com",
            "provider": "local",
            "role": "ADMIN",
            "createdAt": T0 - dt.timedelta(days=10),
        },
    ]
    conversations = [
        conversation(
            ADA,
            EDITS,
            "Edits and regenerations",
            0,
            pinned=True,
            tags=["work"],
            promptPrefix="Be brief.",
            temperature=0.5,
        ),
        conversation(ADA, FILES, "Files, errors and orphans", 60, isArchived=True),
        conversation(ADA, TEMPORARY, "Temporary chat", 90, isTemporary=True, expiredAt=at(90 + 60 * 24 * 30)),
        conversation(ADA, MULTI, "Two models", 120, endpoint="agents", agent_id="agent_x"),
        conversation(
            BOB, BOB_CONVERSATION, "Bob's chat", 200, endpoint="Ollama", endpointType="custom", model="llama3"
        ),
    ]
    bob = [
        user_turn(BOB, FILES, "u1", NO_PARENT, 201, "Bob asks"),
        message(BOB, FILES, "a1", uid("u1"), 202, text="Bob's answer", model="llama3", sender="Ollama"),
        user_turn(BOB, STRAY, "u1", NO_PARENT, 210, "A message whose conversation is gone"),
    ]
    temporary = [user_turn(ADA, TEMPORARY, "t1", NO_PARENT, 91, "Forget this")]
    files = [
        file_document(
            ADA, IMAGE_ID, "photo.png", "image/png", f"/images/{ADA}/photo.png", len(PNG), width=8, height=8
        ),
        file_document(
            ADA,
            AGENT_IMAGE_ID,
            "chart.png",
            "image/png",
            f"/images/{ADA}/chart.png",
            len(PNG),
            context="image_generation",
        ),
        file_document(
            ADA,
            UPLOAD_ID,
            "report.pdf",
            "application/pdf",
            f"/uploads/{ADA}/{UPLOAD_ID}__report.pdf",
            len(PDF),
        ),
        file_document(
            ADA,
            S3_ID,
            "remote.txt",
            "text/plain",
            "https://bucket.s3.amazonaws.com/x/remote.txt",
            10,
            source="s3",
        ),
        file_document(ADA, OPENAI_ID, "assistant.csv", "text/csv", "/files/openai", 20, source="openai"),
        file_document(ADA, ESCAPE_ID, "passwd", "text/plain", "/images/../../../etc/passwd", 100),
    ]
    return {
        "users": users,
        "conversations": conversations,
        "messages": ada_edits() + ada_files() + temporary + ada_multi() + bob,
        "files": files,
        "sharedlinks": [
            {
                "_id": object_id(0, "share-1"),
                "conversationId": EDITS,
                "user": str(ADA),
                "shareId": "share-1",
                "title": "Edits",
                "isPublic": True,
                "createdAt": T0,
            }
        ],
        "presets": [
            {
                "_id": object_id(0, "preset-1"),
                "presetId": "p1",
                "title": "Brief",
                "user": str(ADA),
                "promptPrefix": "Be brief.",
            }
        ],
    }


def write_assets(root: Path) -> Path:
    """LibreChat's local file layout under ``root`` (images/ and uploads/); ``root``."""
    (root / "images" / str(ADA)).mkdir(parents=True, exist_ok=True)
    (root / "uploads" / str(ADA)).mkdir(parents=True, exist_ok=True)
    (root / "images" / str(ADA) / "photo.png").write_bytes(PNG)
    (root / "images" / str(ADA) / "chart.png").write_bytes(PNG[::-1])
    (root / "uploads" / str(ADA) / f"{UPLOAD_ID}__report.pdf").write_bytes(PDF)
    return root


def load_mongo(database, data: dict[str, list[dict[str, Any]]] | None = None) -> None:
    """Insert the fixture into a live database."""
    for name, documents in (data or dataset()).items():
        database[name].insert_many(copy.deepcopy(documents))


def write_dump(
    folder: Path, data: dict[str, list[dict[str, Any]]] | None = None, *, gz: tuple[str, ...] = ()
) -> Path:
    """A mongodump folder ``folder/LibreChat/<collection>.bson`` (``.bson.gz`` for the
    collections named in ``gz``), written with pymongo's bson encoder; ``folder``."""
    database = folder / "LibreChat"
    database.mkdir(parents=True, exist_ok=True)
    for name, documents in (data or dataset()).items():
        body = b"".join(bson.encode(document) for document in documents)
        if name in gz:
            (database / f"{name}.bson.gz").write_bytes(gzip.compress(body))
        else:
            (database / f"{name}.bson").write_bytes(body)
        (database / f"{name}.metadata.json").write_text(json.dumps({"indexes": [], "collectionName": name}))
    return folder


def export_json(
    conversation_id: str, *, recursive: bool, data=None, tree_field: str = "messages"
) -> dict[str, Any]:
    """A LibreChat JSON export of one conversation (``useExportConversation``): with
    ``recursive`` the tree is nested under ``messages`` (each reply in its parent's
    ``children``), as LibreChat writes it; ``tree_field="messagesTree"`` for the older name."""
    data = data or dataset()
    convo = next(
        c for c in data["conversations"] if c["conversationId"] == conversation_id and c["user"] == str(ADA)
    )
    messages = [
        _as_json(m)
        for m in data["messages"]
        if m["conversationId"] == conversation_id and m["user"] == str(ADA)
    ]
    export = {
        "conversationId": conversation_id,
        "endpoint": convo["endpoint"],
        "title": convo["title"],
        "exportAt": "2024-04-01T10:00:00.000Z",
        "branches": True,
        "recursive": recursive,
        "options": {
            "endpoint": convo["endpoint"],
            "model": convo.get("model"),
            "promptPrefix": convo.get("promptPrefix"),
        },
    }
    if recursive:
        export[tree_field] = _nest(messages)
    else:
        export["messages"] = messages
    return export


def _as_json(document: dict[str, Any]) -> dict[str, Any]:
    return json.loads(
        json.dumps(
            document,
            default=lambda v: v.isoformat().replace("+00:00", "Z") if isinstance(v, dt.datetime) else str(v),
        )
    )


def _nest(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    nodes = {m["messageId"]: {**m, "children": []} for m in messages}
    roots = []
    for node in nodes.values():
        parent = nodes.get(node["parentMessageId"])
        (parent["children"] if parent else roots).append(node)
    return roots
