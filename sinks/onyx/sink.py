"""The ``onyx`` sink: the plug-in wiring (DESIGN §6, §7).

The unit is a conversation; users and files come first as record units. One
``apply`` is one batch:

1. before the transaction, the parts that cannot be transactional: accounts matched or
   created through the API (``users.py``), files uploaded and tagged (``files.py``), up
   to ``api_concurrency`` requests at once (``concurrently``);
2. one Postgres transaction: sessions and messages (``sessions.py``), upload ownership,
   removals (sessions, uploads, then accounts), and the marker rows.

Any source's stream lands: users, files, conversation trees and parts are read from
canonical data (the tree through the kit's ``ConversationView``). What Onyx cannot hold
is said and counted: parts without a place in ``chat_message`` (``parts_not_kept_<type>``,
see ``render``), files without bytes (skipped, with the reason), and users who own no
conversation or file in the stream get no account (``users_skipped_no_chats``, a skip).

Verify fingerprints a conversation as Onyx would show it: the session's fields, its
owner, and the whole tree (one root, every row's content and descriptors, parents and
``latest_child`` pointers, see ``render.tree_shape``), computed from the ledger's
documents and again from the rows read back. A user is fingerprinted by its account's
email, a file by its tagged upload's sha256 and owner.
"""

from __future__ import annotations

import queue
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy import MetaData, inspect

from ledger.kit import (
    MARKER_TABLE,
    Api,
    ChatledgerError,
    ConfigError,
    Markers,
    Outcome,
    OwnerMap,
    PermanentError,
    RetryPolicy,
    Sink,
    SqlTarget,
    TransientError,
    Unit,
    digest,
    marker_table,
    owner_of,
    redact,
    target_engine,
    unreachable,
)
from sinks.onyx.files import Files
from sinks.onyx.options import OnyxOptions
from sinks.onyx.readback import descriptor_ids, file_facts, load_sessions, tree
from sinks.onyx.render import SessionPlan, attach_files, draft_session, session_digest
from sinks.onyx.repairs import Citations, LatestChild
from sinks.onyx.schema import OnyxSchema, detect
from sinks.onyx.sessions import Sessions, natural_id
from sinks.onyx.users import NAMESPACE as OWNERS
from sinks.onyx.users import Accounts

#: seconds a dry run waits for the API (a run waits 30, and retries)
CHECK_TIMEOUT = 5.0

In = TypeVar("In")
Out = TypeVar("Out")

TABLES = {
    "user": ['"user" (API)'],
    "file": ["file_record, user_file (API)"],
    "conversation": ["chat_session"],
    "message": ["chat_message"],
}


