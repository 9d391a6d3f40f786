"""Commands that set up the ledger and fill it: version, init, sources, sinks, extract."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from ledger import __version__, api, plugins, queries, runs
from ledger.cli import report
from ledger.cli.app import JsonFlag, app, command, exit_with, out, print_json, state_of
from ledger.cli.progress import for_terminal
from ledger.cli.reporting import ReportFile, write_report
from ledger.extract import ExtractSettings
from ledger.options import option_specs
from ledger.store import CREATE, DRY


@command(app)
def version() -> None:
    """Print chatledger's version."""
    out.print(__version__)


@command(app)
def init(ctx: typer.Context) -> None:
    """Create the ledger, or upgrade it to this version's schema."""
    opened = state_of(ctx).ledger()
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
        print_json(found)
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
    name: Annotated[str, typer.Argument(help="A stream named in chatledger.toml, or a source type.")],
    stream_name: Annotated[
        str | None,
        typer.Option("--name", help="Stream name for an ad-hoc source type (required then)."),
    ] = None,
    batch_size: Annotated[
        int,
        typer.Option(
            min=1,
            help="Records per ledger transaction (at most 5 s of reading; sent to the "
            "writer in parts of up to 10,000).",
        ),
    ] = 100_000,
    full: Annotated[
        bool, typer.Option(help="Read every scope, even those a checkpoint proves unchanged.")
    ] = False,
    dry_run: Annotated[bool, typer.Option(help="Compare and report; write nothing.")] = False,
    parallel: Annotated[bool, typer.Option(help="Read in a child process while this one writes.")] = True,
    progress: Annotated[bool, typer.Option(help="Show progress.")] = True,
    validate_only: Annotated[
        bool, typer.Option(help="Print what the source finds in its input; extract nothing.")
    ] = False,
    report_to: ReportFile = None,
    as_json: JsonFlag = False,
) -> None:
    """Extract a stream into the ledger. Source options follow as flags
    (`chatledger sources` lists them), e.g.
    `chatledger extract synthetic --name demo --users 100 --seed 7`."""
    state = state_of(ctx)
    if validate_only:
        found = api.validate_stream(
            state.ledger(DRY), state.config(), name, list(ctx.args), stream_name=stream_name
        )
        if as_json:
            print_json(found)
        else:
            for key, value in found.items():
                out.print(f"{key}: {json.dumps(value, ensure_ascii=False, default=str)}", highlight=False)
        return
    settings = ExtractSettings(batch_size=batch_size, full=full, dry_run=dry_run, parallel=parallel)
    opened = state.ledger(DRY if dry_run else CREATE)
    result = api.extract_stream(
        opened,
        state.config(),
        name,
        list(ctx.args),
        stream_name=stream_name,
        settings=settings,
        progress=for_terminal(progress and not as_json),
    )
    write_report(report_to, opened, result.run_id, "extract", [("extract", result.stats)])
    if as_json:
        print_json({"run_id": result.run_id, "status": result.status, "stats": result.stats})
    elif result.run_id is None:
        out.print("dry run: nothing was written")
        out.print(report.extract_report(result.stats, dry_run=True))
    else:
        run = runs.get_run(opened, result.run_id)
        out.print(report.run_report(run, queries.run_rejects(opened, result.run_id, limit=20)))
    exit_with(result.status)
