"""Opening a ledger: URL handling, the engine, schema upgrades and the blob store.

SQLite (the default) runs in WAL mode; write transactions start with ``BEGIN IMMEDIATE``
so two processes never dead-lock upgrading a read lock. Postgres is reached through
psycopg 3 (``postgresql://`` URLs are mapped to the ``postgresql+psycopg`` dialect).

Modes of :meth:`Ledger.open`:

- ``create`` (writing commands): create the ledger if it is missing, upgrade it.
- ``existing`` (read commands, verify, unlock): refuse a ledger that does not exist (a
  mistyped path must not leave an empty ledger behind).
- ``dry`` (dry runs): an existing ledger as ``existing``; a missing one is an empty
  ledger in a temporary folder, removed on close, so a dry run creates nothing.

In every mode, an existing SQLite ledger whose file or folder this process cannot write
(a read-only filesystem, a copy on a DVD, another user's file), or whose URL is a SQLite
URI with ``mode=ro``, opens read-only: ``read_only`` is then set, reads and dry runs work,
and :meth:`Ledger.connect_writer` refuses with a message saying so.

:meth:`Ledger.rehearsal` gives a dry run the ledger as it would be: it writes for real
into one transaction that is rolled back at the end (``migrate --dry-run`` extracts
into it and plans the replay from what it would hold).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, unquote

from sqlalchemy import Connection, create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError

from ledger import migrations
from ledger.blobs import BlobStore
from ledger.errors import ChatledgerError, ConfigError, LedgerVersionError, UsageError
from ledger.redact import redact

DEFAULT_URL = "sqlite:///chatledger.db"
CREATE, EXISTING, DRY = "create", "existing", "dry"
MODES = (CREATE, EXISTING, DRY)


def normalize_url(url: str) -> str:
    """Accept the URL forms operators type and pick the driver chatledger ships with."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


#: An 8 MB page cache per connection (the default is 2 MB) for the random-order key and
#: hash indexes. Every extract, replay and verify holds two or three ledger connections,
#: and a cache fills as the ledger grows: at 64 MB a run's peak RSS grew with its input
#: (a 100,000-message Cherry Studio backup: 161 MB at 20,000 messages, 266 MB at 100,000)
#: for no measurable speed on the 2-core machine; at 8 MB it stays flat.
PAGE_CACHE = "cache_size=-8192"
SQLITE_PRAGMAS = ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=60000", PAGE_CACHE)


#: A read-only connection changes nothing: no journal mode, and writes refused.
SQLITE_READ_PRAGMAS = ("busy_timeout=60000", PAGE_CACHE, "query_only=1")


