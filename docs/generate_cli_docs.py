"""Write docs/cli.md from the app's own --help (``python docs/generate_cli_docs.py``).

``--check`` exits 1 when docs/cli.md is stale; the test suite runs it that way.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ledger.cli.reference import render

TARGET = Path(__file__).with_name("cli.md")

if __name__ == "__main__":
    text = render()
    if "--check" in sys.argv:
        if not TARGET.exists() or TARGET.read_text(encoding="utf-8") != text:
            print("docs/cli.md is stale: run python docs/generate_cli_docs.py", file=sys.stderr)
            sys.exit(1)
    else:
        TARGET.write_text(text, encoding="utf-8")
