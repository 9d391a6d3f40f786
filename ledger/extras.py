"""Optional libraries and the ``pip install 'chatledger[EXTRA]'`` that brings each.

A target or source whose driver is missing fails with the command to run, not with a bare
``No module named …`` (pyproject.toml declares the extras; a test holds the two in step).
"""

from __future__ import annotations

from ledger.errors import ConfigError

#: top-level module → the extra that installs it
EXTRAS = {
    "pymysql": "mysql",
    "psycopg": "postgres",
    "pymongo": "mongo",
    "langgraph_sdk": "langgraph",
    "langgraph": "langgraph-checkpoints",
    "dfindexeddb": "cherry-v6",
}


def install_command(module: str) -> str | None:
    """``pip install 'chatledger[mysql]'`` for a module an extra installs, else None."""
    extra = EXTRAS.get(module.split(".")[0])
    return f"pip install 'chatledger[{extra}]'" if extra else None


def missing_extra(error: ImportError, needed_for: str) -> ConfigError | None:
    """The error to raise for a missing optional module, naming its extra; None when the
    module is no extra's (a broken installation: let the original error through)."""
    command = install_command(error.name or "")
    if command is None:
        return None
    return ConfigError(f"{needed_for} needs the {error.name.split('.')[0]} library: {command}")
