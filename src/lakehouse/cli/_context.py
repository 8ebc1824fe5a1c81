"""What every command shares: the global options, the project, the session and governance.

The helpers keep the names and bodies they had in the single-module CLI.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated

import typer

from lakehouse.bundle.context import TaskContext
from lakehouse.cli.render import console
from lakehouse.config.loader import load_project, parse_var_overrides
from lakehouse.config.project import Project
from lakehouse.core.errors import one_line
from lakehouse.engine import EngineSession
from lakehouse.governance.store import GovernedStore
from lakehouse.runtime.run import RunAs, RunContext, open_run, project_session
from lakehouse.summary import render_report


class CliError(Exception):
    """Exit non-zero with this one-line message."""


_options: dict[str, str | None] = {"principal": None}


def _global_options(
    principal: Annotated[
        str | None,
        typer.Option(
            "--principal",
            "-p",
            envvar="LAKEHOUSE_PRINCIPAL",
            help="Act as this user / service principal (default: the bundle's run_as).",
        ),
    ] = None,
) -> None:
    """lakehouse: medallion lakehouse jobs on open-source Spark."""
    _options["principal"] = principal


def _open_run(project: Project, command: str, *, register: bool = False) -> RunContext:
    """The run of one CLI command: a session it starts, acting as the CLI principal."""
    return open_run(
        project,
        job=command,
        start_session=lambda: _session(project, command),
        run_as=RunAs(explicit=_options["principal"]),
        register=register,
    )


def _load(
    project_dir: Path | None, target: str | None, engine: str | None, var: list[str] | None
) -> Project:
    return load_project(
        project_dir, target=target, engine=engine, var_overrides=parse_var_overrides(var)
    )


def _session(project: Project, app: str) -> EngineSession:
    """The project's engine session named ``<project>:<app>``, with a spinner while it starts."""
    with console.status(f"starting the {project.engine.kind} engine…"):
        return project_session(project, app)


@contextlib.contextmanager
def _governed_command(project: Project, command: str) -> Iterator[GovernedStore]:
    """A session and the governed store for one read-only command, then cleanup."""
    with _open_run(project, command) as run, run.open_task(command) as scope:
        yield scope.store


@contextlib.contextmanager
def _task_context(project: Project, job: str) -> Iterator[TaskContext]:
    """A session, the governed store (catalog registered) and a run report for one command."""
    with _open_run(project, job) as run, run.open_task(job, register=True) as scope:
        yield scope.context()


def _run_each(ctx: TaskContext, names: list[str], step: Callable[[str], object]) -> None:
    """Run ``step`` per name, recording each outcome instead of stopping at the first failure."""
    from lakehouse.bundle.context import TaskOutcome

    for name in names:
        started = time.perf_counter()
        try:
            step(name)
            ctx.report.tasks.append(TaskOutcome(name, "SUCCESS", time.perf_counter() - started))
        except Exception as exc:
            ctx.report.tasks.append(
                TaskOutcome(name, "FAILED", time.perf_counter() - started, one_line(exc))
            )


def _finish(ctx: TaskContext, what: str) -> None:
    render_report(ctx.report, console)
    failed = [t for t in ctx.report.tasks if t.status == "FAILED"]
    if failed:
        raise CliError(f"{what} of {failed[0].task_key} failed: {failed[0].error}")
