"""The operator's CLI (issue 15): --help and --version import no engine, database layer
or plug-in (so they answer at once); a plug-in's options show in the --help of the
command taking it; text that is not ours (stream names, titles, file names) prints as
written, never as rich markup; -q and -v; completion of type names."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from ledger.cli import app
from tests.conftest import run_cli

#: what --help and --version must not import: the database layers, drivers, the engines,
#: the plug-ins, logging set-up and rich's heavier parts
HEAVY = (
    "sqlalchemy", "alembic", "psycopg", "pymysql", "pymongo", "bson", "httpx", "structlog",
    "orjson", "lz4", "ijson", "rich.progress", "rich.table", "sources", "sinks",
    "ledger.store", "ledger.api", "ledger.config", "ledger.extract", "ledger.replay",
    "ledger.kit", "ledger.cli.report",
)  # fmt: skip
HELP_CALLS = (
    ["--version"],
    ["--help"],
    ["extract", "--help"],
    ["replay", "--help"],
    ["migrate", "--help"],
    ["verify", "--help"],
    ["status", "--help"],
)
PROBE = """
import json, sys
from ledger.cli import app
for args in json.loads(sys.argv[1]):
    try:
        app(args, prog_name="chatledger")
    except SystemExit as exit:
        assert exit.code == 0, (args, exit.code)
print("MODULES " + json.dumps(sorted(sys.modules)))
"""


def imported_by(*calls: list[str]) -> set[str]:
    """Every module a fresh interpreter holds after running these command lines."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(calls)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.rsplit("MODULES ", 1)[1]))


def heavy(modules: set[str]) -> set[str]:
    return {name for name in modules if any(name == top or name.startswith(top + ".") for top in HEAVY)}


def test_help_and_version_import_nothing_heavy():
    assert heavy(imported_by(*HELP_CALLS)) == set()
    # the probe sees imports: asking for one type's options imports that plug-in only
    named = imported_by(["extract", "synthetic", "--help"])
    assert "sources.synthetic" in named
    assert not {name for name in named if name.startswith(("sinks", "sources.librechat"))}


runner = CliRunner()


def help_of(*args: str) -> str:
    done = runner.invoke(app, [*args, "--help"], prog_name="chatledger", terminal_width=100)
    assert done.exit_code == 0, done.output
    return " ".join(done.output.split())  # wrapped as it may be


def test_the_generic_help_names_the_types_and_points_to_their_options():
    text = help_of("extract")
    assert "Source types: bundle, chatbotui, chatgpt," in text
    assert "`chatledger extract TYPE --help` lists the options of one" in text
    assert "Options of the" not in text
    assert "Sink types: bundle, cherry-v2," in help_of("replay")
    assert "`chatledger extract STREAM --help`" in help_of("migrate")


def test_a_type_named_before_help_lists_its_options():
    text = help_of("extract", "synthetic")
    assert "Options of the synthetic source" in text
    assert "--users INTEGER" in text
    text = help_of("extract", "librechat", "--name", "x")
    assert "--include-temporary/--no-include-temporary" in text  # a boolean option, both forms
    assert "[secret: give it as env:VARIABLE]" in text  # mongo_uri
    text = help_of("replay", "--name", "out", "sql")  # the type after an option of the command
    assert "Options of the sql sink" in text and "--url TEXT" in text and "[required]" in text
    assert "Options of the onyx sink" in help_of("verify", "onyx")


def test_a_configured_name_lists_its_types_options(tmp_path):
    config = tmp_path / "chatledger.toml"
    config.write_text(
        '[sources.prod]\ntype = "chatgpt"\npath = ["x"]\n[targets.pg]\ntype = "sql"\nurl = "sqlite:///t.db"\n'
    )
    text = help_of("--config", str(config), "extract", "prod")
    assert f"Options of the chatgpt source ([sources.prod] of {config}; a flag overrides" in text
    assert "--path PATH (repeatable)" in text
    assert "Options of the sql sink ([targets.pg]" in help_of("--config", str(config), "repair", "pg")
    text = help_of("--config", str(config), "extract", "prdo")
    assert "prdo is neither a source type nor a [sources.prdo] of" in text


def test_bracketed_names_titles_and_paths_print_as_written(tmp_path):
    """Rich would read "[red]", "[bold]…[/bold]" or "[targets.pg]" as markup and drop it."""
    folder = tmp_path / "[bold]exports"
    folder.mkdir()
    with open("tests/data/exports/chatgpt/librechat-modern-export.json", encoding="utf-8") as file:
        conversations = json.load(file)
    conversations[0]["title"] = "[bold]Plans[/bold] for [targets.pg]"
    (folder / "conversations.json").write_text(json.dumps(conversations), encoding="utf-8")
    (folder / "conversations-2.json").write_text("{not json", encoding="utf-8")
    extracted = run_cli(
        "extract", "chatgpt", "--name", "[red]chats", "--path", str(folder), "--owner", "me@example.com",
        "--no-progress", cwd=tmp_path,
    )  # fmt: skip
    assert "stream [red]chats" in extracted.stdout, extracted.stderr
    assert f"{folder / 'conversations-2.json'}" in extracted.stdout  # the reject names the file
    listed = run_cli("runs", cwd=tmp_path)
    assert "[red]chats" in listed.stdout
    status = run_cli("status", cwd=tmp_path)
    assert "stream [red]chats" in status.stdout
    keys = run_cli("keys", "--kind", "conversation", cwd=tmp_path)
    assert "'[bold]Plans[/bold] for [targets.pg]'" in " ".join(keys.stdout.split())  # wrapped


