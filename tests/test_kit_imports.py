"""The bundle and sql sinks and the bundle source import nothing of the core but ``ledger.kit`` (DESIGN §7)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("module", ["sinks/bundle.py", "sinks/sql.py", "sources/bundle.py"])
def test_imports_only_the_kit(module):
    tree = ast.parse((ROOT / module).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    imported |= {
        alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    core = {name for name in imported if name == "ledger" or name.startswith("ledger.")}
    assert core == {"ledger.kit"}, core
