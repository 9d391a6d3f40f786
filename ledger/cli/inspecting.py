"""Read commands and maintenance: runs, report, status, history, audit, unlock, config show."""

from __future__ import annotations

import csv
import enum
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from ledger.cli.app import JsonFlag, app, command, config_app, err, out, print_json, say, state_of
from ledger.errors import UsageError


class Format(enum.StrEnum):
    table = "table"
    json = "json"
    ndjson = "ndjson"
    csv = "csv"


FormatOption = Annotated[
    Format,
    typer.Option(
        "--format",
        help="table (for people), json (the whole document), ndjson or csv (one row per "
        "line; nested values as JSON in csv).",
    ),
]
JsonAlias = Annotated[bool, typer.Option("--json", help="Same as --format json.")]


def _csv_cell(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return "" if value is None else value


def emit(
    chosen: Format, as_json: bool, *, document: Any, rows: list[dict[str, Any]], human: Callable[[], Any]
) -> None:
    """Print a read command's answer in the chosen format."""
    try:
        _print_as(Format.json if as_json else chosen, document, rows, human)
    except BrokenPipeError:  # ``| head``: the reader has all it wants
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit's flush
        raise typer.Exit(141) from None  # as a shell tool ended by SIGPIPE


def _print_as(chosen: Format, document: Any, rows: list[dict[str, Any]], human: Callable[[], Any]) -> None:
    if chosen is Format.json:
        print_json(document)
    elif chosen is Format.ndjson:
        for row in rows:
            sys.stdout.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    elif chosen is Format.csv:
        columns = list(dict.fromkeys(name for row in rows for name in row))
        writer = csv.DictWriter(sys.stdout, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows({name: _csv_cell(row.get(name)) for name in columns} for row in rows)
    else:
        out.print(human())


@command(app, name="runs")
def list_runs(
    ctx: typer.Context,
    stream: Annotated[str | None, typer.Option(help="Only runs of this stream.")] = None,
    target: Annotated[str | None, typer.Option(help="Only runs of this target.")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 20,
    output: FormatOption = Format.table,
    as_json: JsonAlias = False,
) -> None:
    """List recent runs, newest first (times in UTC)."""
    from ledger import runs
    from ledger.cli import report
    from ledger.store import EXISTING

    opened = state_of(ctx).ledger(EXISTING)
    if not opened.read_only:
        runs.reap_interrupted(opened)
    found = runs.list_runs(opened, stream=stream, target=target, limit=limit)
    emit(
        output,
        as_json,
        document=[report.run_json(run) for run in found],
        rows=[report.run_row(run) for run in found],
        human=lambda: report.runs_table(found),
    )


@command(app, name="report")
def show_report(
    ctx: typer.Context,
    run_id: Annotated[int, typer.Argument(metavar="RUN", help="A run id (see `chatledger runs`).")],
    report_to: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write the report to FILE instead (.json: JSON, else HTML).",
        ),
    ] = None,
    output: FormatOption = Format.table,
    as_json: JsonAlias = False,
) -> None:
    """Show one run: what it read, wrote, skipped and rejected. ndjson/csv give one row
    per kind."""
    from ledger import queries, report_file, runs
    from ledger.cli import report
    from ledger.store import EXISTING

    opened = state_of(ctx).ledger(EXISTING)
    if report_to is not None:
        report_file.write(report_to, report_file.run_document(opened, run_id))
        out.print(f"report written to {report_to}", highlight=False, markup=False)
        return
    run = runs.get_run(opened, run_id)
    if run is None:
        raise UsageError(f"there is no run {run_id}")
    rejected = queries.run_rejects(opened, run_id)
    emit(
        output,
        as_json,
        document=report.run_json(run) | {"rejects": rejected},
        rows=report.report_rows(run),
        human=lambda: report.run_report(run, rejected),
    )


@command(app)
def status(ctx: typer.Context, output: FormatOption = Format.table, as_json: JsonAlias = False) -> None:
    """Streams, targets, locks and unfinished runs in the ledger. ndjson/csv give one row
    per stream or target and kind."""
    from ledger import queries
    from ledger.cli import report
    from ledger.store import EXISTING

    found = queries.status(state_of(ctx).ledger(EXISTING))
    emit(
        output,
        as_json,
        document=found,
        rows=report.status_rows(found),
        human=lambda: report.status_report(found),
    )


@command(app)
def keys(
    ctx: typer.Context,
    kind: Annotated[
        str | None, typer.Option(help="Only this kind (user, conversation, message, file...).")
    ] = None,
    owner: Annotated[str | None, typer.Option(help="Only records of this user (email or user key).")] = None,
    title: Annotated[
        str | None, typer.Option(help="Only records whose title (or user name, file name) contains this.")
    ] = None,
    stream: Annotated[str | None, typer.Option(help="Only this stream.")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 50,
    output: FormatOption = Format.table,
    as_json: JsonAlias = False,
) -> None:
    """Find record keys (for history and audit) by kind, owner or title."""
    from ledger import queries
    from ledger.cli import report
    from ledger.store import EXISTING

    found = queries.keys(
        state_of(ctx).ledger(EXISTING), kind=kind, owner=owner, title=title, stream=stream, limit=limit
    )
    emit(output, as_json, document=found, rows=found, human=lambda: report.keys_list(found))


@command(app)
def history(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="A record key, e.g. message:<conv>/<msg> (see keys).")],
    stream: Annotated[str | None, typer.Option(help="The stream (default: every stream).")] = None,
    data: Annotated[bool, typer.Option("--data", help="Include each version's record.")] = False,
    output: FormatOption = Format.table,
    as_json: JsonAlias = False,
) -> None:
    """Every version of one record (times in UTC)."""
    from ledger import queries
    from ledger.cli import report
    from ledger.store import EXISTING

    rows = queries.history(state_of(ctx).ledger(EXISTING), key, stream=stream, with_data=data)
    if not rows:
        raise UsageError(f"no record {key!r} in the ledger (find keys with `chatledger keys`)")
    emit(output, as_json, document=rows, rows=rows, human=lambda: report.history_table(rows))
    if data and output is Format.table and not as_json:
        for row in rows:
            out.print(f"{row['stream']} v{row['version']}", style="bold", markup=False)
            print_json({name: row.get(name) for name in ("data", "raw", "refs")})


