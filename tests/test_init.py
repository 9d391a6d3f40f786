"""``chatledger init --example SOURCE TARGET``: a commented chatledger.toml, generated from
the plug-ins' option declarations, that loads and validates for every source × sink pair
(generation and validation only: nothing runs)."""

from __future__ import annotations

import itertools
import re

import pytest

from ledger import config as configuration
from ledger import plugins
from ledger.errors import UsageError
from ledger.options import option_specs
from ledger.scaffold import PLACEHOLDER, example_config, write_example
from tests.conftest import run_cli

PAIRS = list(itertools.product(plugins.source_types(), plugins.sink_types()))
COMMENTED_OPTION = re.compile(r"^# (\w+ = .*)$", re.MULTILINE)


def validated(path):
    """The file as `config show` sees it, after the checks a run makes of each section."""
    loaded = configuration.load_config(path)
    shown = configuration.show(loaded, None)
    for section in ("sources", "targets"):
        for name, entry in shown[section].items():
            assert "error" not in entry, entry["error"]
            if section == "sources":
                plugin = configuration.stream(loaded, name, {}, None)
                options_class = plugins.source_class(entry["type"]).Options
            else:
                plugin = configuration.target(loaded, name, {}, None)
                options_class = plugins.sink_class(entry["type"]).Options
            configuration.check_literal_secrets(plugin, options_class)
    return loaded, shown


@pytest.mark.parametrize("source_type, sink_type", PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_every_pair_loads_and_validates_with_every_option_listed(tmp_path, source_type, sink_type):
    text = example_config(source_type, sink_type)
    path = write_example(tmp_path / "chatledger.toml", source_type, sink_type)
    loaded, shown = validated(path)
    (stream,) = loaded.sources
    (target,) = loaded.targets
    assert loaded.targets[target]["streams"] == [stream]
    for section, name, kind, loader in (
        ("sources", stream, source_type, plugins.source_class),
        ("targets", target, sink_type, plugins.sink_class),
    ):
        assert shown[section][name]["type"] == kind
        written = getattr(loaded, section)[name]
        for spec in option_specs(loader(kind).Options):
            assert f"{spec.name} = " in text  # listed, set or commented out
            if spec.required:
                value = written[spec.name]
                shown_value = str(value)
                assert shown_value.startswith("env:") if spec.secret else PLACEHOLDER in shown_value
            else:
                assert spec.name not in written  # at its default until uncommented
    # every commented-out example is valid too: uncommented, the file still validates
    path.write_text(COMMENTED_OPTION.sub(r"\1", text), encoding="utf-8")
    uncommented, _ = validated(path)
    for section, name, kind, loader in (
        ("sources", stream, source_type, plugins.source_class),
        ("targets", target, sink_type, plugins.sink_class),
    ):
        names = {spec.name for spec in option_specs(loader(kind).Options)}
        reserved = {"type", "streams"} if section == "targets" else {"type"}
        assert set(getattr(uncommented, section)[name]) - reserved == names


def test_init_refuses_to_overwrite_without_force_and_config_show_reads_the_result(tmp_path):
    (tmp_path / "chatledger.toml").write_text("# mine\n")
    refused = run_cli("init", "--example", "chatgpt", "sql", cwd=tmp_path)
    assert refused.returncode == 2 and "chatledger.toml exists; pass --force" in refused.stderr
    assert (tmp_path / "chatledger.toml").read_text() == "# mine\n"
    done = run_cli("init", "--example", "chatgpt", "sql", "--force", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "wrote chatledger.toml: a chatgpt stream into a sql target",
        "next: edit it, then run `chatledger config show`",
    ]
    shown = run_cli("config", "show", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "source my-chatgpt (type chatgpt)" in shown.stdout
    assert "url = env:MY_SQL_URL (NOT SET)  (file; required)" in shown.stdout
    assert "error" not in shown.stdout


def test_an_unknown_type_names_the_known_ones_and_writes_nothing(tmp_path):
    with pytest.raises(UsageError, match=r"unknown sink type 'sqll' \(known: bundle, "):
        write_example(tmp_path / "chatledger.toml", "chatgpt", "sqll")
    assert not (tmp_path / "chatledger.toml").exists()
