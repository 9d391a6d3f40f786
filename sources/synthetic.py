"""Deterministic, realistic chat data at any scale: the source tests, demos and benchmarks use.

The same options always give the same records, byte for byte. Each user is one scope
(``user:<n>``) and each conversation draws from its own seeded generator, so changing
one conversation never shifts another. What a conversation looks like:

- a message tree: each turn is a user message and an answer; some user messages are
  edited (a newer sibling with its own answer), some answers regenerated (a newer
  sibling), some answered by a multi-model group (``sibling_group`` > 0); tool calls with
  a ``tool`` message; reasoning parts; rare errors and aborted answers;
- ``active_leaf`` follows the newest sibling at every level (LibreChat's display rule);
- attachments with real bytes (text, CSV, PNG, PDF), one logo shared by every user so the
  blob store deduplicates it, a few files whose bytes are ``missing``;
- unicode in every script the tests care about, emoji (ZWJ sequences, skin tones), and a
  very long message now and then; millisecond timestamps from 2022 on.

``--mutate F`` changes a seeded fraction F of conversations relative to the seed's base
data (title edits, message edits, appended turns, deleted messages, deleted
conversations) and deletes a small fraction of users, to exercise re-extraction. Scope
fingerprints cover exactly what shapes a user's data, so a re-run with other ``--mutate``
re-reads only the users it changes.
"""

from __future__ import annotations

import hashlib
import random
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ledger.kit import Record, Scope, Source, blob_ref, digest, option

#: Bump when the generator's output changes, so fingerprints change with it.
GENERATOR_VERSION = 1

EPOCH_2022_MS = 1_640_995_200_000
YEAR_MS = 365 * 24 * 3600 * 1000

FIRST_NAMES = [
    "Ada",
    "José",
    "Zoë",
    "Chloé",
    "Søren",
    "Ægir",
    "Małgorzata",
    "Øystein",
    "Nguyễn",
    "Björk",
    "Renée",
    "François",
    "Łukasz",
    "Ibrahim",
    "Aarav",
    "Mei",
    "Yuki",
    "Olúwaseun",
    "Ana",
    "Liam",
    "Priya",
    "Mateo",
    "Fatima",
    "Noah",
]
LAST_NAMES = [
    "Lovelace",
    "Müller",
    "García",
    "O'Brien",
    "Ñúñez",
    "Dvořák",
    "Kowalski",
    "Smith",
    "李",
    "王",
    "佐藤",
    "Иванов",
    "Παπαδόπουλος",
    "Al-Farsi",
    "Okafor",
    "Nakamura",
    "Øberg",
]
WORDS = [
    "the",
    "a",
    "of",
    "to",
    "and",
    "in",
    "is",
    "for",
    "that",
    "it",
    "on",
    "with",
    "as",
    "this",
    "be",
    "are",
    "by",
    "from",
    "at",
    "or",
    "an",
    "data",
    "model",
    "answer",
    "question",
    "please",
    "explain",
    "summary",
    "table",
    "code",
    "error",
    "migration",
    "database",
    "query",
    "index",
    "user",
    "chat",
    "history",
    "export",
    "import",
    "token",
    "context",
    "window",
    "latency",
    "budget",
    "plan",
    "review",
    "release",
    "deploy",
    "rollback",
    "schema",
    "column",
    "value",
    "invoice",
    "customer",
    "report",
    "quarterly",
    "forecast",
    "revenue",
    "meeting",
    "agenda",
    "draft",
    "email",
    "policy",
    "security",
    "audit",
    "café",
    "naïve",
    "façade",
    "résumé",
    "jalapeño",
    "Straße",
    "Ærø",
    "smörgåsbord",
    "日本語",
    "中文",
    "한국어",
    "русский",
    "ελληνικά",
    "العربية",
    "עברית",
    "हिन्दी",
    "ไทย",
    "🎉",
    "🚀",
    "👍🏽",
    "👩\u200d💻",
    "🧑🏿\u200d🔬",
    "❤️",
    "🇳🇴",
    "✅",
    "⚠️",
    "🤖",
]
TOPICS = [
    "Quarterly report",
    "Database migration",
    "Trip to Kyōto",
    "Résumé review",
    "Python help",
    "Onboarding plan",
    "SQL index tuning",
    "Email draft",
    "Ideas 💡",
    "Straße names",
    "数据分析",
    "Погода",
    "Recipe: jalapeño bread",
    "Security audit",
]
MODELS = ["gpt-4o", "claude-3-5-sonnet", "gemini-1.5-pro", "llama-3.1-70b", "o1-mini"]
TOOLS = ["web_search", "run_python", "file_search", "calculator"]
TAGS = ["work", "personal", "research", "urgent", "archive-me", "🧪"]

