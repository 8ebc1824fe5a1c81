"""The ``lakehouse`` command tree: every command the single-module CLI had, its help, bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.core import TyperGroup
from typer.main import get_command
from typer.testing import CliRunner

from lakehouse.cli import app

LAKEHOUSE = str(Path(sys.executable).parent / "lakehouse")

# in `lakehouse --help` order: commands, then groups
ROOT_COMMANDS = [
    "init",
    "run",
    "schedule",
    "runs",
    "tables",
    "head",
    "ingest",
    "refine",
    "build",
    "quality",
    "train",
    "score",
    "monitor",
    "serve",
    "ui",
    "models",
    "lineage",
    "version",
    "bundle",
    "catalog",
    "table",
    "samples",
    "sql",
    "pipeline",
]
GROUP_COMMANDS = {
    "bundle": ["run", "export", "validate", "submit"],
    "catalog": ["show", "infer", "grants", "check", "validate"],
    "table": ["reset"],
    "samples": ["serve"],
    "sql": ["query", "serve", "verifier"],
    "pipeline": ["run", "dry-run", "list"],
}


def _lakehouse(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    return subprocess.run([LAKEHOUSE, *args], env=env, capture_output=True, text=True, timeout=120)


def test_every_command_and_group_is_registered_in_order() -> None:
    root = get_command(app)
    assert isinstance(root, TyperGroup)
    assert list(root.commands) == ROOT_COMMANDS
    for group, commands in GROUP_COMMANDS.items():
        sub = root.commands[group]
        assert isinstance(sub, TyperGroup)
        assert list(sub.commands) == commands, group


@pytest.mark.parametrize(
    "path",
    [
        [],
        *([name] for name in ROOT_COMMANDS),
        *([g, c] for g, cs in GROUP_COMMANDS.items() for c in cs),
    ],
)
def test_every_command_has_help(path: list[str]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_run_is_bundle_run() -> None:
    (run,) = [c for c in app.registered_commands if c.name == "run"]
    (group,) = [g.typer_instance for g in app.registered_groups if g.name == "bundle"]
    assert group is not None
    (bundle_run,) = [c for c in group.registered_commands if c.name == "run"]
    assert run.callback is bundle_run.callback
    assert run.help == "Run a bundle job's task DAG and print a summary (same as `bundle run`)."


def test_help_lists_every_command_and_exits_zero() -> None:
    done = _lakehouse("--help")
    assert done.returncode == 0, done.stderr
    assert "--principal" in done.stdout
    for name in ROOT_COMMANDS:
        assert f" {name} " in done.stdout, name


def test_a_bad_option_exits_2_with_a_usage_error() -> None:
    done = _lakehouse("--bogus")
    assert done.returncode == 2
    assert "No such option: --bogus" in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize("args", [[], ["bundle"], ["nope"]])
def test_no_or_an_unknown_command_exits_2(args: list[str]) -> None:
    assert CliRunner().invoke(app, args).exit_code == 2


def test_a_command_error_is_one_line_and_exits_1() -> None:
    done = _lakehouse("catalog", "check", "alice", "READ", "orders")
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: unknown privilege 'READ' (one of USE CATALOG, USE SCHEMA, SELECT, MODIFY, "
        "CREATE TABLE, UNMASK, ALL PRIVILEGES)"
    )


def test_version_prints_the_package_version() -> None:
    from lakehouse import __version__

    done = _lakehouse("version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"lakehouse {__version__}"
