"""What every sample builder returns: the tree an export must become, spelled out by
hand (:class:`Expected`), and the attachment bytes the samples carry."""

from __future__ import annotations

import base64
import json
import sqlite3
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
PDF = b"%PDF-1.4\n% Bericht \xc3\x9cberblick\n%%EOF\n"


@dataclass
class Expected:
    #: conversation key → {message key: parent key or None}
    trees: dict[str, dict[str, str | None]] = field(default_factory=dict)
    #: conversation key → active leaf message key (None for an empty conversation)
    leaves: dict[str, str | None] = field(default_factory=dict)
    rejected: set[str] = field(default_factory=set)  # conversation keys rejected whole
    users: set[str] = field(default_factory=set)

    def add(self, conversation: str, chain: list[tuple[str, str | None]], leaf: str | None) -> None:
        self.trees[conversation] = dict(chain)
        self.leaves[conversation] = leaf

    @property
    def messages(self) -> int:
        return sum(len(tree) for tree in self.trees.values())
