"""Human-readable renderings (rich) of runs, status, history and audit trails.

Every rendering has a JSON twin: the CLI prints the underlying dict with ``--json``.
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from ledger.extract.batch import SCOPE_COUNTERS
from ledger.runs import Run

EXTRACT_COLUMNS = ("read", "new", "changed", "unchanged", "deleted", "rejected", "bytes")


def human_bytes(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{size:,.1f} GB"


def _kind_table(kinds: dict[str, dict[str, int]], columns: tuple[str, ...]) -> Table:
    table = Table("kind", *columns, box=None, pad_edge=False)
    for column in table.columns[1:]:
        column.justify = "right"
    totals = dict.fromkeys(columns, 0)
    for kind in sorted(kinds):
        counts = kinds[kind]
        cells = []
        for column in columns:
            value = counts.get(column, 0)
            totals[column] += value
            cells.append(human_bytes(value) if column == "bytes" else f"{value:,}")
        table.add_row(kind, *cells)
    if len(kinds) > 1:
        table.add_row(
            Text("total", style="bold"),
            *[Text(human_bytes(v) if c == "bytes" else f"{v:,}", style="bold") for c, v in totals.items()],
        )
    return table


def run_summary(run: Run) -> Text:
    where = f"stream {run.stream}" if run.stream else f"target {run.target}" if run.target else ""
    seconds = f"{run.seconds:,.1f} s" if run.seconds is not None else "not finished"
    style = {
        "succeeded": "green", "with-rejects": "yellow", "drifted": "red", "refused": "yellow",
        "failed": "red", "interrupted": "yellow",
    }.get(run.status, "")  # fmt: skip
    text = Text(f"run {run.id}  {run.command}  {where}  ")
    text.append(run.status, style=style)
    text.append(f"  started {run.started_at:%Y-%m-%d %H:%M:%S}  {seconds}")
    return text


def extract_report(stats: dict[str, Any]) -> Group:
    parts: list[Any] = [_kind_table(stats.get("kinds", {}), EXTRACT_COLUMNS)]
    scopes = stats.get("scopes", {})
    blobs = stats.get("blobs", {})
    lines = [
        f"events appended: {stats.get('events', 0):,}   rejects: {stats.get('rejects', 0):,}"
        f"   records/s: {stats.get('records_per_second', 0):,}",
        "scopes: " + ", ".join(f"{scopes.get(name, 0):,} {name}" for name in SCOPE_COUNTERS),
        f"blobs: {blobs.get('new', 0):,} new ({human_bytes(blobs.get('bytes', 0))})",
    ]
    if stats.get("resumed_from_run"):
        lines.append(f"resumed from interrupted run {stats['resumed_from_run']}")
    lines += source_lines(stats.get("source") or {})
    parts += [Text(line) for line in lines]
    return Group(*parts)


def source_lines(facts: dict[str, Any]) -> list[str]:
    """What the source reported about its input (sizes, checksums, counts), one per line."""
    if not facts:
        return []
    lines = ["source:"]
    for name, value in facts.items():
        if isinstance(value, (dict, list)):
            value = json.dumps(value, ensure_ascii=False, default=str)
        lines.append(f"  {name:<30} {value}")
    return lines


REPLAY_COLUMNS = ("inserted", "updated", "deleted", "skipped", "rejected", "unchanged")


def replay_report(stats: dict[str, Any]) -> Group:
    """pgloader-style: per kind, written/skipped/rejected/unchanged and time; the target
    tables each kind lands in on a line of their own (so the table fits 80 columns)."""
    table = Table("kind", *REPLAY_COLUMNS, "time", box=None, pad_edge=False)
    for column in table.columns[1:]:
        column.justify = "right"
    totals = dict.fromkeys((*REPLAY_COLUMNS, "seconds"), 0)
    landing = []
    for name, counts in stats.get("tables", {}).items():
        kind, _, where = name.partition(" → ")
        landing.append(f"{kind} → {where}" if where else kind)
        for column in totals:
            totals[column] += counts.get(column, 0)
        table.add_row(
            kind, *[f"{int(counts.get(c, 0)):,}" for c in REPLAY_COLUMNS], f"{counts.get('seconds', 0):.2f}s"
        )
    if len(stats.get("tables", {})) > 1:
        table.add_row(
            Text("total", style="bold"),
            *[Text(f"{int(totals[c]):,}", style="bold") for c in REPLAY_COLUMNS],
            Text(f"{totals['seconds']:.2f}s", style="bold"),
        )
    lines = [
        f"records written: {stats.get('written', 0):,}   skipped: {stats.get('skipped', 0):,}"
        f"   units rejected: {stats.get('rejected_units', 0):,}",
        f"retries: {stats.get('retries', 0):,}   healed from markers: {stats.get('reconciled', 0):,}",
    ]
    if landing:
        lines.append("tables: " + ", ".join(landing))
    if stats.get("policy"):
        lines.append(f"policy: {stats['policy']}")
    if stats.get("rolls_back"):
        lines.append(f"rolled back run(s): {', '.join(map(str, stats['rolls_back']))}")
    for name, value in stats.get("sink", {}).items():
        lines.append(f"{name:<32} {value:,}")
    if "rule" in stats:
        lines.append(f"repair {stats['rule']}: {stats.get('fixes', 0):,} fix(es)")
        lines += [f"  {fix_line(fix)}" for fix in stats.get("sample", [])[:20]]
    return Group(table, *[Text(line) for line in lines])


def fix_line(fix: dict[str, Any]) -> str:
    """One fix of a repair's sample. Rules describe their fixes differently (``resync``:
    unit and fix; Onyx's: session, row, fix, new value), so show whatever fields it has."""
    fields = dict(fix)
    what = fields.pop("fix", "fix")
    return f"{what}: " + "  ".join(f"{name} {value}" for name, value in fields.items())


