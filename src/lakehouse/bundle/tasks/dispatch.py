"""Run one attempt of a bundle task of any kind, in this process, on the run's session."""

from __future__ import annotations

import logging
import runpy
from pathlib import Path
from typing import cast

from lakehouse.bundle.context import TaskFunction
from lakehouse.bundle.tasks.dbutils import DBUtils
from lakehouse.bundle.tasks.references import resolve, resolve_all
from lakehouse.bundle.tasks.script import (
    connect_url,
    defines_task,
    run_plain_script,
    run_session_active,
)
from lakehouse.bundle.tasks.state import JobRunState
from lakehouse.config.jobs import Task
from lakehouse.config.loader import import_callable
from lakehouse.config.project import Project
from lakehouse.core.errors import ConfigError, LakehouseError, TaskError
from lakehouse.runtime.run import RunContext

log = logging.getLogger(__name__)


def _script(project: Project, task: Task) -> Path:
    assert task.spark_python_task is not None
    script = Path(project.resolve_path(task.spark_python_task.python_file))
    if not script.is_file():
        where = f"resources.jobs.*.tasks[{task.task_key}].spark_python_task.python_file"
        raise ConfigError("bundle.yml", where, f"{script} does not exist")
    return script


def load_task_function(project: Project, task: Task) -> TaskFunction:
    """``TASK`` from the task's jobs/ script, or the ``python_function_task`` function."""
    if task.python_function_task is not None:
        return cast(TaskFunction, import_callable(task.python_function_task.function))
    script = _script(project, task)
    namespace = runpy.run_path(str(script), run_name="lakehouse_task")
    fn = namespace.get("TASK")
    if not callable(fn):
        where = f"resources.jobs.*.tasks[{task.task_key}].spark_python_task.python_file"
        raise ConfigError("bundle.yml", where, f"{script} defines no TASK function")
    return cast(TaskFunction, fn)


def execute_task(run: RunContext, task: Task, attempt: int, state: JobRunState) -> None:
    """One attempt of ``task`` (raises on failure); condition outcomes go to ``state``."""
    key = task.task_key
    if task.condition_task is not None:
        _condition(task, state)
        return
    if task.run_job_task is not None:
        _run_job(run, task, state)
        return
    with run_session_active(run.spark, connect_url(run)):
        if task.notebook_task is not None:
            _notebook(run, task, state)
        elif task.python_wheel_task is not None:
            _wheel(run, task, state)
        elif task.pipeline_task is not None:
            _pipeline(run, task, state)
        elif task.spark_python_task is not None and not defines_task(_script(run.project, task)):
            parameters = resolve_all(list(task.spark_python_task.parameters), state, key)
            run_plain_script(_script(run.project, task), parameters)
        else:
            fn = load_task_function(run.project, task)
            parameters = resolve_all(task.parameters, state, key)
            dbutils = DBUtils(key, state.values, dict(state.parameters))
            with run.open_task(key, task=task) as scope:
                fn(scope.context(parameters, extra={"attempt": attempt, "dbutils": dbutils}))


def _condition(task: Task, state: JobRunState) -> None:
    from lakehouse.bundle.tasks.conditions import evaluate

    spec = task.condition_task
    assert spec is not None
    left = resolve(spec.left, state, task.task_key)
    right = resolve(spec.right, state, task.task_key)
    outcome = evaluate(spec.op, left, right, task.task_key)
    state.outcomes[task.task_key] = "true" if outcome else "false"
    log.info("condition %s: %r %s %r -> %s", task.task_key, left, spec.op, right, outcome)


def _notebook(run: RunContext, task: Task, state: JobRunState) -> None:
    from lakehouse.bundle.tasks.notebook import run_notebook

    spec = task.notebook_task
    assert spec is not None
    widgets = resolve_all(dict(spec.base_parameters), state, task.task_key)
    widgets.update(state.parameters)  # a job parameter wins over a task parameter
    with run.open_task(task.task_key, task=task):
        result = run_notebook(
            run,
            state.folder,
            task.task_key,
            resolve(spec.notebook_path, state, task.task_key),
            widgets,
            timeout_s=task.timeout_seconds,
        )
    notes = run.report.notes
    notes.append(f"{task.task_key}: executed notebook {result.executed}")
    if result.exit_value is not None:
        notes.append(f"{task.task_key}: notebook exited with {result.exit_value!r}")
    notes.extend(f"{task.task_key}: {note}" for note in result.notes)


def _wheel(run: RunContext, task: Task, state: JobRunState) -> None:
    from lakehouse.bundle.tasks.wheel import call_entry_point, entry_point_function, wheel_arguments

    spec = task.python_wheel_task
    assert spec is not None
    fn = entry_point_function(run.project.root, spec.package_name, spec.entry_point)
    args = wheel_arguments(
        spec.package_name,
        resolve_all(list(spec.parameters), state, task.task_key),
        resolve_all(dict(spec.named_parameters), state, task.task_key),
    )
    with run.open_task(task.task_key, task=task):
        call_entry_point(fn, args, f"{spec.package_name} {spec.entry_point}")


def _pipeline(run: RunContext, task: Task, state: JobRunState) -> None:
    spec = task.pipeline_task
    assert spec is not None
    key = resolve(spec.pipeline_id, state, task.task_key)
    pipelines = run.project.bundle.resources.pipelines
    if key not in pipelines:
        raise ConfigError(
            "bundle",
            f"resources.jobs.{state.job_name}.tasks[{task.task_key}].pipeline_task.pipeline_id",
            f"no pipeline {key!r} in resources.pipelines (defined: {', '.join(pipelines) or 'none'})",
        )
    # imported when a pipeline task runs: the pipelines layer sits above the bundle runner
    from lakehouse.pipelines.declarative.runner import run_pipeline

    update = run_pipeline(run, key, full_refresh=spec.full_refresh)
    if not update.succeeded:
        raise TaskError(f"pipeline {key} failed: {update.error or 'see the pipeline report'}")


def _run_job(run: RunContext, task: Task, state: JobRunState) -> None:
    spec = task.run_job_task
    assert spec is not None
    if state.run_child is None:
        raise LakehouseError(f"task {task.task_key}: run_job_task needs a job run")
    job = resolve(spec.job_id, state, task.task_key)
    chain = (*state.calls, state.job_name)
    if job in chain:
        raise LakehouseError(
            f"task {task.task_key}: run_job_task cycle: {' -> '.join((*chain, job))}"
        )
    parameters = resolve_all(dict(spec.job_parameters), state, task.task_key)
    report = state.run_child(task.task_key, job, parameters)
    failed = [t for t in report.tasks if t.status not in ("SUCCESS", "EXCLUDED")]
    run.report.notes.append(
        f"{task.task_key}: ran job {job} as run {report.run_id} "
        f"({len(report.tasks) - len(failed)}/{len(report.tasks)} tasks succeeded)"
    )
    if failed:
        first = failed[0]
        raise TaskError(
            f"job {job} failed: task {first.task_key} {first.status}"
            + (f": {first.error}" if first.error else "")
        )


def with_resolved_parameters(task: Task, state: JobRunState) -> Task:
    """``task`` with the ``{{...}}`` references of its script parameters resolved (for a
    task runner outside this process, such as spark-submit)."""
    spec = task.spark_python_task
    if spec is None:
        return task
    parameters = resolve_all(list(spec.parameters), state, task.task_key)
    return task.model_copy(
        update={"spark_python_task": spec.model_copy(update={"parameters": parameters})}
    )
