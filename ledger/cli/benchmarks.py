"""The bench commands (ledger.bench does the measuring): one table per run, rows are
figures, columns their value, unit, ratio to their baseline and peak RSS."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ledger.cli.app import JsonFlag, bench_app, command, err, out, print_json

if TYPE_CHECKING:
    from rich.console import Group

POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
MARIADB = "mysql://root@127.0.0.1:3306/"


def figures_table(results: dict[str, Any], title: str) -> Group:
    from rich.console import Group

    from ledger.cli.report import Paragraph, plain_table

    facts = results["machine"]
    table = plain_table(
        "figure", "value", "unit", "ratio", "to", "peak RSS MB", "load",
        numeric=("value", "ratio", "peak RSS MB", "load"), whole=("figure",), title=title,
    )  # fmt: skip
    for figure in results["figures"]:
        table.add_row(
            figure["figure"],
            f"{figure['value']:,}" if isinstance(figure["value"], int) else f"{figure['value']:,.2f}",
            figure["unit"],
            "" if figure["ratio"] is None else f"{figure['ratio']:,.2f}×",
            figure["baseline"] or "",
            "" if figure["peak_rss_mb"] is None else f"{figure['peak_rss_mb']:,.0f}",
            "" if figure["load"] is None else f"{figure['load']:.1f}",
        )
    servers = ", ".join(f"{name} {facts[name]}" for name in ("postgres", "mariadb") if facts.get(name))
    parts: list[Any] = [
        table,
        Paragraph(
            f"{facts['date']}: {facts['cpus']} CPUs, {facts['memory_gb']} GB, Python {facts['python']}"
            + (f", {servers}" if servers else "")
            + f"; load {facts['load_at_start'][0]} at the start, {facts['load_at_end'][0]} at the end"
        ),
    ]
    for name, reason in (results.get("not_run") or {}).items():
        parts.append(Paragraph(f"not run: {name} ({reason})"))
    return Group(*parts)


def _show(results: dict[str, Any], title: str, as_json: bool) -> None:
    if as_json:
        print_json(results)
    else:
        out.print(figures_table(results, title))


@command(bench_app, name="extract")
def bench_extract(
    ctx: typer.Context,
    messages: Annotated[int, typer.Option(help="Synthetic messages to extract (about).")] = 1_000_000,
    postgres: Annotated[
        str | None,
        typer.Option(help="Postgres server URL for the Postgres ledger run (no database)."),
    ] = POSTGRES,
    sqlite_only: Annotated[bool, typer.Option(help="Skip the Postgres ledger.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Extract synthetic messages into fresh SQLite and Postgres ledgers, then again
    unchanged (with checkpoints, and --full); compare the no-ops with the first, and the
    first with the reader alone (no ledger) and each ledger's writer floor (the same rows
    stored with plain executemany or COPY)."""
    from ledger import bench

    results = bench.extract_benchmark(
        messages, postgres_url=None if sqlite_only else postgres, echo=err.print
    )
    _show(results, f"chatledger bench extract ({results['users']:,} synthetic users)", as_json)


@command(bench_app, name="replay")
def bench_replay(
    messages: Annotated[
        int, typer.Option(help="Synthetic messages replayed into SQL targets (about).")
    ] = 1_000_000,
    document_messages: Annotated[
        int | None,
        typer.Option(help="Synthetic messages for document targets (default: a tenth of --messages)."),
    ] = None,
    sink: Annotated[
        list[str] | None,
        typer.Option(
            help="A target to run (repeatable; default: all): sql-postgres, sql-sqlite, "
            "onyx-postgres, laravel-postgres, laravel-mariadb, laravel-sqlite, cherry-v2-sqlite, "
            "langgraph-postgres, bundle, mongo-toolkit, langgraph-json."
        ),
    ] = None,
    postgres: Annotated[
        str | None, typer.Option(help="Postgres server URL; scratch databases are made there.")
    ] = POSTGRES,
    mariadb: Annotated[
        str | None, typer.Option(help="MariaDB/MySQL server URL; scratch databases are made there.")
    ] = MARIADB,
    mongo: Annotated[
        str | None, typer.Option(help="MongoDB URL for mongo-toolkit (scratch databases are made there).")
    ] = None,
    onyx_db: Annotated[
        str | None, typer.Option(help="An Onyx database (with --onyx-api-base) for onyx-postgres.")
    ] = None,
    onyx_api_base: Annotated[str | None, typer.Option(help="That Onyx's API base URL.")] = None,
    onyx_api_key: Annotated[str | None, typer.Option(help="That Onyx's admin API key, as env:VAR.")] = None,
    database_prefix: Annotated[
        str, typer.Option(help="Names of the scratch databases start with this.")
    ] = "chatledger_bench",
    workdir: Annotated[
        Path | None,
        typer.Option(
            help="Keep the synthetic ledgers here and reuse them in later runs (default: a temporary folder)."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Replay synthetic messages into every sink; in the same run write the rows each
    replay left with the target's fastest plain write (COPY, executemany, bulk_write,
    file writes) and replay again (no-op); print the ratios and each process's peak RSS."""
    from ledger import bench

    onyx = None
    if onyx_db and onyx_api_base and onyx_api_key:  # passed on to the replay as given (env:VAR)
        onyx = {"db_url": onyx_db, "api_base": onyx_api_base, "api_key": onyx_api_key}
    services = bench.Services(postgres=postgres, mariadb=mariadb, mongo=mongo, onyx=onyx,
                              database_prefix=database_prefix)  # fmt: skip
    results = bench.replay_benchmark(
        messages, targets=sink, document_messages=document_messages, services=services,
        workdir=workdir, echo=err.print,
    )  # fmt: skip
    _show(results, "chatledger bench replay (each sink against its plain write)", as_json)


@command(bench_app, name="rerun")
def bench_rerun(
    messages: Annotated[int, typer.Option(help="Synthetic messages to migrate (about).")] = 1_000_000,
    target: Annotated[
        str,
        typer.Option(
            help="The sql target: sqlite:///FILE (in the scratch folder) or a Postgres database URL."
        ),
    ] = "sqlite:///target.db",
    workdir: Annotated[Path | None, typer.Option(help="Run here (default: a temporary folder).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """The first `migrate` of a synthetic stream into the sql sink, a no-op `migrate`
    after it and a full `verify`, each in its own process: the no-op's share of the first."""
    from ledger.bench.rerun import rerun_benchmark

    results = rerun_benchmark(messages, target=target, workdir=workdir, echo=err.print)
    _show(results, "chatledger bench rerun (a no-op migrate against the first)", as_json)
