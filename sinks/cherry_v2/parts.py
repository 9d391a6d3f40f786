"""Canonical parts → Cherry Studio v2 ``MessageData.parts`` (the AI SDK's UIMessage parts).

| canonical | v2 part |
| --- | --- |
| ``text`` | ``text`` {text, state: done}; the first one carries the message's references |
| ``reasoning`` | ``reasoning`` {text, state: done}, ``cherry.thinkingMs`` |
| ``tool_call`` (+ the ``tool_result`` with its id) | ``dynamic-tool`` {toolName ``<server>: <name>``, toolCallId, input, state ``output-available`` / ``output-error`` (errorText) / ``input-available``}, ``cherry.toolName``, ``cherry.tool`` |
| ``image`` | ``file`` {mediaType, url, filename?}: an inline image as its ``data:`` URL again (bytes from the blob store), a file as ``file://<path>`` (no path: ``file://<filename>``) with ``cherry.fileEntryId`` |
| ``file`` | ``file`` {mediaType, url ``file://<path>``, filename}, ``cherry.fileEntryId`` |
| ``citation`` | ``source-url`` parts (web results with a url, ``sourceId: citation-<n>``) + a ``citation`` reference (``web`` / ``knowledge`` / ``memory``) |
| ``code`` | ``data-code`` {content, language} |
| ``error`` | ``data-error`` {name, message} |
| ``other`` translation / video / compact | ``data-translation`` / ``data-video`` / ``data-compact`` |
| ``other`` anything else, ``tool_result`` without a call | left out (counted ``parts_dropped_<type>``) |

``cherry`` is ``providerMetadata.cherry``. References (citations, and the message's
``mentions`` as ``mention`` references — upstream no longer migrates them) go on the
first text part; a message with references and no text part gets an empty text part to
hold them (upstream drops them: ``citations_kept_without_text``).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

Count = Callable[..., None]
ReadBlob = Callable[[str], bytes | None]
EntryId = Callable[[str], str]  # a file record's native id → its file_entry id
OTHER = {
    "translation": ("data-translation", ("content", "targetLanguage", "sourceLanguage", "sourceBlockId")),
    "video": ("data-video", ("url", "filePath")),
    "compact": ("data-compact", ("content", "compactedContent")),
}


def cherry(part: dict[str, Any], **values: Any) -> dict[str, Any]:
    kept = {k: v for k, v in values.items() if v is not None}
    if kept:
        part.setdefault("providerMetadata", {}).setdefault("cherry", {}).update(kept)
    return part


def v2_parts(
    parts: list[dict[str, Any]], mentions: list[Any], read_blob: ReadBlob, entry_id: EntryId, count: Count
) -> list[dict[str, Any]]:
    results = {p.get("id"): p for p in parts if p.get("type") == "tool_result"}
    calls = {p.get("id") for p in parts if p.get("type") == "tool_call"}
    out: list[dict[str, Any]] = []
    references: list[dict[str, Any]] = []
    sources = 0
    for part in parts:
        kind = part.get("type")
        if kind == "citation":
            for url_part in _source_urls(part, sources):
                out.append(url_part)
                sources += 1
            if part.get("citation_type") in ("web", "knowledge", "memory"):
                references.append(_reference(part))
            continue
        if kind == "tool_result" and part.get("id") in calls:
            continue
        mapped = _map(part, results, read_blob, entry_id)
        if mapped is None:
            count(f"parts_dropped_{part.get('native_type') or kind}")
        else:
            out.append(mapped)
    references += [_mention(m) for m in mentions if isinstance(m, dict)]
    if references:
        first_text = next((p for p in out if p["type"] == "text"), None)
        if first_text is None:
            first_text = {"type": "text", "text": "", "state": "done"}
            out.insert(0, first_text)
            count("citations_kept_without_text")
        cherry(first_text, references=references)
    return out


def _map(
    part: dict[str, Any], results: dict[Any, dict[str, Any]], read_blob: ReadBlob, entry_id: EntryId
) -> dict[str, Any] | None:
    kind = part.get("type")
    if kind == "text":
        return {"type": "text", "text": part.get("text") or "", "state": "done"}
    if kind == "reasoning":
        return cherry(
            {"type": "reasoning", "text": part.get("text") or "", "state": "done"},
            thinkingMs=part.get("thinking_ms"),
        )
    if kind == "tool_call":
        return _tool(part, results.get(part.get("id")))
    if kind in ("image", "file"):
        return _file(part, read_blob, entry_id)
    if kind == "code":
        return {
            "type": "data-code",
            "data": {"content": part.get("text") or "", "language": part.get("language") or ""},
        }
    if kind == "error":
        return {"type": "data-error", "data": {"name": part.get("name"), "message": part.get("text")}}
    if kind == "other" and part.get("native_type") in OTHER:
        name, fields = OTHER[part["native_type"]]
        native = part.get("native") if isinstance(part.get("native"), dict) else {}
        return {"type": name, "data": {f: native[f] for f in fields if native.get(f) is not None}}
    return None


def _tool(call: dict[str, Any], result: dict[str, Any] | None) -> dict[str, Any]:
    server = call.get("server") if isinstance(call.get("server"), dict) else {}
    name = call.get("name") or "tool"
    part: dict[str, Any] = {
        "type": "dynamic-tool",
        "toolName": f"{server['name']}: {name}" if server.get("name") else name,
        "toolCallId": str(call.get("id") or ""),
        "input": call.get("args"),
    }
    if result is None:
        part["state"] = "input-available"
    elif result.get("is_error"):
        part.update(state="output-error", errorText=result.get("error_text") or "tool call failed")
    else:
        part.update(state="output-available", output=result.get("output"))
    tool = {"serverId": server.get("id"), "serverName": server.get("name"), "type": server.get("type")}
    return cherry(part, toolName=name, tool={k: v for k, v in tool.items() if v is not None} or None)


def _file(part: dict[str, Any], read_blob: ReadBlob, entry_id: EntryId) -> dict[str, Any] | None:
    mime = part.get("mime") or "application/octet-stream"
    url = part.get("url")
    if part.get("inline") and part.get("blob"):
        data = read_blob(part["blob"].removeprefix("sha256:"))
        if data is None:
            return None
        url = f"data:{mime};base64,{base64.b64encode(data).decode()}"
    elif not url:
        # upstream's rule is file://<path>; without a path the file entry id still names it
        url = "file://" + str(
            part.get("path") or part.get("filename") or part.get("file", "").removeprefix("file:")
        )
    out: dict[str, Any] = {"type": "file", "mediaType": mime, "url": url}
    if part.get("filename"):
        out["filename"] = part["filename"]
    file = part.get("file")
    return cherry(out, fileEntryId=entry_id(file.removeprefix("file:")) if isinstance(file, str) else None)


def _source_urls(part: dict[str, Any], start: int) -> list[dict[str, Any]]:
    if part.get("citation_type") != "web" or not isinstance(part.get("results"), list):
        return []
    out = []
    for result in part["results"]:
        if isinstance(result, dict) and isinstance(result.get("url"), str) and result["url"]:
            url_part = {
                "type": "source-url",
                "sourceId": f"citation-{start + len(out)}",
                "url": result["url"],
            }
            if result.get("title"):
                url_part["title"] = result["title"]
            out.append(url_part)
    return out


def _reference(part: dict[str, Any]) -> dict[str, Any]:
    kind = part["citation_type"]
    if kind == "web":
        content: Any = {"results": part.get("results") or [], "source": part.get("provider")}
    else:
        content = part.get("items") or []
    return {"category": "citation", "citationType": kind, "content": content}


def _mention(model: dict[str, Any]) -> dict[str, Any]:
    ident = (
        f"{model['provider']}::{model['id']}"
        if model.get("provider") and model.get("id")
        else model.get("id")
    )
    return {"category": "mention", "modelId": ident, "displayName": model.get("name")}
