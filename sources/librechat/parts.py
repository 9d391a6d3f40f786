"""A LibreChat message's text and ``content[]`` as canonical parts, and the files it uses.

| LibreChat | canonical part |
| --- | --- |
| ``text`` field (non-empty) | ``text`` (first, unless ``content`` already has text) |
| ``text`` of a message with ``error: true`` | ``error`` (last) |
| ``content[]`` ``text`` / ``text_delta`` (string or ``{value}``) | ``text`` (``annotations`` kept) |
| ``think`` (string or ``{value}``) | ``reasoning`` |
| ``tool_call`` ``{id, name, args, output}``; Assistants ``code_interpreter`` … | ``tool_call`` with ``id``, ``name``, ``args``, ``output`` |
| ``image_file`` ``{file_id, …}`` | ``image`` with ``file`` (the file record's key) |
| ``image_url`` (string or ``{url}``) | ``image`` with ``url`` |
| ``error`` | ``error`` |
| ``agent_update``, ``summary``, ``video_url``, ``input_audio``, anything else | ``other`` with the native part |

Files of a message: ``files[].file_id`` (user uploads), ``attachments[].file_id`` (tool
and agent output; attachments without a ``file_id``, such as web-search results, stay
in ``raw`` only) and ``image_file`` parts, in that order, each once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sources.librechat.native import json_safe, text_value

FileKey = Callable[[str], str]


def message_parts(document: dict[str, Any], file_key: FileKey) -> list[dict[str, Any]]:
    text = document.get("text") if isinstance(document.get("text"), str) else ""
    content = document.get("content")
    parts = [_part(part, file_key) for part in content] if isinstance(content, list) else []
    if not text:
        return parts
    if document.get("error"):  # the text of an error message is the error
        if not any(part["type"] == "error" and part["text"] == text for part in parts):
            parts.append({"type": "error", "text": text})
    elif not any(part["type"] == "text" for part in parts):
        parts.insert(0, {"type": "text", "text": text})
    return parts


def _part(part: Any, file_key: FileKey) -> dict[str, Any]:
    if not isinstance(part, dict):
        return {"type": "other", "native": json_safe(part)}
    kind = part.get("type")
    if kind in ("text", "text_delta") and text_value(part.get("text")) is not None:
        mapped = {"type": "text", "text": text_value(part.get("text"))}
        annotations = part["text"].get("annotations") if isinstance(part.get("text"), dict) else None
        if annotations:
            mapped["annotations"] = json_safe(annotations)
        return mapped
    if kind == "think" and text_value(part.get("think")) is not None:
        return {"type": "reasoning", "text": text_value(part.get("think"))}
    if kind == "tool_call" and isinstance(part.get("tool_call"), dict):
        return _tool_call(part["tool_call"])
    if (
        kind == "image_file"
        and isinstance(part.get("image_file"), dict)
        and part["image_file"].get("file_id")
    ):
        return {"type": "image", "file": file_key(str(part["image_file"]["file_id"]))}
    if kind == "image_url":
        url = part.get("image_url")
        url = url.get("url") if isinstance(url, dict) else url
        if isinstance(url, str):
            return {"type": "image", "url": url}
    if kind == "error":
        message = part.get("error") if isinstance(part.get("error"), str) else text_value(part.get("text"))
        return {"type": "error", "text": message or ""}
    return {"type": "other", "native": json_safe(part)}


def _tool_call(call: dict[str, Any]) -> dict[str, Any]:
    """Agents tool calls carry name/args/output; Assistants ones nest them under their type
    (``code_interpreter: {input, outputs}``, ``function: {name, arguments, output}``)."""
    nested_type = call.get("type") if call.get("type") not in (None, "tool_call") else None
    nested = call.get(nested_type) if nested_type and isinstance(call.get(nested_type), dict) else {}
    name = call.get("name") or nested.get("name") or nested_type
    args = call.get("args", nested.get("arguments", nested.get("input")))
    output = call.get("output", nested.get("output", nested.get("outputs")))
    return {
        "type": "tool_call",
        "id": call.get("id"),
        "name": name,
        "args": json_safe(args),
        "output": json_safe(output),
    }


def message_file_ids(document: dict[str, Any]) -> list[str]:
    """The file ids a message uses, first use first, each once."""
    found: dict[str, None] = {}
    for field in ("files", "attachments"):
        entries = document.get(field)
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("file_id"), str) and entry["file_id"]:
                found.setdefault(entry["file_id"])
    content = document.get("content")
    for part in content if isinstance(content, list) else []:
        if (
            isinstance(part, dict)
            and part.get("type") == "image_file"
            and isinstance(part.get("image_file"), dict)
        ):
            file_id = part["image_file"].get("file_id")
            if isinstance(file_id, str) and file_id:
                found.setdefault(file_id)
    return list(found)


def embedded_file(document: dict[str, Any], file_id: str) -> dict[str, Any] | None:
    """The partial file record a message carries for ``file_id`` (``files[]`` entries hold
    ``filepath``, ``type``, ``filename``…): the fallback when no ``files`` document exists."""
    for field in ("files", "attachments"):
        entries = document.get(field)
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and entry.get("file_id") == file_id:
                return entry
    return None
