"""A run's report as a file: JSON, or one self-contained HTML page (``--report FILE``).

The page has no external assets (inline CSS, inline SVG plots), so an operator can
attach it to a change ticket: what each part of the run did per kind and target table,
verify's parity, rejects with their reasons, timings, and throughput over the run (from
the ``timeline`` samples the engines keep in a run's stats). Both forms come from one
document (:func:`run_document`, :func:`dry_run_document`), redacted before it is written.
Rejects are listed by location and reason; their inputs stay in the ledger
(``chatledger report RUN --json``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from html import escape
from itertools import pairwise
from pathlib import Path
from typing import Any

from sqlalchemy import select

from ledger import __version__, queries, runs
from ledger.errors import UsageError
from ledger.redact import redact_value
from ledger.schema import runs as runs_table
from ledger.store import Ledger

EXTRACT_COUNTERS = ("read", "new", "changed", "unchanged", "deleted", "rejected")
REPLAY_COUNTERS = ("inserted", "updated", "deleted", "skipped", "rejected", "unchanged")
VERIFY_COUNTERS = ("ok", "missing", "drifted", "unexpected", "pending", "skipped", "deleted_in_source")
REJECTS_LISTED = 1000
#: how the replay engine names a kind's entry in its stats: "message → messages, parts"
LANDS_IN = " → "


def landing(name: str) -> dict[str, Any]:
    """The replay engine's "message → messages, parts" as {"kind", "tables"}."""
    kind, _, where = name.partition(LANDS_IN)
    return {"kind": kind, "tables": [table for table in where.split(", ") if table]}


def stats_json(stats: Any) -> Any:
    """Run stats with their per-kind maps (``tables``, ``plan``), keyed "kind → tables"
    as stored, turned into lists of {"kind", "tables", counts...}."""
    if isinstance(stats, list):
        return [stats_json(item) for item in stats]
    if not isinstance(stats, dict):
        return stats
    out: dict[str, Any] = {}
    for name, value in stats.items():
        if name in ("tables", "plan") and isinstance(value, dict) and _keyed_by_kind(value):
            out[name] = [landing(entry) | dict(counts) for entry, counts in value.items()]
        else:
            out[name] = stats_json(value)
    return out


def _keyed_by_kind(value: dict[str, Any]) -> bool:
    return all(isinstance(counts, dict) for counts in value.values()) and any(
        LANDS_IN in name for name in value
    )


def _totals(rows: dict[str, dict[str, Any]], counters: tuple[str, ...]) -> dict[str, int]:
    return {name: sum(int(row.get(name, 0)) for row in rows.values()) for name in counters}


def run_counts(command: str, stats: dict[str, Any]) -> dict[str, Any]:
    """The few numbers that say what a run did (for the ``run finished`` event)."""
    if command == "extract":
        return {**_totals(stats.get("kinds", {}), EXTRACT_COUNTERS), "events": stats.get("events", 0)}
    if command in ("replay", "rollback", "repair"):
        counts = _totals(stats.get("tables", {}), REPLAY_COUNTERS)
        counts |= {name: stats.get(name, 0) for name in ("written", "skipped", "rejected_units")}
        return counts | ({"fixes": stats["fixes"]} if "fixes" in stats else {})
    if command == "verify":
        return {name: stats.get(name, 0) for name in ("matches", *VERIFY_COUNTERS)}
    # migrate: what its parts said
    return {
        part: {name: value for name, value in values.items() if name != "samples"}
        for part, values in stats.items()
        if isinstance(values, dict)
    }


