"""The Typer application, its global options, and what every command module shares:
the error-to-exit-code decorator, JSON output, the consoles.

Start-up stays light, since ``--help`` and ``--version`` should answer at once: this
module and the command modules import typer, rich's console and light core modules
only; the engines, the database layers and the plug-ins are imported inside the commands
that use them (tests/test_startup.py holds the CLI to that)."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand

from ledger import __version__
from ledger.errors import ChatledgerError, Terminated, terminate_on_sigterm
from ledger.redact import redact

if TYPE_CHECKING:
    from ledger.config import Config
    from ledger.progress import Progress
    from ledger.store import Ledger

app = typer.Typer(
    name="chatledger",
    help="Migrate AI-chat history between platforms through an event-sourced ledger.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts quote TOML like [ledger] url literally
)
config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")
bench_app = typer.Typer(help="Benchmarks, measured as ratios within one run.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


@dataclass
class State:
    ledger_flag: str | None = None
    config_path: Path | None = None
    verbose: int = 0
    quiet: bool = False
    log_json: bool = False
    _config: Config | None = None
    _ledgers: list[Ledger] = field(default_factory=list)

    def start(self) -> None:
        """Set up logging and the SIGTERM handler, as a command starts (not for its --help)."""
        from ledger import logs

        logs.configure(json=self.log_json, verbosity=-1 if self.quiet else self.verbose)
        terminate_on_sigterm()

    def config(self) -> Config:
        if self._config is None:
            from ledger.config import load_config

            self._config = load_config(self.config_path)
        return self._config

    def ledger(self, mode: str | None = None) -> Ledger:
        """The ledger, opened once per command; ``mode`` as in :meth:`Ledger.open`
        (default CREATE): read commands pass EXISTING, dry runs DRY, so neither creates
        a ledger."""
        if not self._ledgers:
            from ledger import api
            from ledger.store import CREATE

            self._ledgers.append(api.open_ledger(self.config(), self.ledger_flag, mode=mode or CREATE))
        return self._ledgers[0]

    def progress(self, shown: bool) -> Progress:
        """The progress display: none with -q or when ``shown`` is false (--no-progress,
        --json)."""
        from ledger.cli.progress import for_terminal

        return for_terminal(shown and not self.quiet)


def state_of(ctx: typer.Context) -> State:
    return ctx.ensure_object(State)


def _fail(message: str, code: int) -> None:
    # escaped: messages quote TOML tables like [targets.pg], which rich would read as markup
    err.print(f"[red]error:[/red] {escape(redact(message))}", highlight=False, markup=True)
    raise typer.Exit(code)


class Command(TyperCommand):
    """A chatledger command: logging and the SIGTERM handler are set up when it runs,
    never for its --help."""

    def invoke(self, ctx: typer.Context) -> Any:
        state_of(ctx).start()
        return super().invoke(ctx)


def command(parent: typer.Typer, *args: Any, cls: type[Command] = Command, **kwargs: Any):
    """Register a command whose ChatledgerErrors become a message and an exit code."""

    def decorate(function):
        @functools.wraps(function)
        def wrapper(*call_args: Any, **call_kwargs: Any):
            try:
                return function(*call_args, **call_kwargs)
            except (typer.Exit, typer.Abort):
                raise
            except ChatledgerError as exc:
                _fail(str(exc), exc.exit_code)
            except Terminated:
                _fail("terminated (SIGTERM); run the command again to continue", 143)
            except KeyboardInterrupt:
                _fail("interrupted (Ctrl-C); run the command again to continue", 130)
            except Exception as exc:  # an unexpected failure: short message, trace with -v
                import structlog

                structlog.get_logger("chatledger.cli").debug("unexpected failure", exc_info=True)
                _fail(f"{type(exc).__name__}: {exc} (run with -v for the traceback)", 1)

        return parent.command(*args, cls=cls, **kwargs)(wrapper)

    return decorate


def exit_with(status: str) -> None:
    """End the command with the exit code of the run's status (0: return normally)."""
    from ledger import runs

    code = runs.exit_code(status)
    if code:
        raise typer.Exit(code)


def say(text: str) -> None:
    """A line that may quote user text (``[targets.pg]``, a path): printed as is, never as
    markup."""
    out.print(text, markup=False, highlight=False)


def print_json(value: Any) -> None:
    out.print_json(json.dumps(value, default=str, ensure_ascii=False), highlight=False)


JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def _print_version(value: bool) -> None:
    if value:
        out.print(__version__)
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    ledger: Annotated[
        str | None,
        typer.Option(
            "--ledger",
            help="Ledger database URL, or env:VARIABLE (default: $CHATLEDGER__LEDGER__URL, "
            "then chatledger.toml [ledger] url, then $CHATLEDGER_LEDGER, then "
            "sqlite:///chatledger.db beside the config file).",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Configuration file (default: $CHATLEDGER_CONFIG, then ./chatledger.toml). "
            "Relative paths in it are relative to its folder.",
        ),
    ] = None,
    log_json: Annotated[bool, typer.Option("--log-json", help="Log JSON lines.")] = False,
    verbose: Annotated[
        int,
        typer.Option(
            "-v", "--verbose", count=True, help="Debug logs (-vv: also the libraries' own, SQL included)."
        ),
    ] = 0,
    quiet: Annotated[
        bool, typer.Option("-q", "--quiet", help="Only warnings and errors in the logs; no progress.")
    ] = False,
    show_version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_print_version, help="Print the version and exit."),
    ] = False,
) -> None:
    if quiet and verbose:
        raise typer.BadParameter("give -q or -v, not both", param_hint="-q/-v")
    ctx.obj = State(ledger_flag=ledger, config_path=config, verbose=verbose, quiet=quiet, log_json=log_json)
