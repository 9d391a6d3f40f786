"""Commands that write to targets or check them: replay, migrate, rollback, verify, repair."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from ledger.cli.app import JsonFlag, app, command, exit_with, out, print_json, state_of
from ledger.cli.plugin_help import (
    SinkCommand,
    complete_stream,
    complete_target,
    complete_target_or_sink_type,
)
from ledger.cli.reporting import ReportFile, write_report

if TYPE_CHECKING:
    from ledger.replay import ReplaySettings
    from ledger.store import Ledger

Target = Annotated[
    str,
    typer.Argument(
        help="A target named in chatledger.toml, or a sink type.",
        autocompletion=complete_target_or_sink_type,
    ),
]
TargetName = Annotated[
    str | None,
    typer.Option("--name", help="Target name for an ad-hoc sink type (required then)."),
]
Streams = Annotated[
    list[str] | None,
    typer.Option(
        "--stream",
        help="A stream to replay (repeatable; default: the target's streams).",
        autocompletion=complete_stream,
    ),
]
DryRun = Annotated[bool, typer.Option(help="Print the plan; write nothing anywhere.")]
Progressing = Annotated[bool, typer.Option(help="Show progress.")]
BatchSize = Annotated[int, typer.Option(min=1, help="Records per target transaction.")]
Workers = Annotated[
    int | None,
    typer.Option(
        min=0,
        help="Processes making the sink's rows while the target is written (0: none; "
        "default: one per core up to 4, for 20,000 records or more).",
        show_default=False,
    ),
]
PLUGIN_FLAGS = {"allow_extra_args": True, "ignore_unknown_options": True}


def _replay_settings(**values: Any) -> ReplaySettings:
    from ledger.replay import ReplaySettings

    return ReplaySettings(**{key: value for key, value in values.items() if value is not None})


def _print_replay(opened: Ledger, result, as_json: bool) -> None:
    from ledger import queries, runs
    from ledger.cli import report

    if as_json:
        print_json(
            {"run_id": result.run_id, "status": result.status, "stats": report.stats_json(result.stats)}
        )
    elif result.run_id is None:
        plan = result.stats.get("plan", {})
        if "rollback" in plan:
            rolled = ", ".join(map(str, result.stats.get("runs", [])))
            counts = ", ".join(f"{count:,} to {action}" for action, count in plan["rollback"].items())
            out.print(f"dry run: rolling back run(s) {rolled} would make {counts or 'no change'}")
        elif "fixes" in result.stats:
            out.print(
                f"dry run: repair {result.stats['rule']} would make {result.stats['fixes']:,} fix(es)",
                markup=False,
            )
            for fix in result.stats.get("sample", []):
                out.print(f"  {fix.get('unit')}: {fix.get('fix')}", highlight=False, markup=False)
        else:
            out.print(report.plan_report(plan))
        out.print(report.dry_run_notes(result.stats))
        if result.stats.get("preview"):
            out.print("the sink's preview:")
            print_json(result.stats["preview"])
    else:
        run = runs.get_run(opened, result.run_id)
        out.print(report.run_report(run, queries.run_rejects(opened, result.run_id, limit=20)))
    exit_with(result.status)


@command(app, cls=SinkCommand, context_settings=PLUGIN_FLAGS)
def replay(
    ctx: typer.Context,
    target: Target,
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
    batch_size: BatchSize = 1000,
    workers: Workers = None,
    resync: Annotated[
        bool,
        typer.Option(
            help="Forget what the ledger believes the target holds and write everything again "
            "(the target is a new or restored database)."
        ),
    ] = False,
    dry_run: DryRun = False,
    progress: Progressing = True,
    report_to: ReportFile = None,
    as_json: JsonFlag = False,
) -> None:
    """Replay streams from the ledger into a target. Sink options follow as flags."""
    from ledger import api
    from ledger.store import CREATE, DRY

    state = state_of(ctx)
    opened = state.ledger(DRY if dry_run else CREATE)
    settings = _replay_settings(
        policy=policy,
        propagate_deletes=propagate_deletes,
        truncate=truncate,
        scope=scope,
        dry_run=dry_run,
        resync=resync,
        batch_records=batch_size,
        workers=workers,
    )
    result = api.replay_target(
        opened,
        state.config(),
        target,
        list(ctx.args),
        target_name=target_name,
        streams=stream,
        settings=settings,
        progress=state.progress(progress and not as_json),
    )
    write_report(report_to, opened, result.run_id, "replay", [("replay", result.stats)])
    _print_replay(opened, result, as_json)


@command(app)
def migrate(
    ctx: typer.Context,
    stream: Annotated[
        str, typer.Argument(help="A stream named in chatledger.toml.", autocompletion=complete_stream)
    ],
    target: Annotated[
        str, typer.Argument(help="A target named in chatledger.toml.", autocompletion=complete_target)
    ],
    policy: Annotated[str, typer.Option(help="merge, insert-only or replace.")] = "merge",
    propagate_deletes: Annotated[bool, typer.Option(help="Delete what the source deleted.")] = False,
    scope: Annotated[
        str | None, typer.Option(help="replay only this extraction scope (e.g. user:0000007).")
    ] = None,
    full: Annotated[
        bool, typer.Option(help="Read every scope, even those a checkpoint proves unchanged.")
    ] = False,
    extract_batch_size: Annotated[
        int, typer.Option(min=1, help="Records per ledger transaction while extracting.")
    ] = 100_000,
    batch_size: BatchSize = 1000,
    workers: Workers = None,
    check: Annotated[
        bool, typer.Option("--verify/--no-verify", help="Verify the target after the replay.")
    ] = True,
    full_verify: Annotated[
        bool,
        typer.Option(
            help="Read the whole target back (as verify does), not only what this run wrote "
            "plus counts per kind."
        ),
    ] = False,
    dry_run: DryRun = False,
    progress: Progressing = True,
    report_to: ReportFile = None,
    as_json: JsonFlag = False,
) -> None:
    """Extract a stream, replay it into a target and verify the target, as one run. The
    options of both come from chatledger.toml (`chatledger extract STREAM --help` and
    `chatledger replay TARGET --help` list them)."""
    from ledger import api, queries, runs
    from ledger.cli import report
    from ledger.extract import ExtractSettings
    from ledger.store import CREATE, DRY

    state = state_of(ctx)
    opened = state.ledger(DRY if dry_run else CREATE)
    done = api.migrate(
        opened,
        state.config(),
        stream,
        target,
        extract_settings=ExtractSettings(dry_run=dry_run, full=full, batch_size=extract_batch_size),
        replay_settings=_replay_settings(
            policy=policy,
            propagate_deletes=propagate_deletes,
            scope=scope,
            dry_run=dry_run,
            batch_records=batch_size,
            workers=workers,
        ),
        progress=state.progress(progress and not as_json),
        check=check,
        full_verify=full_verify,
    )
    write_report(
        report_to,
        opened,
        done.run_id,
        "migrate",
        [("extract", done.extract.stats), ("replay", done.replay.stats)],
    )
    if as_json:
        print_json(
            {
                "run_id": done.run_id,
                "status": done.status,
                "extract": {"run_id": done.extract.run_id, "stats": report.stats_json(done.extract.stats)},
                "replay": {"run_id": done.replay.run_id, "stats": report.stats_json(done.replay.stats)},
                "verify": done.verify.as_json() if done.verify else None,
            }
        )
    elif done.run_id is None:
        out.print("dry run: nothing was written")
        out.print(report.extract_report(done.extract.stats, dry_run=True))
        out.print(report.plan_report(done.replay.stats["plan"]))
        out.print(report.dry_run_notes(done.replay.stats))
    else:
        parts = (done.extract, done.replay, *([done.verify] if done.verify else []))
        for run_id in (*(part.run_id for part in parts), done.run_id):
            out.print(
                report.run_report(runs.get_run(opened, run_id), queries.run_rejects(opened, run_id, 20))
            )
    exit_with(done.status)


@command(app, context_settings=PLUGIN_FLAGS)
def rollback(
    ctx: typer.Context,
    run_id: Annotated[
        int, typer.Argument(metavar="RUN", help="The run to undo (replay, migrate, rollback).")
    ],
    force: Annotated[
        bool, typer.Option(help="Roll back even where the target changed since the run.")
    ] = False,
    dry_run: DryRun = False,
    progress: Progressing = True,
    report_to: ReportFile = None,
    as_json: JsonFlag = False,
) -> None:
    """Undo what one run wrote to its target, in reverse (itself a run that can be rolled
    back). Sink options of an ad-hoc target follow as flags."""
    from ledger import api
    from ledger.store import DRY, EXISTING

    state = state_of(ctx)
    opened = state.ledger(DRY if dry_run else EXISTING)
    result = api.rollback_run(
        opened,
        state.config(),
        run_id,
        list(ctx.args),
        force=force,
        settings=_replay_settings(dry_run=dry_run),
        progress=state.progress(progress and not as_json),
    )
    write_report(report_to, opened, result.run_id, "rollback", [("rollback", result.stats)])
    _print_replay(opened, result, as_json)


@command(app, cls=SinkCommand, context_settings=PLUGIN_FLAGS)
def verify(
    ctx: typer.Context,
    target: Target,
    target_name: TargetName = None,
    stream: Streams = None,
    progress: Progressing = True,
    report_to: ReportFile = None,
    as_json: JsonFlag = False,
) -> None:
    """Read the target back and compare it with the ledger; exit code 3 on a mismatch.
    Never writes to the target. Sink options follow as flags."""
    from ledger import api, runs
    from ledger.cli import report
    from ledger.store import EXISTING

    state = state_of(ctx)
    opened = state.ledger(EXISTING)
    result = api.verify_target(
        opened,
        state.config(),
        target,
        list(ctx.args),
        target_name=target_name,
        streams=stream,
        progress=state.progress(progress and not as_json),
    )
    write_report(report_to, opened, result.run_id, "verify", [])
    if as_json:
        print_json(result.as_json())
    else:
        out.print(report.verify_report(result.as_json()))
    exit_with(runs.SUCCEEDED if result.matches else runs.DRIFTED)


@command(app, cls=SinkCommand, context_settings=PLUGIN_FLAGS)
def repair(
    ctx: typer.Context,
    target: Target,
    rule: Annotated[str, typer.Argument(help="A repair rule: resync, or one the sink offers.")],
    target_name: TargetName = None,
    stream: Streams = None,
    dry_run: DryRun = False,
    progress: Progressing = True,
    report_to: ReportFile = None,
    as_json: JsonFlag = False,
) -> None:
    """Run a named, deterministic fix-up; a second run writes nothing. Sink options
    follow as flags."""
    from ledger import api
    from ledger.store import DRY, EXISTING

    state = state_of(ctx)
    opened = state.ledger(DRY if dry_run else EXISTING)
    result = api.repair_target(
        opened,
        state.config(),
        target,
        rule,
        list(ctx.args),
        target_name=target_name,
        streams=stream,
        settings=_replay_settings(dry_run=dry_run),
        progress=state.progress(progress and not as_json),
    )
    write_report(report_to, opened, result.run_id, "repair", [("repair", result.stats)])
    _print_replay(opened, result, as_json)
