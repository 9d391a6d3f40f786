"""Commands that set up the ledger and fill it: version, init, sources, sinks, extract."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ledger import __version__, plugins
from ledger.cli.app import JsonFlag, app, command, exit_with, out, print_json, say, state_of
from ledger.cli.plugin_help import (
    SourceCommand,
    complete_sink_type,
    complete_source_type,
    complete_stream_or_source_type,
)
from ledger.cli.reporting import ReportFile, write_report
from ledger.errors import UsageError
from ledger.options import OptionSpec, option_specs


@command(app)
def version() -> None:
    """Print chatledger's version."""
    out.print(__version__)


@command(app)
def init(
    ctx: typer.Context,
    example: Annotated[
        tuple[str, str] | None,
        typer.Option(
            "--example",
            metavar="SOURCE TARGET",
            help="Instead: write a commented config file for a source type and a sink type "
            "(see `chatledger sources` and `sinks`).",
        ),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Argument(metavar="[FILE]", help="With --example: the file to write (default chatledger.toml)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="With --example: overwrite FILE if it exists.")
    ] = False,
) -> None:
    """Create the ledger, or upgrade it to this version's schema. With --example SOURCE
    TARGET: write a commented chatledger.toml instead, every option of both plug-ins with
    its help and default; required ones as CHANGE-ME, secrets as env:VARIABLE."""
    if example is None:
        if file is not None or force:
            raise UsageError("FILE and --force go with --example SOURCE TARGET")
        create_ledger(ctx)
    else:
        write_example(file, *example, force=force)


def create_ledger(ctx: typer.Context) -> None:
    opened = state_of(ctx).ledger()
    before, now = opened.revisions
    if before is None:
        what = f"created at schema revision {now}"
    elif before == now:
        what = f"already at schema revision {now}"
    else:
        what = f"upgraded from schema revision {before} to {now}"
    say(f"ledger {opened.display_url}: {what}")


def write_example(file: Path | None, source_type: str, sink_type: str, *, force: bool) -> None:
    from ledger import config as configuration
    from ledger import scaffold

    written = scaffold.write_example(
        file or Path(configuration.CONFIG_NAME), source_type, sink_type, force=force
    )
    say(f"wrote {written}: a {source_type} stream into a {sink_type} target")
    named = "" if written == Path(configuration.CONFIG_NAME) else f" --config {written}"
    say(f"next: edit it, then run `chatledger{named} config show`")


def _spec_json(spec: OptionSpec) -> dict[str, Any]:
    return {
        "flag": spec.flag,
        "type": spec.describe_type() or "flag",
        "required": spec.required,
        "default": None if spec.required else spec.default,
        "secret": spec.secret,
        "help": spec.help,
    }


def _print_listing(names: list[str], load, as_json: bool) -> None:
    found = {kind: option_specs(load(kind).Options) for kind in names}
    if as_json:
        print_json({kind: [_spec_json(spec) for spec in specs] for kind, specs in found.items()})
        return
    for kind, specs in found.items():
        out.print(kind, style="bold", markup=False, highlight=False)
        for spec in specs:
            default = "required" if spec.required else f"default {spec.default!r}"
            out.print(f"  {spec.usage}  {spec.help} ({default})", highlight=False, markup=False)


@command(app)
def sources(
    name: Annotated[
        str | None, typer.Argument(help="A source type.", autocompletion=complete_source_type)
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """List source types and their options (the flags of extract)."""
    _print_listing([name] if name else plugins.source_types(), plugins.source_class, as_json)


@command(app)
def sinks(
    name: Annotated[
        str | None, typer.Argument(help="A sink type.", autocompletion=complete_sink_type)
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """List sink types and their options (the flags of replay, verify and repair)."""
    _print_listing([name] if name else plugins.sink_types(), plugins.sink_class, as_json)


@command(
    app,
    cls=SourceCommand,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def extract(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Argument(
            help="A stream named in chatledger.toml, or a source type.",
            autocompletion=complete_stream_or_source_type,
        ),
    ],
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
    """Extract a stream into the ledger. Source options follow as flags, e.g.
    `chatledger extract synthetic --name demo --users 100 --seed 7`."""
    from ledger import api, queries, runs
    from ledger.cli import report
    from ledger.extract import ExtractSettings
    from ledger.store import CREATE, DRY

    state = state_of(ctx)
    if validate_only:
        found = api.validate_stream(
            state.ledger(DRY), state.config(), name, list(ctx.args), stream_name=stream_name
        )
        if as_json:
            print_json(found)
        else:
            for key, value in found.items():
                out.print(
                    f"{key}: {json.dumps(value, ensure_ascii=False, default=str)}",
                    highlight=False,
                    markup=False,
                )
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
        progress=state.progress(progress and not as_json),
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
