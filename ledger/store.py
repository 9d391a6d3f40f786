"""Opening a ledger: URL handling, the engine, schema upgrades and the blob store.

SQLite (the default) runs in WAL mode; write transactions start with ``BEGIN IMMEDIATE``
so two processes never dead-lock upgrading a read lock. Postgres is reached through
psycopg 3 (``postgresql://`` URLs are mapped to the ``postgresql+psycopg`` dialect).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, create_engine, event
from sqlalchemy.engine import Engine, make_url

from ledger import migrations
from ledger.blobs import BlobStore
from ledger.errors import ConfigError
from ledger.redact import redact

DEFAULT_URL = "sqlite:///chatledger.db"


def normalize_url(url: str) -> str:
    """Accept the URL forms operators type and pick the driver chatledger ships with."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


#: Set on every ledger connection. A 64 MB page cache (the default is 2 MB) keeps more
#: of the random-order key and hash indexes in memory while a large batch is written.
SQLITE_PRAGMAS = (
    "journal_mode=WAL",
    "synchronous=NORMAL",
    "busy_timeout=60000",
    "cache_size=-65536",
)


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"timeout": 60})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (below)
        cursor = dbapi_connection.cursor()
        # Takes effect only when the file is created: payload rows are ~1 KB, and 16 KB
        # pages pack them better and keep index B-trees shallower than the default 4 KB.
        cursor.execute("PRAGMA page_size=16384")
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("ledger_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    try:
        parsed = make_url(url)
    except Exception:
        raise ConfigError(f"not a database URL: {redact(url)}") from None
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if not database or database == ":memory:":
            raise ConfigError("the ledger needs a file: use sqlite:///path/to/chatledger.db")
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        return _sqlite_engine(url)
    if parsed.get_backend_name() == "postgresql":
        # No server-side prepared statements: psycopg prepares after 5 executions and
        # Postgres may then keep a generic plan made while a table was still empty.
        return create_engine(url, pool_pre_ping=True, connect_args={"prepare_threshold": None})
    raise ConfigError(
        f"unsupported ledger database {parsed.get_backend_name()!r}: use SQLite or Postgres"
    )


def default_blob_dir(url: str) -> Path:
    """Beside a SQLite ledger (``x.db`` → ``x.blobs``); ``./chatledger-blobs`` otherwise."""
    parsed = make_url(normalize_url(url))
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        path = Path(parsed.database).expanduser()
        return path.with_name(path.stem + ".blobs")
    return Path("chatledger-blobs")


class Ledger:
    """An open ledger: engine, blob store and the URL to show (password masked)."""

    def __init__(
        self,
        engine: Engine,
        blobs: BlobStore,
        display_url: str,
        revisions: tuple[str | None, str] = (None, ""),
    ) -> None:
        self.engine = engine
        self.blobs = blobs
        self.display_url = display_url
        self.revisions = revisions  # (schema revision found, revision now)

    @classmethod
    def open(cls, url: str | None = None, *, blob_dir: str | os.PathLike | None = None) -> Ledger:
        """Open (creating or upgrading) the ledger at ``url``; refuse a newer schema."""
        url = url or DEFAULT_URL
        display = redact(url)
        engine = make_engine(url)
        revisions = migrations.ensure_current(engine, display_url=display)
        blobs = BlobStore(Path(blob_dir) if blob_dir else default_blob_dir(url))
        return cls(engine, blobs, display, revisions)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def connect_writer(self) -> Connection:
        """A connection whose transactions write (``BEGIN IMMEDIATE`` on SQLite)."""
        return self.engine.connect().execution_options(ledger_write=True)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction."""
        with self.connect_writer() as conn:
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            with conn.begin():
                yield conn

    def close(self) -> None:
        self.engine.dispose()
