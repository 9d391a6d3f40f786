"""An Open WebUI message's ``output[]`` or ``content`` as canonical parts — read once.

Open WebUI has kept reasoning and tool calls in three ways: up to about 0.7 as
``<details type="reasoning|tool_calls|code_interpreter" …>`` blocks inside ``content``;
from 0.7.2 also in an ``output[]`` list (Responses-API items) while ``content`` still
carries the blocks; from 0.10.1 ``content`` holds only the final text. So ``output[]``
wins when it is there (the blocks in ``content`` are the same things rendered, and
reading both would double them); ``content`` is parsed only without it.

| ``output[]`` item | part |
| --- | --- |
| ``message`` | ``text`` per ``output_text`` |
| ``reasoning`` | ``reasoning`` (its texts, else its summary; ``duration``) |
| ``function_call`` | ``tool_call`` {id = ``call_id``, name, args (JSON-decoded when it is JSON text)} |
| ``function_call_output`` | ``tool_result`` {id = ``call_id``, name (of the call), result (texts joined, else native)} |
| anything else | ``other`` |

| ``<details type=…>`` in ``content`` | part |
| --- | --- |
| ``reasoning`` | ``reasoning`` (the body without ``<summary>`` and the ``> `` quote marks; ``duration``) |
| ``tool_calls`` | ``tool_call`` (attributes ``id``, ``name``, ``arguments``) and ``tool_result`` (attribute ``result``, else the body) |
| ``code_interpreter`` | ``code`` (``lang``, the body) and, with an ``output`` attribute, ``tool_result`` |
| text between blocks | ``text`` |

When ``output[]`` yields no text, the text of ``content`` outside any block is used.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

DETAILS = re.compile(
    r'<details\s+type="(reasoning|tool_calls|code_interpreter)"([^>]*)>(.*?)</details>', re.S
)
ATTRIBUTE = re.compile(r'([\w-]+)="([^"]*)"')
SUMMARY = re.compile(r"<summary>.*?</summary>", re.S)


def _json_or_text(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _texts(items: Any) -> list[str]:
    if not isinstance(items, list):
        return []
    return [i["text"] for i in items if isinstance(i, dict) and isinstance(i.get("text"), str)]


def output_parts(output: list[Any]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    names: dict[Any, Any] = {}
    for item in output:
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "message":
            parts += [{"type": "text", "text": text} for text in _texts(item.get("content")) if text]
        elif kind == "reasoning":
            texts = _texts(item.get("content")) or _texts(item.get("summary"))
            parts.append({"type": "reasoning", "text": "\n".join(texts), "duration": item.get("duration")})
        elif kind == "function_call":
            names[item.get("call_id")] = item.get("name")
            call = {"type": "tool_call", "id": item.get("call_id"), "name": item.get("name")}
            parts.append({**call, "args": _json_or_text(item.get("arguments"))})
        elif kind == "function_call_output":
            texts = _texts(item.get("output"))
            result = "\n".join(texts) if texts else item.get("output")
            call_id = item.get("call_id")
            parts.append({"type": "tool_result", "id": call_id, "name": names.get(call_id), "result": result})
        else:
            parts.append({"type": "other", "native": item})
    return parts


def _body(text: str) -> str:
    """A block's body without its summary, unescaped, without the ``> `` quote marks."""
    lines = html.unescape(SUMMARY.sub("", text)).strip().splitlines()
    return "\n".join(line[2:] if line.startswith("> ") else line.lstrip(">") for line in lines).strip()


def _block_parts(kind: str, attributes: str, body: str) -> list[dict[str, Any]]:
    attrs = {name: html.unescape(value) for name, value in ATTRIBUTE.findall(attributes)}
    if kind == "reasoning":
        return [{"type": "reasoning", "text": _body(body), "duration": attrs.get("duration")}]
    if kind == "tool_calls":
        call_id, name = attrs.get("id"), attrs.get("name")
        result = _json_or_text(attrs["result"]) if "result" in attrs else _json_or_text(_body(body))
        return [
            {"type": "tool_call", "id": call_id, "name": name, "args": _json_or_text(attrs.get("arguments"))},
            {"type": "tool_result", "id": call_id, "name": name, "result": result},
        ]
    parts = [{"type": "code", "language": attrs.get("lang") or "python", "text": _body(body)}]
    if "output" in attrs:
        parts.append(
            {"type": "tool_result", "id": None, "name": "code_interpreter", "result": attrs["output"]}
        )
    return parts


def content_parts(content: str) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    position = 0
    for match in DETAILS.finditer(content):
        parts += _text(content[position : match.start()])
        parts += _block_parts(match.group(1), match.group(2), match.group(3))
        position = match.end()
    return parts + _text(content[position:])


def _text(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": text.strip()}] if text.strip() else []


def message_parts(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content") if isinstance(message.get("content"), str) else ""
    output = message.get("output")
    if isinstance(output, list) and output:
        parts = output_parts(output)
        if not any(part["type"] == "text" for part in parts):
            parts += _text(DETAILS.sub("", content))
        return parts
    return content_parts(content)