P_EDIT, P_REGENERATE, P_GROUP, P_TOOL = 0.08, 0.10, 0.04, 0.05
P_REASONING, P_ERROR, P_ABORTED, P_LONG = 0.25, 0.01, 0.01, 0.002
P_MISSING_FILE, P_LOGO = 0.05, 0.15


@dataclass
class SyntheticOptions:
    seed: int = option(0, help="Seed: the same seed and options give the same records.")
    users: int = option(10, help="Number of users.")
    conversations_per_user: int = option(5, help="Conversations per user.")
    turns: int = option(4, help="Average user turns per conversation.")
    attachment_rate: float = option(0.05, help="Probability that a user message carries attachments.")
    mutate: float = option(
        0.0,
        help="Fraction of conversations changed or deleted relative to the seed's base "
        "data (0 to 1); a small fraction of users is deleted too.",
    )


def _unit(*parts: Any) -> float:
    """A uniform [0, 1) number determined by ``parts`` (cheaper than seeding a Random)."""
    bits = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return struct.unpack(">Q", bits)[0] / 2**64


def _iso(ms: int) -> str:
    year, month, day, hour, minute, second = time.gmtime(ms // 1000)[:6]
    # the hot path: %-formatting is the fastest here
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (year, month, day, hour, minute, second, ms % 1000)  # noqa: UP031


def _uuid(rng: random.Random) -> str:
    """A random (version 4) UUID drawn from ``rng``."""
    bits = rng.getrandbits(122)
    return "%08x-%04x-4%03x-%04x-%012x" % (  # noqa: UP031 (the hot path)
        bits >> 90,
        (bits >> 74) & 0xFFFF,
        (bits >> 62) & 0xFFF,
        0x8000 | ((bits >> 48) & 0x3FFF),
        bits & 0xFFFFFFFFFFFF,
    )


def _png(width: int, height: int, rng: random.Random) -> bytes:
    """A valid, tiny RGB PNG with seeded pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    rows = b"".join(b"\x00" + rng.randbytes(width * 3) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


LOGO = _png(32, 32, random.Random("chatledger-logo"))


def _corpus(words: int = 200_000) -> tuple[str, list[int]]:
    """A fixed text and the offsets of its word starts: texts are slices of it, which is
    far cheaper than drawing every word."""
    rng = random.Random("chatledger-corpus")
    text = " ".join(rng.choices(WORDS, k=words))
    starts = [0] + [index + 1 for index, char in enumerate(text) if char == " "]
    return text, starts


CORPUS, WORD_STARTS = _corpus()


class _Conversation:
    """Builds one conversation's records with its own seeded generator."""

    def __init__(self, source: SyntheticSource, user: dict[str, Any], index: int) -> None:
        options = source.options
        self.source = source
        self.user = user
        self.index = index
        self.rng = random.Random(f"{options.seed}:{user['n']}:{index}")
        self.id = _uuid(self.rng)
        self.key = f"conversation:{self.id}"
        self.messages: list[dict[str, Any]] = []
        self.files: list[Record] = []
        self.clock = user["created_ms"] + int(self.rng.random() * YEAR_MS)

    # -- text ----------------------------------------------------------------------------

    def text(self, low: int, high: int) -> str:
        rng = self.rng
        if rng.random() < P_LONG:
            low, high = 3000, 15000
        count = rng.randint(low, high)
        first = rng.randrange(len(WORD_STARTS) - count - 1)
        sentence = CORPUS[WORD_STARTS[first] : WORD_STARTS[first + count] - 1]
        return sentence[0].upper() + sentence[1:] + rng.choice((".", "?", "!", " 🙂"))

    def tick(self, low_s: float, high_s: float) -> int:
        self.clock += int(self.rng.uniform(low_s, high_s) * 1000)
        return self.clock

    # -- messages ------------------------------------------------------------------------

    def add(
        self,
        role: str,
        parent: dict | None,
        parts: list[dict[str, Any]],
        *,
        model: str | None = None,
        group: int = 0,
        status: str = "complete",
        files: list[str] = (),
    ) -> dict[str, Any]:
        rng = self.rng
        usage = {}
        feedback = None
        if role == "assistant":
            usage = {
                "input_tokens": 40 + 50 * len(self.messages),
                "output_tokens": sum(len(part.get("text", "")) // 4 for part in parts),
            }
            if rng.random() < 0.03:
                feedback = {"rating": rng.choice(("up", "down")), "text": None}
        message = {
            "id": _uuid(rng),
            "parent": parent,
            "role": role,
            "model": model,
            "group": group,
            "status": status,
            "parts": parts,
            "files": list(files),
            "ms": self.tick(2, 90) if role != "user" else self.tick(20, 900),
            "usage": usage,
            "feedback": feedback,
            "children": [],
        }
        if parent is not None:
            parent["children"].append(message)
        self.messages.append(message)
        return message

    def user_turn(self, parent: dict | None) -> dict[str, Any]:
        files = self.attachments() if self.rng.random() < self.source.options.attachment_rate else []
        return self.add("user", parent, [{"type": "text", "text": self.text(4, 40)}], files=files)

    def answer(self, parent: dict, model: str, group: int = 0) -> dict[str, Any]:
        rng = self.rng
        parts: list[dict[str, Any]] = []
        if rng.random() < P_REASONING:
            parts.append({"type": "reasoning", "text": self.text(10, 60)})
        status = "complete"
        roll = rng.random()
        if roll < P_ERROR:
            status = "error"
            parts.append({"type": "error", "text": "Upstream model error: 529 overloaded"})
        elif roll < P_ERROR + P_ABORTED:
            status = "aborted"
            parts.append({"type": "text", "text": self.text(3, 15)})
        else:
            parts.append({"type": "text", "text": self.text(15, 160)})
            if rng.random() < 0.1:
                parts.append({"type": "code", "language": "python", "text": "print('héllo 🌍')\n"})
        return self.add("assistant", parent, parts, model=model, group=group, status=status)

    def tool_exchange(self, parent: dict, model: str) -> dict[str, Any]:
        tool = self.rng.choice(TOOLS)
        call_id = f"call_{self.rng.getrandbits(48):012x}"
        call = self.add(
            "assistant",
            parent,
            [
                {"type": "text", "text": "Let me check that."},
                {"type": "tool_call", "id": call_id, "name": tool, "args": {"q": self.text(2, 6)}},
            ],
            model=model,
        )
        result = self.add("tool", call, [{"type": "tool_result", "id": call_id, "text": self.text(10, 40)}])
        return self.answer(result, model)

    def attachments(self) -> list[str]:
        keys = []
        for _ in range(self.rng.choice((1, 1, 1, 2))):
            record = self.file()
            self.files.append(record)
            keys.append(record.key)
        return keys

    def file(self) -> Record:
        rng = self.rng
        file_id = _uuid(rng)
        kind = rng.random()
        if kind < P_LOGO:
            name, mime, content = "company-logo.png", "image/png", LOGO
        elif kind < 0.45:
            name, mime = f"notes-{rng.randint(1, 99)}.txt", "text/plain"
            content = self.text(20, 400).encode()
        elif kind < 0.65:
            name, mime = "figures.csv", "text/csv"
            lines = ["month,revenue,région"] + [
                f"{m},{rng.randint(1000, 99999)},{rng.choice(['Nord', 'Süd', 'Île'])}" for m in range(1, 13)
            ]
            content = "\n".join(lines).encode()
        elif kind < 0.85:
            name, mime = f"photo-{rng.randint(1, 999)}.png", "image/png"
            content = _png(rng.randint(4, 48), rng.randint(4, 48), rng)
        else:
            name, mime = "Bericht_Überblick.pdf", "application/pdf"
            content = b"%PDF-1.4\n" + self.text(50, 300).encode() + b"\n%%EOF\n"
        data: dict[str, Any] = {
            "owner": self.user["key"],
            "filename": name,
            "mime": mime,
            "size": len(content),
        }
        native = {"file_id": file_id, "name": name, "type": mime, "bytes": len(content)}
        if rng.random() < P_MISSING_FILE:
            data.update(sha256=None, blob=None, missing="expired temporary upload")
        else:
            sha256 = self.source.context.blobs.put_bytes(content)
            data.update(sha256=sha256, blob=blob_ref(sha256), missing=None)
        return self.source.record("file", f"file:{file_id}", data, native, refs=[self.user["key"]])

    # -- the tree ------------------------------------------------------------------------

    def build(self) -> None:
        rng = self.rng
        model = rng.choice(MODELS)
        parent = None
        for _ in range(max(1, int(rng.gauss(self.source.options.turns, 1.5)))):
            asked = self.user_turn(parent)
            if parent is not None and rng.random() < P_EDIT:
                self.answer(asked, model)  # the old question keeps its answer
                asked = self.user_turn(parent)  # the edit: a newer sibling
            if rng.random() < P_TOOL:
                parent = self.tool_exchange(asked, model)
            elif rng.random() < P_GROUP:
                models = rng.sample(MODELS, rng.randint(2, 3))
                answers = [self.answer(asked, name, group=1) for name in models]
                parent = answers[-1]
            else:
                parent = self.answer(asked, model)
                if rng.random() < P_REGENERATE:
                    parent = self.answer(asked, model)
        self.model = model

    def mutate(self, action: str) -> None:
        if action == "append":
            asked = self.user_turn(self.active_leaf())
            self.answer(asked, self.model)
        elif action == "edit":
            target = self.rng.choice(self.messages)
            target["parts"] = [dict(part) for part in target["parts"]]
            last_part = target["parts"][-1]
            last_part["text"] = last_part.get("text", "") + " (edited ✏️)"
        elif action == "delete_message":
            leaf = self.active_leaf()
            if leaf["parent"] is not None:
                leaf["parent"]["children"].remove(leaf)
                self.messages.remove(leaf)

    def active_leaf(self) -> dict[str, Any]:
        roots = [m for m in self.messages if m["parent"] is None]
        node = max(roots, key=lambda m: m["ms"])
        while node["children"]:
            node = max(node["children"], key=lambda m: m["ms"])
        return node

    def records(self, action: str | None) -> list[Record]:
        source, user, rng = self.source, self.user, self.rng
        title = rng.choice(TOPICS)
        system_prompt = (
            "You are a concise assistant. Réponds en français si besoin." if rng.random() < 0.2 else None
        )
        pinned, archived = rng.random() < 0.05, rng.random() < 0.08
        tags = rng.sample(TAGS, rng.randint(0, 2))
        created = self.clock
        self.build()
        if action == "title":
            title += " (renamed)"
        elif action:
            self.mutate(action)
        leaf = self.active_leaf()
        conversation_key = self.key
        out: list[Record] = list(self.files)
        out.append(
            source.record(
                "conversation",
                conversation_key,
                {
                    "owner": user["key"],
                    "title": title,
                    "created_at": _iso(created),
                    "updated_at": _iso(max(m["ms"] for m in self.messages)),
                    "assistant": None,
                    "model": self.model,
                    "system_prompt": system_prompt,
                    "pinned": pinned,
                    "archived": archived,
                    "tags": tags,
                    "active_leaf": self.message_key(leaf),
                    "metadata": {"generator": GENERATOR_VERSION},
                },
                {"id": self.id, "user": user["id"], "title": title, "model": self.model},
                refs=[user["key"]],
            )
        )
        for message in self.messages:
            out.append(self.message_record(message))
        return out

    def message_key(self, message: dict[str, Any]) -> str:
        return f"message:{self.id}/{message['id']}"

    def message_record(self, message: dict[str, Any]) -> Record:
        parent = message["parent"]
        parent_key = self.message_key(parent) if parent is not None else None
        role = message["role"]
        created = _iso(message["ms"])
        return self.source.record(
            "message",
            self.message_key(message),
            {
                "conversation": self.key,
                "parent": parent_key,
                "role": role,
                "author": self.user["name"] if role == "user" else message["model"] or role,
                "model": message["model"],
                "created_at": created,
                "updated_at": created,
                "status": message["status"],
                "parts": message["parts"],
                "files": message["files"],
                "sibling_group": message["group"],
                "usage": message["usage"],
                "feedback": message["feedback"],
                "metadata": {},
            },
            {
                "id": message["id"],
                "conversation_id": self.id,
                "parent_id": parent["id"] if parent else None,
                "role": role,
                "model": message["model"],
                "ts": message["ms"],
                "content": message["parts"],
                "attachments": message["files"],
            },
            refs=[self.key, parent_key, *message["files"]],
        )


class SyntheticSource(Source):
    type_name = "synthetic"
    Options = SyntheticOptions

    def _user_gone(self, n: int) -> bool:
        return (
            self.options.mutate > 0 and _unit(self.options.seed, "user-gone", n) < self.options.mutate * 0.05
        )

    def _action(self, n: int, index: int) -> str | None:
        mutate = self.options.mutate
        if mutate <= 0 or _unit(self.options.seed, "mutate", n, index) >= mutate:
            return None
        roll = _unit(self.options.seed, "action", n, index)
        for action, upto in (("title", 0.3), ("edit", 0.6), ("append", 0.8), ("delete_message", 0.9)):
            if roll < upto:
                return action
        return "delete"

    def scope_count(self) -> int:
        return self.options.users

    def scopes(self) -> Iterator[Scope]:
        options = self.options
        shape = {
            "generator": GENERATOR_VERSION,
            "seed": options.seed,
            "conversations": options.conversations_per_user,
            "turns": options.turns,
            "attachment_rate": options.attachment_rate,
        }
        for n in range(options.users):
            if self._user_gone(n):
                continue
            actions = [self._action(n, index) for index in range(options.conversations_per_user)]
            renamed = options.mutate > 0 and _unit(options.seed, "rename", n) < options.mutate * 0.1
            fingerprint = digest({**shape, "user": n, "actions": actions, "renamed": renamed})
            yield Scope(f"user:{n:07d}", complete=True, fingerprint=fingerprint)

    def _user(self, n: int) -> tuple[dict[str, Any], Record]:
        rng = random.Random(f"{self.options.seed}:{n}")
        user_id = _uuid(rng)
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        name = f"{first} {last}"
        if self.options.mutate > 0 and _unit(self.options.seed, "rename", n) < self.options.mutate * 0.1:
            name += " (renamed)"
        email = f"user{n}.{user_id[:6]}@example.com"
        created_ms = EPOCH_2022_MS + int(rng.random() * YEAR_MS)
        key = f"user:{user_id}"
        data = {
            "email": email,
            "name": name,
            "username": f"user{n}",
            "avatar_url": f"https://avatars.example.com/{user_id}.png",
            "created_at": _iso(created_ms),
            "external_ids": {"synthetic": str(n)},
        }
        native = {"id": user_id, "n": n, "name": name, "email": email, "created": created_ms}
        user = {"n": n, "id": user_id, "key": key, "name": name, "created_ms": created_ms}
        return user, self.record("user", key, data, native)

    def read(self, scope: Scope, cursor: Any = None) -> Iterator[tuple[list[Record], Any]]:
        n = int(scope.name.split(":", 1)[1])
        user, user_record = self._user(n)
        yield [user_record], {"conversation": -1}
        for index in range(self.options.conversations_per_user):
            action = self._action(n, index)
            if action == "delete":
                continue
            conversation = _Conversation(self, user, index)
            yield conversation.records(action), {"conversation": index}
