"""Browser conversations as canonical records (DESIGN §2).

Keys: ``user:<username>``, ``conversation:<username>/<id>``,
``message:<username>/<id>/<message id>`` (the browser's own ids; a message without one
is ``#<index>``, a repeated id ``<id>#<index>``).

- Messages keep the file's order: each one's parent is the one before it, and the last
  is the conversation's ``active_leaf``. Role from ``type`` the way the app converts it
  (``assistant``, ``system``, anything else ``user``). Content that is not a string is
  ``JSON.stringify``-ed exactly as the app does on load (compact, keys in file order,
  ``1.0`` as ``1``); a missing content is the empty string. ``metrics`` are kept whole in
  ``metadata.metrics`` and give ``usage`` (``promptTokens`` → ``input_tokens``,
  ``completionTokens`` → ``output_tokens``, ``totalTokens`` → ``total_tokens``). A
  message still loading at export time (``isLoading``) is ``aborted``.
- The app's welcome message (the first message, from the assistant, "What can I do for
  you today?") is kept and marked ``metadata.welcome = true``.
- Times: ISO-8601 strings as written by ``JSON.stringify(new Date())``. The repair rule,
  counted in ``timestamps_repaired``: a number is read as epoch milliseconds; a
  conversation's missing or unreadable ``createdAt`` becomes its earliest message time
  (else its ``updatedAt``, else 1970-01-01), ``updatedAt`` its latest message time (else
  ``createdAt``); a message's missing or unreadable ``timestamp`` becomes the time of the
  message before it (else the conversation's ``createdAt``). The original value is kept
  in ``metadata.repaired`` and, as always, in ``raw``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ledger.kit import EPOCH, Record, Reject, parse_time

WELCOME = "What can I do for you today?"
ROLES = {"assistant": "assistant", "system": "system"}
USAGE = (
    ("promptTokens", "input_tokens"),
    ("completionTokens", "output_tokens"),
    ("totalTokens", "total_tokens"),
)
THINKING = ("thinkingTimes", "averageThinkingTime", "totalThinkingTime", "responseCount")


@dataclass
class Tally:
    """What a pass over files found (logged per file, summed in ``describe``)."""

    conversations: int = 0
    messages: int = 0
    welcome_messages: int = 0
    timestamps_repaired: int = 0
    contents_stringified: int = 0
    duplicates_skipped: int = 0
    rejected: int = 0

    def add(self, other: Tally) -> None:
        for name, value in vars(other).items():
            setattr(self, name, getattr(self, name) + value)


def js_stringify(value: Any) -> str:
    """``JSON.stringify`` of a parsed JSON value: compact, keys in order, integral
    numbers without a fraction, exponents as JavaScript writes them."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{js_stringify(str(k))}:{js_stringify(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(js_stringify(v) for v in value) + "]"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return _js_number(value)
    return json.dumps(value, ensure_ascii=False)


def _js_number(value: float) -> str:
    """JavaScript's Number::toString: the shortest digits, fixed between 1e-7 and 1e21."""
    if not math.isfinite(value):
        return "null"
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    _, digits, exponent = Decimal(repr(abs(value))).normalize().as_tuple()
    text = "".join(map(str, digits))
    point = len(text) + exponent  # the decimal point's position after the first digit
    if len(text) <= point <= 21:
        body = text + "0" * (point - len(text))
    elif 0 < point <= 21:
        body = f"{text[:point]}.{text[point:]}"
    elif -6 < point <= 0:
        body = "0." + "0" * -point + text
    else:
        mantissa = text[0] + (f".{text[1:]}" if len(text) > 1 else "")
        body = f"{mantissa}e{'+' if point > 0 else '-'}{abs(point - 1)}"
    return sign + body


