"""Run a bundle job's tasks in dependency order in this process, sharing one session.

Each task is a ``jobs/`` script (``spark_python_task.python_file``) exposing ``TASK``: the
same function ``spark-submit jobs/<script>.py`` runs. A failed task stops its dependants,
which are reported as skipped.
"""

from __future__ import annotations

import logging
import runpy
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import cast

from lakehouse.bundle.context import RunReport, TaskContext, TaskFunction, TaskOutcome
from lakehouse.catalog.governance import governed_tables, resolve_principal
from lakehouse.config.loader import Project, import_callable
from lakehouse.config.models import Job, Task, task_order
from lakehouse.engine import EngineSession
from lakehouse.errors import ConfigError, LakehouseError

log = logging.getLogger(__name__)

TaskEvent = Callable[[str, Task, TaskOutcome | None], None]


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


def select_job(project: Project, job: str | None) -> tuple[str, Job]:
    """The named job, or the only job when none is named."""
    jobs = project.bundle.resources.jobs
    if job is None:
        if len(jobs) == 1:
            return next(iter(jobs.items()))
        raise ConfigError(
            "bundle.yml",
            "resources.jobs",
            f"name a job to run (defined: {', '.join(jobs) or 'none'})",
        )
    if job not in jobs:
        raise ConfigError(
            "bundle.yml",
            f"resources.jobs.{job}",
            f"no such job (defined: {', '.join(jobs) or 'none'})",
        )
    return job, jobs[job]


def load_task_function(project: Project, task: Task) -> TaskFunction:
    """``TASK`` from the task's jobs/ script, or the ``python_function_task`` function."""
    if task.python_function_task is not None:
        return cast(TaskFunction, import_callable(task.python_function_task.function))
    assert task.spark_python_task is not None
    script = Path(project.resolve_path(task.spark_python_task.python_file))
    where = f"resources.jobs.*.tasks[{task.task_key}].spark_python_task.python_file"
    if not script.is_file():
        raise ConfigError("bundle.yml", where, f"{script} does not exist")
    namespace = runpy.run_path(str(script), run_name="lakehouse_task")
    fn = namespace.get("TASK")
    if not callable(fn):
        raise ConfigError("bundle.yml", where, f"{script} defines no TASK function")
    return cast(TaskFunction, fn)


def run_job(
    project: Project,
    job_name: str | None,
    session: EngineSession,
    *,
    run_id: str | None = None,
    on_event: TaskEvent | None = None,
) -> RunReport:
    """Run every task of the job in dependency order; never raises for a task failure."""
    name, job = select_job(project, job_name)
    report = RunReport(
        job=name, run_id=run_id or new_run_id(), target=project.target_name, engine=session.kind
    )
    tables = governed_tables(
        session.spark,
        project,
        session.kind,
        principal=resolve_principal(project, job=name),
        run_id=report.run_id,
        job=name,
        on_write=report.writes.append,
    )
    governance = tables.governance
    assert governance is not None
    with governance.task_scope("register"):
        tables.register_all()
    failed: set[str] = set()
    for task in task_order(job):
        blocked = [d.task_key for d in task.depends_on if d.task_key in failed]
        if blocked:
            outcome = TaskOutcome(
                task.task_key, "SKIPPED", error=f"upstream failed: {', '.join(blocked)}"
            )
            failed.add(task.task_key)
            report.tasks.append(outcome)
            if on_event:
                on_event("skipped", task, outcome)
            continue
        if on_event:
            on_event("started", task, None)
        started = time.perf_counter()
        try:
            fn = load_task_function(project, task)
            with governance.task_scope(task.task_key):
                fn(
                    TaskContext(
                        spark=session.spark,
                        project=project,
                        tables=tables,
                        report=report,
                        task_key=task.task_key,
                        parameters=task.parameters,
                    )
                )
            outcome = TaskOutcome(task.task_key, "SUCCESS", time.perf_counter() - started)
        except Exception as exc:  # a task failure is reported, not raised
            log.debug("task %s failed", task.task_key, exc_info=True)
            outcome = TaskOutcome(
                task.task_key, "FAILED", time.perf_counter() - started, error=one_line(exc)
            )
            failed.add(task.task_key)
        report.tasks.append(outcome)
        if on_event:
            on_event("finished", task, outcome)
    return report


def one_line(exc: BaseException) -> str:
    """A readable single line for an exception (Spark errors can span pages)."""
    if isinstance(exc, LakehouseError):
        return str(exc)
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    first = lines[0] if lines else ""
    return f"{type(exc).__name__}: {first}"[:500]
