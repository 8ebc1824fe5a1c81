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
from lakehouse.engine import EngineSession, build_session
from lakehouse.governance.store import GovernedStore
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


def _governed(
    project: Project, session: EngineSession, job: str, **kwargs: object
) -> GovernedStore:
    """The governed store for a CLI command, acting as the CLI principal."""
    from lakehouse.bundle.runner import new_run_id
    from lakehouse.governance.scope import resolve_principal
    from lakehouse.governance.store import governed_tables

    return governed_tables(
        session.spark,
        project,
        session.kind,
        principal=resolve_principal(project, explicit=_options["principal"]),
        run_id=str(kwargs.pop("run_id", None) or new_run_id()),
        job=job,
        on_write=kwargs.pop("on_write", None),
    )


def _load(
    project_dir: Path | None, target: str | None, engine: str | None, var: list[str] | None
) -> Project:
    return load_project(
        project_dir, target=target, engine=engine, var_overrides=parse_var_overrides(var)
    )


def _session(project: Project, app_name: str) -> EngineSession:
    with console.status(f"starting the {project.engine.kind} engine…"):
        return build_session(
            project.engine,
            warehouse_dir=project.data_root / "warehouse",
            app_name=app_name,
            log_dir=project.data_root / "logs",
        )


@contextlib.contextmanager
def _governed_command(project: Project, command: str) -> Iterator[GovernedStore]:
    """A session and the governed store for one read-only command, then cleanup."""
    session = _session(project, f"{project.name}:{command}")
    try:
        adapter = _governed(project, session, command)
        with adapter.task_scope(command):
            yield adapter
    finally:
        session.stop()


@contextlib.contextmanager
def _task_context(project: Project, job: str) -> Iterator[TaskContext]:
    """A session, the governed store (catalog registered) and a run report for one command."""
    from lakehouse.bundle.context import RunReport, TaskContext
    from lakehouse.bundle.runner import new_run_id

    session = _session(project, f"{project.name}:{job}")
    report = RunReport(
        job=job, run_id=new_run_id(), target=project.target_name, engine=session.kind
    )
    try:
        tables = _governed(
            project, session, job, run_id=report.run_id, on_write=report.writes.append
        )
        with tables.task_scope(job):
            tables.register_all()
            yield TaskContext(
                spark=session.spark, project=project, tables=tables, report=report, task_key=job
            )
    finally:
        session.stop()


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
