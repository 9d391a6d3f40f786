"""Read commands and maintenance: runs, report, status, history, audit, unlock, config show."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ledger import config as configuration
from ledger import locks, queries, report, report_file, runs
from ledger.cli.app import JsonFlag, app, command, config_app, err, out, print_json, state_of
from ledger.errors import UsageError
from ledger.store import EXISTING


@command(app, name="runs")
def list_runs(
    ctx: typer.Context,
    stream: Annotated[str | None, typer.Option(help="Only runs of this stream.")] = None,
    target: Annotated[str | None, typer.Option(help="Only runs of this target.")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 20,
    as_json: JsonFlag = False,
) -> None:
    """List recent runs, newest first."""
    opened = state_of(ctx).ledger(EXISTING)
    if not opened.read_only:
        runs.reap_interrupted(opened)
    found = runs.list_runs(opened, stream=stream, target=target, limit=limit)
    if as_json:
        print_json([run.as_json() for run in found])
    else:
        out.print(report.runs_table(found))


@command(app, name="report")
def show_report(
    ctx: typer.Context,
    run_id: Annotated[int, typer.Argument(metavar="RUN", help="A run id (see `chatledger runs`).")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write the report to FILE instead (.json: JSON, else HTML).",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Show one run: what it read, wrote, skipped and rejected."""
    opened = state_of(ctx).ledger(EXISTING)
    if output is not None:
        report_file.write(output, report_file.run_document(opened, run_id))
        out.print(f"report written to {output}", highlight=False, markup=False)
        return
    run = runs.get_run(opened, run_id)
    if run is None:
        raise UsageError(f"there is no run {run_id}")
    rejected = queries.run_rejects(opened, run_id)
    if as_json:
        print_json(run.as_json() | {"rejects": rejected})
    else:
        out.print(report.run_report(run, rejected))


@command(app)
def status(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Streams, targets, locks and unfinished runs in the ledger."""
    found = queries.status(state_of(ctx).ledger(EXISTING))
    if as_json:
        print_json(found)
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
    rows = queries.history(state_of(ctx).ledger(EXISTING), key, stream=stream, with_data=data)
    if not rows:
        raise UsageError(f"no record {key!r} in the ledger")
    if as_json:
        print_json(rows)
        return
    out.print(report.history_table(rows))
    if data:
        for row in rows:
            out.print(f"[bold]{row['stream']} v{row['version']}[/bold]")
            print_json({name: row.get(name) for name in ("data", "raw", "refs")})


@command(app)
def audit(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="A record key.")],
    stream: Annotated[str | None, typer.Option(help="The stream (default: every stream).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """What was read for one record, when it changed, and every write of it to a target."""
    found = queries.audit(state_of(ctx).ledger(EXISTING), key, stream=stream)
    if not found["versions"]:
        raise UsageError(f"no record {key!r} in the ledger")
    if as_json:
        print_json(found)
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
    force: Annotated[
        bool, typer.Option(help="Break it even if the holder may still run (another machine, or alive here).")
    ] = False,
) -> None:
    """Break a lock whose holder is gone. A holder alive on this host, or on another
    machine, is refused unless --force."""
    run_id, gone = locks.break_lock(state_of(ctx).ledger(EXISTING), name, force=force)
    if not gone:
        err.print(
            f"[yellow]warning:[/yellow] broke {name} of run {run_id}, whose process may still be writing"
        )
    out.print(f"broke {name} (held by run {run_id}; that run is now marked interrupted)")


@command(config_app, name="show")
def config_show(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """The effective configuration: every value, where it comes from (file, env, flag or
    default) and its default; secrets masked."""
    state = state_of(ctx)
    shown = configuration.show(state.config(), state.ledger_flag)
    if as_json:
        print_json(shown)
        return
    named = shown["config_file"]
    say(f"config file: {named['value'] or '(none)'} ({named['origin']})")
    say("ledger")
    _print_rows(shown["ledger"])
    for section in ("sources", "targets"):
        for name, entry in shown[section].items():
            say(f"{section[:-1]} {name} (type {entry['type']})")
            if "error" in entry:
                say(f"  error: {entry['error']}")
                continue
            _print_rows({**entry["options"], **({"streams": entry["streams"]} if "streams" in entry else {})})
    for variable in shown["unused_environment"]:
        say(f"unused: {variable} (no such ledger setting or configured source or target)")


def say(text: str) -> None:
    """A line that quotes the file (``[targets.pg]``): printed as is, never as markup."""
    out.print(text, markup=False, highlight=False)


def _print_rows(rows: dict) -> None:
    for key, row in rows.items():
        value = _shown(row["value"])
        if row["origin"] == configuration.DEFAULT:
            say(f"  {key} = {value}  (default)")
            continue
        where = "" if row["origin"] == configuration.FILE else f" {row['where']}"
        default = "required" if row["default"] == "required" else f"default {_shown(row['default'])}"
        say(f"  {key} = {value}  ({row['origin']}{where}; {default})")


def _shown(value) -> str:
    return "(unset)" if value is None else '""' if value == "" else str(value)