@command(app)
def audit(
    ctx: typer.Context,
    key: Annotated[str | None, typer.Argument(help="A record key (see keys).")] = None,
    owner: Annotated[
        str | None, typer.Option(help="Instead of one key: every record of this user (email or user key).")
    ] = None,
    stream: Annotated[str | None, typer.Option(help="The stream (default: every stream).")] = None,
    recent: Annotated[int, typer.Option(min=0, help="With --owner: how many latest writes to list.")] = 20,
    output: FormatOption = Format.table,
    as_json: JsonAlias = False,
) -> None:
    """What was read for one record, when it changed, and every write of it to a target;
    or, with --owner, what happened to one user's records (ndjson/csv: per target, kind
    and action, the count of writes)."""
    from ledger import queries
    from ledger.cli import report
    from ledger.store import EXISTING

    opened = state_of(ctx).ledger(EXISTING)
    if (key is None) == (owner is None):
        raise UsageError("give a record key or --owner EMAIL (not both)")
    if owner is not None:
        rolled = queries.owner_audit(opened, owner, stream=stream, recent=recent)
        if not rolled["users"]:
            raise UsageError(
                f"no user {owner!r} in the ledger (find users with `chatledger keys --kind user`)"
            )
        emit(
            output, as_json, document=rolled, rows=rolled["writes"], human=lambda: report.owner_report(rolled)
        )
        return
    found = queries.audit(opened, key, stream=stream)
    if not found["versions"]:
        raise UsageError(f"no record {key!r} in the ledger (find keys with `chatledger keys`)")
    emit(
        output,
        as_json,
        document=found,
        rows=report.audit_rows(found),
        human=lambda: report.audit_report(found),
    )


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
    from ledger import locks
    from ledger.store import EXISTING

    run_id, gone = locks.break_lock(state_of(ctx).ledger(EXISTING), name, force=force)
    if not gone:
        err.print(
            f"[yellow]warning:[/yellow] broke {escape(name)} of run {run_id}, whose process may "
            "still be writing"
        )
    say(f"broke {name} (held by run {run_id}; that run is now marked interrupted)")


@command(config_app, name="show")
def config_show(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """The effective configuration: every value, where it comes from (file, env, flag or
    default) and its default; secrets masked."""
    from ledger import config as configuration

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


def _print_rows(rows: dict) -> None:
    from ledger import config as configuration

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