def plan_report(plan: dict[str, dict[str, int]]) -> Table:
    """A dry run's plan: per kind and target table, insert/update/delete/skip."""
    columns = ("insert", "update", "delete", "skip", "unchanged")
    table = Table("kind → table", *columns, title="plan (nothing written)")
    for name, counts in sorted(plan.items()):
        table.add_row(name, *[f"{counts.get(c, 0):,}" for c in columns])
    return table


def verify_report(result: dict[str, Any]) -> Group:
    if result["matches"]:
        verdict = Text("target matches the ledger", style="green")
    elif result.get("consistent"):
        verdict = Text(
            f"target holds what the ledger wrote, but {result.get('pending', 0):,} record(s) are pending "
            "(not replayed yet)",
            style="yellow",
        )
    else:
        verdict = Text("target differs from the ledger", style="red")
    counts = "   ".join(
        f"{name}: {result.get(name, 0):,}"
        for name in ("ok", "missing", "drifted", "unexpected", "pending", "skipped", "deleted_in_source")
    )
    parts: list[Any] = [verdict, Text(counts)]
    for status, samples in result.get("samples", {}).items():
        parts += [Text(f"  {status}: {sample}") for sample in samples]
    return Group(*parts)


def migrate_line(stats: dict[str, Any]) -> str:
    """One line naming what each part did, skips, rejects and pending included."""
    parts = []
    if "extract" in stats:
        extracted = stats["extract"]
        parts.append(
            f"extract run {extracted['run_id']}: {extracted['events']:,} events, "
            f"{extracted.get('rejects', 0):,} rejected"
        )
    if "replay" in stats:
        replayed = stats["replay"]
        parts.append(
            f"replay run {replayed['run_id']}: {replayed['written']:,} written, "
            f"{replayed.get('skipped', 0):,} skipped, {replayed.get('rejected_units', 0):,} unit(s) rejected"
        )
    if "verify" in stats:
        checked = stats["verify"]
        verdict = "matches" if checked["matches"] else "differs"
        parts.append(f"verify run {checked['run_id']}: {verdict} ({checked.get('pending', 0):,} pending)")
    return "; ".join(parts)