def moment(value: Any) -> tuple[dt.datetime | None, bool]:
    """(time, repaired): ISO-8601 text as is; a number as epoch milliseconds (repaired)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        try:
            return EPOCH + dt.timedelta(milliseconds=value), True
        except OverflowError:
            return None, True
    return parse_time(value), False


def user_record(make: Callable[..., Record], username: str) -> Record:
    return make(
        "user",
        f"user:{username}",
        {
            "email": None,
            "name": None,
            "username": username,
            "avatar_url": None,
            "created_at": None,
            "external_ids": {},
        },
        {"owner_username": username},
    )


@dataclass
class Times:
    created: dt.datetime
    updated: dt.datetime
    repaired: dict[str, Any] = field(default_factory=dict)


def conversation_times(conversation: dict[str, Any], messages: list[Any]) -> Times:
    stamps = [moment(m.get("timestamp"))[0] for m in messages if isinstance(m, dict)]
    stamps = [stamp for stamp in stamps if stamp is not None]
    created, created_fixed = moment(conversation.get("createdAt"))
    updated, updated_fixed = moment(conversation.get("updatedAt"))
    repaired = {}
    if created is None or created_fixed:
        repaired["createdAt"] = conversation.get("createdAt")
    if updated is None or updated_fixed:
        repaired["updatedAt"] = conversation.get("updatedAt")
    if created is None:
        created = min(stamps) if stamps else updated or EPOCH
    if updated is None:
        updated = max(stamps) if stamps else created
    return Times(created, updated, repaired)


def conversation_records(
    make: Callable[..., Record], username: str, conversation: Any, where: str, tally: Tally
) -> list[Record | Reject]:
    """The conversation's records, or one reject saying why it cannot be read."""
    if not isinstance(conversation, dict):
        return [
            Reject(
                where, f"a conversation must be an object, found {type(conversation).__name__}", conversation
            )
        ]
    native_id = conversation.get("id")
    if isinstance(native_id, int) and not isinstance(native_id, bool):
        native_id = str(native_id)
    if not isinstance(native_id, str) or not native_id:
        return [Reject(where, "the conversation has no id", conversation)]
    messages = conversation.get("messages")
    key = f"conversation:{username}/{native_id}"
    if not isinstance(messages, list):
        return [
            Reject(
                f"{where} ({native_id})", "the conversation's messages are not an array", conversation, key
            )
        ]
    times = conversation_times(conversation, messages)
    tally.timestamps_repaired += len(times.repaired)
    records: list[Record | Reject] = []
    parent = None
    previous_time = times.created
    seen: set[str] = set()
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            records.append(
                Reject(f"{where} ({native_id}) message {index}", "a message must be an object", message)
            )
            continue
        message_key = f"message:{username}/{native_id}/{_message_id(message, index, seen)}"
        record = _message_record(make, key, message_key, parent, message, index, previous_time, tally)
        records.append(record)
        parent, previous_time = message_key, parse_time(record.data["created_at"])
    title = conversation.get("title")
    metadata = {
        "source_id": native_id,
        **{name: conversation[name] for name in THINKING if name in conversation},
    }
    if times.repaired:
        metadata["repaired"] = times.repaired
    head = make(
        "conversation",
        key,
        {
            "owner": f"user:{username}",
            "title": title if isinstance(title, str) else None,
            "created_at": times.created,
            "updated_at": times.updated,
            "assistant": None,
            "model": None,
            "system_prompt": None,
            "pinned": False,
            "archived": False,
            "tags": [],
            "active_leaf": parent,
            "metadata": metadata,
        },
        {name: value for name, value in conversation.items() if name != "messages"},
        [f"user:{username}"],
    )
    tally.conversations += 1
    return [head, *records]


def _message_id(message: dict[str, Any], index: int, seen: set[str]) -> str:
    native = message.get("id")
    text = (
        str(native)
        if isinstance(native, (str, int)) and not isinstance(native, bool) and native != ""
        else None
    )
    if text is None:
        text = f"#{index}"
    elif text in seen:
        text = f"{text}#{index}"
    seen.add(text)
    return text


def _message_record(
    make: Callable[..., Record],
    conversation_key: str,
    key: str,
    parent: str | None,
    message: dict[str, Any],
    index: int,
    previous_time: dt.datetime | None,
    tally: Tally,
) -> Record:
    content = message.get("content")
    metadata: dict[str, Any] = {"source_id": message.get("id")}
    if content is None and "content" not in message:
        content, metadata["content_missing"] = "", True
    elif not isinstance(content, str):
        content, metadata["content_stringified"] = js_stringify(content), True
        tally.contents_stringified += 1
    created, fixed = moment(message.get("timestamp"))
    if created is None or fixed:
        metadata["repaired"] = {"timestamp": message.get("timestamp")}
        tally.timestamps_repaired += 1
    if created is None:
        created = previous_time or EPOCH
    role = ROLES.get(message.get("type"), "user")
    if index == 0 and role == "assistant" and content == WELCOME:
        metadata["welcome"] = True
        tally.welcome_messages += 1
    metrics = message.get("metrics") if isinstance(message.get("metrics"), dict) else None
    if metrics is not None:
        metadata["metrics"] = metrics
    usage = {
        name: metrics[native]
        for native, name in USAGE
        if metrics and isinstance(metrics.get(native), int) and not isinstance(metrics.get(native), bool)
    }
    model = message.get("model")
    tally.messages += 1
    return make(
        "message",
        key,
        {
            "conversation": conversation_key,
            "parent": parent,
            "role": role,
            "author": None,
            "model": model if isinstance(model, str) else None,
            "created_at": created,
            "updated_at": None,
            "status": "aborted" if message.get("isLoading") is True else "complete",
            "parts": [{"type": "text", "text": content}],
            "files": [],
            "sibling_group": 0,
            "usage": usage,
            "feedback": None,
            "metadata": metadata,
        },
        message,
        [conversation_key, parent],
    )
