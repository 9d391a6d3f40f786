"""The ``localstorage`` source: AI MCP Toolkit browser conversations (export files and raw
localStorage dumps); see docs/localstorage-mongo.md."""

from sources.localstorage.source import LocalStorageOptions, LocalStorageSource

__all__ = ["LocalStorageOptions", "LocalStorageSource"]
