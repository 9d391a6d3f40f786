"""A plug-in's options in the --help of the commands that take one (extract; replay,
verify, repair): ``chatledger extract librechat --help`` lists the librechat source's
flags, read from its ``Options`` declaration, and so does the help of a stream or target
named in chatledger.toml. Only the plug-in named is imported, and only then: the generic
--help names the types from the entry points, importing none."""

from __future__ import annotations

from typing import Any

import typer

from ledger import plugins
from ledger.cli.app import Command, state_of
from ledger.errors import ChatledgerError
from ledger.options import OptionSpec, option_specs

#: ctx.meta key: the first argument of a command line that asks for --help
_NAMED = "chatledger.help_for"


class SourceCommand(Command):
    """A command whose first argument is a stream of chatledger.toml or a source type,
    whose options follow as flags; its --help lists them when the argument is given."""

    section = "sources"  # the chatledger.toml tables the first argument may name
    noun = "source"
    listing = "sources"  # the command that lists every type's options

    def types(self) -> list[str]:
        return plugins.source_types()

    def load(self, kind: str) -> type:
        return plugins.source_class(kind)

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        helps = set(ctx.help_option_names)
        if helps.intersection(args):
            ctx.meta[_NAMED] = self._first_argument(ctx, [arg for arg in args if arg not in helps])
        return super().parse_args(ctx, args)

    def _first_argument(self, ctx: typer.Context, args: list[str]) -> str | None:
        first = next(param for param in self.get_params(ctx) if param.param_type_name == "argument")
        try:
            values, _, _ = self.make_parser(ctx).parse_args(args=args)
        except Exception:  # a malformed command line: its help, without a type's options
            return None
        named = values.get(first.name)
        return named if isinstance(named, str) else None

    def format_epilog(self, ctx: typer.Context, formatter: Any) -> None:
        super().format_epilog(ctx, formatter)
        named = ctx.meta.get(_NAMED)
        formatter.write_paragraph()
        if named is None:
            with formatter.indentation():
                formatter.write_text(
                    f"{self.noun.capitalize()} types: {', '.join(self.types()) or 'none installed'}. "
                    f"`chatledger {ctx.info_name} TYPE --help` lists the options of one, "
                    f"`chatledger {self.listing}` those of every type."
                )
            return
        kind, where, problem = self._kind_of(ctx, named)
        if problem:
            with formatter.indentation():
                formatter.write_text(problem)
            return
        try:
            specs = option_specs(self.load(kind).Options)
        except (ChatledgerError, ImportError) as exc:  # e.g. an optional dependency not installed
            with formatter.indentation():
                formatter.write_text(f"The {kind} {self.noun} cannot be loaded: {exc}")
            return
        with formatter.section(f"Options of the {kind} {self.noun}{where}"):
            formatter.write_dl([(spec.usage, _details(spec)) for spec in specs] or [("(none)", "")])

    def _kind_of(self, ctx: typer.Context, named: str) -> tuple[str, str, str]:
        """(type, where it is configured, problem) of a type or configured name."""
        if named in self.types():
            return named, "", ""
        try:
            config = state_of(ctx).config()
        except ChatledgerError as exc:
            return "", "", f"{named} is no {self.noun} type, and the configuration cannot be read: {exc}"
        entry = getattr(config, self.section).get(named)
        if entry is None:
            return (
                "",
                "",
                (
                    f"{named} is neither a {self.noun} type nor a [{self.section}.{named}] of "
                    f"{config.path or 'chatledger.toml'} (`chatledger {self.listing}` lists the types)."
                ),
            )
        return entry["type"], f" ([{self.section}.{named}] of {config.path}; a flag overrides it)", ""


class SinkCommand(SourceCommand):
    """The same for a target of chatledger.toml or a sink type."""

    section = "targets"
    noun = "sink"
    listing = "sinks"

    def types(self) -> list[str]:
        return plugins.sink_types()

    def load(self, kind: str) -> type:
        return plugins.sink_class(kind)


def _details(spec: OptionSpec) -> str:
    notes = []
    if spec.required:
        notes.append("required")
    elif spec.default not in (None, [], "") and spec.type is not bool:
        notes.append(f"default: {spec.default}")
    if spec.secret:
        notes.append("secret: give it as env:VARIABLE")
    return spec.help + (f"  [{'; '.join(notes)}]" if notes else "")


def _matching(names: list[str], incomplete: str) -> list[str]:
    return [name for name in dict.fromkeys(names) if name.startswith(incomplete)]


def _configured(ctx: typer.Context, section: str) -> list[str]:
    """Names in the chatledger.toml this command line reads (``--config``, then
    $CHATLEDGER_CONFIG, then ./chatledger.toml). Completion parses the line without
    running the main callback, so ``--config`` is read from the root context."""
    from ledger.config import configured_names

    return configured_names(ctx.find_root().params.get("config"), section)


def complete_source_type(incomplete: str) -> list[str]:
    return _matching(plugins.source_types(), incomplete)


def complete_sink_type(incomplete: str) -> list[str]:
    return _matching(plugins.sink_types(), incomplete)


def complete_stream(ctx: typer.Context, incomplete: str) -> list[str]:
    """A stream of chatledger.toml (``migrate STREAM``, ``--stream``)."""
    return _matching(_configured(ctx, "sources"), incomplete)


def complete_target(ctx: typer.Context, incomplete: str) -> list[str]:
    """A target of chatledger.toml (``migrate … TARGET``)."""
    return _matching(_configured(ctx, "targets"), incomplete)


def complete_stream_or_source_type(ctx: typer.Context, incomplete: str) -> list[str]:
    """``extract NAME``: the configured streams first, then the source types."""
    return _matching(_configured(ctx, "sources") + plugins.source_types(), incomplete)


def complete_target_or_sink_type(ctx: typer.Context, incomplete: str) -> list[str]:
    """``replay``/``verify``/``repair TARGET``: the configured targets, then the sink types."""
    return _matching(_configured(ctx, "targets") + plugins.sink_types(), incomplete)
