"""The ``librechat`` source: LibreChat's users, conversations, message trees and files.

Inputs (exactly one): a live MongoDB (``mongo_uri``, database ``LibreChat`` by default;
pymongo), a mongodump folder (``dump_path``; ``.bson`` or ``.bson.gz``, read with
pymongo's ``bson``), or LibreChat's JSON conversation exports (``export_paths``; flat
``messages`` or recursive ``messagesTree``, with ``owner_email``).

Modules: ``options`` (what can be set), ``store`` and its three inputs ``mongo``,
``dump``, ``exports``; ``mapping`` (documents → records, the key scheme), ``parts``
(text and content parts), ``tree`` (branching, orphans, the displayed branch),
``assets`` (bytes under the asset roots), ``native`` (BSON → JSON-safe), ``source``
(scopes and reading). The mapping rules are in each module's docstring and in
docs/librechat-onyx.md.
"""

from sources.librechat.source import LibreChatSource

__all__ = ["LibreChatSource"]
