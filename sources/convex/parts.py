"""``messageParts`` → canonical message parts.

The OpenAgents app streams each assistant answer into ``messageParts`` as
``@effect/ai`` ``Response`` stream parts (``{threadId, runId, messageId, seq, part}``,
idempotent by ``(runId, seq)``), and writes the final text into ``messages.text`` when
the run ends. The original importer read only ``messages.text``, so tool calls, tool
results and reasoning were lost. Here they become parts of the message record:

| stream part | canonical part |
| --- | --- |
| ``tool-call`` | ``tool_call`` {id, name, args} |
| ``tool-result`` | ``tool_result`` {id, name, result, is_error} |
| ``reasoning-delta`` (joined per id) | ``reasoning`` {text} |
| ``error`` | ``error`` {text} |
| ``finish`` | the message's ``usage`` |
| ``response-metadata`` | the message's ``model`` |
| ``text-delta`` | only used when ``messages.text`` is empty (a run that never finished) |
| anything else (``file``, ``source`` …) | ``other`` {native} |

Field names vary across ``@effect/ai`` versions (``id``/``toolCallId``, ``name``/
``toolName``, ``params``/``input``, ``result``/``output``); each is read either way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

_SKIPPED = {"text-start", "text-end", "reasoning-start", "reasoning-end",
            "tool-params-start", "tool-params-delta", "tool-params-end"}  # fmt: skip


def _first(part: dict[str, Any], *names: str) -> Any:
    for name in names:
        if part.get(name) is not None:
            return part[name]
    return None


@dataclass
class Converted:
    parts: list[dict[str, Any]] = field(default_factory=list)
    streamed_text: str = ""
    usage: dict[str, Any] = field(default_factory=dict)
    model: str | None = None


def convert(stream_parts: list[Any]) -> Converted:
    """Canonical parts of one message from its stream parts (in ``seq`` order)."""
    out = Converted()
    reasoning: dict[str, dict[str, Any]] = {}
    for part in stream_parts:
        if not isinstance(part, dict):
            out.parts.append({"type": "other", "native": part})
            continue
        kind = part.get("type")
        if kind in _SKIPPED:
            continue
        if kind == "text-delta":
            out.streamed_text += str(_first(part, "delta", "text") or "")
        elif kind == "reasoning-delta":
            key = str(part.get("id") or "")
            if key not in reasoning:
                reasoning[key] = {"type": "reasoning", "text": ""}
                out.parts.append(reasoning[key])
            reasoning[key]["text"] += str(_first(part, "delta", "text") or "")
        elif kind == "tool-call":
            out.parts.append(
                {
                    "type": "tool_call",
                    "id": _first(part, "id", "toolCallId"),
                    "name": _first(part, "name", "toolName"),
                    "args": _first(part, "params", "input", "args"),
                }
            )
        elif kind == "tool-result":
            out.parts.append(
                {
                    "type": "tool_result",
                    "id": _first(part, "id", "toolCallId"),
                    "name": _first(part, "name", "toolName"),
                    "result": _first(part, "result", "output", "encodedResult"),
                    "is_error": bool(_first(part, "isFailure", "isError")),
                }
            )
        elif kind == "error":
            out.parts.append({"type": "error", "text": str(part.get("error"))})
        elif kind == "finish":
            usage = part.get("usage")
            out.usage = usage if isinstance(usage, dict) else {}
        elif kind == "response-metadata":
            model = _first(part, "modelId", "model")
            out.model = model if isinstance(model, str) else out.model
        else:
            out.parts.append({"type": "other", "native": part})
    return out
