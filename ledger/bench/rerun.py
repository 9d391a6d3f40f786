"""``chatledger bench rerun``: what a re-run costs (issue 16). The first ``migrate`` of a
synthetic stream into the ``sql`` sink, a no-op ``migrate`` after it (nothing changed:
checkpoints skip every scope, the replay plan is empty) and a full ``verify``, each in
its own process, timed from outside (process start included)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ledger.bench.figures import (
    CONVERSATIONS_PER_USER,
    Figure,
    chatledger,
    machine,
    ratio,
    results,
    scratch_dir,
    synthetic_users,
)

CONFIG = """
[ledger]
url = "sqlite:///{root}/ledger.db"

[sources.syn]
type = "synthetic"
seed = 1
users = {users}
conversations_per_user = {conversations}

[targets.out]
type = "sql"
url = "{target}"
"""


def rerun_benchmark(
    messages: int, *, target: str, workdir: Path | None = None, echo: Callable[[str], Any] = print
) -> dict[str, Any]:
    users = synthetic_users(messages)
    facts = machine(None if target.startswith("sqlite") else target)
    scratch = scratch_dir(workdir)
    root = workdir or Path(scratch.name)
    try:
        target_url = target.replace("sqlite:///", f"sqlite:///{root}/", 1)
        (root / "chatledger.toml").write_text(
            CONFIG.format(root=root, users=users, conversations=CONVERSATIONS_PER_USER, target=target_url)
        )
        ledger = f"sqlite:///{root}/ledger.db"
        echo(f"migrate {users:,} synthetic users (first) …")
        first, done = chatledger(ledger, "migrate", "syn", "out", cwd=root, ok=(0, 3))
        echo("migrate again (no-op) …")
        again, rerun = chatledger(ledger, "migrate", "syn", "out", cwd=root, ok=(0, 3))
        echo("verify …")
        checked_step, checked = chatledger(ledger, "verify", "out", cwd=root, ok=(0, 3))
    finally:
        if scratch is not None:
            scratch.cleanup()
    records = done["replay"]["stats"]["written"]
    figures = [
        Figure("migrate first", first.seconds, "s", None, None, first.peak_rss_mb, first.load,
               {"records_written": records, "status": done["status"]}),
        Figure("migrate no-op", again.seconds, "s", "migrate first", ratio(again.seconds, first.seconds),
               again.peak_rss_mb, again.load,
               {"records_written": rerun["replay"]["stats"]["written"], "status": rerun["status"]}),
        Figure("verify full", checked_step.seconds, "s", "migrate first", ratio(checked_step.seconds, first.seconds),
               checked_step.peak_rss_mb, checked_step.load,
               {"ok": checked["ok"], "matches": checked["matches"]}),
    ]  # fmt: skip
    return results("rerun", facts, figures, users=users)