def _sqlite_engine(url: str, read_only: bool = False) -> Engine:
    if read_only:
        url = _read_only_url(url)
    engine = create_engine(url, connect_args={"timeout": 60})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (below)
        cursor = dbapi_connection.cursor()
        if read_only:
            pragmas = SQLITE_READ_PRAGMAS
        else:
            # Takes effect only when the file is created: payload rows are ~1 KB, and 16 KB
            # pages pack them better and keep index B-trees shallower than the default 4 KB.
            cursor.execute("PRAGMA page_size=16384")
            pragmas = SQLITE_PRAGMAS
        for pragma in pragmas:
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("ledger_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _read_only_url(url: str) -> str:
    """An SQLite URI opening the file read-only. In a folder nobody can write (a read-only
    filesystem) the WAL's shared-memory file cannot be made, so the file is opened as
    immutable: no other process can be changing it there."""
    path = sqlite_path(url)
    flags = "mode=ro" if os.access(path.parent, os.W_OK) else "immutable=1"
    return f"sqlite:///file:{quote(str(path))}?{flags}&uri=true"


def sqlite_path(url: str) -> Path:
    """The file of a ``sqlite:///`` URL, ``~`` expanded (the same path is opened); of a
    SQLite URI too (``sqlite:///file:/srv/ledger.db?mode=ro&uri=true``)."""
    database = make_url(normalize_url(url)).database or ""
    if database.startswith("file:"):
        database = unquote(database.removeprefix("file:"))
    return Path(database).expanduser()


def _asks_read_only(url: str) -> bool:
    """A SQLite URI that opens the file read-only (``mode=ro``, ``immutable=1``)."""
    query = make_url(normalize_url(url)).query
    return query.get("mode") == "ro" or query.get("immutable") == "1"


def _expand_home(url: str) -> str:
    parsed = make_url(url)
    return parsed.set(database=str(Path(parsed.database).expanduser())).render_as_string(hide_password=False)


def make_engine(url: str, *, read_only: bool = False) -> Engine:
    url = normalize_url(url)
    try:
        parsed = make_url(url)
    except Exception:
        raise ConfigError(f"not a database URL: {redact(url)}") from None
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if not database or database == ":memory:":
            raise ConfigError("the ledger needs a file: use sqlite:///path/to/chatledger.db")
        url = _expand_home(url)
        if not read_only:
            sqlite_path(url).parent.mkdir(parents=True, exist_ok=True)
        return _sqlite_engine(url, read_only)
    if parsed.get_backend_name() == "postgresql":
        # No server-side prepared statements: psycopg prepares after 5 executions and
        # Postgres may then keep a generic plan made while a table was still empty.
        connect_args: dict = {"prepare_threshold": None}
        if read_only:
            connect_args["options"] = "-c default_transaction_read_only=on"
        return create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    raise ConfigError(f"unsupported ledger database {parsed.get_backend_name()!r}: use SQLite or Postgres")


def default_blob_dir(url: str) -> Path:
    """Beside a SQLite ledger (``x.db`` → ``x.blobs``); ``./chatledger-blobs`` otherwise."""
    parsed = make_url(normalize_url(url))
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        path = sqlite_path(url)
        return path.with_name(path.stem + ".blobs")
    return Path("chatledger-blobs")


class Ledger:
    """An open ledger: engine, blob store and the URL to show (password masked)."""

    #: writes go to a transaction that is rolled back (:meth:`rehearsal`)
    rehearsing = False

    def __init__(
        self,
        engine: Engine,
        blobs: BlobStore,
        display_url: str,
        revisions: tuple[str | None, str] = (None, ""),
        *,
        read_only: bool = False,
        scratch: Path | None = None,
    ) -> None:
        self.engine = engine
        self.blobs = blobs
        self.display_url = display_url
        self.revisions = revisions  # (schema revision found, revision now)
        self.read_only = read_only  # nothing may write (a read-only file or filesystem)
        self.scratch = scratch  # the temporary folder of a dry run's empty ledger

    @classmethod
    def open(
        cls, url: str | None = None, *, blob_dir: str | os.PathLike | None = None, mode: str = CREATE
    ) -> Ledger:
        """Open the ledger at ``url`` in one of the MODES (module doc); refuse a newer schema,
        and name the ledger when the database cannot be opened (no SQLite file, no server)."""
        if mode not in MODES:
            raise ValueError(f"unknown ledger mode {mode!r}")
        url = url or DEFAULT_URL
        display = redact(url)
        try:
            return cls._open(url, display, blob_dir, mode)
        except DBAPIError as error:
            detail = (
                str(error.orig).strip().splitlines()[0] if str(error.orig).strip() else type(error).__name__
            )
            raise ChatledgerError(redact(f"the ledger at {display} cannot be opened: {detail}")) from None

    @classmethod
    def _open(cls, url: str, display: str, blob_dir: str | os.PathLike | None, mode: str) -> Ledger:
        if mode != CREATE and not _exists(url):
            if mode == DRY:
                return cls._scratch(display)
            raise UsageError(
                f"there is no ledger at {display}: check --ledger, the ledger url in "
                "chatledger.toml or $CHATLEDGER_LEDGER (a writing command or `chatledger init` "
                "creates one)"
            )
        read_only = _sqlite_unwritable(url) and (mode != CREATE or sqlite_path(url).is_file())
        engine = make_engine(url, read_only=read_only)
        if read_only:
            revisions = _check_current(engine, display)
        else:
            revisions = migrations.ensure_current(engine, display_url=display)
        blobs = BlobStore(Path(blob_dir) if blob_dir else default_blob_dir(url))
        return cls(engine, blobs, display, revisions, read_only=read_only)

    @classmethod
    def _scratch(cls, display: str) -> Ledger:
        """An empty ledger in a temporary folder, for a dry run of a ledger not made yet."""
        folder = Path(tempfile.mkdtemp(prefix="chatledger-dry-"))
        url = f"sqlite:///{folder / 'ledger.db'}"
        engine = make_engine(url)
        revisions = migrations.ensure_current(engine, display_url=display)
        return cls(engine, BlobStore(folder / "blobs"), display, revisions, scratch=folder)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def connect_writer(self) -> Connection:
        """A connection whose transactions write (``BEGIN IMMEDIATE`` on SQLite); refused
        on a read-only ledger, before anything (a target included) is written."""
        if self.read_only:
            raise UsageError(
                f"the ledger at {self.display_url} is read-only (its file or folder cannot be written, "
                "or its URL says mode=ro): this command writes to it; a --dry-run plans from it"
            )
        return self.engine.connect().execution_options(ledger_write=True)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction."""
        with self.connect_writer() as conn, conn.begin():
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def rehearsal(self) -> Iterator[Ledger]:
        """This ledger as it would be after writes that are thrown away: every read and
        write of the ledger yielded shares one transaction, rolled back when the block
        ends, however it ends. On SQLite that transaction holds the write lock until then
        (other writers wait, up to the busy timeout)."""
        if self.read_only:
            raise UsageError(f"the ledger at {self.display_url} is read-only: nothing can rehearse in it")
        with self.connect_writer() as conn:
            conn.begin()
            try:
                yield _Rehearsal(self, conn)
            finally:
                conn.rollback()

    def close(self) -> None:
        self.engine.dispose()
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)


class _Rehearsal(Ledger):
    """A ledger whose transactions are savepoints of one outer transaction (see
    :meth:`Ledger.rehearsal`); closing it leaves the ledger open."""

    rehearsing = True

    def __init__(self, ledger: Ledger, conn: Connection) -> None:
        super().__init__(ledger.engine, ledger.blobs, ledger.display_url, ledger.revisions)
        self.conn = conn

    def connect_writer(self) -> Connection:
        raise TypeError("a rehearsal writes through write(), in its one transaction")

    @contextmanager
    def write(self) -> Iterator[Connection]:
        with self.conn.begin_nested():
            yield self.conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        yield self.conn

    def close(self) -> None:
        pass


def _exists(url: str) -> bool:
    """A ledger is there: its SQLite file, or a schema in the (Postgres) database."""
    parsed = make_url(normalize_url(url))
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_path(url)
        if path.exists() and not path.is_file():
            raise UsageError(f"the ledger at {redact(url)} is not a file: {path} is a folder")
        return path.is_file()
    engine = make_engine(url, read_only=True)
    try:
        return migrations.current_revision(engine) is not None
    finally:
        engine.dispose()


def _sqlite_unwritable(url: str) -> bool:
    if make_url(normalize_url(url)).get_backend_name() != "sqlite":
        return False
    if _asks_read_only(url):
        return True
    path = sqlite_path(url)
    return not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK))


def _check_current(engine: Engine, display: str) -> tuple[str | None, str]:
    """A ledger opened read-only cannot be upgraded: it must be at this version's schema."""
    found, head = migrations.current_revision(engine), migrations.head_revision()
    if found != head:
        raise LedgerVersionError(
            f"the ledger at {display} is read-only and at schema revision {found!r}, not "
            f"{head!r}: open a writable copy with this chatledger, or use the chatledger that wrote it"
        )
    return found, head
