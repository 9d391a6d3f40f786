"""Sinks for LangGraph threads: ``langgraph`` (another deployment), ``langgraph-json``
(a streaming JSON backup file) and ``langgraph-postgres`` (the public
langgraph-threads-migration tool's tables). See docs/langgraph.md."""

from sinks.langgraph.exports import JsonExportSink, PostgresExportSink
from sinks.langgraph.sink import LangGraphSink

__all__ = ["JsonExportSink", "LangGraphSink", "PostgresExportSink"]
