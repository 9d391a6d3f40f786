"""Configuration mistakes get a one-line message naming the file, the key and what is
wrong, never a Python exception (issue 10, item 19)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ledger import config as configuration
from ledger.api import build_options, resolve_target
from ledger.errors import ConfigError
from ledger.sink import PermanentError, SinkContext
from ledger.store import Ledger
from sinks.bundle import BundleOptions, BundleSink
from sinks.onyx.users import Credentials
from sources.synthetic import SyntheticOptions
from tests.conftest import run_cli

TARGET = '[targets.pg]\ntype = "sql"\nurl = {url}\n'
SYN = '[sources.syn]\ntype = "synthetic"\nusers = {users}\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[ledger]\nurl = 5\n", "[ledger] url: expected a string, got 5"),
        ('[ledger]\nurl = "postgresql://me:hunter2@db/x"\n', "[ledger] url: holds a literal password"),
        ("sources = 5\n", "sources: expected a [sources] table, got 5"),
        (b"\xff\xfe[ledger]\x00\x81", "not a text file (not UTF-8"),
    ],
)
def test_file_level_mistakes(tmp_path, text, message):
    path = tmp_path / "chatledger.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ConfigError) as caught:
        config = configuration.load_config(path)
        configuration.ledger_url(config, None)
    assert message in str(caught.value) and str(path) in str(caught.value)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (TARGET.format(url="5"), "[targets.pg] url: must be str, got a int value"),
        (TARGET.format(url='"not a url at all"'), "[targets.pg] url: must be a URL (scheme://…)"),
        (SYN.format(users="-5"), "[sources.syn] users: must be at least 0, got -5"),
        (SYN.format(users=str(2**70)), "[sources.syn] users: too large for a 64-bit integer"),
    ],
)
def test_option_mistakes(tmp_path, section, message):
    path = tmp_path / "chatledger.toml"
    path.write_text(section)
    config = configuration.load_config(path)
    if "targets" in section:
        with pytest.raises(ConfigError) as caught:
            plugin, sink_class = resolve_target(config, "pg")
            build_options(sink_class.Options, plugin.values, where=plugin.origin)
        assert "literal secret" not in str(caught.value)
    else:
        with pytest.raises(ConfigError) as caught:
            values = {k: v for k, v in config.sources["syn"].items() if k != "type"}
            build_options(SyntheticOptions, values, where=f"{path} [sources.syn]")
    assert message in str(caught.value), str(caught.value)
    assert str(path) in str(caught.value) or "[sources.syn]" in str(caught.value)


def test_the_cli_says_it_in_one_line(tmp_path):
    (tmp_path / "chatledger.toml").write_text(SYN.format(users="-5"))
    done = run_cli("extract", "syn", cwd=tmp_path)
    assert done.returncode == 2 and "[sources.syn] users: must be at least 0" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_a_bundle_path_that_is_a_file(tmp_path):
    path = tmp_path / "export"
    path.write_text("not a folder")
    sink = BundleSink(BundleOptions(path=path), SinkContext("b", None))
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        sink.open()


def test_a_sqlite_ledger_under_home_opens_the_expanded_path(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    opened = Ledger.open("sqlite:///~/ledgers/x.db", blob_dir=tmp_path / "blobs")
    opened.close()
    assert (tmp_path / "ledgers" / "x.db").is_file()
    assert not Path("~").exists()


def test_onyx_credentials_with_a_line_cut_short(tmp_path):
    path = tmp_path / "credentials.jsonl"
    whole = json.dumps({"email": "a@x", "password": "p", "user_id": "u1"})
    path.write_text(whole + "\n" + whole[:17])  # the process died writing the second line
    os.chmod(path, 0o600)
    credentials = Credentials(path)
    assert credentials.created() == {"u1"}
    credentials.append("b@x", "q", "u2")
    lines = path.read_text().splitlines()
    assert json.loads(lines[-1])["user_id"] == "u2" and Credentials(path).created() == {"u1", "u2"}
    path.write_text('{"user_id": "u3",}\n' + whole + "\n")  # a whole line, but not JSON: an error
    with pytest.raises(PermanentError, match="line 1: not a JSON object"):
        Credentials(path).created()
