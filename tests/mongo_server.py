"""A MongoDB wire-protocol server for the tests: SecantusDB 0.7.0b3, not mongod.

SecantusDB (PyPI ``SecantusDB``, GPL-2.0) is a test-only dependency: only this module
imports it, never the package. It speaks OP_MSG, stores data in WiredTiger and presents
a single-node replica set; it has no ``$text`` search and writes about 5,000 documents
a second, so tests keep their data small. One server runs per test session, in-process;
each test gets its own database on it (``mongo_database``), dropped afterwards.

Without the server the tests skip, unless ``CHATLEDGER_REQUIRE_SERVICES=1``: then they fail.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pymongo
import pytest

SERVER = "SecantusDB 0.7.0b3 (a MongoDB wire-protocol server; not mongod)"


@dataclass(frozen=True)
class MongoDatabase:
    uri: str  # the server's URI, without a database
    name: str

    def client(self) -> pymongo.MongoClient:
        return pymongo.MongoClient(self.uri, serverSelectionTimeoutMS=5000)


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory) -> Iterator[str]:
    """The URI of a SecantusDB server started once for the session."""
    from tests.conftest import service_missing

    try:
        import secantus

        server = secantus.SecantusDBServer(
            storage_path=str(tmp_path_factory.mktemp("secantus")), cache_size="128M"
        )
        server.start()
    except Exception as exc:  # not installed, or it would not start: no usable server
        service_missing(SERVER, f"{type(exc).__name__}: {exc}")
    try:
        with pymongo.MongoClient(server.uri, serverSelectionTimeoutMS=5000) as client:
            client.admin.command("ping")
    except Exception as exc:
        server.stop()
        service_missing(SERVER, f"{type(exc).__name__}: {exc}")
    yield server.uri
    server.stop()


@pytest.fixture
def mongo_database(mongo_server) -> Iterator[MongoDatabase]:
    """A database of its own on the session's server, dropped after the test."""
    database = MongoDatabase(mongo_server, f"chatledger_test_{uuid.uuid4().hex[:12]}")
    yield database
    with database.client() as client:
        client.drop_database(database.name)
