"""A re-run's cost (issue 16): the first ``migrate`` of a synthetic stream, a no-op
``migrate`` after it, and a full ``verify``, each in its own process, timed.

    python -m tests.bench.cheap_rerun_bench --users 1100 --target sqlite:///target.db
    python -m tests.bench.cheap_rerun_bench --users 1100 --target postgresql://postgres@127.0.0.1/bench

Run it in an empty folder (it writes its ledger, config and SQLite target there).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

CONFIG = """
[ledger]
url = "sqlite:///{root}/ledger.db"

[sources.syn]
type = "synthetic"
seed = 1
users = {users}
conversations_per_user = 10

[targets.out]
type = "sql"
url = "{target}"
"""


def timed(*args: str) -> tuple[float, dict]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "ledger", *args, "--no-progress", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 3):
        raise SystemExit(f"{' '.join(args)} failed: {done.stderr[-2000:]}")
    return seconds, json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=1100)
    parser.add_argument("--target", default="sqlite:///target.db")
    arguments = parser.parse_args()
    root = Path.cwd()
    target = arguments.target.replace("sqlite:///", f"sqlite:///{root}/", 1)
    (root / "chatledger.toml").write_text(CONFIG.format(root=root, users=arguments.users, target=target))
    first, done = timed("migrate", "syn", "out")
    records = done["replay"]["stats"]["written"]
    again, rerun = timed("migrate", "syn", "out")
    full, checked = timed("verify", "out")
    figures = {
        "records": records,
        "first_migrate_s": round(first, 2),
        "noop_migrate_s": round(again, 2),
        "noop_over_first": round(again / first, 4),
        "noop_status": rerun["status"],
        "noop_written": rerun["replay"]["stats"]["written"],
        "full_verify_s": round(full, 2),
        "full_verify_records_per_s": round(checked["ok"] / full),
        "full_verify_matches": checked["matches"],
    }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
