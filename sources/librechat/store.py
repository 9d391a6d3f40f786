"""What the source asks of an input, whichever it is (live MongoDB, a mongodump folder,
JSON exports): users, each user's conversations with their messages in display order,
files by id, shared links, and facts for the run."""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ledger.kit import Reject


@dataclass
class Bundle:
    """One conversation document, its messages (``createdAt`` then ``_id`` order), its
    position in the user's conversation list, and where it was read (for rejects)."""

    index: int
    document: dict[str, Any]
    messages: list[dict[str, Any]]
    location: str


class Store(abc.ABC):
    kind: str

    @abc.abstractmethod
    def users(self, emails: set[str] | None) -> Iterator[dict[str, Any]]:
        """Users documents (only these emails, when given), oldest first."""

    @abc.abstractmethod
    def user(self, user_id: str) -> dict[str, Any] | None: ...

    @abc.abstractmethod
    def conversations(self, user_id: str, start: int) -> Iterator[Bundle | Reject]:
        """The user's conversations (``createdAt``, then conversationId), from position
        ``start``; input that cannot be read is a Reject."""

    def stray_conversations(self, user_id: str, known: set[str]) -> dict[str, int]:
        """conversationId → message count, for the user's messages whose conversation
        document is missing (reported, not migrated)."""
        return {}

    @abc.abstractmethod
    def files(self, file_ids: list[str]) -> dict[str, dict[str, Any]]:
        """``files`` documents by ``file_id``."""

    def shares(self, user_id: str) -> dict[str, list[str]]:
        """conversationId → shareIds of the user's ``sharedlinks``."""
        return {}

    def fingerprint(self) -> str | None:
        """A change token of the whole input, or None when "unchanged" cannot be proven."""
        return None

    def damage(self) -> list[Reject]:
        """Input that cannot be read at all (a truncated file): reported, and no scope is
        then treated as complete, so nothing is deleted because of it."""
        return []

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]: ...

    def close(self) -> None:
        """Release clients, files and temporary indexes."""


@dataclass
class Tally:
    """What one user's pass found, for the scope's log line."""

    conversations: int = 0
    messages: int = 0
    orphans: int = 0
    branched: int = 0
    temporary_skipped: int = 0
    stray_conversations: int = 0
    files_missing: int = 0
