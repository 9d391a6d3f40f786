"""The bench commands (ledger.bench does the measuring)."""

from __future__ import annotations

from typing import Annotated

import typer

from ledger.cli.app import JsonFlag, bench_app, command, err, out, print_json


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
        print_json(results)
    else:
        out.print(bench.render_replay(results))
