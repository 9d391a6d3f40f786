"""Runbooks that behave the same from any folder (issue 15), through the real CLI:
paths in chatledger.toml relative to the file, option validation with suggestions,
CHATLEDGER__ environment overrides, CHATLEDGER_CONFIG, --ledger env:X, config show with
origins, and error messages that keep their [brackets] (rich markup escaped)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import run_cli

RUNBOOK = """\
[ledger]
url = "sqlite:///chatledger.db"

[sources.demo]
type = "synthetic"
users = 2
conversations_per_user = 1
turns = 1

[targets.export]
type = "bundle"
path = "export"
streams = ["demo"]
"""


# in this process: the reader's child process would double every run's start-up time
EXTRACT = ("extract", "--no-parallel", "--no-progress")


@pytest.fixture
def project(tmp_path) -> Path:
    """A runbook folder and, beside it, an unrelated working directory ``elsewhere``."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "chatledger.toml").write_text(RUNBOOK)
    (tmp_path / "elsewhere").mkdir()
    return folder


def ledger_runs(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT command, status FROM runs ORDER BY id").fetchall()


def heads_count(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT count(*) FROM heads").fetchone()[0]


def write(folder: Path, text: str) -> None:
    (folder / "chatledger.toml").write_text(text)


# -- paths relative to the file ---------------------------------------------------------


def test_the_ledger_and_outputs_land_beside_the_file_from_any_folder(project):
    elsewhere = project.parent / "elsewhere"
    first = run_cli(*EXTRACT, "demo", cwd=project)
    assert first.returncode == 0, first.stderr
    by_flag = run_cli("--config", "../project/chatledger.toml", *EXTRACT, "demo", "--json", cwd=elsewhere)
    assert by_flag.returncode == 0, by_flag.stderr
    assert json.loads(by_flag.stdout)["stats"]["events"] == 0  # the same ledger again
    env = {"CHATLEDGER_CONFIG": str(Path("..") / "project" / "chatledger.toml")}
    replayed = run_cli("replay", "export", "--no-progress", cwd=elsewhere, env=env)
    assert replayed.returncode == 0, replayed.stderr
    assert ledger_runs(project / "chatledger.db") == [
        ("extract", "succeeded"),
        ("extract", "succeeded"),
        ("replay", "succeeded"),
    ]
    assert heads_count(project / "chatledger.db") == 8
    assert len(list((project / "export").glob("user_*/summary.json"))) == 2
    assert list(elsewhere.iterdir()) == []  # no second ledger, no stray export


def test_a_file_without_a_ledger_url_keeps_the_default_ledger_beside_it(project):
    write(project, RUNBOOK.replace('[ledger]\nurl = "sqlite:///chatledger.db"\n', ""))
    elsewhere = project.parent / "elsewhere"
    done = run_cli("--config", str(project / "chatledger.toml"), *EXTRACT, "demo", cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    assert (project / "chatledger.db").is_file() and list(elsewhere.iterdir()) == []


def test_a_path_given_as_a_flag_stays_relative_to_the_working_directory(project):
    elsewhere = project.parent / "elsewhere"
    env = {"CHATLEDGER_CONFIG": str(project / "chatledger.toml")}
    assert run_cli(*EXTRACT, "demo", cwd=elsewhere, env=env).returncode == 0
    done = run_cli("replay", "export", "--path", "here", "--no-progress", cwd=elsewhere, env=env)
    assert done.returncode == 0, done.stderr
    assert len(list((elsewhere / "here").glob("user_*/summary.json"))) == 2
    assert not (project / "export").exists()


def test_the_blob_folder_written_in_the_file_is_beside_it(project):
    write(
        project, RUNBOOK.replace("[sources.demo]", 'blobs = "bytes"\n\n[sources.demo]\nattachment_rate = 1.0')
    )
    elsewhere = project.parent / "elsewhere"
    done = run_cli("--config", "../project/chatledger.toml", *EXTRACT, "demo", "--json", cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["stats"]["blobs"]["new"] > 0
    assert any(path.is_file() for path in (project / "bytes").rglob("*")) and list(elsewhere.iterdir()) == []


# -- validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "command", "message"),
    [
        pytest.param(
            ("users = 2", "usres = 2"),
            (*EXTRACT, "demo"),
            "error: chatledger.toml: [sources.demo] usres: unknown option; did you mean users?",
            id="unknown-key-suggests-users",
        ),
        pytest.param(
            ("users = 2", 'users = "many"'),
            (*EXTRACT, "demo"),
            "error: chatledger.toml: [sources.demo] users: must be int, got 'many'",
            id="wrong-type",
        ),
        pytest.param(
            ('type = "synthetic"', 'type = "synthetc"'),
            (*EXTRACT, "demo"),
            "error: chatledger.toml: [sources.demo] type: unknown source type 'synthetc'; "
            "did you mean synthetic?",
            id="unknown-type-suggests",
        ),
        pytest.param(
            ('streams = ["demo"]', 'streams = "demo"'),
            ("replay", "export"),
            "error: chatledger.toml: [targets.export] streams: must be a list of stream names",
            id="streams-not-a-list",
        ),
        pytest.param(
            ("[ledger]", "[ledgr]"),
            (*EXTRACT, "demo"),
            "error: chatledger.toml: [ledgr]: unknown section; did you mean ledger?",
            id="unknown-section-suggests",
        ),
        pytest.param(
            ('url = "sqlite:///chatledger.db"', 'uri = "sqlite:///chatledger.db"'),
            (*EXTRACT, "demo"),
            "error: chatledger.toml: [ledger] uri: unknown key; did you mean url?",
            id="unknown-ledger-key-suggests",
        ),
    ],
)
def test_config_mistakes_name_the_file_table_and_key_with_brackets_intact(project, change, command, message):
    write(project, RUNBOOK.replace(*change))
    done = run_cli(*command, "--no-progress", cwd=project)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_an_int_option_of_a_target_named_with_brackets(project):
    write(project, RUNBOOK + '\n[targets.pg]\ntype = "sql"\nurl = 5\n')
    done = run_cli("replay", "pg", "--stream", "demo", cwd=project)
    assert done.returncode == 2
    assert "error: chatledger.toml: [targets.pg] url: must be str, got a int value" in done.stderr


def test_markup_in_an_unexpected_name_is_printed_literally(project):
    done = run_cli(*EXTRACT, "[bold]demo[/bold]", cwd=project)
    assert done.returncode == 2
    assert "'[bold]demo[/bold]' is neither a configured source" in done.stderr, done.stderr


# -- precedence: flag, environment, file, default -----------------------------------------


def test_environment_overrides_a_key_of_the_file(project):
    env = {"CHATLEDGER__SOURCES__DEMO__USERS": "1"}
    done = run_cli(*EXTRACT, "demo", "--json", cwd=project, env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["stats"]["kinds"]["user"]["read"] == 1
    flagged = run_cli(*EXTRACT, "demo", "--users", "3", "--full", "--json", cwd=project, env=env)
    assert json.loads(flagged.stdout)["stats"]["kinds"]["user"]["read"] == 3  # the flag wins


def test_environment_overrides_reach_an_ad_hoc_instance_by_its_name(project):
    env = {"CHATLEDGER__SOURCES__TRIAL__USERS": "1"}
    done = run_cli(*EXTRACT, "synthetic", "--name", "trial", "--json", cwd=project, env=env)
    assert json.loads(done.stdout)["stats"]["kinds"]["user"]["read"] == 1, done.stderr


def test_a_misspelt_environment_key_is_an_error_naming_the_variable(project):
    done = run_cli(*EXTRACT, "demo", cwd=project, env={"CHATLEDGER__SOURCES__DEMO__USRES": "1"})
    assert done.returncode == 2
    assert "CHATLEDGER__SOURCES__DEMO__USRES ([sources.demo] usres): unknown option; did you mean users?" in (
        done.stderr
    ), done.stderr


def test_names_with_dashes_take_underscores_in_the_environment(project):
    write(project, RUNBOOK.replace("[sources.demo]", "[sources.prod-chats]"))
    env = {"CHATLEDGER__SOURCES__PROD_CHATS__USERS": "1"}
    done = run_cli(*EXTRACT, "prod-chats", "--json", cwd=project, env=env)
    assert json.loads(done.stdout)["stats"]["kinds"]["user"]["read"] == 1, done.stderr


def test_the_ledger_url_from_the_environment_and_from_env_flag(project):
    other = project.parent / "other.db"
    env = {"CHATLEDGER__LEDGER__URL": f"sqlite:///{other}"}
    assert run_cli(*EXTRACT, "demo", cwd=project, env=env).returncode == 0
    assert other.is_file() and not (project / "chatledger.db").exists()
    third = project.parent / "third.db"
    flagged = run_cli(
        "--ledger", "env:MY_LEDGER", *EXTRACT, "demo", cwd=project,
        env={"MY_LEDGER": f"sqlite:///{third}"},
    )  # fmt: skip
    assert flagged.returncode == 0, flagged.stderr
    assert heads_count(third) == 8
    missing = run_cli("--ledger", "env:NOT_SET_ANYWHERE", "status", cwd=project)
    assert missing.returncode == 2
    assert "--ledger: environment variable NOT_SET_ANYWHERE is not set" in missing.stderr


def test_chatledger_config_naming_a_missing_file(project):
    done = run_cli("status", cwd=project, env={"CHATLEDGER_CONFIG": "nowhere.toml"})
    assert done.returncode == 2
    assert "config file nowhere.toml (named by CHATLEDGER_CONFIG) does not exist" in done.stderr


# -- config show -----------------------------------------------------------------------------


def test_config_show_gives_every_value_its_origin_and_default(project):
    write(project, RUNBOOK + '\n[targets.pg]\ntype = "sql"\nurl = "env:PG_URL"\n')
    env = {
        "PG_URL": "postgresql://app:hunter22@db/app",
        "CHATLEDGER__SOURCES__DEMO__TURNS": "3",
        "CHATLEDGER__TARGETS__PG__PREFIX": "cl_",
        "CHATLEDGER__TARGETS__PGG__URL": "sqlite:///typo.db",
    }
    done = run_cli("--ledger", "sqlite:///flag.db", "config", "show", cwd=project, env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    expected = [
        "config file: chatledger.toml (default)",
        "  url = sqlite:///flag.db  (flag --ledger; default sqlite:///chatledger.db)",
        "source demo (type synthetic)",
        "  users = 2  (file; default 10)",
        "  turns = 3  (env CHATLEDGER__SOURCES__DEMO__TURNS; default 4)",
        "  attachment_rate = 0.05  (default)",
        f"  path = {project / 'export'}  (file; required)",
        "  streams = ['demo']  (file; default the ledger's only stream)",
        "  url = env:PG_URL (set)  (file; required)",
        '  prefix = cl_  (env CHATLEDGER__TARGETS__PG__PREFIX; default "")',
        "unused: CHATLEDGER__TARGETS__PGG__URL (no such ledger setting or configured source or target)",
    ]
    for line in expected:
        assert line in lines, f"{line!r} not in:\n{done.stdout}"
    assert "hunter22" not in done.stdout


def test_config_show_masks_a_secret_set_in_the_environment(project):
    write(project, RUNBOOK + '\n[targets.pg]\ntype = "sql"\nurl = "sqlite:///pg.db"\n')
    env = {"CHATLEDGER__TARGETS__PG__URL": "postgresql://app:hunter22@db/app"}
    done = run_cli("config", "show", "--json", cwd=project, env=env)
    assert done.returncode == 0, done.stderr
    url = json.loads(done.stdout)["targets"]["pg"]["options"]["url"]
    assert url == {
        "value": "postgresql://app:***@db/app",
        "origin": "env",
        "where": "CHATLEDGER__TARGETS__PG__URL",
        "default": "required",
    }
    assert "hunter22" not in done.stdout


def test_config_show_reports_a_broken_entry_without_failing(project):
    write(project, RUNBOOK.replace("users = 2", "usres = 2"))
    done = run_cli("config", "show", cwd=project)
    assert done.returncode == 0, done.stderr
    assert (
        "  error: chatledger.toml: [sources.demo] usres: unknown option; did you mean users?" in done.stdout
    )
