"""What an input file looks like: the chat-export formats people hold, and file names.

A source that is handed a file of another platform says which one it looks like and which
source reads it, instead of a bare "not a <format> export". :func:`export_format` sniffs a
parsed JSON document by the few fields each format always has (see
docs/chat-export-formats.md and the reference notes); :func:`describe_export` turns that
into the sentence for a reject, and :func:`format_name` into the source type's name. Only the first elements of an array are looked at, so a
large file costs nothing more.

File names: POSIX file names are bytes; Python hands undecodable ones over with lone
surrogates, which no database, JSON encoder or log line accepts. :func:`name_problem`
says when a name is not UTF-8 and :func:`printable_path` gives a form (``\\xff``
escapes) that can be stored and shown, so such a file becomes one reject naming it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

#: How many leading elements of an array are sniffed.
SNIFF_ELEMENTS = 5


@dataclass(frozen=True)
class ExportFormat:
    name: str  # the source type that reads it
    label: str  # what it is, for people
    evidence: str  # the field that gave it away
    matches: Callable[[Any], bool]


def _first_dicts(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [item for item in value[:SNIFF_ELEMENTS] if isinstance(item, dict)]
    return []


def _any(test: Callable[[dict[str, Any]], bool]) -> Callable[[Any], bool]:
    return lambda value: any(test(item) for item in _first_dicts(value))


def _is_chatgpt(item: dict[str, Any]) -> bool:
    return isinstance(item.get("mapping"), dict) or "current_node" in item


def _is_openwebui(item: dict[str, Any]) -> bool:
    chat = item.get("chat")
    if isinstance(chat, dict) and isinstance(chat.get("history", chat.get("messages")), (dict, list)):
        return True
    history = item.get("history")  # a bare chat
    return isinstance(history, dict) and "messages" in history


def _is_librechat(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("conversationId"), str)
        and isinstance(value.get("messages", value.get("messagesTree")), list)
    )


def _is_chatbotui(value: Any) -> bool:
    if isinstance(value, dict) and isinstance(value.get("history"), list):  # v2–v4
        return True
    items = _first_dicts(value) if isinstance(value, list) else []  # v1: a bare array
    return any(
        "name" in item
        and isinstance(item.get("messages"), list)
        and all(isinstance(m, dict) and "role" in m and "content" in m for m in item["messages"][:3])
        for item in items
    )


FORMATS = (
    ExportFormat(
        "chatgpt",
        "a ChatGPT export",
        "conversations with `mapping`",
        _any(_is_chatgpt),
    ),
    ExportFormat(
        "claude",
        "a Claude.ai export",
        "conversations with `chat_messages`",
        _any(lambda item: "chat_messages" in item),
    ),
    ExportFormat(
        "openwebui",
        "an Open WebUI export",
        "chats with `chat.history` or `history.messages`",
        _any(_is_openwebui),
    ),
    ExportFormat(
        "librechat",
        "a LibreChat conversation export",
        "`conversationId` with `messages`",
        _is_librechat,
    ),
    ExportFormat(
        "chatbotui",
        "a Chatbot UI export",
        "a `history` of conversations, or conversations of `{role, content}` messages",
        _is_chatbotui,
    ),
)
#: format name → how messages name it
FORMAT_LABELS = {found.name: f"{found.label} ({found.evidence})" for found in FORMATS}


def export_format(document: Any) -> ExportFormat | None:
    """The chat-export format a parsed JSON document looks like, if any."""
    for candidate in FORMATS:
        if candidate.matches(document):
            return candidate
    return None


def format_name(document: Any) -> str | None:
    """The source type that reads what ``document`` looks like (None: no known export)."""
    found = export_format(document)
    return found.name if found else None


def label(name: str | None) -> str:
    """How a message names a format (``"no known chat export"`` for None)."""
    return FORMAT_LABELS.get(name or "", "no known chat export")


def describe_export(document: Any) -> str | None:
    """What a parsed JSON document looks like and which source reads it, for a reject:
    "a ChatGPT export (conversations with `mapping`); use the chatgpt source"."""
    found = export_format(document)
    if found is None:
        return None
    return f"{found.label} ({found.evidence}); use the {found.name} source"


def name_problem(path: str | PurePath) -> str | None:
    """Why a file name cannot be used as text (None: it is valid UTF-8)."""
    try:
        os.fspath(path).encode("utf-8")
    except UnicodeEncodeError:
        return "the file name is not valid UTF-8"
    return None


def printable_path(path: str | PurePath) -> str:
    """``path`` as text that is always valid UTF-8: undecodable bytes as ``\\xNN``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")
