"""Human-readable renderings (rich) of runs, status, history and audit trails.

Every rendering has a structured twin (``--format json|ndjson|csv``): :func:`run_json`
and :func:`stats_json` turn stored run stats into JSON whose keys are plain names.

Every table fits 80 columns for realistic data: numbers and timestamps never wrap or get
cut (``no_wrap``); a table that would be wider than the screen closes its column gaps to
one space; free text (keys, references, reasons) folds inside its column; lines of prose
wrap at the screen's width even on the soft-wrapping console. Times are UTC and say so.
"""

from __future__ import annotations

import json
import textwrap
from typing import Any

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from ledger.extract.batch import SCOPE_COUNTERS
from ledger.queries import rfc3339, utc
from ledger.report_file import landing, stats_json
from ledger.runs import Run

EXTRACT_COLUMNS = ("read", "new", "changed", "unchanged", "deleted", "rejected", "bytes")


class Paragraph:
    """Plain text wrapped at the screen's width, continuation lines indented: the CLI's
    console soft-wraps (prints lines whole), which is right for data but not for prose."""

    def __init__(self, text: str, indent: int = 2, style: str = "") -> None:
        self.text, self.indent, self.style = text, indent, style

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        lines = textwrap.wrap(
            self.text,
            width=max(options.max_width, 20),
            subsequent_indent=" " * self.indent,
            break_long_words=False,
            break_on_hyphens=False,
        )
        for line in lines or [""]:
            yield Text(line, style=self.style)


class Items:
    """``lead`` then items separated by ``sep``, wrapped between items, never inside one
    ("0 deletes_withheld" stays together)."""

    def __init__(self, lead: str, items: list[str], sep: str = ", ", indent: int = 2) -> None:
        self.lead, self.items, self.sep, self.indent = lead, items, sep, indent

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        line = self.lead
        for index, item in enumerate(self.items):
            piece = item + (self.sep if index < len(self.items) - 1 else "")
            if line.strip() and len(line) + len(piece.rstrip()) > options.max_width:
                yield Text(line.rstrip())
                line = " " * self.indent
            line += piece
        yield Text(line.rstrip())


