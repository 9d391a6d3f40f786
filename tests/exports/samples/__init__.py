"""Generated chat exports, each with the tree it must become (the tests' oracle).

Every builder writes files in the format's real shape (see
/work/shared/reference/chat-export-formats.md and the real samples in
tests/data/exports/) and returns an :class:`Expected`: per conversation key, every message
key with its parent key, and the active leaf — spelled out by hand here, never computed
by the code under test. Conversations that must be rejected are listed by key.
"""

from tests.exports.samples.chatbotui import chatbotui_files
from tests.exports.samples.chatgpt import chatgpt_conversations, chatgpt_json, chatgpt_zip
from tests.exports.samples.claude import claude_export
from tests.exports.samples.expected import PDF, PNG, Expected
from tests.exports.samples.openwebui import (
    OWUI_CHAT_COLUMNS,
    OWUI_USERS,
    openwebui_rows,
    openwebui_single_chat,
    openwebui_sqlite,
    shared_copy,
)

__all__ = [
    "OWUI_CHAT_COLUMNS",
    "OWUI_USERS",
    "PDF",
    "PNG",
    "Expected",
    "chatbotui_files",
    "chatgpt_conversations",
    "chatgpt_json",
    "chatgpt_zip",
    "claude_export",
    "openwebui_rows",
    "openwebui_single_chat",
    "openwebui_sqlite",
    "shared_copy",
]
