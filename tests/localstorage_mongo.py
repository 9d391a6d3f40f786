"""Fixtures of the localstorage → mongo-toolkit tests: browser exports written the way the
AI MCP Toolkit's frontend writes them, the app's users, and the app's read path.

Inputs (``write_inputs``), owned through an owners file:
- alice: an export (array, pretty-printed) with unicode, a very long message,
  non-string content, a non-ISO timestamp, metrics and models; and a raw localStorage
  dump (``ai-chat-conversations`` as a JSON string) holding one new conversation and a
  newer copy of one from the export;
- bob: an export with two conversations, and ``broken.json`` (not an export);
- carol: an export, but carol has no user in the app.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from bson import ObjectId

WELCOME = "What can I do for you today?"
LONG = ("Lorem ipsum dolor sit amet, ünïcødé ✓ 🧪 — " * 500).strip()
UNICODE = "Zoë, Søren, 李, Иванов, Παπαδόπουλος: 👩🏽‍💻 family 👨‍👩‍👧‍👦 and RTL שלום"


def iso(base: dt.datetime, seconds: float) -> str:
    value = base + dt.timedelta(seconds=seconds)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def message(mid: str, kind: str, content: Any, at: str, **extra: Any) -> dict[str, Any]:
    return {"id": mid, "type": kind, "content": content, "timestamp": at, "isLoading": False, **extra}


def conversation(
    cid: str, title: str, start: dt.datetime, turns: list[tuple[Any, Any]], **extra: Any
) -> dict:
    """A conversation as the store keeps it: the welcome message, then the turns."""
    messages = [message(f"{cid}w", "assistant", WELCOME, iso(start, 0))]
    times = []
    for index, (question, answer) in enumerate(turns):
        messages.append(message(f"{cid}u{index}", "user", question, iso(start, 10 * index + 1)))
        thinking = 1.25 + index
        times.append(thinking)
        metrics = {
            "totalTime": thinking,
            "tokensPerSecond": 42.5,
            "promptTokens": 12 + index,
            "completionTokens": 30,
            "totalTokens": 42 + index,
            "promptEvalDuration": 0.1,
            "evalDuration": 0.7,
        }
        messages.append(
            message(
                f"{cid}a{index}",
                "assistant",
                answer,
                iso(start, 10 * index + 5),
                metrics=metrics,
                model="llama3.2",
            )
        )
    body = {
        "id": cid,
        "title": title,
        "messages": messages,
        "createdAt": iso(start, 0),
        "updatedAt": iso(start, 10 * len(turns) + 5),
        "isLoading": False,
        "thinkingTimes": times,
        "averageThinkingTime": round(sum(times) / len(times), 2) if times else 0,
        "totalThinkingTime": sum(times),
        "responseCount": len(times),
    }
    return {**body, **extra}


T0 = dt.datetime(2024, 3, 1, 9, 30, tzinfo=dt.UTC)


def alice_export() -> list[dict]:
    unicode = conversation("lt1a", "Unicode", T0, [(UNICODE, "Bien sûr ✓"), ("long answer please", LONG)])
    odd = conversation("lt1b", "Odd content", T0 + dt.timedelta(days=1), [({"q": 1.0, "list": [1, "é"]}, 42)])
    odd["messages"][1]["timestamp"] = "yesterday at noon"  # not ISO: repaired from the message before
    old = conversation("lt1c", "Will be newer", T0 + dt.timedelta(days=2), [("first", "answer")])
    return [unicode, odd, old]


def alice_dump() -> dict:
    newer = conversation(
        "lt1c",
        "Will be newer",
        T0 + dt.timedelta(days=2),
        [("first", "answer"), ("second", "another answer")],
    )
    fresh = conversation("lt1d", "From the dump", T0 + dt.timedelta(days=3), [("hello", "hi there")])
    return {"ai-chat-conversations": json.dumps([fresh, newer]), "theme": "dark"}


def bob_export() -> list[dict]:
    return [
        conversation("bb01", "Bob one", T0 + dt.timedelta(days=5), [("a question", "an answer")]),
        conversation("bb02", "New Conversation", T0 + dt.timedelta(days=6), []),
    ]


def carol_export() -> list[dict]:
    return [conversation("cc01", "Carol's", T0 + dt.timedelta(days=7), [("hi", "hello")])]


#: conversation ids that land (carol's is rejected: no such user), and their owners
LANDED = {"lt1a": "alice", "lt1b": "alice", "lt1c": "alice", "lt1d": "alice", "bb01": "bob", "bb02": "bob"}


def write_inputs(folder: Path) -> Path:
    """The input files and their owners file; returns the owners file."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "alice").mkdir()
    (folder / "alice" / "ai-conversations-2024-03-05.json").write_text(
        json.dumps(alice_export(), indent=2, ensure_ascii=False), encoding="utf-8"
    )
    (folder / "alice" / "localstorage.json").write_text(json.dumps(alice_dump()), encoding="utf-8")
    (folder / "bob.json").write_text(json.dumps(bob_export(), indent=2), encoding="utf-8")
    (folder / "broken.json").write_text(json.dumps({"conversations": []}), encoding="utf-8")
    (folder / "carol.json").write_text(json.dumps(carol_export(), indent=2), encoding="utf-8")
    owners = folder / "owners.json"
    owners.write_text(
        json.dumps({"alice": ["alice"], "bob": ["bob.json", "broken.json"], "carol": "carol.json"})
    )
    return owners


