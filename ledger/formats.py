"""What an input file looks like: the chat-export formats people hold, and file names.

A source that is handed a file of another platform says which one it looks like and which
source reads it, instead of a bare "not a <format> export". :func:`export_format` sniffs a
parsed JSON document by the few fields each format always has (see
docs/chat-export-formats.md and the reference notes); :func:`describe_export` turns that
into the sentence for a reject. Only the first elements of an array are looked at, so a
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


FORMATS = (
    ExportFormat(
        "librechat",
        "a LibreChat conversation export",
        "`conversationId` with `messages`",
        lambda value: (
            isinstance(value, dict)
            and isinstance(value.get("conversationId"), str)
            and isinstance(value.get("messages", value.get("messagesTree")), list)
        ),
    ),
    ExportFormat(
        "chatgpt",
        "a ChatGPT export",
        "conversations with `mapping`",
        _any(lambda item: isinstance(item.get("mapping"), dict)),
    ),
    ExportFormat(
        "claude",
        "a Claude export",
        "conversations with `chat_messages`",
        _any(lambda item: isinstance(item.get("chat_messages"), list)),
    ),
    ExportFormat(
        "openwebui",
        "an Open WebUI export",
        "chats with `chat.history` or `chat.messages`",
        _any(
            lambda item: (
                isinstance(item.get("chat"), dict)
                and isinstance(item["chat"].get("history", item["chat"].get("messages")), (dict, list))
            )
        ),
    ),
    ExportFormat(
        "chatbot-ui",
        "a Chatbot UI export",
        "`version` with a `history` of conversations",
        lambda value: (
            isinstance(value, dict) and "version" in value and isinstance(value.get("history"), list)
        ),
    ),
)


def export_format(document: Any) -> ExportFormat | None:
    """The chat-export format a parsed JSON document looks like, if any."""
    for candidate in FORMATS:
        if candidate.matches(document):
            return candidate
    return None


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
