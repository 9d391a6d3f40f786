"""The ``chatledger`` command: a thin layer over :mod:`ledger.api` and friends.

Exit codes (DESIGN §8): 0 success, 1 failure, 2 usage error, 3 verification mismatch.
Read commands take ``--json``; output goes to stdout, logs and progress to stderr.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import structlog
import typer
from rich.console import Console

from ledger import __version__, api, locks, logs, plugins, queries, report, runs
from ledger import config as configuration
from ledger.errors import ChatledgerError, UsageError
from ledger.extract import ExtractSettings
from ledger.replay import ReplaySettings
from ledger.options import option_specs
from ledger.progress import for_terminal
from ledger.redact import redact
from ledger.store import Ledger

app = typer.Typer(
    name="chatledger",
    help="Migrate AI-chat history between platforms through an event-sourced ledger.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts quote TOML like [ledger] url literally
)
config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")
bench_app = typer.Typer(help="Benchmarks, measured as ratios within one run.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
log = structlog.get_logger("chatledger.cli")


@dataclass
class State:
    ledger_flag: str | None = None
    config_path: Path | None = None
    verbose: int = 0
    _config: configuration.Config | None = None
    _ledgers: list[Ledger] = field(default_factory=list)

    def config(self) -> configuration.Config:
        if self._config is None:
            self._config = configuration.load_config(self.config_path)
        return self._config

    def ledger(self) -> Ledger:
        if not self._ledgers:
            self._ledgers.append(api.open_ledger(self.config(), self.ledger_flag))
        return self._ledgers[0]


def _state(ctx: typer.Context) -> State:
    return ctx.ensure_object(State)


def _fail(message: str, code: int) -> None:
    err.print(f"[red]error:[/red] {redact(message)}", highlight=False, markup=True)
    raise typer.Exit(code)


def command(parent: typer.Typer, *args: Any, **kwargs: Any):
    """Register a command whose ChatledgerErrors become a message and an exit code."""

    def decorate(function):
        @functools.wraps(function)
        def wrapper(*call_args: Any, **call_kwargs: Any):
            try:
                return function(*call_args, **call_kwargs)
            except (typer.Exit, typer.Abort):
                raise
            except ChatledgerError as exc:
                _fail(str(exc), exc.exit_code)
            except KeyboardInterrupt:
                _fail("interrupted", 130)
            except Exception as exc:  # an unexpected failure: short message, trace with -v
                log.debug("unexpected failure", exc_info=True)
                _fail(f"{type(exc).__name__}: {exc} (run with -v for the traceback)", 1)

        return parent.command(*args, **kwargs)(wrapper)

    return decorate


def _print_json(value: Any) -> None:
    out.print_json(json.dumps(value, default=str, ensure_ascii=False), highlight=False)


JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


@app.callback()
def main(
    ctx: typer.Context,
    ledger: Annotated[
        str | None,
        typer.Option(
            "--ledger",
            help="Ledger database URL (default: chatledger.toml [ledger] url, then "
            "$CHATLEDGER_LEDGER, then sqlite:///chatledger.db).",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Configuration file (default: ./chatledger.toml)."),
    ] = None,
    log_json: Annotated[bool, typer.Option("--log-json", help="Log JSON lines.")] = False,
    verbose: Annotated[int, typer.Option("-v", "--verbose", count=True, help="Debug logs.")] = 0,
) -> None:
    logs.configure(json=log_json, verbosity=verbose)
    ctx.obj = State(ledger_flag=ledger, config_path=config, verbose=verbose)


@command(app)
def version() -> None:
    """Print chatledger's version."""
    out.print(__version__)


@command(app)
def init(ctx: typer.Context) -> None:
    """Create the ledger, or upgrade it to this version's schema."""
    opened = _state(ctx).ledger()
    before, now = opened.revisions
    if before is None:
        what = f"created at schema revision {now}"
    elif before == now:
        what = f"already at schema revision {now}"
    else:
        what = f"upgraded from schema revision {before} to {now}"
    out.print(f"ledger {opened.display_url}: {what}", highlight=False)


