"""The ``laravel`` sink: the OpenAgents Laravel app's tables (Postgres, MySQL/MariaDB, SQLite).

Replays any source's stream from canonical data; a ``convex`` stream lands the way the
app's ``khala:import-chat`` importer did, with its rules and counters, but
incrementally, exactly once, verifiable and reversible:

- unit: a conversation (a thread with its messages, runs and run events); users and
  autopilots (``assistant`` records) are record units applied before conversations;
- one target transaction per batch, with ``chatledger_markers`` rows (``markers``);
- ``replace --truncate`` empties the six chat tables (``run_events``, ``messages``,
  ``runs``, ``threads``, ``agent_conversation_messages``, ``agent_conversations``) in the
  same transaction; ``users`` and the autopilot tables are reconciled, never emptied;
- the tables must exist (the app's migrations own them): ``open`` checks and names what
  is missing. ``create_tables = true`` creates them, for tests and demos only.

Rules per table: :mod:`.users`, :mod:`.autopilots`, :mod:`.plan`, :mod:`.threads`.
Counters (``chatledger report RUN``, under ``sink``): the original importer's names
where they apply, plus one per improvement, truncation and skip. What the tables cannot
hold is skipped with its reason (``Outcome.skip``) or, for parts of a message, counted:
``file`` records (the chat tables have no attachments; the engine skips the kind),
messages off the active branch, reasoning/error/image/file/citation/other parts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import groupby

from sqlalchemy import Table, event, inspect

from ledger.kit import (
    ConfigError,
    Item,
    Markers,
    Outcome,
    Sink,
    SqlTarget,
    Unit,
    marker_table,
    option,
    redact,
    target_engine,
)
from sinks.laravel import tables, verify
from sinks.laravel.autopilots import SKIPPED_OWNERLESS, Autopilots
from sinks.laravel.columns import Columns, utc_session
from sinks.laravel.identity import workos_id_of
from sinks.laravel.plan import Plan, Planner
from sinks.laravel.threads import Formed, ThreadWriter
from sinks.laravel.users import Users
from sinks.laravel.workos import WorkosDirectory

KINDS = ("user", "assistant", "conversation", "message", "run", "run_event")
TABLES_OF_KIND = {
    "user": ["users"],
    "assistant": ["autopilots", "autopilot_profiles", "autopilot_policies"],
    "conversation": ["threads", "agent_conversations"],
    "message": ["messages", "agent_conversation_messages"],
    "run": ["runs"],
    "run_event": ["run_events"],
}


@dataclass
class Planned:
    """A conversation unit's plan, made ahead (in the reader thread or a worker), with
    the counters planning raised (counted by ``apply``, once its batch commits)."""

    plan: Plan  # lean (Plan.lean) when the rows are formed
    counts: dict[str, int]
    formed: Formed | None  # its rows as the writer sends them (None: verify's, never written)


@dataclass
class LaravelOptions:
    url: str = option(help="The app's database URL (postgresql://…, mysql://…, sqlite:///…).", secret=True)
    resolve_workos_users: bool = option(
        False,
        help="Look users up in WorkOS for their real email, name and avatar (answers cached in the ledger).",
    )
    workos_api_key: str | None = option(None, help="WorkOS API key, as env:WORKOS_API_KEY.", secret=True)
    workos_api_base: str = option("https://api.workos.com", help="WorkOS API base URL.")
    skip_blueprints: bool = option(
        False, help="Ignore blueprints: autopilots, profiles and policies get the defaults."
    )
    l402_allowed_hosts: list[str] = option(
        [], help="The app's lightning.l402.allowlist_hosts, copied into every autopilot policy."
    )
    markers: bool = option(True, help="Keep chatledger_markers in the target (exactly-once after crashes).")
    create_tables: bool = option(
        False,
        help="Create the app's tables when missing (tests and demos; production runs the app's migrations).",
    )


class LaravelSink(SqlTarget, Sink):
    type_name = "laravel"
    Options = LaravelOptions
    unit = "conversation"
    kinds = KINDS
    capabilities = frozenset({"transactions", "markers", "truncate", "verify"})

    def __init__(self, options: LaravelOptions, context) -> None:
        super().__init__(options, context)
        self.metadata = tables.metadata()
        self.engine = None
        self.markers = Markers(marker_table(self.metadata), self.target) if options.markers else None
        self.directory: WorkosDirectory | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def describe(self) -> str:
        return f"laravel {redact(self.options.url)}"

    def tables(self, kind: str) -> list[str]:
        return TABLES_OF_KIND.get(kind, [kind])

    def written_tables(self) -> list[Table]:
        app = [self.metadata.tables[name] for name in tables.ALL_TABLES]
        return app + super().written_tables()

    def open(self) -> None:
        if self.engine is not None:
            return
        read_only = self.context.read_only  # verify, dry runs: create nothing
        self.engine = target_engine(self.options.url, read_only=read_only)
        if self.engine.dialect.name == "mysql":
            event.listen(self.engine, "connect", utc_session)
        if self.options.create_tables and not read_only:
            self.metadata.create_all(self.engine, checkfirst=True)
        missing = sorted(set(tables.ALL_TABLES) - set(inspect(self.engine).get_table_names()))
        if missing:
            raise ConfigError(
                f"{self.describe()}: the app's tables {', '.join(missing)} are missing; run the app's "
                "migrations first (create_tables = true creates them, for tests and demos only)"
            )
        if self.markers is not None and not read_only:
            self.markers.table.create(self.engine, checkfirst=True)
        self.columns = Columns.reflect(self.engine, self.metadata)
        self.users = Users(self.metadata.tables["users"], self.columns)
        self.autopilots = Autopilots(
            self.metadata,
            self.columns,
            skip_blueprints=self.options.skip_blueprints,
            allowed_hosts=self.options.l402_allowed_hosts,
        )
        self.writer = ThreadWriter(self.metadata, self.engine.dialect, self.users, self.autopilots)
        if self.options.resolve_workos_users:
            if not self.options.workos_api_key:
                raise ConfigError("resolve_workos_users needs workos_api_key (env:WORKOS_API_KEY)")
            if self.context.lookups is None:
                raise ConfigError("resolve_workos_users needs a ledger to cache WorkOS answers in")
            self.directory = WorkosDirectory(
                self.options.workos_api_base, self.options.workos_api_key, self.context.lookups
            )

    def close(self) -> None:
        if self.directory is not None:
            self.directory.close()
            self.directory = None
        super().close()

    # -- writing ---------------------------------------------------------------------------------

    def prepare(self, units: list[Unit]) -> None:
        """Plan the batch's conversations ahead (planning reads only the unit and the
        columns reflected at open); a large replay plans them in worker processes."""
        for unit in units:
            unit.prepared = self.planned_of(unit)

    def unit_preparer(self) -> Callable[[Unit], Planned | None]:
        return self.planned_of

    def planned_of(self, unit: Unit) -> Planned | None:
        """A conversation unit's plan, with the counters planning raised (None for the
        record units: users and autopilots are planned as they are written)."""
        if unit.kind != "conversation":
            return None
        counts: dict[str, int] = {}

        def count(name: str, amount: int = 1) -> None:
            counts[name] = counts.get(name, 0) + amount

        plan = Planner(self.columns, unit.items[0].stream, count).plan(unit)
        if self.context.read_only:  # verify: the rows are compared, never written
            return Planned(plan, counts, None)
        return Planned(plan.lean(), counts, self.writer.form.of_plan(plan))

    def _whole_plan(self, unit: Unit) -> Plan:
        """The unit's plan with every row's values, for verify (a plan made by a sink
        that may write is lean: planned again)."""
        planned = self._planned(unit)
        if planned.formed is None:
            return planned.plan
        return Planner(self.columns, unit.items[0].stream, lambda name, amount=1: None).plan(unit)

    def _planned(self, unit: Unit) -> Planned:
        """The unit's plan made ahead, or made now (where making it ahead failed, so that
        its failure rejects only this unit)."""
        return unit.prepared if isinstance(unit.prepared, Planned) else self.planned_of(unit)

    def apply(self, units: list[Unit], run_id: int, *, truncate: bool = False) -> list[Outcome]:
        resolved = self._resolve(units)  # WorkOS answers first: no HTTP inside the transaction
        counts: dict[str, int] = {}

        def count(name: str, amount: int = 1) -> None:
            if amount:
                counts[name] = counts.get(name, 0) + amount

        outcomes: list[Outcome] = []
        versions = {
            (item.stream, item.key): (item.version, item.hash) for unit in units for item in unit.items
        }
        with self.engine.begin() as conn:
            if truncate:
                self._truncate(conn)
            # consecutive units of one kind are written together: users, then threads
            for kind, run in groupby(units, key=lambda unit: unit.kind):
                if kind == "conversation":
                    planned = [(unit, self._planned(unit)) for unit in run]
                    for _, ahead in planned:
                        for name, amount in ahead.counts.items():
                            count(name, amount)
                    outcomes += self.writer.write(
                        conn, [(u, ahead.plan, ahead.formed) for u, ahead in planned], count
                    )
                elif kind == "user":
                    outcomes += self._apply_users(conn, list(run), resolved, count)
                else:
                    for unit in run:
                        outcomes += self._apply_record(conn, unit, resolved, count)
            if self.markers is not None:
                self.markers.write(conn, outcomes, versions, run_id)
        for name, amount in counts.items():  # only once the batch committed
            self.count(name, amount)
        return outcomes

    def _truncate(self, conn) -> None:
        for name in tables.CHAT_TABLES:
            conn.execute(self.metadata.tables[name].delete())
        if self.markers is not None:
            self.markers.clear(conn)

    def _resolve(self, units: list[Unit]) -> dict[str, dict | None]:
        if self.directory is None:
            return {}
        found = {}
        for unit in units:
            for item in unit.items:
                if item.kind == "user" and item.changed and not item.removed:
                    workos_id = workos_id_of(item.stream, item.key, item.data)
                    found[workos_id] = self.directory.resolve(workos_id)
        return found

    def _apply_users(self, conn, units: list[Unit], resolved: dict, count) -> list[Outcome]:
        """Users in order; the present ones of each stretch between removals in one go."""
        outcomes: list[Outcome] = []
        present: list = []

        def flush() -> None:
            entries = [
                (item, resolved.get(workos_id_of(item.stream, item.key, item.data))) for item in present
            ]
            refs = self.users.write(conn, entries, count)
            outcomes.extend(Outcome.written(item, ref) for item, ref in zip(present, refs, strict=True))
            present.clear()

        for unit in units:
            item = unit.items[0]
            if not item.changed:
                continue
            if item.removed:
                flush()
                outcomes.extend(self._apply_record(conn, unit, resolved, count))
            else:
                present.append(item)
        flush()
        return outcomes

    def _apply_record(self, conn, unit: Unit, resolved: dict, count) -> list[Outcome]:
        """An autopilot record, or a removed user."""
        item = unit.items[0]
        if not item.changed:
            return []
        if item.removed:
            (self.users if unit.kind == "user" else self.autopilots).remove(conn, item)
            return [Outcome.written(item, item.held_ref)] if item.held_hash is not None else []
        ref = self.autopilots.apply(conn, item, item.stream, count)
        if ref is None:
            return [Outcome.skip(item, SKIPPED_OWNERLESS)]
        return [Outcome.written(item, ref)]

    # -- verifying -------------------------------------------------------------------------------

    def fingerprint(self, unit: Unit) -> str:
        item = unit.items[0]
        if unit.kind == "user":
            return self.users.fingerprint(item.held_ref or {})
        if unit.kind == "assistant":
            return _record_fingerprint(item)
        return verify.digest(verify.expected(self._whole_plan(unit)))

    def read_back(self, units: list[Unit]) -> dict[str, str | None]:
        found: dict[str, str | None] = {}
        with self.engine.connect() as conn:
            for unit in units:
                held = unit.items[0].held_ref or {}
                if unit.kind == "user":
                    found[unit.key] = self.users.read_back(conn, held)
                elif unit.kind == "assistant":
                    found[unit.key] = (
                        self.autopilots.read_back(conn, held) if held else _record_fingerprint(unit.items[0])
                    )
                else:
                    found[unit.key] = verify.digest(
                        verify.actual(conn, self.metadata, self._whole_plan(unit))
                    )
        return found

    def unexpected(self, streams: Iterable[str]) -> Iterator[tuple[str, str]]:
        """Units the markers say this target holds (without markers nothing can be told)."""
        if self.markers is None:
            return
        with self.engine.connect() as conn:
            keys = self.markers.keys(conn, streams)
        for stream, key in sorted(keys):
            if key.split(":", 1)[0] in ("user", "assistant", "conversation"):
                yield stream, key


def _record_fingerprint(item: Item) -> str | None:
    """An autopilot's profile and policy digest as written (``skipped`` when it was not)."""
    held = item.held_ref or {}
    return held.get("digest") or ("skipped" if not held or "skipped" in held else None)
