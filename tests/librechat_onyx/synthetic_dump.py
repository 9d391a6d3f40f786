"""A synthetic LibreChat mongodump of any size, written document by document with
pymongo's ``bson`` (memory stays flat), for the benchmark.

Per conversation: user/assistant turns; about 8 % regenerated answers (a sibling), 4 %
edited questions (a sibling with its own answer), 2 % "+ add model" answers under an
answer, every fifth answer made of agent content parts (think, text, tool_call), a
thumbs-up now and then. Every 50th conversation is shared. Deterministic per seed.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from pathlib import Path
from typing import Any

import bson
from bson import ObjectId

NO_PARENT = "00000000-0000-0000-0000-000000000000"
START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
WORDS = [
    "the",
    "a",
    "of",
    "to",
    "and",
    "in",
    "data",
    "model",
    "answer",
    "question",
    "explain",
    "summary",
    "table",
    "code",
    "error",
    "café",
    "日本語",
    "🚀",
]


def write_synthetic_dump(folder: Path, *, messages: int, users: int, seed: int = 1) -> dict[str, int]:
    """Write ``folder/LibreChat/*.bson`` holding exactly ``messages`` messages; counts."""
    database = folder / "LibreChat"
    database.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    user_ids = [ObjectId(f"{0x65000000 + n:08x}{n:016x}") for n in range(users)]
    counts = {"users": users, "conversations": 0, "messages": 0, "shared": 0}
    with open(database / "users.bson", "wb") as out:
        out.writelines(bson.encode({"_id": user_id, "email": f"bench{n}@example.com", "name": f"Bench {n}",
                                   "username": f"bench{n}", "provider": "local", "createdAt": START}) for n, user_id in enumerate(user_ids))  # fmt: skip
    with (
        open(database / "conversations.bson", "wb") as conversations,
        open(database / "messages.bson", "wb") as messages_out,
        open(database / "sharedlinks.bson", "wb") as shares,
    ):
        while counts["messages"] < messages:
            user = user_ids[counts["conversations"] % users]
            conversation_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            made = _conversation(
                rng, str(user), conversation_id, messages - counts["messages"], counts["conversations"]
            )
            messages_out.writelines(bson.encode(document) for document in made)
            created = made[0]["createdAt"]
            conversations.write(bson.encode({
                "_id": ObjectId(), "conversationId": conversation_id, "user": str(user), "title": _text(rng, 3, 6),
                "endpoint": "openAI", "model": "gpt-4o", "tags": [], "createdAt": created,
                "updatedAt": made[-1]["createdAt"],
            }))  # fmt: skip
            if counts["conversations"] % 50 == 0:
                shares.write(
                    bson.encode(
                        {
                            "_id": ObjectId(),
                            "conversationId": conversation_id,
                            "user": str(user),
                            "shareId": conversation_id[:8],
                        }
                    )
                )
                counts["shared"] += 1
            counts["conversations"] += 1
            counts["messages"] += len(made)
    return counts


def _text(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choices(WORDS, k=rng.randint(low, high)))


def _conversation(
    rng: random.Random, user: str, conversation_id: str, budget: int, index: int
) -> list[dict[str, Any]]:
    clock = START + dt.timedelta(minutes=index)
    made: list[dict[str, Any]] = []

    def add(parent: str, by_user: bool, **fields: Any) -> str:
        nonlocal clock
        clock += dt.timedelta(seconds=rng.randint(2, 90))
        message_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        made.append({
            "_id": ObjectId(), "messageId": message_id, "conversationId": conversation_id, "user": user,
            "parentMessageId": parent, "isCreatedByUser": by_user, "sender": "User" if by_user else "GPT-4o",
            "text": fields.pop("text", _text(rng, 4, 40)), "model": None if by_user else "gpt-4o",
            "endpoint": "openAI", "error": False, "unfinished": False, "tokenCount": rng.randint(5, 400),
            "createdAt": clock, "updatedAt": clock, **fields,
        })  # fmt: skip
        return message_id

    parent = NO_PARENT
    for _ in range(max(1, rng.randint(2, 8))):
        if len(made) + 4 > budget:
            break
        question = add(parent, True)
        if parent != NO_PARENT and rng.random() < 0.04:
            add(question, False)
            question = add(parent, True)
        answer = add(question, False, **_answer_body(rng, len(made)))
        if rng.random() < 0.08:
            answer = add(question, False)
        if rng.random() < 0.02:
            answer = add(answer, False, addedConvo=True, model="claude-3", sender="Claude")
        if rng.random() < 0.03:
            made[-1]["feedback"] = {"rating": "thumbsUp"}
        parent = answer
    while len(made) < min(budget, 2):
        parent = add(parent if made else NO_PARENT, not made)
    return made[:budget]


def _answer_body(rng: random.Random, position: int) -> dict[str, Any]:
    if position % 5:
        return {}
    return {"text": "", "content": [
        {"type": "think", "think": _text(rng, 5, 20)},
        {"type": "text", "text": _text(rng, 10, 60)},
        {"type": "tool_call", "tool_call": {"id": "call_1", "name": "web_search", "args": "{}", "output": "ok"}},
    ]}  # fmt: skip