class Fitted:
    """A table whose column gaps close from two spaces to one when it would not fit."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        unbounded = options.update_width(10_000)  # a measurement never exceeds its width
        if Measurement.get(console, unbounded, self.table).maximum > options.max_width:
            self.table.padding = (0, 1, 0, 0)
        yield self.table

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.table)


class DataTable(Table):
    """A table whose text cells are data, never markup: a title such as "[bold] notes"
    or a target named "[targets.pg]" prints as written."""

    def add_row(self, *renderables: Any, **options: Any) -> None:
        super().add_row(*(Text(cell) if isinstance(cell, str) else cell for cell in renderables), **options)


def plain_table(
    *headers: str, numeric: tuple[str, ...] = (), whole: tuple[str, ...] = (), title: str | None = None
) -> Table:
    """A borderless table: ``numeric`` columns right-aligned, they and the ``whole``
    ones (names, times) never wrap; the others fold where the screen ends."""
    table = DataTable(
        box=None,
        pad_edge=False,
        title=None if title is None else Text(title),
        title_justify="left",
        title_style="bold",
    )
    for header in headers:
        if header in numeric:
            table.add_column(header, justify="right", no_wrap=True)
        elif header in whole:
            table.add_column(header, no_wrap=True)
        else:
            table.add_column(header, overflow="fold")
    return table


def when(value: Any) -> str:
    """A timestamp for a table whose header says (UTC)."""
    moment = utc(value)
    return f"{moment:%Y-%m-%d %H:%M:%S}" if moment else ""


def human_bytes(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{size:,.1f} GB"


def run_json(run: Run) -> dict[str, Any]:
    document = run.as_json()
    for name in ("started_at", "finished_at"):
        document[name] = rfc3339(document[name])
    document["seconds"] = run.seconds
    document["stats"] = stats_json(run.stats)
    return document


def _count(column: str, value: Any) -> str:
    return human_bytes(value) if column == "bytes" else f"{int(value):,}"


def _kind_table(kinds: dict[str, dict[str, int]], columns: tuple[str, ...]) -> Fitted:
    table = plain_table("kind", *columns, numeric=columns, whole=("kind",))
    totals = dict.fromkeys(columns, 0)
    for kind in sorted(kinds):
        counts = kinds[kind]
        for column in columns:
            totals[column] += counts.get(column, 0)
        table.add_row(kind, *[_count(column, counts.get(column, 0)) for column in columns])
    if len(kinds) > 1:
        table.add_row(
            Text("total", style="bold"), *[Text(_count(c, v), style="bold") for c, v in totals.items()]
        )
    return Fitted(table)


def duration(seconds: float | None) -> str:
    return f"{seconds:,.1f} s" if seconds is not None else "not finished"


STATUS_STYLES = {
    "succeeded": "green", "with-rejects": "yellow", "drifted": "red", "refused": "yellow",
    "failed": "red", "interrupted": "yellow",
}  # fmt: skip


def run_summary(run: Run) -> Group:
    where = f"stream {run.stream}" if run.stream else f"target {run.target}" if run.target else ""
    text = Text("  ".join(part for part in (f"run {run.id}", run.command, where) if part) + "  ")
    text.append(run.status, style=STATUS_STYLES.get(run.status, ""))
    started = Text(f"  started {when(run.started_at)} UTC, took {duration(run.seconds)}")
    return Group(text, started)


def extract_report(stats: dict[str, Any], *, dry_run: bool = False) -> Group:
    """``dry_run``: the events and blobs are what a run would append, not appended."""
    parts: list[Any] = [_kind_table(stats.get("kinds", {}), EXTRACT_COLUMNS)]
    scopes = stats.get("scopes", {})
    blobs = stats.get("blobs", {})
    appended = "events a run would append" if dry_run else "events appended"
    lines: list[Any] = [
        f"{appended}: {stats.get('events', 0):,}   rejects: {stats.get('rejects', 0):,}"
        f"   records/s: {stats.get('records_per_second', 0):,}",
        Items("scopes: ", [f"{scopes.get(name, 0):,} {name}" for name in SCOPE_COUNTERS]),
        f"blobs: {blobs.get('new', 0):,} new ({human_bytes(blobs.get('bytes', 0))})",
    ]
    if stats.get("resumed_from_run"):
        lines.append(f"resumed from interrupted run {stats['resumed_from_run']}")
    parts += [line if isinstance(line, Items) else Paragraph(line) for line in lines]
    facts = source_table(stats.get("source") or {})
    if facts is not None:
        parts += [Text("source:"), facts]
    return Group(*parts)


def source_table(facts: dict[str, Any]) -> Table | None:
    """What the source reported about its input (sizes, checksums, counts)."""
    if not facts:
        return None
    table = plain_table("fact", "value", whole=("fact",))
    table.show_header = False
    table.padding = (0, 0, 0, 2)
    for name, value in facts.items():
        if isinstance(value, (dict, list)):
            value = json.dumps(value, ensure_ascii=False, default=str)
        table.add_row(
            name, f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
        )
    return table


REPLAY_COLUMNS = ("inserted", "updated", "deleted", "skipped", "rejected", "unchanged")


def replay_report(stats: dict[str, Any]) -> Group:
    """pgloader-style: per kind, written/skipped/rejected/unchanged and time; the target
    tables each kind lands in below the table (so the table fits 80 columns)."""
    table = plain_table("kind", *REPLAY_COLUMNS, "time", numeric=(*REPLAY_COLUMNS, "time"), whole=("kind",))
    totals = dict.fromkeys((*REPLAY_COLUMNS, "seconds"), 0)
    lands = []
    for name, counts in stats.get("tables", {}).items():
        entry = landing(name)
        if entry["tables"]:
            lands.append(f"{entry['kind']} → {', '.join(entry['tables'])}")
        for column in totals:
            totals[column] += counts.get(column, 0)
        table.add_row(
            entry["kind"],
            *[f"{int(counts.get(c, 0)):,}" for c in REPLAY_COLUMNS],
            f"{counts.get('seconds', 0):,.2f}s",
        )
    if len(stats.get("tables", {})) > 1:
        table.add_row(
            Text("total", style="bold"),
            *[Text(f"{int(totals[c]):,}", style="bold") for c in REPLAY_COLUMNS],
            Text(f"{totals['seconds']:,.2f}s", style="bold"),
        )
    lines = [
        f"records written: {stats.get('written', 0):,}   skipped: {stats.get('skipped', 0):,}"
        f"   units rejected: {stats.get('rejected_units', 0):,}",
        f"retries: {stats.get('retries', 0):,}   healed from markers: {stats.get('reconciled', 0):,}",
    ]
    if stats.get("policy"):
        lines.append(f"policy: {stats['policy']}")
    if stats.get("rolls_back"):
        lines.append(f"rolled back run(s): {', '.join(map(str, stats['rolls_back']))}")
    for name, value in stats.get("sink", {}).items():
        lines.append(f"{name:<32} {value:,}" if isinstance(value, int) else f"{name:<32} {value}")
    if "rule" in stats:
        lines.append(f"repair {stats['rule']}: {stats.get('fixes', 0):,} fix(es)")
    parts: list[Any] = [Fitted(table), *[Paragraph(line) for line in lines]]
    if lands:
        parts.insert(3, Items("tables: ", lands, sep="; "))
    if "rule" in stats:
        parts += [Paragraph(f"  {fix_line(fix)}", indent=4) for fix in stats.get("sample", [])[:20]]
    return Group(*parts)


def fix_line(fix: dict[str, Any]) -> str:
    """One fix of a repair's sample. Rules describe their fixes differently (``resync``:
    unit and fix; Onyx's: session, row, fix, new value), so show whatever fields it has."""
    fields = dict(fix)
    what = fields.pop("fix", "fix")
    return f"{what}: " + "  ".join(f"{name} {value}" for name, value in fields.items())


