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

The file is ``--config PATH``, else ``$CHATLEDGER_CONFIG``, else ./chatledger.toml.
Relative paths written in the file (a ``sqlite:///`` URL, ``blobs``, every Path option)
are relative to the file's folder, so a runbook does the same from any folder; flags and
environment values stay relative to the working directory.

Precedence of each value, highest first (as in dlt): a flag, the environment variable
``CHATLEDGER__<SECTION>__<NAME>__<KEY>`` (section SOURCES, TARGETS or LEDGER; the name
and key upper-cased with ``-`` as ``_``, e.g. ``CHATLEDGER__TARGETS__ONYX_PROD__DB_URL``,
``CHATLEDGER__LEDGER__URL``), the file, then the default. ``$CHATLEDGER_LEDGER`` remains
a fallback ledger URL below the file. ``chatledger config show`` prints every effective
value with its origin and default, secrets masked.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from ledger import plugins
from ledger.errors import ConfigError, UsageError
from ledger.options import (
    ENV_PREFIX,
    OptionSpec,
    check_value,
    literal_secrets,
    masked,
    option_specs,
    resolve_env,
    suggestion,
    unknown_option,
)
from ledger.redact import redact, register_secret
from ledger.store import DEFAULT_URL

CONFIG_NAME = "chatledger.toml"
CONFIG_ENV = "CHATLEDGER_CONFIG"
LEDGER_ENV = "CHATLEDGER_LEDGER"
ENV_OVERRIDE = "CHATLEDGER__"
SECTIONS = ("ledger", "sources", "targets")
LEDGER_KEYS = ("url", "blobs")

# where a value came from, as `config show` names it
FILE, ENV, FLAG, DEFAULT = "file", "env", "flag", "default"

log = structlog.get_logger("chatledger.config")


@dataclass
class Config:
    path: Path | None = None
    ledger: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)
    path_origin: str = DEFAULT  # how the file was named: flag (--config), env, default

    @property
    def folder(self) -> Path:
        """What relative paths in the file are relative to."""
        return self.path.resolve().parent if self.path else Path.cwd()

    def where(self, section: str, name: str | None = None, key: str | None = None) -> str:
        """``chatledger.toml: [targets.pg] url``, the label an error starts with."""
        table = f"[{section}.{name}]" if name else f"[{section}]"
        return f"{self.path}: {table}" + (f" {key}" if key else "")


@dataclass(frozen=True)
class Setting:
    value: Any
    origin: str  # the flag, variable or file key it came from
    kind: str = field(default=DEFAULT, compare=False)  # file, env, flag or default


def env_name(*parts: str) -> str:
    """``CHATLEDGER__TARGETS__ONYX_PROD__DB_URL``: upper-cased, ``-`` as ``_``."""
    return ENV_OVERRIDE + "__".join(part.upper().replace("-", "_") for part in parts)


def _config_path(path: Path | None) -> tuple[Path | None, str]:
    if path is not None:
        return path, FLAG
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV]), ENV
    candidate = Path(CONFIG_NAME)
    return (candidate, DEFAULT) if candidate.is_file() else (None, DEFAULT)


def configured_names(path: Path | None, section: str) -> list[str]:
    """The names of a section's tables (``[sources.NAME]``, ``[targets.NAME]``) in the file
    :func:`load_config` would read, unvalidated (shell completion: a file with an error
    elsewhere still names them); none when it cannot be read."""
    path, _ = _config_path(path)
    if path is None:
        return []
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return []
    entries = document.get(section)
    return sorted(entries) if isinstance(entries, dict) else []


def load_config(path: Path | None = None) -> Config:
    """Read ``path``, else $CHATLEDGER_CONFIG, else ./chatledger.toml when it exists; an
    empty config otherwise."""
    path, path_origin = _config_path(path)
    if path is None:
        return Config()
    if not path.is_file():
        named = f" (named by {CONFIG_ENV})" if path_origin == ENV else ""
        raise ConfigError(f"config file {path}{named} does not exist")
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a text file (not UTF-8 at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(document) - set(SECTIONS))
    if unknown:
        raise ConfigError(
            f"{path}: [{unknown[0]}]: unknown section{suggestion(unknown[0], list(SECTIONS))} "
            f"(sections: {', '.join(SECTIONS)})"
        )
    for section in SECTIONS:
        if not isinstance(document.get(section, {}), dict):
            raise ConfigError(f"{path}: {section}: expected a [{section}] table, got {document[section]!r}")
    config = Config(path=path, ledger=document.get("ledger", {}), path_origin=path_origin)
    unknown = sorted(set(config.ledger) - set(LEDGER_KEYS))
    if unknown:
        raise ConfigError(
            f"{config.where('ledger', key=unknown[0])}: unknown key"
            f"{suggestion(unknown[0], list(LEDGER_KEYS))} (keys: {', '.join(LEDGER_KEYS)})"
        )
    for section in ("sources", "targets"):
        entries = document.get(section, {})
        for name, entry in entries.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
                raise ConfigError(f'{config.where(section, name)}: needs type = "<{section[:-1]} type>"')
        setattr(config, section, entries)
    return config


