"""Cherry Studio v1 chats (backups, migration exports) as a source."""

from sources.cherry.source import CherryOptions, CherrySource

__all__ = ["CherryOptions", "CherrySource"]