PLAN_COLUMNS = ("insert", "update", "delete", "skip", "unchanged")


def plan_report(plan: dict[str, dict[str, int]]) -> Group:
    """A dry run's plan: per kind, insert/update/delete/skip; the tables below it."""
    table = plain_table("kind", *PLAN_COLUMNS, numeric=PLAN_COLUMNS, whole=("kind",))
    lands = []
    for name, counts in sorted(plan.items()):
        entry = landing(name)
        if entry["tables"]:
            lands.append(f"{entry['kind']} → {', '.join(entry['tables'])}")
        table.add_row(entry["kind"], *[f"{counts.get(c, 0):,}" for c in PLAN_COLUMNS])
    parts: list[Any] = [Text("plan (nothing written)", style="bold"), Fitted(table)]
    if lands:
        parts.append(Items("tables: ", lands, sep="; "))
    return Group(*parts)


PLAN_BASES = {
    "ledger_and_source": "the plan counts what the source holds now (read into a rolled-back rehearsal)",
    "ledger": "the plan counts only what the ledger holds (a read-only ledger cannot rehearse the extraction)",
}


def dry_run_notes(stats: dict[str, Any]) -> Group:
    """What a dry run checked of the target, and what its plan rests on."""
    parts: list[Any] = []
    checked = stats.get("check")
    if checked:
        rights = "" if checked.get("notes") else ", with the rights a run needs"
        parts.append(Paragraph(f"target {checked['target']}: reachable{rights}"))
        parts += [Paragraph(f"  note: {note}", indent=4) for note in checked.get("notes", [])]
    if stats.get("plan_basis") in PLAN_BASES:
        parts.append(Paragraph(PLAN_BASES[stats["plan_basis"]]))
    return Group(*parts)


