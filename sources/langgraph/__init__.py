"""The ``langgraph`` source: LangGraph threads with their checkpoint history, from a
deployment's API (langgraph-sdk), a ``langgraph-json`` export, or a self-hosted
checkpoint database. See docs/langgraph.md."""

from sources.langgraph.source import LangGraphSource

__all__ = ["LangGraphSource"]
