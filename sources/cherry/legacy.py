"""Pre-block messages (``data.json`` versions 1–3): their fields as blocks.

Before Dexie version 7 a message held its content itself. Restoring such a backup runs
``upgradeToV7``, which turns those fields into ``message_blocks``; this does the same,
in memory, with block ids ``<messageId>:legacy:<n>``:

| message field | block |
| --- | --- |
| ``reasoning_content`` | ``thinking`` (``metrics.time_thinking_millsec``) |
| ``content`` | ``main_text`` (``error`` when the message failed and has an ``error``) |
| ``metadata.mcpTools[]`` | ``tool`` each (``{id, tool, args, status, response}``) |
| ``metadata.generateImage.images[]`` | ``image`` each |
| ``files[]`` | ``image`` for image files, else ``file`` |
| ``translatedContent`` | ``translation`` |
| ``metadata.webSearch`` / ``webSearchInfo`` / ``groundingMetadata`` / ``citations`` / ``annotations`` / ``knowledge`` | one ``citation`` |

A message is pre-block when it has no ``blocks`` array; one with ``blocks`` is never
converted, even when it also carries old fields.
"""

from __future__ import annotations

from typing import Any


def is_pre_block(message: dict[str, Any]) -> bool:
    return not isinstance(message.get("blocks"), list)


def legacy_blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    meta = message.get("metadata") if isinstance(message.get("metadata"), dict) else {}
    base = {"messageId": message.get("id"), "createdAt": message.get("createdAt"), "status": "success"}
    blocks: list[dict[str, Any]] = []

    def add(kind: str, **fields: Any) -> None:
        blocks.append({**base, "id": f"{message.get('id')}:legacy:{len(blocks)}", "type": kind, **fields})

    metrics = message.get("metrics") if isinstance(message.get("metrics"), dict) else {}
    if message.get("reasoning_content"):
        add(
            "thinking",
            content=message["reasoning_content"],
            thinking_millsec=metrics.get("time_thinking_millsec"),
        )
    if message.get("content"):
        add("main_text", content=message["content"])
    for tool in meta.get("mcpTools") or []:
        if isinstance(tool, dict):
            add(
                "tool",
                toolId=tool.get("id"),
                toolName=(tool.get("tool") or {}).get("name"),
                arguments=tool.get("args"),
                content=tool.get("response"),
                metadata={"rawMcpToolResponse": tool},
            )
    for url in (meta.get("generateImage") or {}).get("images") or []:
        add("image", url=url)
    for file in message.get("files") or []:
        if isinstance(file, dict):
            add("image" if file.get("type") == "image" else "file", file=file)
    if message.get("translatedContent"):
        add("translation", content=message["translatedContent"], targetLanguage="")
    citation = _citation(meta)
    if citation:
        add("citation", **citation)
    if message.get("status") == "error" and isinstance(message.get("error"), dict):
        add("error", error=message["error"])
    return blocks


def _citation(meta: dict[str, Any]) -> dict[str, Any] | None:
    fields: dict[str, Any] = {}
    web = meta.get("webSearch") or meta.get("webSearchInfo")
    if isinstance(web, dict):
        fields["response"] = {"results": web.get("results", web), "source": web.get("source", "websearch")}
    elif isinstance(web, list):
        fields["response"] = {"results": web, "source": "websearch"}
    for name in ("groundingMetadata", "citations", "annotations"):
        if meta.get(name) and "response" not in fields:
            fields["response"] = {"results": meta[name], "source": name}
    if meta.get("knowledge"):
        fields["knowledge"] = meta["knowledge"]
    return fields or None
