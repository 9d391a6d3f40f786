"""Which files the ``localstorage`` source reads, whose they are, and what is in each.

Two shapes of file hold the AI MCP Toolkit's browser conversations (key
``ai-chat-conversations``):

- the sidebar's export, ``ai-conversations-YYYY-MM-DD.json``: the array of
  conversations, pretty-printed;
- a raw localStorage dump: a JSON object whose ``ai-chat-conversations`` value is the
  array as a JSON *string* (what ``localStorage.getItem`` returns).

A folder stands for every ``*.json`` under it. Each file has one owner, the app's
``username``: ``owner_username`` for every file, or an owners file mapping usernames to
files (``{"alice": ["alice.json"], "bob": "exports/bob.json"}``, paths relative to the
owners file). Anything else is refused with the file's name and what was found.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.kit import ConfigError

STORAGE_KEY = "ai-chat-conversations"


@dataclass(frozen=True)
class InputFile:
    path: Path
    name: str  # relative to the folder or owners file that named it: the scope's name
    owner: str  # the app's username


class NotAnExport(ValueError):
    """A file that is not one of the two shapes (the message says what was found)."""


def _json_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(child for child in path.rglob("*.json") if child.is_file())
    if path.is_file():
        return [path]
    raise ConfigError(f"localstorage: {path} does not exist")


def _named(path: Path, base: Path) -> str:
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return path.name


def files_of(paths: list[Path], owner: str) -> list[InputFile]:
    """Every file named, or under a folder named, owned by ``owner``."""
    found: dict[Path, InputFile] = {}
    for path in paths:
        base = path if path.is_dir() else path.parent
        for file in _json_files(path):
            found.setdefault(file.resolve(), InputFile(file, _named(file, base), owner))
    return sorted(found.values(), key=lambda f: (f.owner, f.name))


def files_of_owners(owners_file: Path) -> list[InputFile]:
    """The files an owners file maps to usernames (a file named twice is refused)."""
    try:
        mapping = json.loads(owners_file.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"localstorage: owners_file {owners_file} is not readable JSON: {exc}") from None
    if not isinstance(mapping, dict) or not mapping:
        raise ConfigError(
            f"localstorage: owners_file {owners_file} must be an object mapping usernames to files"
        )
    found: dict[Path, InputFile] = {}
    for username, named in mapping.items():
        entries = [named] if isinstance(named, str) else named
        if (
            not username.strip()
            or not isinstance(entries, list)
            or not all(isinstance(e, str) for e in entries)
        ):
            raise ConfigError(f"localstorage: owners_file {owners_file}: {username!r} must map to file names")
        for entry in entries:
            target = owners_file.parent / entry
            for file in _json_files(target):
                resolved = file.resolve()
                if resolved in found and found[resolved].owner != username:
                    raise ConfigError(
                        f"localstorage: owners_file {owners_file} gives {file} two owners "
                        f"({found[resolved].owner}, {username})"
                    )
                found[resolved] = InputFile(file, _named(file, owners_file.parent), username)
    return sorted(found.values(), key=lambda f: (f.owner, f.name))


def _found(value: Any) -> str:
    if isinstance(value, dict):
        keys = ", ".join(sorted(map(str, value))[:5])
        return f"an object with keys {keys}" if keys else "an empty object"
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def conversations_in(content: bytes) -> list[Any]:
    """The conversation array of a file's bytes; NotAnExport says what was there instead."""
    try:
        document = json.loads(content)
    except ValueError as exc:
        raise NotAnExport(f"not JSON: {exc}") from None
    if isinstance(document, list):
        return document
    if isinstance(document, dict) and STORAGE_KEY in document:
        value = document[STORAGE_KEY]
        if not isinstance(value, str):
            raise NotAnExport(
                f"the {STORAGE_KEY!r} value is {_found(value)}, not the JSON string localStorage holds"
            )
        try:
            inner = json.loads(value)
        except ValueError as exc:
            raise NotAnExport(f"the {STORAGE_KEY!r} string is not JSON: {exc}") from None
        if not isinstance(inner, list):
            raise NotAnExport(
                f"the {STORAGE_KEY!r} string holds {_found(inner)}, not an array of conversations"
            )
        return inner
    raise NotAnExport(
        f"expected an array of conversations or an object with an {STORAGE_KEY!r} string; found {_found(document)}"
    )


def digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()