VERIFY_COUNTS = ("ok", "missing", "drifted", "unexpected", "pending", "skipped", "deleted_in_source")


def verify_report(result: dict[str, Any]) -> Group:
    if result["matches"]:
        verdict: Any = Text("target matches the ledger", style="green")
    elif result.get("consistent"):
        verdict = Paragraph(
            f"target holds what the ledger wrote, but {result.get('pending', 0):,} record(s) are pending "
            "(not replayed yet)",
            style="yellow",
        )
    else:
        verdict = Text("target differs from the ledger", style="red")
    counts = Items("", [f"{name}: {result.get(name, 0):,}" for name in VERIFY_COUNTS], sep="   ", indent=0)
    parts: list[Any] = [verdict, counts]
    for status, samples in result.get("samples", {}).items():
        parts += [Paragraph(f"  {status}: {sample}", indent=4) for sample in samples]
    return Group(*parts)


def migrate_lines(stats: dict[str, Any]) -> list[str]:
    """One line per part, naming what it did, skips, rejects and pending included."""
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
    return parts


def run_report(run: Run, rejects: list[dict[str, Any]] | None = None) -> Group:
    parts: list[Any] = [run_summary(run)]
    if run.command == "extract":
        parts.append(extract_report(run.stats))
    elif run.command in ("replay", "rollback", "repair"):
        parts.append(replay_report(run.stats))
    elif run.command == "verify":
        parts.append(verify_report(run.stats))
    elif run.command == "migrate" and run.stats:
        parts += [Paragraph(line) for line in migrate_lines(run.stats)]
    if run.error:
        parts.append(Paragraph(f"error: {run.error}", style="red"))
    if rejects:
        parts.append(Text(f"rejects ({len(rejects)} shown):", style="yellow"))
        parts += [Paragraph(f"  {reject['location']}: {reject['reason']}", indent=4) for reject in rejects]
    return Group(*parts)


def run_records(run: Run) -> int | None:
    """The records a run handled, for the runs list: read, written, checked or fixed."""
    stats = run.stats
    for name in ("events", "written", "ok", "fixes"):
        if isinstance(stats.get(name), int):
            return stats[name]
    if isinstance(stats.get("replay"), dict):
        return stats["replay"].get("written")
    return None


def run_row(run: Run) -> dict[str, Any]:
    """One run as a flat row (``runs --format csv``)."""
    return {
        "id": run.id,
        "command": run.command,
        "stream": run.stream,
        "target": run.target,
        "parent_run_id": run.parent_run_id,
        "status": run.status,
        "started_at": rfc3339(run.started_at),
        "finished_at": rfc3339(run.finished_at),
        "seconds": run.seconds,
        "records": run_records(run),
        "error": run.error,
    }


def report_rows(run: Run) -> list[dict[str, Any]]:
    """A run's counts as rows: one per kind (extract) or kind and tables (replay,
    rollback, repair); a run without per-kind counts is one row of its plain numbers."""
    stats = stats_json(run.stats)
    head = {"run_id": run.id, "command": run.command, "status": run.status}
    if isinstance(stats.get("tables"), list) and stats["tables"]:
        return [head | entry for entry in stats["tables"]]
    if isinstance(stats.get("kinds"), dict) and stats["kinds"]:
        return [head | {"kind": kind} | counts for kind, counts in sorted(stats["kinds"].items())]
    return [head | {name: value for name, value in stats.items() if not isinstance(value, (dict, list))}]


def status_rows(status: dict[str, Any]) -> list[dict[str, Any]]:
    """The status as rows: per stream and kind the live and deleted records, per target
    and kind the records it holds."""
    rows = [
        {"type": "stream", "name": name, "kind": kind, "live": counts["live"], "deleted": counts["deleted"]}
        for name, entry in status["streams"].items()
        for kind, counts in sorted(entry["kinds"].items())
    ]
    rows += [
        {"type": "target", "name": name, "kind": kind, "held": count}
        for name, entry in status["targets"].items()
        for kind, count in sorted(entry.get("kinds", {}).items())
    ]
    return rows