def test_quiet_and_verbose(tmp_path):
    plain = run_cli("extract", "synthetic", "--name", "syn", "--users", "2", cwd=tmp_path)
    assert plain.returncode == 0 and "progress done" in plain.stderr  # piped: progress as log lines
    assert "run started" not in plain.stderr
    quiet = run_cli("-q", "extract", "synthetic", "--name", "other", "--users", "2", cwd=tmp_path)
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert "run 2  extract  stream other  succeeded" in quiet.stdout  # the result still prints
    target = f"sqlite:///{tmp_path / 't.db'}"
    chatty = run_cli(
        "-vv",
        "replay",
        "sql",
        "--name",
        "out",
        "--url",
        target,
        "--stream",
        "syn",
        "--no-progress",
        cwd=tmp_path,
    )
    assert chatty.returncode == 0, chatty.stderr
    assert "run started" in chatty.stderr  # -v: debug
    assert "[sqlalchemy.engine.Engine]" in chatty.stderr  # -vv: the libraries' logs too
    both = run_cli("-q", "-v", "status", cwd=tmp_path)
    assert both.returncode == 2 and "give -q or -v, not both" in both.stderr


@pytest.mark.parametrize(
    ("words", "expected"),
    [("chatledger extract lib", ["librechat"]), ("chatledger replay mongo", ["mongo-toolkit"])],
)
def test_type_names_complete(words, expected):
    env = {**os.environ, "_CHATLEDGER_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": "2"}
    done = subprocess.run(
        [sys.executable, "-m", "ledger"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.stdout.split() == expected, done.stderr


NAMED = """
[sources.prod-chats]
type = "synthetic"
[sources.pilot]
type = "synthetic"
usres = 3  # an error elsewhere in the file: its names still complete

[targets.pg-prod]
type = "sql"
url = "sqlite:///target.db"
[targets.onyx-prod]
type = "onyx"
"""


def complete(words: str, *, cwd, env: dict[str, str] | None = None) -> list[str]:
    """What bash completion offers for the last word of ``words`` (typer's protocol, in a
    fresh interpreter as the shell runs it)."""
    variables = {"_CHATLEDGER_COMPLETE": "complete_bash", "COMP_WORDS": words}
    variables["COMP_CWORD"] = str(len(words.split()) - (0 if words.endswith(" ") else 1))
    done = subprocess.run(
        [sys.executable, "-m", "ledger"],
        cwd=cwd, env={**os.environ, **variables, **(env or {})}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def offered(line: str) -> list[str]:
    """The same through typer's completion in this process (faster)."""
    words = f"chatledger {line}"
    cword = len(words.split()) - (0 if words.endswith(" ") else 1)
    variables = {"_CHATLEDGER_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(cword)}
    done = CliRunner().invoke(app, [], env=variables, prog_name="chatledger")
    assert done.exit_code == 0, done.output
    return done.output.split()


def test_stream_and_target_names_complete_from_the_config(tmp_path, monkeypatch):
    (tmp_path / "chatledger.toml").write_text(NAMED)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    config = str(tmp_path / "chatledger.toml")
    # through the shell's protocol: ./chatledger.toml, --config, $CHATLEDGER_CONFIG, none
    assert complete("chatledger migrate pilot ", cwd=tmp_path) == ["onyx-prod", "pg-prod"]
    assert complete(f"chatledger --config {config} extract p", cwd=elsewhere) == ["pilot", "prod-chats"]
    assert complete("chatledger verify o", cwd=elsewhere, env={"CHATLEDGER_CONFIG": config}) == [
        "onyx-prod",
        "onyx",
    ]  # the name, then the type
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("CHATLEDGER_CONFIG", raising=False)
    assert offered("migrate ") == []  # no chatledger.toml here
    monkeypatch.chdir(tmp_path)
    assert offered("extract lib") == ["librechat"]  # types still
    assert offered("migrate ") == ["pilot", "prod-chats"]
    assert offered("repair pg") == ["pg-prod"]
    assert offered("replay pg-prod --stream pr") == ["prod-chats"]
    assert offered("verify pg-prod --stream ") == ["pilot", "prod-chats"]


def test_the_completion_functions_read_the_named_config(tmp_path, monkeypatch):
    import typer.main

    from ledger.cli.plugin_help import complete_stream, complete_target_or_sink_type

    (tmp_path / "named.toml").write_text(NAMED)
    monkeypatch.chdir(tmp_path)
    root = typer.main.get_command(app).make_context(
        "chatledger", ["--config", "named.toml", "replay"], resilient_parsing=True
    )
    assert complete_stream(root, "") == ["pilot", "prod-chats"]
    assert complete_target_or_sink_type(root, "pg") == ["pg-prod"]
    assert complete_target_or_sink_type(root, "s") == ["sql"]
    (tmp_path / "named.toml").write_text("[targets\n")  # not TOML: no names, no error
    assert complete_target_or_sink_type(root, "pg") == []


def test_a_command_on_a_current_ledger_imports_no_alembic(tmp_path):
    """Alembic is for creating and upgrading a ledger; one already current is checked
    with a query (a third of every command's start-up)."""
    current, new = f"sqlite:///{tmp_path / 'current.db'}", f"sqlite:///{tmp_path / 'new.db'}"
    assert run_cli("--ledger", current, "init", cwd=tmp_path).returncode == 0
    assert not {name for name in imported_by(["--ledger", current, "status"]) if name.startswith("alembic")}
    assert "alembic.command" in imported_by(["--ledger", new, "init"])
