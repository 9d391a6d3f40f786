"""chatledger.toml: the ledger, named streams (sources) and named targets (DESIGN §8).

```toml
[ledger]
url = "sqlite:///chatledger.db"     # or env:CHATLEDGER_PG
blobs = "chatledger.blobs"          # optional; default beside a SQLite ledger

[sources.prod-chats]                # the stream name
type = "librechat"
mongo_uri = "env:LIBRECHAT_MONGODB" # secrets only as env: references

[targets.onyx-prod]
type = "onyx"
db_url = "env:ONYX_DB_URL"
```

Precedence: flags, then the file, then the ``CHATLEDGER_LEDGER`` environment variable,
then the default. The environment never overrides the file silently: when both are set
and differ, a warning says which one is used. ``chatledger config show`` prints the
effective configuration with each value's origin, secrets masked.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from ledger import plugins
from ledger.errors import ConfigError, UsageError
from ledger.options import ENV_PREFIX, literal_secrets, masked, resolve_env
from ledger.redact import redact, register_secret
from ledger.store import DEFAULT_URL

CONFIG_NAME = "chatledger.toml"
LEDGER_ENV = "CHATLEDGER_LEDGER"
SECTIONS = ("ledger", "sources", "targets")

log = structlog.get_logger("chatledger.config")


@dataclass
class Config:
    path: Path | None = None
    ledger: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Setting:
    value: Any
    origin: str


def load_config(path: Path | None = None) -> Config:
    """Read ``path``, or ./chatledger.toml when it exists; an empty config otherwise."""
    if path is None:
        candidate = Path(CONFIG_NAME)
        if not candidate.is_file():
            return Config()
        path = candidate
    elif not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a text file (not UTF-8 at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(document) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"{path}: unknown section {', '.join(unknown)} (sections: {', '.join(SECTIONS)})")
    for section in SECTIONS:
        if not isinstance(document.get(section, {}), dict):
            raise ConfigError(f"{path}: {section}: expected a [{section}] table, got {document[section]!r}")
    config = Config(path=path, ledger=document.get("ledger", {}))
    for section in ("sources", "targets"):
        entries = document.get(section, {})
        for name, entry in entries.items():
            where = f"{path} [{section}.{name}]"
            if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
                raise ConfigError(f'{where}: needs type = "<{section[:-1]} type>"')
        setattr(config, section, entries)
    return config


def ledger_url(config: Config, flag: str | None) -> Setting:
    """The ledger URL to use and where it came from."""
    env = os.environ.get(LEDGER_ENV)
    if flag:
        return Setting(flag, "--ledger")
    if "url" in config.ledger:
        origin = f"{config.path} [ledger] url"
        written = config.ledger["url"]
        if not isinstance(written, str):
            raise ConfigError(f"{config.path}: [ledger] url: expected a string, got {written!r}")
        if not written.startswith(ENV_PREFIX) and redact(written) != written:
            raise ConfigError(
                f"{config.path}: [ledger] url: holds a literal password; write it as "
                '"env:VARIABLE" and export the variable'
            )
        url = resolve_env(written, origin)
        register_secret(url)
        if env and env != url:
            log.warning(f"{LEDGER_ENV} is set but {origin} takes precedence")
        return Setting(url, origin)
    if env:
        register_secret(env)
        return Setting(env, LEDGER_ENV)
    return Setting(DEFAULT_URL, "default")


def blob_dir(config: Config, flag: str | None) -> str | None:
    return flag or config.ledger.get("blobs")


@dataclass(frozen=True)
class Plugin:
    """A configured or ad-hoc source or sink instance: name, type and option values."""

    name: str
    type: str
    values: dict[str, Any]  # env: references unresolved
    origin: str
    streams: tuple[str, ...] = ()  # targets: the streams replayed into it by default


def _plugin(
    config: Config,
    section: str,
    name: str,
    flags: dict[str, Any],
    ad_hoc_name: str | None,
) -> Plugin:
    entries = getattr(config, section)
    noun = section[:-1]
    if name in entries:
        if ad_hoc_name and ad_hoc_name != name:
            raise UsageError(f"{name!r} is a configured {noun}; --name does not apply")
        entry = dict(entries[name])
        kind = entry.pop("type")
        origin = f"{config.path} [{section}.{name}]"
        streams = entry.pop("streams", []) if section == "targets" else []
        if isinstance(streams, str) or not all(isinstance(item, str) for item in streams):
            raise ConfigError(f"{origin}: streams must be a list of stream names")
        return Plugin(name, kind, {**entry, **flags}, origin, tuple(streams))
    types = plugins.source_types() if section == "sources" else plugins.sink_types()
    if name in types:
        if not ad_hoc_name:
            raise UsageError(
                f"name the {'stream' if section == 'sources' else 'target'} with --name: "
                f"it identifies these records in the ledger (e.g. --name {name}-prod)"
            )
        return Plugin(ad_hoc_name, name, dict(flags), "flags")
    configured = ", ".join(sorted(entries)) or "none"
    raise UsageError(
        f"{name!r} is neither a configured {noun} ({configured}) nor a {noun} type "
        f"({', '.join(types) or 'none installed'})"
    )


def stream(config: Config, name: str, flags: dict[str, Any], ad_hoc_name: str | None) -> Plugin:
    return _plugin(config, "sources", name, flags, ad_hoc_name)


def target(config: Config, name: str, flags: dict[str, Any], ad_hoc_name: str | None) -> Plugin:
    return _plugin(config, "targets", name, flags, ad_hoc_name)


def check_literal_secrets(plugin: Plugin, options_class: type) -> None:
    """Secrets belong in the environment, not in a file that gets committed."""
    if plugin.origin == "flags":
        return
    found = literal_secrets(options_class, plugin.values)
    if found:
        raise ConfigError(
            f"{plugin.origin}: {', '.join(found)} holds a literal secret; "
            f'write it as "env:VARIABLE" and export the variable'
        )


def show(config: Config, ledger_flag: str | None) -> dict[str, Any]:
    """The effective configuration, secrets masked, for ``chatledger config show``."""
    file_url = config.ledger.get("url")
    if not ledger_flag and isinstance(file_url, str) and file_url.startswith(ENV_PREFIX):
        state = "set" if file_url[len(ENV_PREFIX) :] in os.environ else "NOT SET"
        url = Setting(f"{file_url} ({state})", f"{config.path} [ledger] url")
    else:
        url = ledger_url(config, ledger_flag)
    out: dict[str, Any] = {
        "config_file": str(config.path) if config.path else None,
        "ledger": {"url": redact(str(url.value)), "origin": url.origin},
        "sources": {},
        "targets": {},
    }
    if blob_dir(config, None):
        out["ledger"]["blobs"] = blob_dir(config, None)
    for section in ("sources", "targets"):
        for name, entry in getattr(config, section).items():
            values = {key: value for key, value in entry.items() if key not in ("type", "streams")}
            loader = plugins.source_class if section == "sources" else plugins.sink_class
            try:
                options_class = loader(entry["type"]).Options
                shown = masked(options_class, values)
            except UsageError as exc:
                shown = {"error": str(exc)}
            for key in shown:
                raw = values.get(key)
                if isinstance(raw, str) and raw.startswith(ENV_PREFIX):
                    state = "set" if raw[len(ENV_PREFIX) :] in os.environ else "NOT SET"
                    shown[key] = f"{raw} ({state})"
            out[section][name] = {"type": entry["type"], **shown}
            if "streams" in entry:
                out[section][name]["streams"] = entry["streams"]
    return out