def audit_rows(found: dict[str, Any]) -> list[dict[str, Any]]:
    """A key's audit trail as rows: each version read, then each write."""
    rows = [
        {"what": "version", "stream": row["stream"], "version": row["version"], "action": row["op"],
         "hash": row["hash"], "run_id": row["run_id"], "at": row["recorded_at"]}
        for row in found["versions"]
    ]  # fmt: skip
    rows += [
        {"what": "write", "stream": row["stream"], "target": row["target"], "version": row["version"],
         "action": row["action"], "hash": row["hash"], "run_id": row["run_id"], "at": row["at"],
         "target_ref": row["target_ref"], "reason": row["reason"]}
        for row in found["writes"]
    ]  # fmt: skip
    return rows


def took(seconds: float | None) -> str:
    """A run's duration in at most 8 columns: 12.3s, 4:05, 1:30:32."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, second = divmod(round(seconds), 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours}:{minute:02d}:{second:02d}" if hours else f"{minute}:{second:02d}"


RUN_HEADERS = ("id", "command", "stream/target", "status", "started (UTC)", "took", "records")


def runs_table(items: list[Run]) -> Fitted:
    table = plain_table(
        *RUN_HEADERS,
        numeric=("id", "took", "records"),
        whole=("command", "status", "started (UTC)"),
    )
    for run in items:
        table.add_row(
            str(run.id),
            run.command,
            run.stream or run.target or "",
            Text(run.status, style=STATUS_STYLES.get(run.status, "")),
            when(run.started_at),
            took(run.seconds),
            "" if (count := run_records(run)) is None else f"{count:,}",
        )
    return Fitted(table)


def status_report(status: dict[str, Any]) -> Group:
    parts: list[Any] = [
        Paragraph(f"ledger {status['ledger']}  (schema {status['schema_revision']})", style="bold")
    ]
    if not status["streams"]:
        parts.append(Text("no streams extracted yet"))
    for name, entry in status["streams"].items():
        table = plain_table("kind", "live", "deleted", numeric=("live", "deleted"), title=f"stream {name}")
        for kind, counts in sorted(entry["kinds"].items()):
            table.add_row(kind, f"{counts['live']:,}", f"{counts['deleted']:,}")
        parts.append(table)
        scopes = entry.get("scopes", {})
        last = entry.get("last_run")
        line = f"scopes: {scopes.get('complete', 0):,} complete, {scopes.get('unfinished', 0):,} unfinished"
        if last:
            line += f"; last run {last['id']} ({last['command']}, {last['status']})"
        parts.append(Paragraph(line))
    for name, entry in status["targets"].items():
        kinds = ", ".join(f"{count:,} {kind}" for kind, count in sorted(entry.get("kinds", {}).items()))
        parts.append(Paragraph(f"target {name} ({entry.get('sink', '?')}): {kinds or 'nothing written'}"))
    for lock in status["locks"]:
        stale = "  STALE (its process is gone)" if lock["stale"] else ""
        parts.append(
            Paragraph(
                f"lock {lock['name']}: run {lock['run_id']}, {lock['holder']}, since {when(lock['since'])} UTC{stale}"
            )
        )
    for run in status["unfinished_runs"]:
        parts.append(
            Paragraph(
                f"run {run['id']} {run['command']} {run['stream'] or run['target']}: {run['status']}",
                style="yellow",
            )
        )
    return Group(*parts)


def history_table(rows: list[dict[str, Any]]) -> Fitted:
    table = plain_table(
        "stream", "version", "op", "hash", "run", "recorded (UTC)",
        numeric=("version", "run"), whole=("op", "hash", "recorded (UTC)"),
    )  # fmt: skip
    for row in rows:
        table.add_row(
            row["stream"],
            str(row["version"]),
            row["op"],
            (row["hash"] or "")[:16],
            str(row["run_id"]),
            when(row["recorded_at"]),
        )
    return Fitted(table)


def reference(ref: Any, key: str | None = None) -> str:
    """Where a write landed, as ``name=value`` pairs that wrap between pairs; a field
    that repeats the record's own key is left out."""
    if not isinstance(ref, dict):
        return "" if ref is None else str(ref)
    pairs = []
    for name, value in ref.items():
        if value == key:
            continue
        pairs.append(f"{name}={value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)}")
    return "  ".join(pairs)


