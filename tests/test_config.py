"""chatledger.toml, env: secrets, flags, precedence, masking; secrets never leak."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ledger import api, plugins
from ledger import config as configuration
from ledger.errors import ConfigError, UsageError
from ledger.options import build_options, masked, option, parse_flags
from ledger.records import Record
from ledger.runs import get_run
from ledger.source import Scope, Source
from ledger.store import Ledger
from tests.conftest import run_cli


@dataclass
class VaultOptions:
    db_url: str = option(help="a database URL", secret=True)
    api_key: str | None = option(None, help="an API key", secret=True)
    users: list[str] = option([], help="users")
    limit: int = option(10, help="a number")
    strict: bool = option(False, help="a flag")
    root: Path | None = option(None, help="a path")


class VaultSource(Source):
    """Emits one record and fails loudly with its secrets in the message when asked."""

    type_name = "vault"
    Options = VaultOptions

    def scopes(self) -> Iterator[Scope]:
        yield Scope("all")

    def read(self, scope: Scope, cursor: Any = None):
        if self.options.strict:
            raise RuntimeError(f"could not connect to {self.options.db_url} with {self.options.api_key}")
        yield [Record(self.stream, "user", "user:1", {"email": "a@example.com"})], None


@pytest.fixture
def vault(monkeypatch):
    real = plugins.source_class
    monkeypatch.setattr(plugins, "source_types", lambda: ["synthetic", "vault"])
    monkeypatch.setattr(plugins, "source_class", lambda name: VaultSource if name == "vault" else real(name))


def write_config(tmp_path: Path, body: str) -> configuration.Config:
    path = tmp_path / "chatledger.toml"
    path.write_text(body, encoding="utf-8")
    return configuration.load_config(path)


def test_flags_parse_to_typed_options():
    values = parse_flags(
        VaultOptions,
        ["--db-url", "postgresql://u:pw@h/db", "--users", "a", "--users=b", "--limit", "5", "--strict"],
        where="test",
    )
    options = build_options(VaultOptions, values, where="test")
    assert options.users == ["a", "b"] and options.limit == 5 and options.strict is True
    assert parse_flags(VaultOptions, ["--no-strict"], where="t") == {"strict": False}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--nope", "1"], "no such option --nope"),
        (["--limit"], "--limit needs a value"),
    ],
)
def test_bad_flags_are_usage_errors(args, message):
    with pytest.raises(UsageError, match=message):
        parse_flags(VaultOptions, args, where="extract vault")


def test_bad_values_name_the_option_and_mask_secrets():
    with pytest.raises(ConfigError, match="t limit: must be int, got 'many'"):
        build_options(VaultOptions, {"db_url": "sqlite:///x.db", "limit": "many"}, where="t")
    with pytest.raises(ConfigError, match="option db_url is required"):
        build_options(VaultOptions, {}, where="t")
    with pytest.raises(ConfigError, match="t colour: unknown option"):
        build_options(VaultOptions, {"db_url": "sqlite:///x.db", "colour": "red"}, where="t")


def test_env_references_resolve_only_when_built(monkeypatch):
    monkeypatch.setenv("VAULT_URL", "postgresql://app:s3cr3t-pw@db/app")
    values = {"db_url": "env:VAULT_URL", "api_key": "env:VAULT_KEY"}
    assert masked(VaultOptions, values) == values
    with pytest.raises(ConfigError, match="environment variable VAULT_KEY is not set"):
        build_options(VaultOptions, values, where="[sources.v]")
    monkeypatch.setenv("VAULT_KEY", "key-1234567")
    options = build_options(VaultOptions, values, where="[sources.v]")
    assert options.db_url == "postgresql://app:s3cr3t-pw@db/app"


def test_literal_secrets_in_the_file_are_refused(tmp_path, vault):
    config = write_config(
        tmp_path,
        '[sources.v]\ntype = "vault"\ndb_url = "postgresql://app:hunter22@db/app"\n',
    )
    with pytest.raises(ConfigError, match="db_url holds a literal secret"):
        api.resolve_stream(config, "v")
    # a URL without a password holds no secret
    config = write_config(tmp_path, '[sources.v]\ntype = "vault"\ndb_url = "postgresql://app@db/app"\n')
    plugin, _ = api.resolve_stream(config, "v")
    assert plugin.values["db_url"] == "postgresql://app@db/app"


def test_flags_override_the_file(tmp_path, vault):
    config = write_config(tmp_path, '[sources.v]\ntype = "vault"\ndb_url = "sqlite://"\nlimit = 3\n')
    plugin, _ = api.resolve_stream(config, "v", ["--limit", "7"])
    assert plugin.values == {"db_url": "sqlite://", "limit": "7"} and plugin.name == "v"


def test_ad_hoc_streams_need_a_name(tmp_path):
    config = configuration.Config()
    with pytest.raises(UsageError, match="name the stream with --name"):
        api.resolve_stream(config, "synthetic")
    with pytest.raises(UsageError, match="neither a configured source"):
        api.resolve_stream(config, "nosuchthing")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[sources.x]\nmongo = 1\n", 'needs type = "<source type>"'),
        ("[nonsense]\n", r"\[nonsense\]: unknown section"),
        ("[ledger\n", "not valid TOML"),
    ],
)
def test_config_file_errors_name_the_file(tmp_path, body, message):
    with pytest.raises(ConfigError, match=message) as caught:
        write_config(tmp_path, body)
    assert "chatledger.toml" in str(caught.value)


def test_ledger_url_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("CHATLEDGER_LEDGER", "sqlite:///from-env.db")
    empty = configuration.Config()
    assert configuration.ledger_url(empty, None) == configuration.Setting(
        "sqlite:///from-env.db", "CHATLEDGER_LEDGER"
    )
    config = write_config(tmp_path, '[ledger]\nurl = "sqlite:///from-file.db"\n')
    assert configuration.ledger_url(config, None).value == f"sqlite:///{tmp_path}/from-file.db"
    assert configuration.ledger_url(config, "sqlite:///flag.db").origin == "--ledger"


def test_config_show_masks_secrets(tmp_path, monkeypatch, vault):
    monkeypatch.setenv("VAULT_URL", "postgresql://app:s3cr3t-pw@db/app")
    config = write_config(
        tmp_path,
        '[ledger]\nurl = "env:LEDGER_PG"\n'
        '[sources.v]\ntype = "vault"\ndb_url = "env:VAULT_URL"\napi_key = "env:MISSING_KEY"\n',
    )
    shown = configuration.show(config, None)
    assert shown["ledger"]["url"]["value"] == "env:LEDGER_PG (NOT SET)"
    assert shown["sources"]["v"]["options"]["db_url"]["value"] == "env:VAULT_URL (set)"
    assert shown["sources"]["v"]["options"]["api_key"]["value"] == "env:MISSING_KEY (NOT SET)"
    assert "s3cr3t" not in json.dumps(shown)


def test_secrets_never_reach_the_ledger_or_errors(tmp_path, monkeypatch, vault, capsys):
    monkeypatch.setenv("VAULT_URL", "postgresql://app:s3cr3t-pw@db/app")
    monkeypatch.setenv("VAULT_KEY", "sk-live-0123456789")
    config = write_config(
        tmp_path, '[sources.v]\ntype = "vault"\ndb_url = "env:VAULT_URL"\napi_key = "env:VAULT_KEY"\n'
    )
    ledger = Ledger.open(f"sqlite:///{tmp_path}/l.db", blob_dir=tmp_path / "b")
    ok = api.extract_stream(ledger, config, "v")
    with pytest.raises(Exception):  # noqa: B017 (any failure of the strict read is the point)
        api.extract_stream(ledger, config, "v", ["--strict"])
    failed = get_run(ledger, ok.run_id + 1)
    assert failed.status == "failed" and "could not connect" in failed.error
    dump = "\n".join(line for line in ledger.engine.raw_connection().iterdump()) + capsys.readouterr().err
    for secret in ("s3cr3t-pw", "sk-live-0123456789"):
        assert secret not in dump
    assert get_run(ledger, ok.run_id).args["source"]["options"]["db_url"] == "env:VAULT_URL"


def test_secrets_given_as_flags_are_masked_in_the_run(tmp_path, vault):
    ledger = Ledger.open(f"sqlite:///{tmp_path}/l.db", blob_dir=tmp_path / "b")
    result = api.extract_stream(
        ledger,
        configuration.Config(),
        "vault",
        ["--db-url", "postgresql://app:flag-pw-999@db/app", "--api-key", "abcd-9999"],
        stream_name="v",
    )
    options = get_run(ledger, result.run_id).args["source"]["options"]
    assert options == {"db_url": "postgresql://app:***@db/app", "api_key": "***"}


def test_config_show_cli(tmp_path):
    (tmp_path / "chatledger.toml").write_text(
        '[ledger]\nurl = "sqlite:///x.db"\n[sources.syn]\ntype = "synthetic"\nusers = 3\nseed = 7\n'
    )
    shown = run_cli("config", "show", "--json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["ledger"]["url"] == {
        "value": f"sqlite:///{tmp_path}/x.db",
        "origin": "file",
        "where": "chatledger.toml: [ledger] url",
        "default": "sqlite:///chatledger.db",
    }
    options = data["sources"]["syn"]["options"]
    assert {key: options[key]["value"] for key in ("users", "seed")} == {"users": 3, "seed": 7}
