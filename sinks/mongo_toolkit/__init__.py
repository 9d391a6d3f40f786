"""The ``mongo-toolkit`` sink: the AI MCP Toolkit's per-user MongoDB conversations.

Modules: ``sink`` (units, indexes, audit entries, verify), ``documents`` (a conversation
as the app's document, and its fingerprint), ``users`` (matching and creating users).
See docs/localstorage-mongo.md."""

from sinks.mongo_toolkit.sink import MongoToolkitOptions, MongoToolkitSink

__all__ = ["MongoToolkitOptions", "MongoToolkitSink"]
