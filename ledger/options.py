"""Typed options of sources and sinks, read from chatledger.toml and from flags.

A plug-in declares its options as a dataclass whose fields use :func:`option`. The same
declaration gives config-file validation, ``--kebab-case`` flags, ``--help`` text, and
secret masking. Values may be ``env:VAR`` references, resolved only when the plug-in is
built, never stored or printed.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.errors import ConfigError, UsageError
from ledger.redact import MASK, redact, register_secret

ENV_PREFIX = "env:"


#: Integers past 64 bits fit no database column and no canonical JSON (run arguments).
INT64 = (-(2**63), 2**63 - 1)


def option(
    default: Any = dataclasses.MISSING, *, help: str, secret: bool = False, minimum: int | None = 0
) -> Any:
    """A plug-in option. Lists default to empty; ``secret`` values are always masked.
    Numbers (int, float) must be at least ``minimum`` (0: counts, sizes, seeds and ids
    are never negative); ``minimum=None`` allows any."""
    metadata = {"help": help, "secret": secret, "minimum": minimum}
    if isinstance(default, list):
        items = list(default)
        return dataclasses.field(default_factory=lambda: list(items), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclass(frozen=True)
class OptionSpec:
    name: str
    type: type  # str, int, float, bool, Path; the item type when ``multiple``
    multiple: bool
    optional: bool
    required: bool
    default: Any
    help: str
    secret: bool
    minimum: int | None = 0

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def usage(self) -> str:
        """How the flag is written: ``--users INTEGER``, ``--markers/--no-markers``."""
        if self.type is bool and not self.multiple:
            return f"{self.flag}/--no-{self.flag[2:]}"
        return f"{self.flag} {self.describe_type()}"

    def describe_type(self) -> str:
        name = {str: "TEXT", int: "INTEGER", float: "NUMBER", bool: "", Path: "PATH"}[self.type]
        return f"{name} (repeatable)" if self.multiple else name


def _unwrap(annotation: Any) -> tuple[type, bool, bool]:
    """(item type, multiple, optional) of a supported annotation."""
    optional = False
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        optional, annotation = True, args[0]
        origin = typing.get_origin(annotation)
    if origin is list:
        return typing.get_args(annotation)[0], True, optional
    return annotation, False, optional


def option_specs(options_class: type) -> list[OptionSpec]:
    hints = typing.get_type_hints(options_class)
    specs = []
    for field in dataclasses.fields(options_class):
        item_type, multiple, optional = _unwrap(hints[field.name])
        has_default = (
            field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING
        )
        default = (
            field.default
            if field.default is not dataclasses.MISSING
            else field.default_factory()
            if field.default_factory is not dataclasses.MISSING
            else None
        )
        specs.append(
            OptionSpec(
                name=field.name,
                type=item_type,
                multiple=multiple,
                optional=optional,
                required=not has_default,
                default=default,
                help=field.metadata.get("help", ""),
                secret=field.metadata.get("secret", False),
                minimum=field.metadata.get("minimum", 0),
            )
        )
    return specs


def resolve_env(value: Any, where: str) -> Any:
    """The value of an ``env:VAR`` reference (any other value unchanged)."""
    if isinstance(value, str) and value.startswith(ENV_PREFIX):
        name = value[len(ENV_PREFIX) :]
        if name not in os.environ:
            raise ConfigError(f"{where}: environment variable {name} is not set")
        return os.environ[name]
    return value


def _coerce(spec: OptionSpec, value: Any, where: str) -> Any:
    coerced = _coerce_type(spec, value, where)
    if spec.type in (int, float):
        low, high = INT64
        if spec.type is int and not low <= coerced <= high:
            raise ConfigError(f"{where}: too large for a 64-bit integer, got {coerced}")
        if spec.minimum is not None and coerced < spec.minimum:
            raise ConfigError(f"{where}: must be at least {spec.minimum}, got {coerced}")
    return coerced


def _coerce_type(spec: OptionSpec, value: Any, where: str) -> Any:
    kind = spec.type
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            lowered = str(value).strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if kind is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)
            return int(value)
        if kind is float:
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        if kind is Path:
            if not isinstance(value, str | os.PathLike):
                raise ValueError(value)
            return Path(os.path.expanduser(str(value)))
        if not isinstance(value, str):
            raise ValueError(value)
        if spec.name.endswith(("url", "uri")) and "://" not in value:
            shown = "" if spec.secret else f", got {value!r}"
            raise ConfigError(f"{where}: must be a URL (scheme://…){shown}")
        return value
    except (TypeError, ValueError):
        shown = f"a {type(value).__name__} value" if spec.secret else repr(value)  # never a secret
        raise ConfigError(f"{where}: must be {kind.__name__}, got {shown}") from None


def suggestion(word: str, choices: list[str]) -> str:
    """ "; did you mean X?" for a near miss among ``choices`` (difflib), else ""."""
    close = difflib.get_close_matches(word, choices, n=1)
    return f"; did you mean {close[0]}?" if close else ""


def unknown_option(known: list[str], name: str, where: str) -> ConfigError:
    """``where: unknown option; did you mean users? (options: …)``."""
    known = sorted(known)
    return ConfigError(
        f"{where}: unknown option{suggestion(name, known)} (options: {', '.join(known) or 'none'})"
    )


def check_value(spec: OptionSpec, value: Any, where: str) -> None:
    """Type-check a literal value as written (``env:`` references are checked when built)."""
    items = value if spec.multiple and isinstance(value, list) else [value]
    for item in items:
        if not (isinstance(item, str) and item.startswith(ENV_PREFIX)):
            _coerce(spec, item, where)


def build_options(options_class: type, values: dict[str, Any], *, where: str) -> Any:
    """Validate ``values`` (from the file, the environment and flags) and build the options
    object; an error names ``where`` (e.g. ``chatledger.toml: [targets.pg]``) and the key.

    ``env:VAR`` references are resolved here; resolved secrets are registered for
    redaction so they cannot leak through later logs or errors.
    """
    specs = {spec.name: spec for spec in option_specs(options_class)}
    unknown = sorted(set(values) - set(specs))
    if unknown:
        raise unknown_option(list(specs), unknown[0], f"{where} {unknown[0]}")
    kwargs = {}
    for name, spec in specs.items():
        if name not in values or values[name] is None:
            if spec.required:
                raise ConfigError(f"{where}: option {name} is required ({spec.flag})")
            continue
        value = values[name]
        field_where = f"{where} {name}"
        if spec.multiple:
            items = value if isinstance(value, list) else [value]
            resolved = [resolve_env(item, field_where) for item in items]
            if spec.secret:
                for item in resolved:
                    register_secret(str(item))
            kwargs[name] = [_coerce(spec, item, field_where) for item in resolved]
        else:
            resolved = resolve_env(value, field_where)
            if spec.secret:
                register_secret(str(resolved))
            kwargs[name] = _coerce(spec, resolved, field_where)
    return options_class(**kwargs)


def masked(options_class: type, values: dict[str, Any]) -> dict[str, Any]:
    """Values safe to show or store: secrets masked, ``env:`` references kept as names."""
    specs = {spec.name: spec for spec in option_specs(options_class)}
    out = {}
    for name, value in values.items():
        spec = specs.get(name)
        if isinstance(value, str) and value.startswith(ENV_PREFIX):
            out[name] = value
        elif spec is not None and spec.secret:
            out[name] = redact(str(value)) if "://" in str(value) else MASK
        elif isinstance(value, Path):
            out[name] = str(value)
        else:
            out[name] = value
    return out


def literal_secrets(options_class: type, values: dict[str, Any]) -> list[str]:
    """Secret options given literally (with a secret in them) instead of as env: refs."""
    found = []
    for spec in option_specs(options_class):
        value = values.get(spec.name)
        if not spec.secret or value is None:
            continue
        for item in value if isinstance(value, list) else [value]:
            text = str(item)
            if text.startswith(ENV_PREFIX):
                continue
            if "://" in text and redact(text) == text:
                continue  # a URL without a password (trust or socket auth) holds no secret
            if "://" not in text and spec.name.endswith(("url", "uri")):
                continue  # not a URL at all: _coerce says so when the options are built
            found.append(spec.name)
    return found


def parse_flags(options_class: type, args: list[str], *, where: str) -> dict[str, Any]:
    """Parse ``--kebab-case VALUE`` / ``--flag`` / ``--no-flag`` arguments."""
    specs = {spec.flag: spec for spec in option_specs(options_class)}
    negations = {f"--no-{spec.flag[2:]}": spec for spec in specs.values() if spec.type is bool}
    values: dict[str, Any] = {}
    position = 0
    while position < len(args):
        arg = args[position]
        flag, eq, inline = arg.partition("=")
        if flag in negations and not eq:
            values[negations[flag].name] = False
            position += 1
            continue
        spec = specs.get(flag)
        if spec is None:
            known = ", ".join(sorted(specs)) or "none"
            raise UsageError(f"{where}: no such option {flag} (options: {known})")
        if spec.type is bool and not spec.multiple and not eq:
            values[spec.name] = True
            position += 1
            continue
        if eq:
            value = inline
            position += 1
        else:
            if position + 1 >= len(args):
                raise UsageError(f"{where}: {flag} needs a value")
            value = args[position + 1]
            position += 2
        if spec.multiple:
            values.setdefault(spec.name, []).append(value)
        else:
            values[spec.name] = value
    return values
