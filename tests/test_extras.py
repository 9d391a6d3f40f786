"""A missing optional driver or library fails with the extra that installs it. Tested by
hiding the module (``sys.modules[name] = None`` makes ``import name`` fail), never by
uninstalling it."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from ledger.errors import ChatledgerError, ConfigError
from ledger.extract import ExtractSettings, extract
from ledger.extras import EXTRAS
from ledger.kit import SourceContext
from ledger.sql_target import target_engine
from ledger.store import Ledger
from sources.synthetic import SyntheticOptions, SyntheticSource

ROOT = Path(__file__).resolve().parent.parent
DECLARED = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
NAMED = re.compile(r"pip install 'chatledger\[([a-z0-9-]+)\]'")


def hide(monkeypatch, *modules: str) -> None:
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)


def test_every_extra_an_error_names_is_declared_in_pyproject():
    named = set(EXTRAS.values())
    for folder in ("ledger", "sources", "sinks"):
        for path in (ROOT / folder).rglob("*.py"):
            named |= set(NAMED.findall(path.read_text(encoding="utf-8")))
    assert {"mysql", "langgraph", "langgraph-checkpoints", "cherry-v6"} <= named
    assert named <= set(DECLARED), named - set(DECLARED)
    assert DECLARED["mariadb"] == DECLARED["mysql"]  # both names a user may reach for


@pytest.mark.parametrize("url", ["mysql://root@127.0.0.1:3306/db", "mariadb://root@127.0.0.1:3306/db"])
def test_a_mysql_target_without_pymysql_names_the_mysql_extra(monkeypatch, url):
    hide(monkeypatch, "pymysql")
    with pytest.raises(
        ConfigError, match=re.escape("needs the pymysql library: pip install 'chatledger[mysql]'")
    ):
        target_engine(url)


def test_the_replay_command_says_which_extra_to_install(tmp_path):
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'chatledger.db'}")
    source = SyntheticSource(SyntheticOptions(users=1), SourceContext("s", ledger.blobs))
    extract(ledger, source, settings=ExtractSettings(parallel=False))
    ledger.close()
    without_pymysql = "import sys; sys.modules['pymysql'] = None; from ledger.cli import app; app()"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            without_pymysql,
            "replay",
            "sql",
            "--name",
            "mine",
            "--url",
            "mysql://root@127.0.0.1/x",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "pip install 'chatledger[mysql]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_langgraph_sdk_names_its_extra(monkeypatch):
    from sinks.langgraph.server import sdk_client as sink_client
    from sources.langgraph.deployment import sdk_client as source_client

    hide(monkeypatch, "langgraph_sdk")
    with pytest.raises(ChatledgerError, match=re.escape("pip install 'chatledger[langgraph]'")):
        source_client("http://127.0.0.1:1", None, {}, 1.0)
    with pytest.raises(ChatledgerError, match=re.escape("pip install 'chatledger[langgraph]'")):
        sink_client("http://127.0.0.1:1", None, [], 1.0)


def test_checkpoint_savers_and_the_cherry_v6_reader_name_their_extras(monkeypatch, tmp_path):
    from sources.cherry.v6 import _reader
    from sources.langgraph.checkpoints import _saver

    hide(monkeypatch, "langgraph.checkpoint.sqlite", "dfindexeddb")
    with pytest.raises(ChatledgerError, match=re.escape("pip install 'chatledger[langgraph-checkpoints]'")):
        _saver(f"sqlite:///{tmp_path / 'checkpoints.db'}")
    with pytest.raises(ChatledgerError, match=re.escape("pip install 'chatledger[cherry-v6]'")):
        _reader()
