"""The ``claude`` source: Claude.ai data exports; see :mod:`sources.claude.source`."""

from sources.claude.source import ClaudeOptions, ClaudeSource

__all__ = ["ClaudeOptions", "ClaudeSource"]