def app_user(username: str) -> dict[str, Any]:
    """A user as the app's UserManager.register stores it."""
    now = dt.datetime(2024, 1, 1, 12, 0)
    return {
        "_id": ObjectId(),
        "username": username,
        "email": f"{username}@example.com",
        "password_hash": "$2b$12$abcdefghijklmnopqrstuv",
        "full_name": username.title(),
        "role": "USER",
        "is_active": True,
        "last_login": None,
        "metadata": {},
        "preferences": {},
        "created_at": now,
        "updated_at": now,
    }


def seed_app(database) -> dict[str, ObjectId]:
    """alice and bob exist in the app, and dave with a conversation the app wrote."""
    users = {name: app_user(name) for name in ("alice", "bob", "dave")}
    database.users.insert_many(list(users.values()))
    database.conversations.insert_one(
        {
            "user_id": users["dave"]["_id"],
            "title": "Dave's own",
            "messages": [{"role": "user", "content": "mine", "timestamp": "2024-02-01T00:00:00.000Z"}],
            "status": "active",
            "metadata": {},
            "created_at": dt.datetime(2024, 2, 1),
            "updated_at": dt.datetime(2024, 2, 1),
        }
    )
    return {name: user["_id"] for name, user in users.items()}


def list_conversations(database, user_id: Any) -> list[dict[str, Any]]:
    """The app's read path: ``ConversationManager.list_conversations`` (owner's documents,
    newest ``updated_at`` first) as ``GET /conversations`` returns them
    (``ConversationResponse``: ids as strings, times as naive ``isoformat()``)."""
    found = database.conversations.find({"user_id": user_id}).sort("updated_at", -1)
    return [
        {
            "id": str(c["_id"]),
            "user_id": str(c["user_id"]),
            "title": c["title"],
            "messages": c["messages"],
            "status": c["status"],
            "metadata": c["metadata"],
            "created_at": c["created_at"].isoformat(),
            "updated_at": c["updated_at"].isoformat(),
        }
        for c in found
    ]


def snapshot(database, *, markers: bool = True) -> dict[str, list[dict]]:
    """Every document of every collection, sorted by _id (for "as before" checks);
    without the ledger's markers when ``markers`` is false."""
    hidden = {} if markers else {"chatledger": 0}
    return {
        name: sorted(database[name].find({}, hidden or None), key=lambda d: str(d["_id"]))
        for name in sorted(database.list_collection_names())
    }
