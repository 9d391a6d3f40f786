"""The ``onyx`` sink: LibreChat-style chat history into Onyx (Postgres + HTTP API).

Modules: ``options``; ``schema`` (the Onyx schema generation and ChatFileType set);
``users`` (accounts: match, invite/register, credentials, removal; the owner map);
``files`` (uploads through the API, tags, ownership); ``render`` (a conversation as the
rows it should become: the write rules, and the tree fingerprint); ``sessions`` (writing
sessions and messages in one transaction); ``readback`` (rows, trees and descriptors as
Onyx holds them); ``repairs`` (``latest-child``, ``citations``); ``sink`` (the plug-in).
docs/librechat-onyx.md explains the rules and the operator's runbook.
"""

from sinks.onyx.sink import OnyxSink

__all__ = ["OnyxSink"]
