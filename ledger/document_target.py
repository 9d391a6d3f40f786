"""What every document-store sink shares (DESIGN §6): deterministic ``_id``, upserts,
markers inside the documents they describe, and pymongo error classes.

Exactly once without transactions: every document a sink writes for a unit gets an
``_id`` derived from the unit's stream and key (:func:`document_id`), so a re-run
replaces the same document instead of adding one. The ledger's marker (target, run, and
the stream, key, version and hash of every record the document holds) is a field of
that document (:data:`MARKER_FIELD`), written by the same single-document write as the
data. A process that dies after the target's write and before the ledger's commit
leaves documents whose markers name its run; the next replay reads them back
(:meth:`DocumentTarget.reconcile`) and heals ``target_state`` instead of writing twice.

A record removed from a document that stays keeps an entry with hash None, so healing
also learns of the removal; a document removed whole takes its marker with it, and the
re-run's delete of a missing document is a no-op.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

import bson
import pymongo
from bson import ObjectId
from pymongo import errors

from ledger.errors import ChatledgerError
from ledger.sink import Item, PermanentError, TransientError, checking, refuse

MARKER_FIELD = "chatledger"


def document_id(stream: str, key: str, kind: str = "") -> ObjectId:
    """A deterministic ObjectId for (stream, key): the first 12 bytes of a sha256.

    ``kind`` separates several documents written for one record (e.g. a conversation and
    its audit entry). The ObjectId's leading "timestamp" is hash bytes, not a time.
    """
    seed = f"{kind}\x1f{stream}\x1f{key}".encode()
    return ObjectId(hashlib.sha256(seed).digest()[:12])


def marker(target: str, run_id: int, items: Iterable[Item], ref: Any = None) -> dict[str, Any]:
    """The marker a document carries: the records it holds now (hash None: removed)."""
    return {
        "target": target,
        "run": run_id,
        "ref": ref,
        "records": [[item.stream, item.key, item.version, item.hash] for item in items],
    }


_TRANSIENT = (
    errors.AutoReconnect,  # NotPrimaryError, network errors
    errors.ConnectionFailure,
    errors.NetworkTimeout,
    errors.ServerSelectionTimeoutError,
    errors.ExecutionTimeout,
    errors.WTimeoutError,
    errors.WaitQueueTimeoutError,
)
_PERMANENT = (
    errors.DuplicateKeyError,
    errors.WriteError,
    errors.DocumentTooLarge,
    errors.InvalidOperation,
    bson.errors.InvalidDocument,
    errors.OperationFailure,
)
_TRANSIENT_LABELS = ("RetryableWriteError", "TransientTransactionError")


def classify_mongo_error(error: Exception) -> type[ChatledgerError] | None:
    """Lost connections, timeouts and retryable labels retry; bad documents, duplicate
    keys and refused operations do not. A bulk write is transient only when it failed
    on write concern alone."""
    if isinstance(error, errors.BulkWriteError):
        details = error.details or {}
        return PermanentError if details.get("writeErrors") else TransientError
    if isinstance(error, errors.PyMongoError) and any(error.has_error_label(x) for x in _TRANSIENT_LABELS):
        return TransientError
    if isinstance(error, _TRANSIENT):
        return TransientError
    if isinstance(error, _PERMANENT):
        return PermanentError
    if isinstance(error, (ConnectionError, TimeoutError)):
        return TransientError
    return None


class DocumentTarget:
    """What sinks writing one MongoDB database share (mix in before ``Sink``): the
    client's lifetime, healing from in-document markers, upserts by ``_id`` and pymongo
    error classes. ``open`` calls :meth:`connect`; ``marked_collections`` names the
    collections whose documents carry markers."""

    marked_collections: ClassVar[tuple[str, ...]] = ()
    client: pymongo.MongoClient | None = None
    database: Any = None
    target: str
    #: how long to wait for a server to answer: a run rides out a failover, a dry run's
    #: check reports a server that does not answer sooner
    server_timeout_ms = 15000

    def connect(self, uri: str, database: str) -> None:
        if self.client is None:
            self.client = pymongo.MongoClient(
                uri, tz_aware=False, serverSelectionTimeoutMS=self.server_timeout_ms
            )
            self.database = self.client[database]

    def check(self) -> list[str]:
        """Dry runs: ``open`` (read-only: it connects, creates nothing), a ping, a read of
        the database's collections, and, where the server has users, whether this one
        may write there. Nothing is written."""
        self.server_timeout_ms = 5000
        with checking(self):
            self.client.admin.command("ping")
            self.database.list_collection_names()
            refused = self._refused_actions()
        refuse(self, [f"not allowed to {', '.join(refused)}"] if refused else [])
        return []

    def _refused_actions(self) -> list[str]:
        """Writes the authenticated user may not do in the database (none without users)."""
        status = self.client.admin.command("connectionStatus", showPrivileges=True)
        info = status.get("authInfo", {})
        if not info.get("authenticatedUsers"):
            return []  # no access control: everything is allowed
        granted: set[str] = set()
        for privilege in info.get("authenticatedUserPrivileges", []):
            resource = privilege.get("resource", {})
            if resource.get("anyResource") or resource.get("db") in ("", self.database.name):
                granted.update(privilege.get("actions", []))
        return [action for action in ("insert", "update", "remove") if action not in granted]

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
            self.database = None

    def classify(self, error: Exception) -> type[ChatledgerError] | None:
        return classify_mongo_error(error)

    def ours(self) -> dict[str, Any]:
        """The query for documents this target's markers name."""
        return {f"{MARKER_FIELD}.target": self.target}

    def upsert(self, collection: str, documents: list[dict[str, Any]]) -> None:
        """Replace each document by ``_id``, inserting it when missing (one round trip)."""
        if documents:
            requests = [pymongo.ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in documents]
            self.database[collection].bulk_write(requests, ordered=True)

    def remove(self, collection: str, ids: list[ObjectId]) -> None:
        if ids:
            self.database[collection].delete_many({"_id": {"$in": ids}})

    def reconcile(self, run_ids: Iterable[int]) -> Iterator[dict[str, Any]]:
        run_ids = sorted(set(run_ids))
        if not run_ids or self.database is None:
            return iter(())
        query = {**self.ours(), f"{MARKER_FIELD}.run": {"$in": run_ids}}
        found = []
        for name in self.marked_collections:
            for document in self.database[name].find(query, {MARKER_FIELD: 1}):
                mark = document[MARKER_FIELD]
                for stream, key, version, digest in mark["records"]:
                    found.append(
                        {
                            "stream": stream,
                            "key": key,
                            "version": version,
                            "hash": digest,
                            "run_id": mark["run"],
                            "target_ref": mark.get("ref"),
                        }
                    )
        return iter(found)

    def marked_records(self, collection: str, streams: Iterable[str]) -> Iterator[tuple[str, str]]:
        """(stream, key) of every live record the markers in ``collection`` name."""
        wanted = set(streams)
        for document in self.database[collection].find(self.ours(), {MARKER_FIELD: 1}):
            for stream, key, _version, digest in document[MARKER_FIELD]["records"]:
                if stream in wanted and digest is not None:
                    yield stream, key