class OnyxSink(SqlTarget, Sink):
    type_name = "onyx"
    Options = OnyxOptions
    unit = "conversation"
    kinds = ("user", "file", "conversation", "message")
    capabilities = frozenset({"transactions", "markers", "branches", "verify"})
    repairs = {LatestChild.name: LatestChild, Citations.name: Citations}
    preview_kinds = ("user",)

    def __init__(self, options: OnyxOptions, context) -> None:
        super().__init__(options, context)
        self.engine = None
        self.schema: OnyxSchema | None = None
        self._api: Api | None = None
        self.markers = Markers(marker_table(MetaData()), self.target) if options.markers else None
        self.markers_ready = False
        self._refs: dict[tuple[str, str], Any] = {}  # (stream, file key) → FileRef or None
        self._counting = threading.Lock()  # API tasks count from their threads
        self._done_outside: Counter[str] = Counter()  # see count_done

    # -- lifecycle ---------------------------------------------------------------------------

    def describe(self) -> str:
        api = f" api {self.options.api_base}" if self.options.api_base else ""
        return f"onyx {redact(self.options.db_url)}{api}"

    def tables(self, kind: str) -> list[str]:
        return TABLES.get(kind, [kind])

    def open(self) -> None:
        """Connect and detect the schema; writes nothing (dry runs and verify open too)."""
        if self.engine is not None:
            return
        self.engine = target_engine(self.options.db_url, read_only=self.context.read_only)
        if self.engine.dialect.name != "postgresql":
            raise ConfigError(f"onyx: db_url must be a PostgreSQL database, not {self.engine.dialect.name}")
        with self.engine.connect() as conn:
            self.schema = detect(self._cursor(conn), self.options.persona_id, self.options.file_types)
        self.context.log.info("onyx schema", target=self.target, generation=self.schema.generation,
                              file_types=list(self.schema.file_types))  # fmt: skip
        self.markers_ready = self.markers is not None and inspect(self.engine).has_table(MARKER_TABLE)
        self.owners = OwnerMap(self.context.lookups, OWNERS, self.target, "onyx")
        self.accounts = Accounts(self)
        self.files = Files(self)
        self.sessions = Sessions(self)

    def close(self) -> None:
        if self._api is not None:
            self._api.close()
            self._api = None
        super().close()

    @staticmethod
    def _cursor(conn) -> psycopg.Cursor:
        return conn.connection.driver_connection.cursor()

    def api(self) -> Api:
        if self._api is None:
            self._api = self._connect_api()
        return self._api

    def count(self, name: str, amount: int = 1) -> None:
        with self._counting:
            super().count(name, amount)

    def count_done(self, name: str) -> None:
        """Count what the API did outside the batch's transaction (an account registered,
        a file uploaded). The engine drops what a failed attempt counted, as it did not
        happen; these did, and the retry finds them done instead of doing them again, so
        they are held here and handed to the counters of the next apply that lands."""
        with self._counting:
            self._done_outside[name] += 1

    def _hand_over_done(self) -> None:
        with self._counting:
            for name, amount in self._done_outside.items():
                super().count(name, amount)
            self._done_outside.clear()

    def concurrently(self, task: Callable[[psycopg.Cursor, In], Out], inputs: list[In]) -> list[Out]:
        """``task`` of each input (a registration, an upload: API requests, then their
        checks), up to ``api_concurrency`` at once on one keep-alive client; the results
        in input order. Every task runs to its end before the first failure (in input
        order) is raised, so nothing is left in flight and what succeeded is recorded
        (credentials, upload tags) for the retry to find.

        Each task gets an autocommit cursor (``_worker_cursor``) of a database connection
        no other running task uses, checked out once for all inputs: its checks and tags
        are one round trip each (a connection taken from the pool per upload was pinged
        first, and its transaction was three more)."""
        self.api()  # the one client, made before the threads share it
        workers = max(1, min(self.options.api_concurrency, len(inputs)))
        with ExitStack() as stack:
            idle: queue.SimpleQueue[psycopg.Cursor] = queue.SimpleQueue()
            for _ in range(workers):
                idle.put(stack.enter_context(self._worker_cursor()))

            def run(value: In) -> Out:
                cursor = idle.get()
                try:
                    return task(cursor, value)
                finally:
                    idle.put(cursor)

            if workers == 1:
                return [run(value) for value in inputs]
            with ThreadPoolExecutor(workers, thread_name_prefix="onyx-api") as pool:
                futures = [pool.submit(run, value) for value in inputs]
        return [future.result() for future in futures]

    @contextmanager
    def _worker_cursor(self) -> Iterator[psycopg.Cursor]:
        """An API worker's autocommit cursor, whose commits (the upload tags) do not wait
        for the WAL to reach the disk: the batch's transaction, committed before the
        ledger records the batch, flushes them with its own. A database crash before
        that may lose a tag, and the upload is then made again, as when chatledger dies
        between an upload and its tag."""
        with self.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT")
            with self._cursor(conn) as cursor:
                cursor.execute("SET synchronous_commit TO off")
                try:
                    yield cursor
                finally:
                    try:
                        cursor.execute("RESET synchronous_commit")
                    except psycopg.Error:  # not handed on by the pool with the setting
                        conn.invalidate()

    def _connect_api(self, **settings: Any) -> Api:
        if not self.options.api_base or not self.options.api_key:
            raise PermanentError("onyx: creating users and uploading files needs api_base and api_key")
        return Api(
            self.options.api_base,
            headers={"Authorization": f"Bearer {self.options.api_key}"},
            secrets=(self.options.api_key,),
            **settings,
        )

    def check(self) -> list[str]:
        """Dry runs: the database (schema, rights, as ``SqlTarget`` checks it), then the
        API answers the key: one cheap authenticated read, the first account of Onyx's
        paged user list (an admin route, as inviting is), with a short timeout and no retry."""
        notes = super().check()
        if not self.options.api_base or not self.options.api_key:
            return [*notes, "api_base or api_key not set: a run can create no account and upload no file"]
        api = self._connect_api(timeout=CHECK_TIMEOUT, retry=RetryPolicy(attempts=1))
        try:
            api.request("GET", "/manage/users/accepted", params={"page_num": 0, "page_size": 1})
        except PermanentError as error:
            refused = error.status in (401, 403)
            what = "the API refused the api_key" if refused else "the API refused a read"
            raise unreachable(self, error, what) from error
        except TransientError as error:
            raise unreachable(self, error, "cannot reach the API") from error
        finally:
            api.close()
        return notes

    @staticmethod
    def tag_upload(cursor, file_id: str, user_file_id: str, tag: dict[str, Any]) -> tuple[str, str] | None:
        """Tag an upload in a statement of its own (``cursor`` autocommits), so a failed
        batch does not lose it: the upload's ``user_file`` name and owner, or None
        (nothing tagged) when Onyx holds no such ``user_file`` of that ``file_record``."""
        cursor.execute(
            "UPDATE file_record fr SET file_metadata = COALESCE(fr.file_metadata, '{}'::jsonb) || "
            "jsonb_build_object('chatledger', %s::jsonb) FROM user_file uf "
            "WHERE fr.file_id = %s AND uf.id = %s::uuid AND uf.file_id = fr.file_id "
            "RETURNING uf.name, uf.user_id::text",
            (Jsonb(tag), file_id, user_file_id),
        )
        return cursor.fetchone()

    def session_ids(self, *, exclude: set[str], chunk: int) -> Iterator[list[str]]:
        with self.engine.connect() as conn:
            ids = [row[0] for row in conn.exec_driver_sql("SELECT id::text FROM chat_session ORDER BY id")]
        ids = [session for session in ids if session not in exclude]
        for start in range(0, len(ids), chunk):
            yield ids[start : start + chunk]

    # -- errors ------------------------------------------------------------------------------

    @staticmethod
    def is_integrity_error(error: Exception) -> bool:
        return isinstance(error, psycopg.errors.IntegrityError)

    def classify(self, error: Exception) -> type[ChatledgerError] | None:
        if isinstance(error, OSError):  # a blob the ledger should have is unreadable
            return PermanentError
        return super().classify(error)

    def reconcile(self, run_ids: Iterable[int]) -> Iterator[dict[str, Any]]:
        if not self.markers_ready:  # no marker table yet: nothing was ever written
            return iter(())
        return super().reconcile(run_ids)

    # -- writing -----------------------------------------------------------------------------

    def apply(self, units: list[Unit], run_id: int, *, truncate: bool = False) -> list[Outcome]:
        if truncate:
            raise PermanentError(
                "the onyx sink empties no tables (Onyx's tables hold chats chatledger did not write); "
                "use --policy replace without --truncate"
            )
        self._ensure_markers()
        self._refs.clear()  # uploads may change below
        by_kind: dict[str, list[Unit]] = {"user": [], "file": [], "conversation": []}
        for unit in units:
            by_kind.get(unit.kind, by_kind["conversation"]).append(unit)
        changed_users = [u.items[0] for u in by_kind["user"] if u.items[0].changed]
        changed_files = [u.items[0] for u in by_kind["file"] if u.items[0].changed]
        outcomes: list[Outcome] = []
        with self.engine.connect() as conn:  # the API's part: not transactional, idempotent
            cursor = self._cursor(conn)
            live_users = [item for item in changed_users if not item.removed]
            for item, (reference, skipped) in zip(
                live_users, self.accounts.ensure_all(cursor, live_users), strict=True
            ):
                self.owners.put(item.stream, item.key, reference)
                outcomes.append(Outcome.skip(item, skipped) if skipped else Outcome.written(item, reference))
            for stream, owner in _owners_written(by_kind["conversation"], changed_files):
                self.accounts.ensure_late(cursor, stream, owner)
            file_work, file_outcomes, file_removals = self.files.prepare(cursor, changed_files)
        with self.engine.begin() as conn:
            cursor = self._cursor(conn)
            outcomes += self.sessions.write(cursor, by_kind["conversation"])
            outcomes += self.files.write(cursor, file_work) + file_outcomes
            outcomes += self.files.remove(cursor, file_removals)
            outcomes += self.accounts.remove(cursor, [item for item in changed_users if item.removed])
            if self.markers is not None:
                versions = {(i.stream, i.key): (i.version, i.hash) for u in units for i in u.items}
                self.markers.write(conn, outcomes, versions, run_id)
        for item in changed_users:
            if item.removed:
                self.owners.put(item.stream, item.key, None)
        for unit in by_kind["conversation"]:  # written: its draft is not needed again
            _release_draft(unit)
        self._hand_over_done()
        return outcomes

    def prepare(self, units: list[Unit]) -> None:
        """Draft each live conversation's rows (``render.draft_session``) in the reader
        thread, ahead of ``apply`` or ``fingerprint``; only the uploads' descriptors, read
        from the target, are attached there."""
        if self.schema is None:
            return
        for unit in units:
            if unit.kind not in ("user", "file") and unit.head is not None and not unit.removed:
                unit.head.prepared = self._draft(unit)

    def plan(self, unit: Unit, files: dict[str, Any]) -> SessionPlan:
        """The rows a live conversation should be, with these uploads (file key → FileRef)."""
        prepared = unit.head.prepared if unit.head is not None else None
        plan = prepared if isinstance(prepared, SessionPlan) else self._draft(unit)
        attach_files(plan, files)
        return plan

    def _draft(self, unit: Unit) -> SessionPlan:
        return draft_session(unit, persona_id=self.options.persona_id, bridge_text=self.options.bridge_text,
                             reasoning=self.schema.reasoning)  # fmt: skip

    def _ensure_markers(self) -> None:
        if self.markers is not None and not self.markers_ready:
            self.markers.table.metadata.create_all(self.engine, checkfirst=True)
            self.markers_ready = True

    def preview(self, units: list[Unit]) -> dict[str, Any]:
        """Dry runs: the accounts a replay would create, match or skip."""
        items = [unit.items[0] for unit in units if unit.kind == "user" and not unit.items[0].removed]
        with self.engine.connect() as conn:
            plan = self.accounts.preview(self._cursor(conn), items)
        for email in plan["create"]:
            self.context.log.info("onyx: would create account", target=self.target, email=email)
        return {"users": plan}

    # -- verifying -----------------------------------------------------------------------------

    def fingerprint(self, unit: Unit) -> str:
        item = unit.head or unit.items[0]
        if unit.kind == "user":
            return digest("user", _email(item.data))
        if unit.kind == "file":
            return self._file_fingerprint(item)
        owner = self.owners.get(item.stream, item.data.get("owner"))
        if owner is None or owner.get("skipped"):
            return digest("no session", owner and owner.get("email"))
        plan = self.plan(unit, self.file_refs([unit]))
        fingerprint = session_digest(plan.session, owner["user_id"], [plan.root])
        _release_draft(unit)
        return fingerprint

    def _file_fingerprint(self, item) -> str:
        owner = self.owners.get(item.stream, item.data.get("owner")) or {}
        if owner.get("skipped") or not item.data.get("sha256"):
            return digest("no upload", item.key)
        return digest("upload", item.key, item.data["sha256"], owner.get("user_id"))

    def file_refs(self, units: list[Unit]) -> dict[str, Any]:
        """file key → FileRef of the uploads these units' messages use (cached per batch)."""
        wanted = {
            (item.stream, key)
            for unit in units
            for item in unit.items
            if item.kind == "message" and not item.removed
            for key in item.data.get("files") or []
        }
        missing: dict[str, set[str]] = {}
        for stream, key in wanted - self._refs.keys():
            missing.setdefault(stream, set()).add(key)
        if missing:
            with self.engine.connect() as conn:
                found = self.files.refs(self._cursor(conn), missing)
            for stream, keys in missing.items():
                self._refs.update({(stream, key): found.get(key) for key in keys})
        return {
            key: self._refs[(stream, key)] for stream, key in wanted if self._refs[(stream, key)] is not None
        }

    def read_back(self, units: list[Unit]) -> dict[str, str | None]:
        found: dict[str, str | None] = {}
        with self.engine.connect() as conn:
            cursor = self._cursor(conn)
            for unit in units:
                if unit.kind == "user":
                    found[unit.key] = self._read_user(cursor, unit.items[0])
                elif unit.kind == "file":
                    found[unit.key] = self._read_file(cursor, unit.items[0])
            conversations = [unit for unit in units if unit.kind not in ("user", "file")]
            self._refs.clear()
            found.update(self._read_sessions(cursor, conversations))
        return found

    def _read_user(self, cursor, item) -> str | None:
        email = _email(item.data)
        exists = email is not None and self.accounts.find(cursor, email) is not None
        return digest("user", email) if exists or email is None or email in self.accounts.skip else None

    def _read_file(self, cursor, item) -> str | None:
        upload = self.files.tagged(cursor, item.stream, [item.key]).get(item.key)
        if upload is None:
            return digest("no upload", item.key)
        return digest("upload", item.key, upload.sha256, upload.owner)

    def _read_sessions(self, cursor, units: list[Unit]) -> dict[str, str | None]:
        ids = {}
        for unit in units:
            if unit.head is None:
                continue
            ref = unit.head.held_ref if isinstance(unit.head.held_ref, dict) else {}
            ids[unit.key] = ref.get("chat_session") or natural_id(unit.head.stream, unit)
        sessions = load_sessions(cursor, self.schema, sorted(set(ids.values())))
        facts = file_facts(cursor, descriptor_ids(sessions))
        found: dict[str, str | None] = {}
        for unit in units:
            session = sessions.get(ids.get(unit.key))
            if session is None:
                owner = self.owners.get(unit.head.stream, unit.head.data.get("owner")) if unit.head else None
                found[unit.key] = (
                    digest("no session", owner.get("email")) if owner and owner.get("skipped") else None
                )
                continue
            found[unit.key] = session_digest(
                session.fields, session.user_id, tree(session, facts, self.schema)
            )
        return found

    def unexpected(self, streams: Iterable[str]) -> Iterator[tuple[str, str]]:
        if not self.markers_ready:
            return iter(())
        with self.engine.connect() as conn:
            return iter(sorted(self.markers.keys(conn, streams)))


def _owners_written(conversations: list[Unit], files: list) -> set[tuple[str, str]]:
    """(stream, owner key) of the live conversations and files about to be written."""
    owners = {(unit.head.stream, owner_of(unit)) for unit in conversations if unit.head and not unit.removed}
    owners |= {(item.stream, item.data.get("owner")) for item in files if not item.removed}
    return {(stream, owner) for stream, owner in owners if isinstance(owner, str) and owner}


def _release_draft(unit: Unit) -> None:
    """Free a conversation's draft made by ``prepare`` (see ``SessionPlan.release``)."""
    if unit.head is not None and isinstance(unit.head.prepared, SessionPlan):
        unit.head.prepared.release()
        unit.head.prepared = None


def _email(data: dict[str, Any]) -> str | None:
    email = data.get("email")
    return email.strip().lower() if isinstance(email, str) else None
