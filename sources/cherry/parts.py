"""v1 message blocks → canonical parts (DESIGN §2).

| v1 block | canonical part |
| --- | --- |
| ``main_text`` | ``text`` (``citation_references``, ``knowledge_base_ids`` kept) |
| ``thinking`` | ``reasoning`` with ``thinking_ms`` |
| ``tool`` | ``tool_call`` {id, name, args, server} then ``tool_result`` {id, output, is_error, error_text} |
| ``image`` | ``image``: ``url``; an inline ``data:`` image's bytes go to the blob store (``blob``, ``mime``); ``file`` (key) when it has a file |
| ``file`` | ``file`` {file (key), filename, mime} |
| ``error`` | ``error`` {text, name} |
| ``citation`` | one ``citation`` per kind present: ``web`` {results, provider}, ``knowledge`` {items}, ``memory`` {items} |
| ``code`` | ``code`` {text, language} |
| ``translation``, ``video``, ``compact``, ``unknown``, anything else | ``other`` {native_type, native} |

Every part names its block (``block``). A tool result is an error when the MCP result
says ``isError``, the raw MCP response's status is ``error``, or the block failed.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
from collections.abc import Callable
from typing import Any

from ledger.kit import blob_ref

FileKey = Callable[[str], str]
PutBytes = Callable[[bytes], str]
OTHER_FIELDS = {
    "translation": ("content", "targetLanguage", "sourceLanguage", "sourceBlockId"),
    "video": ("url", "filePath"),
    "compact": ("content", "compactedContent"),
}


def mime_of(name: Any, fallback: str = "application/octet-stream") -> str:
    if isinstance(name, str) and name:
        guessed = mimetypes.guess_type(f"x{name}" if name.startswith(".") else name)[0]
        if guessed:
            return guessed
    return fallback


def block_parts(block: dict[str, Any], file_key: FileKey, put: PutBytes) -> list[dict[str, Any]]:
    kind = block.get("type")
    maker = MAKERS.get(kind)
    parts = maker(block, file_key, put) if maker else [_other(block)]
    for part in parts:
        part["block"] = block.get("id")
    return parts


def _text(block, file_key, put) -> list[dict[str, Any]]:
    part: dict[str, Any] = {"type": "text", "text": _str(block.get("content"))}
    if block.get("citationReferences"):
        part["citation_references"] = block["citationReferences"]
    if block.get("knowledgeBaseIds"):
        part["knowledge_base_ids"] = block["knowledgeBaseIds"]
    return [part]


def _reasoning(block, file_key, put) -> list[dict[str, Any]]:
    part: dict[str, Any] = {"type": "reasoning", "text": _str(block.get("content"))}
    if isinstance(block.get("thinking_millsec"), (int, float)):
        part["thinking_ms"] = block["thinking_millsec"]
    return [part]


def _tool(block, file_key, put) -> list[dict[str, Any]]:
    raw = (block.get("metadata") or {}).get("rawMcpToolResponse") or {}
    tool = raw.get("tool") if isinstance(raw.get("tool"), dict) else {}
    call_id = block.get("toolId") or raw.get("toolCallId") or raw.get("id") or block.get("id")
    name = block.get("toolName") or tool.get("name") or raw.get("name")
    server = {k: tool.get(key) for k, key in (("id", "serverId"), ("name", "serverName"), ("type", "type"))}
    call: dict[str, Any] = {
        "type": "tool_call",
        "id": call_id,
        "name": name,
        "args": block.get("arguments", raw.get("arguments")),
        "server": {k: v for k, v in server.items() if v is not None},
    }
    output = block.get("content", raw.get("response"))
    is_error = bool(
        (isinstance(output, dict) and output.get("isError"))
        or raw.get("status") == "error"
        or block.get("status") == "error"
    )
    result: dict[str, Any] = {"type": "tool_result", "id": call_id, "output": output, "is_error": is_error}
    if is_error:
        result["error_text"] = _error_text(output, block.get("error"))
    return [call, result]


def _error_text(output: Any, error: Any) -> str:
    if isinstance(output, dict) and isinstance(output.get("content"), list):
        texts = [c.get("text") for c in output["content"] if isinstance(c, dict) and c.get("text")]
        if texts:
            return "\n".join(texts)
    if isinstance(output, str) and output:
        return output
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return "tool call failed"


def _image(block, file_key, put) -> list[dict[str, Any]]:
    part: dict[str, Any] = {"type": "image"}
    url = block.get("url")
    file = block.get("file") if isinstance(block.get("file"), dict) else None
    if isinstance(url, str) and url.startswith("data:"):
        inline = _inline(url, put)
        if inline is None:
            return [{"type": "other", "native_type": "image", "native": block, "problem": "bad data: URL"}]
        part.update(inline)
    elif isinstance(url, str) and url:
        part["url"] = url
    if file and file.get("id"):
        part["file"] = file_key(str(file["id"]))
        part["filename"] = file.get("origin_name") or file.get("name")
        part["path"] = file.get("path")
        part.setdefault("mime", mime_of(file.get("ext"), "image/png"))
    metadata = block.get("metadata") or {}
    if metadata.get("prompt"):
        part["prompt"] = metadata["prompt"]
    return [part]


def _inline(url: str, put: PutBytes) -> dict[str, Any] | None:
    header, _, payload = url.partition(",")
    if not header.endswith(";base64"):
        return None
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None
    mime = header[5:].removesuffix(";base64") or "application/octet-stream"
    return {"blob": blob_ref(put(data)), "mime": mime, "size": len(data), "inline": True}


def _file(block, file_key, put) -> list[dict[str, Any]]:
    file = block.get("file") if isinstance(block.get("file"), dict) else {}
    if not file.get("id"):
        return [{"type": "other", "native_type": "file", "native": block, "problem": "no file id"}]
    return [
        {
            "type": "file",
            "file": file_key(str(file["id"])),
            "filename": file.get("origin_name") or file.get("name"),
            "mime": mime_of(file.get("ext")),
            "path": file.get("path"),
        }
    ]


def _error(block, file_key, put) -> list[dict[str, Any]]:
    error = block.get("error") if isinstance(block.get("error"), dict) else {}
    message = error.get("message") or block.get("content")
    return [{"type": "error", "text": _str(message), "name": error.get("name")}]


def _citation(block, file_key, put) -> list[dict[str, Any]]:
    parts = []
    response = block.get("response")
    if isinstance(response, dict):
        parts.append(
            {
                "type": "citation",
                "citation_type": "web",
                "results": response.get("results"),
                "provider": response.get("source"),
            }
        )
    if block.get("knowledge"):
        parts.append({"type": "citation", "citation_type": "knowledge", "items": block["knowledge"]})
    if block.get("memories"):
        parts.append({"type": "citation", "citation_type": "memory", "items": block["memories"]})
    return parts or [{"type": "citation", "citation_type": "empty", "items": []}]


def _code(block, file_key, put) -> list[dict[str, Any]]:
    return [{"type": "code", "text": _str(block.get("content")), "language": block.get("language")}]


def _other(block: dict[str, Any]) -> dict[str, Any]:
    kind = block.get("type")
    fields = OTHER_FIELDS.get(kind)
    native = {f: block[f] for f in fields if f in block} if fields else block
    return {"type": "other", "native_type": kind if isinstance(kind, str) else "unknown", "native": native}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


MAKERS = {
    "main_text": _text,
    "thinking": _reasoning,
    "tool": _tool,
    "image": _image,
    "file": _file,
    "error": _error,
    "citation": _citation,
    "code": _code,
}