def _where(row: dict[str, Any]) -> str:
    if row["action"] == "skip":
        return f"skipped: {row.get('reason') or ''}"
    return reference(row["target_ref"], row["key"])


def writes_table(rows: list[dict[str, Any]]) -> Fitted:
    """Writes of one record to targets; a skip shows its reason where a write shows its
    reference."""
    table = plain_table(
        "target", "version", "action", "run", "at (UTC)", "target ref / reason",
        numeric=("version", "run"), whole=("action", "at (UTC)"),
    )  # fmt: skip
    for row in rows:
        table.add_row(
            row["target"],
            str(row["version"]),
            row["action"],
            str(row["run_id"]),
            when(row["at"]),
            _where(row),
        )
    return Fitted(table)


def writes_list(rows: list[dict[str, Any]]) -> Group:
    """Writes of many records: each key whole on its line (a UUID pair is longer than
    80 columns; a folded key could not be copied), what happened below it."""
    parts: list[Any] = []
    for row in rows:
        parts.append(Text(row["key"], style="bold"))
        parts.append(
            Paragraph(
                f"    {when(row['at'])} UTC  {row['target']}  {row['action']} v{row['version']}  run {row['run_id']}",
                indent=4,
            )
        )
    return Group(*parts)


def audit_report(found: dict[str, Any]) -> Group:
    """A key's versions, then its writes to targets."""
    writes = writes_table(found["writes"]) if found["writes"] else Text("not written to any target yet")
    return Group(history_table(found["versions"]), writes)


def keys_list(rows: list[dict[str, Any]]) -> Group:
    """Each key whole on its own line (so it can be copied into ``history``/``audit``),
    what it is on the next."""
    parts: list[Any] = []
    for row in rows:
        parts.append(Text(row["key"], style="bold"))
        facts = [row["stream"], f"v{row['version']}"]
        if row.get("deleted"):
            facts.append("deleted")
        if row["kind"] == "user":
            facts += [row["owner_email"]] if row.get("owner_email") else []
        elif row.get("owner"):
            facts.append(f"owner {row['owner_email'] or row['owner']}")
        if row.get("title"):
            facts.append(repr(row["title"]) if row["kind"] == "conversation" else str(row["title"]))
        parts.append(Paragraph("    " + " · ".join(facts), indent=4))
    if not rows:
        parts.append(Text("no keys match"))
    return Group(*parts)


def owner_report(found: dict[str, Any]) -> Group:
    """``audit --owner``: the owner's records per kind, what each target did with them,
    the most recent writes."""
    parts: list[Any] = [Paragraph(f"owner {found['owner']}: user " + ", ".join(found["users"]), style="bold")]
    kinds = plain_table("stream", "kind", "live", "deleted", numeric=("live", "deleted"), whole=("kind",))
    for row in found["records"]:
        kinds.add_row(row["stream"], row["kind"], f"{row['live']:,}", f"{row['deleted']:,}")
    parts += [Text("records in the ledger:"), Fitted(kinds)]
    if found["writes"]:
        actions = plain_table(
            "target", "kind", "action", "records", numeric=("records",), whole=("kind", "action")
        )
        for row in found["writes"]:
            actions.add_row(row["target"], row["kind"], row["action"], f"{row['count']:,}")
        parts += [Text("writes to targets:"), Fitted(actions)]
        parts += [
            Text(f"latest {len(found['recent'])} write(s):"),
            writes_list(found["recent"]),
        ]
    else:
        parts.append(Text("not written to any target yet"))
    return Group(*parts)
