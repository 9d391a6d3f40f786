"""Sinks for LangGraph threads: ``langgraph`` (another deployment). See docs/langgraph.md."""

from sinks.langgraph.sink import LangGraphSink

__all__ = ["LangGraphSink"]
