"""A ChatGPT message's ``content`` and ``metadata`` as canonical parts.

| ``content_type`` | canonical parts |
| --- | --- |
| ``text`` | one ``text`` part per non-empty string of ``parts``; from an assistant to a tool (``recipient`` ≠ ``all``): ``tool_call`` with the text as ``args``; from a tool: ``tool_result`` |
| ``multimodal_text`` | strings → ``text``; ``image_asset_pointer`` → ``image`` with ``file`` (the file record's key); ``audio_transcription`` → ``text`` (``source: audio_transcription``); ``audio_asset_pointer`` and ``real_time_user_audio_video_asset_pointer`` → ``file``; others → ``other`` |
| ``code`` | to a tool: ``tool_call`` {id, name = ``recipient``, args = the code, language}; else ``code`` |
| ``execution_output``, ``tether_browsing_display``, ``tether_quote`` | ``tool_result`` {id (the call it answers), name (``author.name``), result, title/url/domain of a quote} |
| ``thoughts`` | ``reasoning`` per thought (``thoughts[].content`` with its ``summary``; else ``parts`` / ``content`` text) |
| ``reasoning_recap`` | ``other`` (the recap text, e.g. "Thought for 9s", is in the message's ``metadata.reasoning.recap``) |
| ``system_error`` | ``error`` |
| anything else | ``other`` with the native content |

Citations follow the content: ``metadata.citations[]`` (``start_ix``/``end_ix`` over the
in-text markers, ``metadata.title``/``url``) and ``metadata.content_references[]``
(``matched_text``, ``start_idx``/``end_idx``, the first item's ``title``/``url``), each a
``citation`` part with the native entry kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

FileKey = Callable[[str], str]
TOOL_RESULT_TYPES = ("execution_output", "tether_browsing_display", "tether_quote")
AUDIO_POINTERS = (
    "audio_asset_pointer",
    "real_time_user_audio_video_asset_pointer",
    "video_container_asset_pointer",
)


def asset_id(pointer: Any) -> str | None:
    """``file-service://file-abc`` → ``file-abc``; ``sediment://file_00ab`` → ``file_00ab``."""
    if not isinstance(pointer, str) or not pointer:
        return None
    return pointer.split("://", 1)[-1] or None


def _strings(values: Any) -> list[str]:
    return [value for value in values if isinstance(value, str) and value] if isinstance(values, list) else []


def message_parts(message: dict[str, Any], call_id: str | None, file_key: FileKey) -> list[dict[str, Any]]:
    """The parts of one message. ``call_id`` is the id of the tool call this message
    answers (its parent's), when it is a tool result."""
    content = message.get("content") if isinstance(message.get("content"), dict) else {}
    kind = content.get("content_type")
    author = message.get("author") if isinstance(message.get("author"), dict) else {}
    role, recipient = author.get("role"), message.get("recipient") or "all"
    tool_name = author.get("name")
    if kind in TOOL_RESULT_TYPES or (role == "tool" and kind in ("text", "code")):
        parts = [_tool_result(content, kind, call_id, tool_name)]
    elif kind in ("text", "code") and recipient != "all" and role == "assistant":
        text = content.get("text") if kind == "code" else "\n".join(_strings(content.get("parts")))
        call = {"type": "tool_call", "id": message.get("id"), "name": recipient, "args": text}
        if kind == "code":
            call["language"] = content.get("language")
        parts = [call]
    elif kind == "text":
        parts = [{"type": "text", "text": text} for text in _strings(content.get("parts"))]
    elif kind == "multimodal_text":
        parts = [_multimodal(part, file_key) for part in content.get("parts") or []]
        parts = [part for part in parts if part is not None]
    elif kind == "code":
        parts = [{"type": "code", "language": content.get("language"), "text": content.get("text") or ""}]
    elif kind == "thoughts":
        parts = _thoughts(content)
    elif kind == "system_error":
        parts = [{"type": "error", "text": content.get("text") or content.get("name") or "system error"}]
    else:
        parts = [{"type": "other", "native": content}]
    return parts + citations(message.get("metadata"))