# -- paths relative to the file ---------------------------------------------------------


def _beside(folder: Path, written: str) -> str:
    """A relative path written in the file, made absolute against the file's folder."""
    path = Path(written)
    if written.startswith("~") or path.is_absolute():
        return written
    return str(folder / path)


def _sqlite_beside(folder: Path, url: str) -> str:
    """A ``sqlite:///relative.db`` URL written in the file, anchored at the file's folder;
    any other URL unchanged."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return url  # not a URL: whoever opens it says so
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:") or database.startswith("file:"):
        return url
    return parsed.set(database=_beside(folder, database)).render_as_string(hide_password=False)


def _anchor(spec: OptionSpec, value: Any, folder: Path) -> Any:
    """A file value with its relative paths anchored (Path options, sqlite URLs)."""
    if spec.multiple and isinstance(value, list):
        return [_anchor_item(spec.type, item, folder) for item in value]
    return _anchor_item(spec.type, value, folder)


def _anchor_item(kind: type, value: Any, folder: Path) -> Any:
    if not isinstance(value, str) or value.startswith(ENV_PREFIX):
        return value  # an env: value is the environment's, relative to the working directory
    if kind is Path:
        return _beside(folder, value)
    if kind is str and value.startswith("sqlite"):
        return _sqlite_beside(folder, value)
    return value


# -- the ledger ---------------------------------------------------------------------------


def ledger_url(config: Config, flag: str | None) -> Setting:
    """The ledger URL to use and where it came from."""
    override = env_name("ledger", "url")
    legacy = os.environ.get(LEDGER_ENV)
    if flag:
        url = resolve_env(flag, "--ledger")
        register_secret(url)
        return Setting(url, "--ledger", FLAG)
    if os.environ.get(override):
        url = resolve_env(os.environ[override], override)
        register_secret(url)
        return Setting(url, override, ENV)
    if "url" in config.ledger:
        origin = config.where("ledger", key="url")
        written = config.ledger["url"]
        if not isinstance(written, str):
            raise ConfigError(f"{origin}: expected a string, got {written!r}")
        if not written.startswith(ENV_PREFIX) and redact(written) != written:
            raise ConfigError(
                f'{origin}: holds a literal password; write it as "env:VARIABLE" and export the variable'
            )
        url = resolve_env(written, origin)
        if not written.startswith(ENV_PREFIX):
            url = _sqlite_beside(config.folder, url)
        register_secret(url)
        if legacy and legacy != url:
            log.warning(f"{LEDGER_ENV} is set but {origin} takes precedence")
        return Setting(url, origin, FILE)
    if legacy:
        register_secret(legacy)
        return Setting(legacy, LEDGER_ENV, ENV)
    default = _sqlite_beside(config.folder, DEFAULT_URL) if config.path else DEFAULT_URL
    return Setting(default, "default", DEFAULT)


def blobs_setting(config: Config, flag: str | None) -> Setting | None:
    override = env_name("ledger", "blobs")
    if flag:
        return Setting(flag, "blobs argument", FLAG)
    if os.environ.get(override):
        return Setting(os.environ[override], override, ENV)
    if "blobs" in config.ledger:
        origin = config.where("ledger", key="blobs")
        written = config.ledger["blobs"]
        if not isinstance(written, str):
            raise ConfigError(f"{origin}: expected a folder path, got {written!r}")
        return Setting(_beside(config.folder, written), origin, FILE)
    return None  # the store's default: beside a SQLite ledger


def blob_dir(config: Config, flag: str | None) -> str | None:
    found = blobs_setting(config, flag)
    return found.value if found else None


# -- sources and targets ------------------------------------------------------------------


@dataclass(frozen=True)
class Plugin:
    """A configured or ad-hoc source or sink instance: name, type and option values."""

    name: str
    type: str
    values: dict[str, Any]  # env: references unresolved
    origin: str  # what errors about the instance start with
    streams: tuple[str, ...] = ()  # targets: the streams replayed into it by default
    origins: dict[str, Setting] = field(default_factory=dict, compare=False)  # per key


def _env_values(section: str, name: str, specs: dict[str, OptionSpec]) -> dict[str, Setting]:
    """``CHATLEDGER__<SECTION>__<NAME>__<KEY>`` overrides of one instance; a key that is
    no option is an error (a typo would otherwise be ignored)."""
    prefix = env_name(section, name) + "__"
    found = {}
    for variable, text in os.environ.items():
        if not variable.startswith(prefix):
            continue
        key = variable[len(prefix) :].lower()
        if key not in specs and not (section == "targets" and key == "streams"):
            raise unknown_option(list(specs), key, f"{variable} ([{section}.{name}] {key})")
        listed = key == "streams" or specs[key].multiple
        found[key] = Setting(_env_list(variable, text) if listed else text, variable, ENV)
    return found


def _env_list(variable: str, text: str) -> Any:
    """A list option from the environment: a JSON array, or one item."""
    if not text.lstrip().startswith("["):
        return [text]
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{variable}: not a JSON array ({exc.msg})") from None
    if not isinstance(value, list):
        raise ConfigError(f"{variable}: not a JSON array")
    return value


def _file_values(
    config: Config, section: str, name: str, entry: dict[str, Any], specs: dict[str, OptionSpec]
) -> dict[str, Setting]:
    found = {}
    for key, written in entry.items():
        if key == "type":
            continue
        value = _anchor(specs[key], written, config.folder) if key in specs else written
        found[key] = Setting(value, config.where(section, name, key), FILE)  # _check judges it
    return found


def _options_class(section: str, kind: str, config: Config | None = None, name: str | None = None) -> type:
    types = plugins.source_types() if section == "sources" else plugins.sink_types()
    noun = section[:-1]
    if kind not in types:
        where = f"{config.where(section, name, 'type')}: " if config and config.path else ""
        raise ConfigError(
            f"{where}unknown {noun} type {kind!r}{suggestion(kind, types)} "
            f"(known: {', '.join(types) or 'none installed'})"
        )
    loader = plugins.source_class if section == "sources" else plugins.sink_class
    return loader(kind).Options


def _check(values: dict[str, Setting], specs: dict[str, OptionSpec], section: str) -> None:
    """Every literal value type-checked, its error naming where it was written."""
    for key, setting in values.items():
        if key == "streams" and section == "targets":
            streams = setting.value
            if not isinstance(streams, list) or not all(isinstance(item, str) for item in streams):
                raise ConfigError(f"{setting.origin}: must be a list of stream names")
        elif key not in specs:
            raise unknown_option(list(specs), key, setting.origin)
        elif setting.value is not None:
            check_value(specs[key], setting.value, setting.origin)


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
        entry = entries[name]
        kind, instance, origin = entry["type"], name, config.where(section, name)
        specs = {spec.name: spec for spec in option_specs(_options_class(section, kind, config, name))}
        settings = _file_values(config, section, name, entry, specs)
    else:
        types = plugins.source_types() if section == "sources" else plugins.sink_types()
        if name not in types:
            configured = ", ".join(sorted(entries)) or "none"
            raise UsageError(
                f"{name!r} is neither a configured {noun} ({configured}) nor a {noun} type "
                f"({', '.join(types) or 'none installed'}){suggestion(name, [*entries, *types])}"
            )
        if not ad_hoc_name:
            raise UsageError(
                f"name the {'stream' if section == 'sources' else 'target'} with --name: "
                f"it identifies these records in the ledger (e.g. --name {name}-prod)"
            )
        kind, instance, origin = name, ad_hoc_name, f"{noun} {name} --name {ad_hoc_name}"
        specs = {spec.name: spec for spec in option_specs(_options_class(section, kind))}
        settings = {}
    settings.update(_env_values(section, instance, specs))
    settings.update({key: Setting(value, _flag(key), FLAG) for key, value in flags.items()})
    _check(settings, specs, section)
    streams = settings["streams"].value if section == "targets" and "streams" in settings else []
    values = {key: setting.value for key, setting in settings.items() if key in specs}
    return Plugin(instance, kind, values, origin, tuple(streams), settings)


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def stream(config: Config, name: str, flags: dict[str, Any], ad_hoc_name: str | None) -> Plugin:
    return _plugin(config, "sources", name, flags, ad_hoc_name)


def target(config: Config, name: str, flags: dict[str, Any], ad_hoc_name: str | None) -> Plugin:
    return _plugin(config, "targets", name, flags, ad_hoc_name)


def check_literal_secrets(plugin: Plugin, options_class: type) -> None:
    """Secrets belong in the environment, not in a file that gets committed."""
    written = {key: value for key, value in plugin.values.items() if _kind(plugin, key) == FILE}
    found = literal_secrets(options_class, written)
    if found:
        raise ConfigError(
            f"{plugin.origin}: {', '.join(found)} holds a literal secret; "
            f'write it as "env:VARIABLE" and export the variable'
        )


def _kind(plugin: Plugin, key: str) -> str:
    setting = plugin.origins.get(key)
    return setting.kind if setting else FILE  # a caller's own Plugin: as if written


# -- config show ----------------------------------------------------------------------------


def _env_state(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(ENV_PREFIX):
        state = "set" if value[len(ENV_PREFIX) :] in os.environ else "NOT SET"
        return f"{value} ({state})"
    return value


def _row(value: Any, setting: Setting | None, default: Any) -> dict[str, Any]:
    if setting is None:
        return {"value": default, "origin": DEFAULT, "where": None, "default": default}
    return {"value": _env_state(value), "origin": setting.kind, "where": setting.origin, "default": default}


def _show_ledger(config: Config, ledger_flag: str | None) -> dict[str, Any]:
    file_url = config.ledger.get("url")
    env_set = ledger_flag or os.environ.get(env_name("ledger", "url"))
    if not env_set and isinstance(file_url, str) and file_url.startswith(ENV_PREFIX):
        url = Setting(file_url, config.where("ledger", key="url"), FILE)  # shown unresolved
    else:
        url = ledger_url(config, ledger_flag)
    shown = {"url": _row(redact(str(url.value)), url, DEFAULT_URL)}
    blobs = blobs_setting(config, None)
    shown["blobs"] = _row(blobs.value if blobs else None, blobs, "beside a SQLite ledger")
    return shown


def _show_plugin(config: Config, section: str, name: str) -> dict[str, Any]:
    entry = getattr(config, section)[name]
    try:
        plugin = _plugin(config, section, name, {}, None)
        options_class = _options_class(section, entry["type"], config, name)
    except (ConfigError, UsageError) as exc:
        return {"type": entry["type"], "error": str(exc)}
    shown_values = masked(options_class, plugin.values)
    rows = {}
    for spec in option_specs(options_class):
        default = (
            "required"
            if spec.required
            else None
            if spec.default is None
            else masked(options_class, {spec.name: spec.default})[spec.name]
        )
        rows[spec.name] = _row(shown_values.get(spec.name), plugin.origins.get(spec.name), default)
    out = {"type": entry["type"], "options": rows}
    if section == "targets":
        streams = plugin.origins.get("streams")
        out["streams"] = _row(list(plugin.streams), streams, "the ledger's only stream")
    return out


def show(config: Config, ledger_flag: str | None) -> dict[str, Any]:
    """The effective configuration, secrets masked, for ``chatledger config show``: every
    value with its origin (file, env, flag, default), where it was set, and its default."""
    return {
        "config_file": {"value": str(config.path) if config.path else None, "origin": config.path_origin},
        "ledger": _show_ledger(config, ledger_flag),
        "sources": {name: _show_plugin(config, "sources", name) for name in config.sources},
        "targets": {name: _show_plugin(config, "targets", name) for name in config.targets},
        "unused_environment": _unused_overrides(config),
    }


def _unused_overrides(config: Config) -> list[str]:
    """CHATLEDGER__ variables no configured instance reads (a typo in a name, or meant for
    an ad-hoc --name instance)."""
    used = [env_name("ledger", key) for key in LEDGER_KEYS]
    prefixes = [
        env_name(section, name) + "__"
        for section in ("sources", "targets")
        for name in getattr(config, section)
    ]
    return sorted(
        variable
        for variable in os.environ
        if variable.startswith(ENV_OVERRIDE)
        and variable not in used
        and not variable.startswith(tuple(prefixes))
    )
