"""Which chat export a JSON value looks like: the hint a source gives for a file it cannot read.

:func:`describe_export` looks at one value (a file's top-level object, or the first
element of its top-level array) and names the export format it resembles, by the fields
each format is known by:

| format | recognised by |
| --- | --- |
| ``chatgpt`` | ``mapping`` (a node map) or ``current_node`` on a conversation |
| ``claude`` | ``chat_messages`` on a conversation |
| ``openwebui`` | a chat row (``chat`` holding ``history`` or ``messages``) or a bare chat (``history.messages``) |
| ``chatbotui`` | ``history`` as a list (v2–v4), or a conversation with ``messages`` of ``{role, content}`` and a ``name`` (v1 array) |
| ``librechat`` | ``conversationId`` with ``messages`` or ``messagesTree`` |

None means: none of these. :data:`FORMAT_LABELS` names each format for messages.
"""

from __future__ import annotations

from typing import Any

FORMAT_LABELS = {
    "chatgpt": "a ChatGPT export (conversations.json with `mapping`)",
    "claude": "a Claude.ai export (conversations.json with `chat_messages`)",
    "openwebui": "an Open WebUI chat export (`chat.history.messages`)",
    "chatbotui": "a Chatbot UI export (`history`, `folders`, `prompts`)",
    "librechat": "a LibreChat conversation export (`conversationId`, `messages`)",
}


def describe_export(value: Any) -> str | None:
    """The export format ``value`` looks like (a key of :data:`FORMAT_LABELS`), or None."""
    if isinstance(value, list):
        return describe_export(value[0]) if value else None
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("mapping"), dict) or "current_node" in value:
        return "chatgpt"
    if "chat_messages" in value:
        return "claude"
    if _is_openwebui(value):
        return "openwebui"
    if "conversationId" in value and ("messages" in value or "messagesTree" in value):
        return "librechat"
    if _is_chatbotui(value):
        return "chatbotui"
    return None


def label(format_name: str | None) -> str:
    """How a message names a format (``"no known chat export"`` for None)."""
    return FORMAT_LABELS.get(format_name or "", "no known chat export")


def _is_openwebui(value: dict[str, Any]) -> bool:
    chat = value.get("chat")
    if isinstance(chat, dict) and ("history" in chat or "messages" in chat):
        return True
    history = value.get("history")
    return isinstance(history, dict) and "messages" in history


def _is_chatbotui(value: dict[str, Any]) -> bool:
    if isinstance(value.get("history"), list):
        return True
    messages = value.get("messages")
    if "name" not in value or not isinstance(messages, list):
        return False
    return all(isinstance(m, dict) and "role" in m and "content" in m for m in messages[:3])