def _tool_result(content: dict[str, Any], kind: Any, call_id: str | None, name: Any) -> dict[str, Any]:
    if kind == "tether_browsing_display":
        result = content.get("result") or content.get("summary") or ""
    elif kind == "text":
        result = "\n".join(_strings(content.get("parts")))
    else:
        result = content.get("text") or ""
    part = {"type": "tool_result", "id": call_id, "name": name, "result": result}
    if kind == "tether_quote":
        part.update({field: content.get(field) for field in ("title", "url", "domain")})
    return part


def _multimodal(part: Any, file_key: FileKey) -> dict[str, Any] | None:
    if isinstance(part, str):
        return {"type": "text", "text": part} if part else None
    if not isinstance(part, dict):
        return {"type": "other", "native": part}
    kind = part.get("content_type")
    ident = asset_id(part.get("asset_pointer"))
    if kind == "image_asset_pointer" and ident:
        image = {"type": "image", "file": file_key(ident), "asset_pointer": part["asset_pointer"]}
        image.update({field: part[field] for field in ("width", "height") if field in part})
        return image
    if kind == "audio_transcription":
        return {"type": "text", "text": part.get("text") or "", "source": "audio_transcription"}
    if kind in AUDIO_POINTERS:
        nested = (
            part.get("audio_asset_pointer") if isinstance(part.get("audio_asset_pointer"), dict) else part
        )
        ident = asset_id(nested.get("asset_pointer"))
        if ident:
            return {"type": "file", "file": file_key(ident), "asset_pointer": nested["asset_pointer"]}
    return {"type": "other", "native": part}


def _thoughts(content: dict[str, Any]) -> list[dict[str, Any]]:
    """Sources disagree on where thoughts sit (``thoughts[]``, ``parts``, ``content``):
    every form is read."""
    parts = []
    for thought in content.get("thoughts") or []:
        if isinstance(thought, dict):
            text = thought.get("content") if isinstance(thought.get("content"), str) else ""
            parts.append({"type": "reasoning", "text": text, "summary": thought.get("summary")})
        elif isinstance(thought, str):
            parts.append({"type": "reasoning", "text": thought})
    parts += [{"type": "reasoning", "text": text} for text in _strings(content.get("parts"))]
    if isinstance(content.get("content"), str) and content["content"]:
        parts.append({"type": "reasoning", "text": content["content"]})
    return parts


def citations(metadata: Any) -> list[dict[str, Any]]:
    if not isinstance(metadata, dict):
        return []
    out = []
    for entry in metadata.get("citations") or []:
        if isinstance(entry, dict):
            about = entry.get("metadata") if isinstance(entry.get("metadata"), dict) else {}
            out.append(
                {
                    "type": "citation",
                    "start": entry.get("start_ix"),
                    "end": entry.get("end_ix"),
                    "title": about.get("title"),
                    "url": about.get("url"),
                    "native": entry,
                }
            )
    for entry in metadata.get("content_references") or []:
        if isinstance(entry, dict):
            items = [item for item in entry.get("items") or [] if isinstance(item, dict)]
            first = items[0] if items else {}
            out.append(
                {
                    "type": "citation",
                    "start": entry.get("start_idx"),
                    "end": entry.get("end_idx"),
                    "text": entry.get("matched_text"),
                    "title": first.get("title") or entry.get("title"),
                    "url": first.get("url") or entry.get("url"),
                    "native": entry,
                }
            )
    return out


def file_ids(message: dict[str, Any]) -> list[str]:
    """Files a message uses: asset pointers in its content, then ``metadata.attachments``."""
    found: dict[str, None] = {}
    content = message.get("content") if isinstance(message.get("content"), dict) else {}
    if content.get("content_type") == "multimodal_text":
        for part in content.get("parts") or []:
            if isinstance(part, dict):
                nested = (
                    part.get("audio_asset_pointer")
                    if isinstance(part.get("audio_asset_pointer"), dict)
                    else part
                )
                ident = asset_id(nested.get("asset_pointer"))
                if ident:
                    found.setdefault(ident)
    metadata = message.get("metadata") if isinstance(message.get("metadata"), dict) else {}
    for attachment in metadata.get("attachments") or []:
        if isinstance(attachment, dict) and isinstance(attachment.get("id"), str) and attachment["id"]:
            found.setdefault(attachment["id"])
    return list(found)