def _plugin_listing(names: list[str], load) -> dict[str, list[dict[str, Any]]]:
    return {
        kind: [
            {
                "flag": spec.flag,
                "type": spec.describe_type() or "flag",
                "required": spec.required,
                "default": None if spec.required else spec.default,
                "secret": spec.secret,
                "help": spec.help,
            }
            for spec in option_specs(load(kind).Options)
        ]
        for kind in names
    }


def _print_listing(found: dict[str, list[dict[str, Any]]], as_json: bool) -> None:
    if as_json:
        _print_json(found)
        return
    for kind, specs in found.items():
        out.print(f"[bold]{kind}[/bold]")
        for spec in specs:
            default = "required" if spec["required"] else f"default {spec['default']!r}"
            out.print(f"  {spec['flag']} {spec['type']}  {spec['help']} ({default})", highlight=False)


@command(app)
def sources(
    name: Annotated[str | None, typer.Argument(help="A source type.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List source types and their options (the flags of extract)."""
    names = [name] if name else plugins.source_types()
    _print_listing(_plugin_listing(names, plugins.source_class), as_json)


@command(app)
def sinks(
    name: Annotated[str | None, typer.Argument(help="A sink type.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List sink types and their options (the flags of replay, verify and repair)."""
    names = [name] if name else plugins.sink_types()
    _print_listing(_plugin_listing(names, plugins.sink_class), as_json)


@command(
    app,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def extract(
    ctx: typer.Context,
    name: Annotated[
        str, typer.Argument(help="A stream named in chatledger.toml, or a source type.")
    ],
    stream_name: Annotated[
        str | None,
        typer.Option("--name", help="Stream name for an ad-hoc source type (required then)."),
    ] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, help="Records per ledger transaction.")
    ] = 5000,
    full: Annotated[
        bool, typer.Option(help="Read every scope, even those a checkpoint proves unchanged.")
    ] = False,
    dry_run: Annotated[bool, typer.Option(help="Compare and report; write nothing.")] = False,
    parallel: Annotated[
        bool, typer.Option(help="Read in a child process while this one writes.")
    ] = True,
    progress: Annotated[bool, typer.Option(help="Show progress.")] = True,
    validate_only: Annotated[
        bool, typer.Option(help="Print what the source finds in its input; extract nothing.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Extract a stream into the ledger. Source options follow as flags
    (`chatledger sources` lists them), e.g.
    `chatledger extract synthetic --name demo --users 100 --seed 7`."""
    state = _state(ctx)
    if validate_only:
        found = api.validate_stream(
            state.ledger(), state.config(), name, list(ctx.args), stream_name=stream_name
        )
        if as_json:
            _print_json(found)
        else:
            for key, value in found.items():
                out.print(f"{key}: {json.dumps(value, ensure_ascii=False, default=str)}", highlight=False)
        return
    settings = ExtractSettings(
        batch_size=batch_size, full=full, dry_run=dry_run, parallel=parallel
    )
    opened = state.ledger()
    result = api.extract_stream(
        opened,
        state.config(),
        name,
        list(ctx.args),
        stream_name=stream_name,
        settings=settings,
        progress=for_terminal(progress and not as_json),
    )
    if as_json:
        _print_json({"run_id": result.run_id, "status": result.status, "stats": result.stats})
        return
    if result.run_id is None:
        out.print("dry run: nothing was written")
        out.print(report.extract_report(result.stats))
        return
    run = runs.get_run(opened, result.run_id)
    out.print(report.run_report(run, queries.run_rejects(opened, result.run_id, limit=20)))


TargetName = Annotated[
    str | None,
    typer.Option("--name", help="Target name for an ad-hoc sink type (required then)."),
]
Streams = Annotated[
    list[str] | None,
    typer.Option("--stream", help="A stream to replay (repeatable; default: the target's streams)."),
]
DryRun = Annotated[bool, typer.Option(help="Print the plan; write nothing anywhere.")]
Progressing = Annotated[bool, typer.Option(help="Show progress.")]
PLUGIN_FLAGS = {"allow_extra_args": True, "ignore_unknown_options": True}


def _replay_settings(**values: Any) -> ReplaySettings:
    return ReplaySettings(**{key: value for key, value in values.items() if value is not None})


def _print_replay(opened: Ledger, result, as_json: bool) -> None:
    if as_json:
        _print_json({"run_id": result.run_id, "status": result.status, "stats": result.stats})
    elif result.run_id is None:
        plan = result.stats.get("plan", {})
        out.print(report.plan_report(plan) if "rollback" not in plan else str(plan))
        if "fixes" in result.stats:
            out.print(f"repair {result.stats['rule']} would make {result.stats['fixes']} fix(es)")
    else:
        run = runs.get_run(opened, result.run_id)
        out.print(report.run_report(run, queries.run_rejects(opened, result.run_id, limit=20)))
    if result.status == runs.FAILED:
        raise typer.Exit(1)


@command(app, context_settings=PLUGIN_FLAGS)
def replay(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="A target named in chatledger.toml, or a sink type.")],
    target_name: TargetName = None,
    stream: Streams = None,
    policy: Annotated[str, typer.Option(help="merge, insert-only or replace.")] = "merge",
    propagate_deletes: Annotated[
        bool, typer.Option(help="merge: delete from the target what the source deleted.")
    ] = False,
    truncate: Annotated[
        bool, typer.Option(help="replace: empty the sink's tables first (same transaction).")
    ] = False,
    scope: Annotated[
        str | None, typer.Option(help="Only this extraction scope of the streams (e.g. user:0000007).")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Records per target transaction.")] = 1000,
    dry_run: DryRun = False,
    progress: Progressing = True,
    as_json: JsonFlag = False,
) -> None:
    """Replay streams from the ledger into a target. Sink options follow as flags
    (`chatledger sinks` lists them)."""
    state = _state(ctx)
    opened = state.ledger()
    settings = _replay_settings(
        policy=policy,
        propagate_deletes=propagate_deletes,
        truncate=truncate,
        scope=scope,
        dry_run=dry_run,
        batch_records=batch_size,
    )
    result = api.replay_target(
        opened,
        state.config(),
        target,
        list(ctx.args),
        target_name=target_name,
        streams=stream,
        settings=settings,
        progress=for_terminal(progress and not as_json),
    )
    _print_replay(opened, result, as_json)


@command(app)
def migrate(
    ctx: typer.Context,
    stream: Annotated[str, typer.Argument(help="A stream named in chatledger.toml.")],
    target: Annotated[str, typer.Argument(help="A target named in chatledger.toml.")],
    policy: Annotated[str, typer.Option(help="merge, insert-only or replace.")] = "merge",
    propagate_deletes: Annotated[bool, typer.Option(help="Delete what the source deleted.")] = False,
    dry_run: DryRun = False,
    progress: Progressing = True,
    as_json: JsonFlag = False,
) -> None:
    """Extract a stream, replay it into a target and verify the target, as one run."""
    state = _state(ctx)
    opened = state.ledger()
    done = api.migrate(
        opened,
        state.config(),
        stream,
        target,
        extract_settings=ExtractSettings(dry_run=dry_run),
        replay_settings=_replay_settings(
            policy=policy, propagate_deletes=propagate_deletes, dry_run=dry_run
        ),
        progress=for_terminal(progress and not as_json),
    )
    if as_json:
        _print_json(
            {
                "run_id": done.run_id,
                "status": done.status,
                "extract": {"run_id": done.extract.run_id, "stats": done.extract.stats},
                "replay": {"run_id": done.replay.run_id, "stats": done.replay.stats},
                "verify": done.verify.as_json() if done.verify else None,
            }
        )
    elif done.run_id is None:
        out.print("dry run: nothing was written")
        out.print(report.extract_report(done.extract.stats))
        out.print(report.plan_report(done.replay.stats["plan"]))
    else:
        for run_id in (done.extract.run_id, done.replay.run_id, done.verify.run_id, done.run_id):
            out.print(report.run_report(runs.get_run(opened, run_id), queries.run_rejects(opened, run_id, 20)))
    if done.verify is not None and not done.verify.matches:
        raise typer.Exit(3)
    if done.status == runs.FAILED:
        raise typer.Exit(1)


@command(app, context_settings=PLUGIN_FLAGS)
def rollback(
    ctx: typer.Context,
    run_id: Annotated[int, typer.Argument(metavar="RUN", help="The run to undo (replay, migrate, rollback).")],
    force: Annotated[
        bool, typer.Option(help="Roll back even where the target changed since the run.")
    ] = False,
    dry_run: DryRun = False,
    progress: Progressing = True,
    as_json: JsonFlag = False,
) -> None:
    """Undo what one run wrote to its target, in reverse (itself a run that can be rolled
    back). Sink options of an ad-hoc target follow as flags."""
    state = _state(ctx)
    opened = state.ledger()
    result = api.rollback_run(
        opened,
        state.config(),
        run_id,
        list(ctx.args),
        force=force,
        settings=_replay_settings(dry_run=dry_run),
        progress=for_terminal(progress and not as_json),
    )
    _print_replay(opened, result, as_json)


@command(app, context_settings=PLUGIN_FLAGS)
def verify(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="A target named in chatledger.toml, or a sink type.")],
    target_name: TargetName = None,
    stream: Streams = None,
    progress: Progressing = True,
    as_json: JsonFlag = False,
) -> None:
    """Read the target back and compare it with the ledger; exit code 3 on a mismatch.
    Never writes to the target."""
    state = _state(ctx)
    result = api.verify_target(
        state.ledger(),
        state.config(),
        target,
        list(ctx.args),
        target_name=target_name,
        streams=stream,
        progress=for_terminal(progress and not as_json),
    )
    if as_json:
        _print_json(result.as_json())
    else:
        out.print(report.verify_report(result.as_json()))
    if not result.matches:
        raise typer.Exit(3)


@command(app, context_settings=PLUGIN_FLAGS)
def repair(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="A target named in chatledger.toml, or a sink type.")],
    rule: Annotated[str, typer.Argument(help="A repair rule: resync, or one the sink offers.")],
    target_name: TargetName = None,
    stream: Streams = None,
    dry_run: DryRun = False,
    progress: Progressing = True,
    as_json: JsonFlag = False,
) -> None:
    """Run a named, deterministic fix-up; a second run writes nothing."""
    state = _state(ctx)
    opened = state.ledger()
    result = api.repair_target(
        opened,
        state.config(),
        target,
        rule,
        list(ctx.args),
        target_name=target_name,
        streams=stream,
        settings=_replay_settings(dry_run=dry_run),
        progress=for_terminal(progress and not as_json),
    )
    _print_replay(opened, result, as_json)


@command(app, name="runs")
def list_runs(
    ctx: typer.Context,
    stream: Annotated[str | None, typer.Option(help="Only runs of this stream.")] = None,
    target: Annotated[str | None, typer.Option(help="Only runs of this target.")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 20,
    as_json: JsonFlag = False,
) -> None:
    """List recent runs, newest first."""
    opened = _state(ctx).ledger()
    runs.reap_interrupted(opened)
    found = runs.list_runs(opened, stream=stream, target=target, limit=limit)
    if as_json:
        _print_json([run.as_json() for run in found])
    else:
        out.print(report.runs_table(found))


@command(app, name="report")
def show_report(
    ctx: typer.Context,
    run_id: Annotated[int, typer.Argument(metavar="RUN", help="A run id (see `chatledger runs`).")],
    as_json: JsonFlag = False,
) -> None:
    """Show one run: what it read, wrote, skipped and rejected."""
    opened = _state(ctx).ledger()
    run = runs.get_run(opened, run_id)
    if run is None:
        raise UsageError(f"there is no run {run_id}")
    rejected = queries.run_rejects(opened, run_id)
    if as_json:
        _print_json(run.as_json() | {"rejects": rejected})
    else:
        out.print(report.run_report(run, rejected))


@command(app)
def status(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Streams, targets, locks and unfinished runs in the ledger."""
    found = queries.status(_state(ctx).ledger())
    if as_json:
        _print_json(found)
    else:
        out.print(report.status_report(found))


@command(app)
def history(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="A record key, e.g. message:<conv>/<msg>.")],
    stream: Annotated[str | None, typer.Option(help="The stream (default: every stream).")] = None,
    data: Annotated[bool, typer.Option("--data", help="Include each version's record.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Every version of one record."""
    rows = queries.history(_state(ctx).ledger(), key, stream=stream, with_data=data)
    if not rows:
        raise UsageError(f"no record {key!r} in the ledger")
    if as_json:
        _print_json(rows)
        return
    out.print(report.history_table(rows))
    if data:
        for row in rows:
            out.print(f"[bold]{row['stream']} v{row['version']}[/bold]")
            _print_json({name: row.get(name) for name in ("data", "raw", "refs")})


@command(app)
def audit(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="A record key.")],
    stream: Annotated[str | None, typer.Option(help="The stream (default: every stream).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """What was read for one record, when it changed, and every write of it to a target."""
    found = queries.audit(_state(ctx).ledger(), key, stream=stream)
    if not found["versions"]:
        raise UsageError(f"no record {key!r} in the ledger")
    if as_json:
        _print_json(found)
        return
    out.print(report.history_table(found["versions"]))
    if found["writes"]:
        out.print(report.writes_table(found["writes"]))
    else:
        out.print("not written to any target yet")


@command(app)
def unlock(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A lock name, e.g. stream:prod (see status).")],
) -> None:
    """Break a lock whose holder is gone (e.g. a process on another machine that died)."""
    run_id = locks.break_lock(_state(ctx).ledger(), name)
    out.print(f"broke {name} (held by run {run_id}; that run is now marked interrupted)")


@command(config_app, name="show")
def config_show(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """The effective configuration: values, where they come from, secrets masked."""
    state = _state(ctx)
    shown = configuration.show(state.config(), state.ledger_flag)
    if as_json:
        _print_json(shown)
        return
    out.print(f"config file: {shown['config_file'] or '(none)'}", highlight=False)
    out.print(f"ledger: {shown['ledger']['url']}  ({shown['ledger']['origin']})", highlight=False)
    for section in ("sources", "targets"):
        for name, values in shown[section].items():
            out.print(f"[bold]{section[:-1]} {name}[/bold]")
            for key, value in values.items():
                out.print(f"  {key} = {value}", highlight=False)


@command(bench_app, name="extract")
def bench_extract(
    ctx: typer.Context,
    messages: Annotated[int, typer.Option(help="Synthetic messages to extract (about).")] = 1_000_000,
    postgres: Annotated[
        str | None,
        typer.Option(help="Postgres server URL for the Postgres ledger run (no database)."),
    ] = "postgresql://postgres@127.0.0.1:5432/postgres",
    sqlite_only: Annotated[bool, typer.Option(help="Skip the Postgres ledger.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Extract synthetic messages into fresh SQLite and Postgres ledgers, then again
    unchanged; print records/s, the no-op/first time ratios and peak RSS."""
    from ledger import bench

    results = bench.extract_benchmark(
        messages, postgres_url=None if sqlite_only else postgres, echo=err.print
    )
    if as_json:
        _print_json(results)
    else:
        out.print(bench.render(results))


@command(bench_app, name="replay")
def bench_replay(
    messages: Annotated[int, typer.Option(help="Synthetic messages to replay (about).")] = 1_000_000,
    postgres: Annotated[
        str, typer.Option(help="Postgres server URL; a scratch target database is made there.")
    ] = "postgresql://postgres@127.0.0.1:5432/postgres",
    as_json: JsonFlag = False,
) -> None:
    """Replay synthetic messages into the Postgres sql sink; in the same run load the same
    rows with plain psycopg COPY; print the time ratio and the no-op replay time."""
    from ledger import bench

    results = bench.replay_benchmark(messages, postgres_url=postgres, echo=err.print)
    if as_json:
        _print_json(results)
    else:
        out.print(bench.render_replay(results))

