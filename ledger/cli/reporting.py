"""``--report FILE`` of the writing commands: the run's report written to a file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ledger.cli.app import err

if TYPE_CHECKING:
    from ledger.store import Ledger

ReportFile = Annotated[
    Path | None,
    typer.Option(
        "--report",
        metavar="FILE",
        help="Also write the run's report to FILE: JSON when it ends in .json, else a "
        "self-contained HTML page.",
    ),
]


def write_report(
    path: Path | None,
    opened: Ledger,
    run_id: int | None,
    command: str,
    dry_parts: list[tuple[str, dict[str, Any]]],
) -> None:
    """Write the report of run ``run_id``, or of a dry run from its parts' stats."""
    if path is None:
        return
    from ledger import report_file

    document = (
        report_file.run_document(opened, run_id)
        if run_id is not None
        else report_file.dry_run_document(command, dry_parts)
    )
    report_file.write(path, document)
    err.print(f"report written to {path}", highlight=False, markup=False)
