"""The ``chatbotui`` source: Chatbot UI (mckaywrigley/chatbot-ui, the legacy local app) exports.

Input (``path``, repeatable; folders are searched for ``*.json``): the file "Export data"
writes. Every format version is read:

| version | shape |
| --- | --- |
| 1 | a bare array of conversations (numeric ids, no folders) |
| 2 | ``{history, folders}`` (no ``version``; folders ``{id, name}``) |
| 3 | ``{version: 3, history, folders}`` (folders with ``type`` ``chat`` / ``prompt``) |
| 4 | ``{version: 4, history, folders, prompts}`` |

A conversation is ``{id, name, messages: [{role, content}], model: {id, name, …}, prompt,
temperature, folderId}``. The file names no owner, so the ``owner`` option is required;
ids are only unique inside one user's export, so keys carry the owner:
``conversation:<owner>/<id>``, ``message:<owner>/<id>/<n>`` (``n`` = position: messages
have no ids). Messages form one chain in order; the last is the active leaf. There are no
timestamps in the format, so records carry none. ``prompt`` is the system prompt,
``model.id`` the model, the folder (``folderId``) is in ``metadata.folder`` and its name
in ``tags``; ``temperature`` is in ``metadata``.

Saved prompts become ``assistant`` records (``assistant:<owner>/prompt/<id>``: name,
description, the content as ``system_prompt``, model, the folder in ``metadata``), so a
sink that knows them can use them and every other sink skips them, visibly. The owner's
user record carries only the owner: several files of one owner must not each give it
different data (a re-read would then flip it between versions). Folders live on as each
conversation's and prompt's folder; a folder with nothing in it is not kept. A conversation that is not an object, has no id, or whose ``messages`` is not a list
is a reject; so is a message without a string ``content``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.kit import (
    MESSAGE_ROLES,
    ExportSource,
    Package,
    Record,
    Reject,
    format_name,
    json_document,
    option,
)


@dataclass
class ChatbotUIOptions:
    path: list[Path] = option(help="Chatbot UI export files, or folders holding them.")
    owner: str = option("", help="The owner (an email or a name): Chatbot UI exports name none.")


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class ChatbotUISource(ExportSource):
    type_name = "chatbotui"
    Options = ChatbotUIOptions
    format_name = "chatbotui"
    reader_version = 1
    suffixes = (".json",)

    def read_package(self, package: Package) -> Iterator[list]:
        where = package.where(package.named()[0])
        with package.stream(package.named()[0]) as handle:
            document = json_document(handle, where)
        version, history, folders, prompts = self._shape(document, where)
        owner = self.owner_id(None, where)
        folder_names = {str(f.get("id")): f.get("name") for f in folders if isinstance(f, dict)}
        yield [
            self.owner_record(owner),
            *[
                self._prompt(owner, version, prompt, folder_names)
                for prompt in prompts
                if isinstance(prompt, dict)
            ],
        ]
        for index, conversation in enumerate(history):
            yield self.conversation(owner, conversation, f"{where} history[{index}]", folder_names)

    def _shape(self, document: Any, where: str) -> tuple[int, list, list, list]:
        """(version, history, folders, prompts) of any version; the wrong format raises."""
        if format_name(document) != "chatbotui":
            raise self.wrong_format(document, where)
        if isinstance(document, list):
            return 1, document, [], []
        version = document.get("version") if isinstance(document.get("version"), int) else 2
        lists = [document.get(name) for name in ("history", "folders", "prompts")]
        return version, *[value if isinstance(value, list) else [] for value in lists]

    def _prompt(self, owner: str, version: int, prompt: dict[str, Any], folders: dict[str, Any]) -> Record:
        folder = prompt.get("folderId")
        data = {
            "owner": f"user:{owner}",
            "name": prompt.get("name"),
            "description": prompt.get("description"),
            "system_prompt": prompt.get("content"),
            "model": _dict(prompt.get("model")).get("id"),
            "metadata": {
                "chatbotui_version": version,
                "folder": folder,
                "folder_name": folders.get(str(folder)) if folder is not None else None,
            },
        }
        key = f"assistant:{owner}/prompt/{prompt.get('id')}"
        return self.record("assistant", key, data, prompt, [f"user:{owner}"])

    def conversation(self, owner: str, document: Any, location: str, folders: dict[str, Any]) -> list:
        if not isinstance(document, dict) or document.get("id") in (None, ""):
            return [Reject(location, "a conversation must be an object with an id", document)]
        ident = str(document["id"])
        where, key = f"{location} conversation {ident}", f"conversation:{owner}/{ident}"
        messages = document.get("messages")
        if not isinstance(messages, list):
            return [Reject(where, "messages is missing or not a list", document, key)]
        owner_key = f"user:{owner}"
        records: list = []
        rejects: list = []
        parent = None
        for index, message in enumerate(messages):
            message_key = f"message:{owner}/{ident}/{index}"
            if not isinstance(message, dict) or not isinstance(message.get("content"), str):
                rejects.append(
                    Reject(
                        f"{where} message [{index}]", "a message needs a string content", message, message_key
                    )
                )
                continue
            records.append(self._message(message, message_key, key, parent, document))
            parent = message_key
        folder_id = document.get("folderId")
        folder_name = folders.get(str(folder_id)) if folder_id is not None else None
        model = _dict(document.get("model"))
        prompt = document.get("prompt")
        data = {
            "owner": owner_key,
            "title": document.get("name")
            if isinstance(document.get("name"), str) and document["name"].strip()
            else None,
            "created_at": None,
            "updated_at": None,
            "assistant": None,
            "model": model.get("id"),
            "system_prompt": prompt if isinstance(prompt, str) and prompt.strip() else None,
            "pinned": False,
            "archived": False,
            "tags": [folder_name] if isinstance(folder_name, str) and folder_name else [],
            "active_leaf": parent,
            "metadata": {
                "source_id": ident,
                "folder": {"id": folder_id, "name": folder_name} if folder_id is not None else None,
                "temperature": document.get("temperature"),
                "model_name": model.get("name"),
            },
        }
        raw = {k: v for k, v in document.items() if k != "messages"}
        return [self.record("conversation", key, data, raw, [owner_key]), *records, *rejects]

    def _message(
        self, message: dict[str, Any], key: str, conversation: str, parent: str | None, document
    ) -> Record:
        role = message.get("role") if message.get("role") in MESSAGE_ROLES else "assistant"
        content = message["content"]
        data = {
            "conversation": conversation,
            "parent": parent,
            "role": role,
            "author": message.get("role"),
            "model": _dict(document.get("model")).get("id") if role == "assistant" else None,
            "created_at": None,
            "updated_at": None,
            "status": "complete",
            "parts": [{"type": "text", "text": content}] if content else [],
            "files": [],
            "sibling_group": 0,
            "usage": {},
            "feedback": None,
            "metadata": {},
        }
        return self.record("message", key, data, message, [conversation, parent])