def _rfc3339(value: dt.datetime | None = None) -> str:
    return (value or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")


def run_document(ledger: Ledger, run_id: int) -> dict[str, Any]:
    """A recorded run, its parts (a migrate's extract, replay and verify runs) and rejects."""
    run = runs.get_run(ledger, run_id)
    if run is None:
        raise UsageError(f"there is no run {run_id}")
    parts = []
    if run.command == "migrate":
        with ledger.read() as conn:
            ids = conn.scalars(
                select(runs_table.c.id).where(runs_table.c.parent_run_id == run_id).order_by(runs_table.c.id)
            ).all()
        parts = [runs.get_run(ledger, part) for part in ids]
    rejects = [
        row for recorded in (run, *parts) for row in queries.run_rejects(ledger, recorded.id, REJECTS_LISTED)
    ]
    return {
        "chatledger": __version__,
        "generated_at": _rfc3339(),
        "run": _run_json(run),
        "parts": [_run_json(part) for part in parts],
        "rejects": [
            {name: row.get(name) for name in ("run_id", "stream", "target", "location", "reason", "at")}
            for row in rejects
        ],
    }


def _run_json(run: runs.Run) -> dict[str, Any]:
    return run.as_json() | {"stats": stats_json(run.stats)}


def dry_run_document(command: str, parts: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """A dry run (no run recorded): each part's command and stats (the plan)."""

    def dry(name: str, stats: dict[str, Any]) -> dict[str, Any]:
        return {"id": None, "command": name, "status": "dry-run", "stats": stats_json(stats)}

    return {
        "chatledger": __version__,
        "generated_at": _rfc3339(),
        "run": dry(command, parts[0][1] if len(parts) == 1 else {}),
        "parts": [dry(name, stats) for name, stats in parts] if len(parts) > 1 else [],
        "rejects": [],
    }


def write(path: Path, document: dict[str, Any]) -> Path:
    """Write the report: JSON when ``path`` ends in .json, else HTML; atomically."""
    document = redact_value(json.loads(json.dumps(document, default=str)))
    if path.suffix.lower() == ".json":
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    else:
        text = html_page(document)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
    return path


# --- the HTML page ---------------------------------------------------------------

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1100px;
color:#1d232a;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d8dee4}
h3{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;margin:6px 0 10px}th,td{padding:3px 10px;border-bottom:1px solid #e4e8ec}
th{background:#f3f5f7;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.total td{font-weight:600}.meta{color:#57606a}.status{padding:1px 8px;border-radius:10px;color:#fff}
.succeeded{background:#1a7f37}.with-rejects,.refused,.interrupted{background:#9a6700}
.drifted,.failed{background:#cf222e}.dry-run,.running{background:#57606a}
.error{color:#cf222e}svg{background:#fafbfc;border:1px solid #e4e8ec;margin:4px 12px 4px 0}
"""


def html_page(document: dict[str, Any]) -> str:
    run = document["run"]
    parts = document["parts"] or [run]
    title = f"chatledger {run['command']}" + (f" run {run['id']}" if run["id"] else " (dry run)")
    body = [f"<h1>{escape(title)}</h1>", _run_meta(run, document)]
    if document["parts"]:
        body.append(_timings(parts))
    for part in parts:
        body.append(_part(part, heading=bool(document["parts"])))
    body.append(_rejects(document["rejects"]))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def _status(status: str) -> str:
    return f'<span class="status {escape(status)}" data-status="{escape(status)}">{escape(status)}</span>'


def _seconds(run: dict[str, Any]) -> float | None:
    stats = run.get("stats") or {}
    if run.get("started_at") and run.get("finished_at"):
        started = dt.datetime.fromisoformat(run["started_at"])
        return (dt.datetime.fromisoformat(run["finished_at"]) - started).total_seconds()
    return stats.get("seconds")


def _moment(stamp: str) -> str:
    return _rfc3339(dt.datetime.fromisoformat(stamp))


def _error_line(run: dict[str, Any]) -> str:
    """The run's error; for a run that finished (with rejects, drift) it is a note."""
    if not run.get("error"):
        return ""
    label = "note" if run["status"] in (runs.WITH_REJECTS, runs.DRIFTED) else "error"
    return f'<p class="error">{label}: {escape(run["error"])}</p>'


def _run_meta(run: dict[str, Any], document: dict[str, Any]) -> str:
    where = " · ".join(
        f"{name} <b>{escape(str(run[name]))}</b>" for name in ("stream", "target") if run.get(name)
    )
    seconds = _seconds(run)
    lines = [
        f"<p>{_status(run['status'])} {where}</p>",
        '<p class="meta">'
        + " · ".join(
            escape(text)
            for text in (
                f"started {_moment(run['started_at'])}" if run.get("started_at") else "",
                f"finished {_moment(run['finished_at'])}" if run.get("finished_at") else "",
                f"{seconds:,.2f} s" if seconds is not None else "",
                f"host {run['host']}" if run.get("host") else "",
                f"chatledger {document['chatledger']}",
                f"report generated {document['generated_at']}",
            )
            if text
        )
        + "</p>",
    ]
    lines.append(_error_line(run))
    return "\n".join(lines)


def _timings(parts: list[dict[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td>{escape(part['command'])}</td><td>{part['id'] or ''}</td><td>{_status(part['status'])}</td>"
        f'<td class="n">{_number(_seconds(part) or 0, 2)}</td></tr>'
        for part in parts
    )
    return f"<h2>Timings</h2><table><tr><th>part</th><th>run</th><th>status</th><th>seconds</th></tr>{rows}</table>"


def _number(value: Any, places: int = 0) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return escape(str(value))
    return f"{value:,.{places}f}"


def _counts_table(
    rows: dict[str, dict[str, Any]], columns: tuple[str, ...], *, label: str, time_column: bool = False
) -> str:
    """One row per kind (or kind → table), with a total row; every count cell carries
    ``data-kind`` / ``data-counter`` so scripts can read the page back."""
    head = "".join(
        f"<th>{escape(name)}</th>" for name in (label, *columns, *(("seconds",) if time_column else ()))
    )
    body = []
    for kind, counts in sorted(rows.items()):
        cells = "".join(
            f'<td class="n" data-counter="{escape(name)}">{_number(counts.get(name, 0))}</td>'
            for name in columns
        )
        if time_column:
            cells += f'<td class="n">{_number(counts.get("seconds", 0), 2)}</td>'
        body.append(f'<tr data-kind="{escape(kind)}"><td>{escape(kind)}</td>{cells}</tr>')
    if len(rows) > 1:
        totals = _totals(rows, columns)
        cells = "".join(
            f'<td class="n" data-counter="{escape(name)}">{_number(value)}</td>'
            for name, value in totals.items()
        )
        if time_column:
            cells += f'<td class="n">{_number(sum(r.get("seconds", 0) for r in rows.values()), 2)}</td>'
        body.append(f'<tr class="total" data-kind="total"><td>total</td>{cells}</tr>')
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _part(run: dict[str, Any], *, heading: bool) -> str:
    stats = run.get("stats") or {}
    command = run["command"]
    html = []
    if heading:
        name = f"{command} run {run['id']}" if run["id"] else f"{command} (dry run)"
        html.append(f'<h2 data-part="{escape(command)}">{escape(name)} {_status(run["status"])}</h2>')
        html.append(_error_line(run))
    else:
        html.append(f'<h2 data-part="{escape(command)}">Counts</h2>')
    if "kinds" in stats:
        html.append(_counts_table(stats["kinds"], EXTRACT_COUNTERS, label="kind"))
        html.append(
            f"<p>{_number(stats.get('events', 0))} events appended · {_number(stats.get('rejects', 0))} "
            f"rejected · {_number(stats.get('records_per_second', 0))} records/s</p>"
        )
    if "tables" in stats:
        tables = _by_landing(stats["tables"])
        html.append(_counts_table(tables, REPLAY_COUNTERS, label="kind → table", time_column=True))
        html.append(
            f"<p>{_number(stats.get('written', 0))} written · {_number(stats.get('skipped', 0))} skipped · "
            f"{_number(stats.get('rejected_units', 0))} unit(s) rejected · {_number(stats.get('retries', 0))} "
            f"retries · {_number(stats.get('reconciled', 0))} healed from markers</p>"
        )
    if "plan" in stats:
        plan = _by_landing(stats["plan"])
        columns = tuple(
            dict.fromkeys(
                name for counts in plan.values() for name in counts if name not in ("kind", "tables")
            )
        )
        html.append("<h3>Plan (nothing written)</h3>" + _counts_table(plan, columns, label="kind → table"))
    if "fixes" in stats:
        html.append(f"<p>repair {escape(str(stats.get('rule', '')))}: {_number(stats['fixes'])} fix(es)</p>")
        html.append(_list([", ".join(f"{k} {v}" for k, v in fix.items()) for fix in stats.get("sample", [])]))
    if command == "verify" and "ok" in stats:
        html.append(_parity(stats))
    if stats.get("sink"):
        rows = "".join(
            f'<tr><td>{escape(name)}</td><td class="n">{_number(value)}</td></tr>'
            for name, value in stats["sink"].items()
        )
        html.append(f"<h3>Sink counters</h3><table><tr><th>counter</th><th>count</th></tr>{rows}</table>")
    html.append(_plots(stats.get("timeline") or []))
    return "\n".join(html)


def _by_landing(entries: list[dict[str, Any]] | dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The document's per-kind entries ({"kind", "tables", counts...}) as rows labelled
    "kind → tables" for the page (an empty map stays one)."""
    if isinstance(entries, dict):
        return entries
    return {f"{entry['kind']}{LANDS_IN}{', '.join(entry['tables'])}": entry for entry in entries}


def _list(items: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{escape(item)}</li>" for item in items) + "</ul>" if items else ""


def _parity(stats: dict[str, Any]) -> str:
    if stats.get("matches"):
        verdict = "target matches the ledger"
    elif stats.get("consistent"):
        verdict = f"target holds what the ledger wrote, but {stats.get('pending', 0):,} record(s) are pending"
    else:
        verdict = "target differs from the ledger"
    table = _counts_table({"verify": stats}, VERIFY_COUNTERS, label="parity")
    samples = [
        f"{status}: {sample}" for status, found in stats.get("samples", {}).items() for sample in found
    ]
    return f'<h3>Verify parity</h3><p data-verdict="{escape(verdict)}"><b>{escape(verdict)}</b></p>{table}{_list(samples)}'


def _rejects(rejects: list[dict[str, Any]]) -> str:
    if not rejects:
        return "<h2>Rejects</h2><p>none</p>"
    rows = "".join(
        f"<tr><td>{row['run_id']}</td><td>{escape(str(row.get('stream') or row.get('target') or ''))}</td>"
        f"<td>{escape(str(row['location']))}</td><td>{escape(str(row['reason']))}</td></tr>"
        for row in rejects
    )
    return (
        f'<h2>Rejects</h2><p data-rejects="{len(rejects)}">{len(rejects):,} reject(s)'
        f"{' (the first ' + str(REJECTS_LISTED) + ' per run)' if len(rejects) >= REJECTS_LISTED else ''}</p>"
        f"<table><tr><th>run</th><th>stream/target</th><th>location</th><th>reason</th></tr>{rows}</table>"
    )


# --- plots -----------------------------------------------------------------------

WIDTH, HEIGHT, MARGIN = 520, 200, 48


def _plots(timeline: list[list[float]]) -> str:
    """Records handled and records per second over the run, from the timeline samples."""
    if not timeline:
        return ""
    points = [(0.0, 0.0), *((float(t), float(n)) for t, n in timeline)]
    rates = [(t1, (n1 - n0) / (t1 - t0)) for (t0, n0), (t1, n1) in pairwise(points) if t1 > t0]
    return (
        "<h3>Throughput over the run</h3><div>"
        + _chart(points, "records handled", "throughput-total")
        + _chart([(0.0, rates[0][1]), *rates] if rates else [], "records per second", "throughput-rate")
        + "</div>"
    )


def _chart(points: list[tuple[float, float]], title: str, name: str) -> str:
    if len(points) < 2:
        return ""
    right, top = max(t for t, _ in points) or 1.0, max(v for _, v in points) or 1.0
    inner_w, inner_h = WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN

    def xy(t: float, v: float) -> str:
        return f"{MARGIN + t / right * inner_w:.1f},{HEIGHT - MARGIN - v / top * inner_h:.1f}"

    line = " ".join(xy(t, v) for t, v in points)
    axis = f"M{MARGIN},{MARGIN} V{HEIGHT - MARGIN} H{WIDTH - MARGIN}"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" data-plot="{name}" role="img" aria-label="{escape(title)}">'
        f'<text x="{MARGIN}" y="20" font-size="13" font-weight="600">{escape(title)}</text>'
        f'<path d="{axis}" fill="none" stroke="#8c959f"/>'
        f'<polyline points="{line}" fill="none" stroke="#0969da" stroke-width="2"/>'
        f'<text x="{MARGIN - 4}" y="{MARGIN + 4}" font-size="11" text-anchor="end">{top:,.0f}</text>'
        f'<text x="{MARGIN - 4}" y="{HEIGHT - MARGIN}" font-size="11" text-anchor="end">0</text>'
        f'<text x="{WIDTH - MARGIN}" y="{HEIGHT - MARGIN + 16}" font-size="11" text-anchor="end">'
        f"{right:,.{2 if right < 10 else 0}f} s</text>"
        f'<text x="{MARGIN}" y="{HEIGHT - MARGIN + 16}" font-size="11">0 s</text></svg>'
    )
