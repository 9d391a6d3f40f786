"""The bench commands (ledger.bench does the measuring)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from ledger.cli.app import JsonFlag, bench_app, command, err, out, print_json

if TYPE_CHECKING:
    from rich.console import Group
    from rich.table import Table

#: the extract benchmark's measures, one row each (the ledgers are the columns, so the
#: table fits 80 columns however many measures there are)
EXTRACT_MEASURES = (
    ("records", lambda s: f"{s['first']['records']:,}"),
    ("messages", lambda s: f"{s['first']['messages']:,}"),
    ("first extraction s", lambda s: f"{s['first']['seconds']:,.1f}"),
    ("records/s", lambda s: f"{s['records_per_second']:,}"),
    ("no-op s", lambda s: f"{s['noop']['seconds']:,.2f}"),
    ("first/no-op", lambda s: f"{s['noop_speedup']:,}×"),
    ("no-op --full s", lambda s: f"{s['noop_full']['seconds']:,.1f}"),
    ("first/--full", lambda s: f"{s['noop_full_speedup']:,}×"),
    ("peak RSS MB", lambda s: f"{s['peak_rss_mb']:,.0f}"),
)


def extract_table(results: dict[str, Any]) -> Group:
    from rich.console import Group

    from ledger.cli.report import Paragraph, plain_table

    backends = results["backends"]
    table = plain_table(
        "measure", *backends, numeric=tuple(backends),
        title=f"chatledger bench extract ({results['users']:,} synthetic users)",
    )  # fmt: skip
    for name, value in EXTRACT_MEASURES:
        table.add_row(name, *[value(series) for series in backends.values()])
    parts: list[Any] = [table]
    floor = backends.get("sqlite", {}).get("floor")
    if floor:
        parts.append(
            Paragraph(
                f"SQLite floor (the same rows, plain executemany, same transactions): "
                f"{floor['records_per_second']:,} records/s, "
                f"{backends['sqlite']['floor_ratio']}× the first extraction"
            )
        )
    return Group(*parts)


def replay_table(results: dict[str, Any]) -> Table:
    from ledger.cli.report import plain_table

    table = plain_table(
        "measure", "value", numeric=("value",), title="chatledger bench replay (Postgres sql sink)"
    )
    for name, value in results.items():
        table.add_row(name.replace("_", " "), f"{value:,}" if isinstance(value, (int, float)) else str(value))
    return table


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
    unchanged; print records/s, the no-op/first time ratios and peak RSS, and the SQLite
    floor (the same rows stored with plain executemany)."""
    from ledger import bench

    results = bench.extract_benchmark(
        messages, postgres_url=None if sqlite_only else postgres, echo=err.print
    )
    if as_json:
        print_json(results)
    else:
        out.print(extract_table(results))


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
        print_json(results)
    else:
        out.print(replay_table(results))
