"""Write docs/cli.md from the commands' own --help (``python docs/generate_cli_docs.py``).

``--check`` exits 1 when docs/cli.md is stale; the test suite runs it that way.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

COMMANDS = [
    [],
    ["init"],
    ["extract"],
    ["sources"],
    ["runs"],
    ["report"],
    ["status"],
    ["history"],
    ["audit"],
    ["unlock"],
    ["config", "show"],
    ["bench", "extract"],
]
TARGET = Path(__file__).with_name("cli.md")


def help_text(command: list[str]) -> str:
    env = {**os.environ, "COLUMNS": "100", "TERM": "dumb", "NO_COLOR": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "ledger", *command, "--help"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    lines = [line.rstrip() for line in done.stdout.strip("\n").splitlines()]
    return "\n".join(lines).replace("Usage: python -m ledger", "Usage: chatledger")


def render() -> str:
    parts = [
        "# chatledger command reference",
        "",
        "Generated from each command's `--help` by `docs/generate_cli_docs.py`; do not edit.",
        "",
    ]
    for command in COMMANDS:
        title = " ".join(["chatledger", *command])
        parts += [f"## {title}", "", "```", help_text(command), "```", ""]
    return "\n".join(parts)


if __name__ == "__main__":
    text = render()
    if "--check" in sys.argv:
        if not TARGET.exists() or TARGET.read_text(encoding="utf-8") != text:
            print("docs/cli.md is stale: run python docs/generate_cli_docs.py", file=sys.stderr)
            sys.exit(1)
    else:
        TARGET.write_text(text, encoding="utf-8")
