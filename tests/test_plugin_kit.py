"""Plug-ins import only the kit from the core, and never another plug-in (DESIGN §7)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_FOLDERS = ["sources", "sinks", "examples/plugins"]


def imported(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.append(node.module or "")
    return names


@pytest.mark.parametrize("folder", PLUGIN_FOLDERS)
def test_plugins_import_only_the_kit(folder):
    offenders = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        relative = path.relative_to(ROOT / folder)
        plugin = relative.parts[0].removesuffix(".py")
        for name in imported(path):
            parts = name.split(".")
            if parts[0] == "ledger" and name != "ledger.kit":
                offenders.append(f"{folder}/{relative}: {name}")
            if parts[0] == folder and len(parts) > 1 and parts[1] != plugin:
                offenders.append(f"{folder}/{relative}: {name} (another plug-in)")
    assert offenders == []


def test_the_example_plugins_are_short():
    for name in ("jsonl_source.py", "folder_sink.py"):
        lines = (ROOT / "examples" / "plugins" / name).read_text(encoding="utf-8").splitlines()
        assert len(lines) < 100, name