def run_report(run: Run, rejects: list[dict[str, Any]] | None = None) -> Group:
    parts: list[Any] = [run_summary(run)]
    if run.command == "extract":
        parts.append(extract_report(run.stats))
    elif run.command in ("replay", "rollback", "repair"):
        parts.append(replay_report(run.stats))
    elif run.command == "verify":
        parts.append(verify_report(run.stats))
    elif run.command == "migrate" and run.stats:
        parts.append(Text(migrate_line(run.stats)))
    if run.error:
        parts.append(Text(f"error: {run.error}", style="red"))
    if rejects:
        parts.append(Text(f"rejects ({len(rejects)} shown):", style="yellow"))
        for reject in rejects:
            parts.append(Text(f"  {reject['location']}: {reject['reason']}"))
    return Group(*parts)


def runs_table(items: list[Run]) -> Table:
    table = Table("id", "command", "stream/target", "status", "started", "seconds", "events")
    for run in items:
        seconds = f"{run.seconds:,.1f}" if run.seconds is not None else ""
        table.add_row(
            str(run.id),
            run.command,
            run.stream or run.target or "",
            run.status,
            f"{run.started_at:%Y-%m-%d %H:%M:%S}",
            seconds,
            f"{run.stats.get('events', '')}",
        )
    return table


def status_report(status: dict[str, Any]) -> Group:
    parts: list[Any] = [
        Text(f"ledger {status['ledger']}  (schema {status['schema_revision']})", style="bold")
    ]
    if not status["streams"]:
        parts.append(Text("no streams extracted yet"))
    for name, entry in status["streams"].items():
        table = Table("kind", "live", "deleted", title=f"stream {name}", title_justify="left")
        for kind, counts in sorted(entry["kinds"].items()):
            table.add_row(kind, f"{counts['live']:,}", f"{counts['deleted']:,}")
        parts.append(table)
        scopes = entry.get("scopes", {})
        last = entry.get("last_run")
        line = f"scopes: {scopes.get('complete', 0):,} complete, {scopes.get('unfinished', 0):,} unfinished"
        if last:
            line += f"; last run {last['id']} ({last['command']}, {last['status']})"
        parts.append(Text(line))
    for name, entry in status["targets"].items():
        kinds = ", ".join(f"{count:,} {kind}" for kind, count in sorted(entry.get("kinds", {}).items()))
        parts.append(Text(f"target {name} ({entry.get('sink', '?')}): {kinds or 'nothing written'}"))
    for lock in status["locks"]:
        stale = "  STALE (its process is gone)" if lock["stale"] else ""
        parts.append(Text(f"lock {lock['name']}: run {lock['run_id']}, {lock['holder']}{stale}"))
    for run in status["unfinished_runs"]:
        parts.append(
            Text(
                f"run {run['id']} {run['command']} {run['stream'] or run['target']}: {run['status']}",
                style="yellow",
            )
        )
    return Group(*parts)


def history_table(rows: list[dict[str, Any]]) -> Table:
    table = Table("stream", "version", "op", "hash", "run", "recorded at")
    for row in rows:
        table.add_row(
            row["stream"],
            str(row["version"]),
            row["op"],
            (row["hash"] or "")[:16],
            str(row["run_id"]),
            row["recorded_at"],
        )
    return table


def writes_table(rows: list[dict[str, Any]]) -> Table:
    table = Table("target", "version", "action", "target ref", "run", "at")
    for row in rows:
        table.add_row(
            row["target"],
            str(row["version"]),
            row["action"],
            row["target_ref"] or "",
            str(row["run_id"]),
            row["at"],
        )
    return table
