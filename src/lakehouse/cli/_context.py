"""What every command shares: the global options, the project, the session and governance.

The helpers keep the names and bodies they had in the single-module CLI.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from lakehouse.bundle.context import TaskContext
from lakehouse.cli.options import EngineOpt, PrincipalOpt, ProjectDir, TargetOpt, VarOpt
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


_options: dict[str, Any] = {
    "principal": None,
    "project_dir": None,
    "target": None,
    "engine": None,
    "var": [],
}


def _global_options(
    principal: PrincipalOpt = None,
    project_dir: ProjectDir = None,
    target: TargetOpt = None,
    engine: EngineOpt = None,
    var: VarOpt = None,
) -> None:
    """lakehouse: medallion lakehouse jobs on open-source Spark."""
    _options.update(
        principal=principal,
        project_dir=project_dir,
        target=target,
        engine=engine,
        var=list(var or []),
    )


class GlobalOptionsGroup(TyperGroup):
    """The root command: its options (``--principal``, ``-C``, ``-t``, ``-e``, ``--var``) are
    also accepted after any command that loads a project (one taking ``--project-dir``).

    A command that declares such an option itself gets the value in its parameter (and
    :func:`_load` falls back to the one given before the command); for the options it does
    not declare, a copy of the root's is added that stores the value as if given first.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for command in _descendants(self):
            if any(p.name == "project_dir" for p in command.params):
                _add_global_options(command, self.params)


def _descendants(group: Any) -> Iterator[Any]:
    """The commands below a group, in its subgroups too (typer's click: duck-typed)."""
    for command in group.commands.values():
        if hasattr(command, "commands"):
            yield from _descendants(command)
        else:
            yield command


def _add_global_options(command: Any, root_params: list[Any]) -> None:
    """Copies of the root's options that ``command`` lacks, storing into :data:`_options`."""
    declared = {p.name for p in command.params}
    taken = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
    for param in root_params:
        if param.name in declared or param.name not in _options or taken & set(param.opts):
            continue
        extra = copy.copy(param)
        extra.expose_value = False
        extra.envvar = None  # the root reads the environment; the copy only the command line
        extra.callback = _store_global
        command.params.append(extra)


def _store_global(ctx: typer.Context, param: Any, value: Any) -> None:
    """An option given after the command: it overrides (``--var``: adds to) the one before."""
    if value is None or value == () or value == []:
        return
    key = str(param.name)
    if key == "var":
        _options["var"] = [*_options["var"], *value]
    else:
        _options[key] = Path(value) if key == "project_dir" else value


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
    """The project from the command's options, each falling back to the same option given
    before the command (``lakehouse -C DIR tables``); ``--var`` from both places, the
    command's last (they win)."""
    return load_project(
        project_dir or _options["project_dir"],
        target=target or _options["target"],
        engine=engine or _options["engine"],
        var_overrides=parse_var_overrides([*_options["var"], *(var or [])]),
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
