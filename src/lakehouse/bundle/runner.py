"""Run a bundle job's task DAG in this process, sharing one session.

Each task is a ``jobs/`` script (``spark_python_task.python_file``) exposing ``TASK`` (the
same function ``spark-submit jobs/<script>.py`` runs) or a ``python_function_task``. Tasks
run in dependency order, independent ones side by side, with retries and timeouts; a
failed task stops its dependants, which are reported as skipped; every attempt is recorded.
"""

from __future__ import annotations

import datetime as dt
import logging
import runpy
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from lakehouse.bundle.context import RunReport, TaskContext, TaskFunction, TaskOutcome
from lakehouse.config.loader import import_callable
from lakehouse.config.models import Job, Task, task_order
from lakehouse.config.project import Project
from lakehouse.config.system_tables import JobRunRow, SystemTable, rows_frame, system_table_name
from lakehouse.core.errors import ConfigError, LakehouseError, one_line
from lakehouse.engine import EngineSession
from lakehouse.governance.scope import resolve_principal
from lakehouse.governance.store import governed_tables
from lakehouse.io.store import TableStore

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


TaskRunner = Callable[[Task, int], None]
"""Runs one attempt of a task (raises on failure); given the task and the attempt number."""


def select_tasks(
    job: Job, only: list[str] | None = None, from_task: str | None = None
) -> list[Task]:
    """The tasks a run executes, in dependency order.

    ``only``: just these tasks (their upstream tasks are assumed done, as in a Databricks
    repair run). ``from_task``: that task and everything downstream of it.
    """
    ordered = task_order(job)
    keys = {t.task_key for t in ordered}
    for key in [*(only or []), *([from_task] if from_task else [])]:
        if key not in keys:
            raise LakehouseError(f"no task {key!r} in this job (tasks: {', '.join(sorted(keys))})")
    if only:
        return [t for t in ordered if t.task_key in only]
    if from_task:
        chosen = {from_task}
        for task in ordered:  # dependency order: a task's upstream tasks were decided before it
            if any(d.task_key in chosen for d in task.depends_on):
                chosen.add(task.task_key)
        return [t for t in ordered if t.task_key in chosen]
    return ordered


@dataclass
class _Attempt:
    task: Task
    number: int
    started: float
    started_at: dt.datetime
    future: Future[None]
    deadline: float | None


def run_job(
    project: Project,
    job_name: str | None,
    session: EngineSession,
    *,
    run_id: str | None = None,
    on_event: TaskEvent | None = None,
    only: list[str] | None = None,
    from_task: str | None = None,
    task_runner: TaskRunner | None = None,
    retries: bool = True,
    engine: str | None = None,
) -> RunReport:
    """Run the job's tasks as a DAG; never raises for a task failure.

    Independent tasks run side by side up to the job's ``max_parallel_tasks``. A failed
    attempt is retried up to ``max_retries`` times after ``min_retry_interval_millis``
    (doubling per retry); an attempt over ``timeout_seconds`` is TIMED_OUT (retried only with
    ``retry_on_timeout``; ``retries=False`` when a scheduler such as Airflow retries
    instead). A task whose upstream failed is SKIPPED. Every attempt is
    recorded in ``<catalog>.meta.job_runs``; the job's webhooks are called at start and end.

    In-process tasks cannot be killed: a timed-out attempt is abandoned (its thread may
    keep running until it returns); tasks launched with spark-submit are killed.
    """
    name, job = select_job(project, job_name)
    report = RunReport(
        job=name,
        run_id=run_id or new_run_id(),
        target=project.target_name,
        engine=engine or session.kind,  # spark when tasks are spark-submitted
    )
    principal = resolve_principal(project, job=name)
    tables = governed_tables(
        session.spark,
        project,
        session.kind,
        principal=principal,
        run_id=report.run_id,
        job=name,
        on_write=report.writes.append,
    )
    with tables.task_scope("register"):
        tables.register_all()
    records = RunRecords(tables, report, principal)
    notify(job, "on_start", report)

    def in_process(task: Task, attempt: int) -> None:
        fn = load_task_function(project, task)
        # each task its own adapter: access checks, audit and lineage attributed per task
        task_tables = governed_tables(
            session.spark,
            project,
            session.kind,
            principal=resolve_principal(project, job=name, task=task),
            run_id=report.run_id,
            job=name,
            on_write=report.writes.append,
        )
        with task_tables.task_scope(task.task_key):
            fn(
                TaskContext(
                    spark=session.spark,
                    project=project,
                    tables=task_tables,
                    report=report,
                    task_key=task.task_key,
                    parameters=task.parameters,
                    extra={"attempt": attempt},
                )
            )

    execute = task_runner or in_process
    selected = select_tasks(job, only, from_task)
    selected_keys = {t.task_key for t in selected}
    pending = list(selected)
    done: dict[str, str] = {}  # task_key -> final status
    ready_at: dict[str, float] = {}
    attempts: dict[str, int] = {}
    running: dict[str, _Attempt] = {}
    pool = ThreadPoolExecutor(max_workers=job.max_parallel_tasks, thread_name_prefix="task")

    def finish(task: Task, outcome: TaskOutcome) -> None:
        done[task.task_key] = outcome.status
        report.tasks.append(outcome)
        if on_event:
            on_event("skipped" if outcome.status == "SKIPPED" else "finished", task, outcome)

    try:
        while pending or running:
            now = time.monotonic()
            for task in list(pending):
                upstream = [d.task_key for d in task.depends_on if d.task_key in selected_keys]
                failed = [k for k in upstream if k in done and done[k] != "SUCCESS"]
                if failed:
                    pending.remove(task)
                    outcome = TaskOutcome(
                        task.task_key, "SKIPPED", error=f"upstream failed: {', '.join(failed)}"
                    )
                    records.add(task.task_key, 0, "SKIPPED", None, None, outcome.error)
                    finish(task, outcome)
                    continue
                if any(k not in done for k in upstream) or len(running) >= job.max_parallel_tasks:
                    continue
                if ready_at.get(task.task_key, 0.0) > now:
                    continue
                pending.remove(task)
                number = attempts[task.task_key] = attempts.get(task.task_key, 0) + 1
                if on_event and number == 1:
                    on_event("started", task, None)
                deadline = now + task.timeout_seconds if task.timeout_seconds else None
                running[task.task_key] = _Attempt(
                    task,
                    number,
                    time.perf_counter(),
                    _utcnow(),
                    pool.submit(execute, task, number),
                    deadline,
                )
            now = time.monotonic()
            waits = [a.deadline - now for a in running.values() if a.deadline is not None]
            waits += [ready_at[t.task_key] - now for t in pending if t.task_key in ready_at]
            timeout = max(0.0, min(waits)) if waits else None
            if not running:
                time.sleep(timeout or 0.0)
                continue
            wait([a.future for a in running.values()], timeout=timeout, return_when=FIRST_COMPLETED)
            for key, attempt in list(running.items()):
                task = attempt.task
                error: str | None = None
                status = ""
                if attempt.future.done():
                    exc = attempt.future.exception()
                    status = "SUCCESS" if exc is None else "FAILED"
                    if exc is not None:
                        log.debug("task %s failed", key, exc_info=exc)
                        error = one_line(exc)
                elif attempt.deadline is not None and time.monotonic() >= attempt.deadline:
                    status = "TIMED_OUT"
                    error = f"timed out after {task.timeout_seconds}s (attempt {attempt.number})"
                    # the thread cannot be stopped; a fresh pool keeps capacity for the others
                    pool.shutdown(wait=False)
                    pool = ThreadPoolExecutor(
                        max_workers=job.max_parallel_tasks, thread_name_prefix="task"
                    )
                else:
                    continue
                del running[key]
                seconds = time.perf_counter() - attempt.started
                records.add(key, attempt.number, status, attempt.started_at, _utcnow(), error)
                retry = status == "FAILED" or (status == "TIMED_OUT" and task.retry_on_timeout)
                allowed = task.max_retries if retries else 0
                if status != "SUCCESS" and retry and attempt.number <= allowed:
                    delay = task.min_retry_interval_millis / 1000 * 2 ** (attempt.number - 1)
                    log.warning(
                        "task %s attempt %d %s; retrying in %.1fs",
                        key,
                        attempt.number,
                        status.lower(),
                        delay,
                    )
                    ready_at[key] = time.monotonic() + delay
                    pending.append(task)
                    continue
                finish(
                    task,
                    TaskOutcome(key, status, seconds, error=error or "", attempts=attempt.number),
                )
    finally:
        pool.shutdown(wait=False)
        records.flush()
    notify(job, "on_success" if report.succeeded else "on_failure", report)
    return report


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class RunRecords:
    """Rows of ``<catalog>.meta.job_runs``: one per task attempt (and per skipped task)."""

    def __init__(self, tables: TableStore, report: RunReport, principal: str) -> None:
        self.tables = tables
        self.report = report
        self.principal = principal
        self._rows: list[JobRunRow] = []
        self._lock = threading.Lock()

    def add(
        self,
        task: str,
        attempt: int,
        status: str,
        start: dt.datetime | None,
        end: dt.datetime | None,
        error: str | None,
    ) -> None:
        r = self.report
        row = JobRunRow(
            r.job,
            r.run_id,
            task,
            attempt,
            status,
            start,
            end,
            error,
            self.principal,
            r.target,
            r.engine,
        )
        with self._lock:
            self._rows.append(row)
        self.flush()  # per attempt: a crashed run still leaves its records

    def flush(self) -> None:
        with self._lock:
            rows, self._rows = self._rows, []
        if not rows:
            return
        try:
            df = rows_frame(self.tables.spark, SystemTable.JOB_RUNS, rows)
            self.tables.append_system(
                system_table_name(self.tables.project.catalog.name, SystemTable.JOB_RUNS), df
            )
        except Exception:  # bookkeeping never fails the run
            log.warning("could not write the run records", exc_info=True)


def notify(job: Job, event: str, report: RunReport) -> None:
    """POST the run's state to the job's webhooks for ``event``; failures are only logged."""
    hooks = getattr(job.webhook_notifications, event)
    if not hooks:
        return
    import httpx

    payload = {
        "event": event,
        "job": report.job,
        "run_id": report.run_id,
        "target": report.target,
        "status": "RUNNING"
        if event == "on_start"
        else ("SUCCESS" if report.succeeded else "FAILED"),
        "tasks": [
            {
                "task_key": t.task_key,
                "status": t.status,
                "seconds": round(t.seconds, 3),
                "error": t.error,
            }
            for t in report.tasks
        ],
    }
    for hook in hooks:
        try:
            httpx.post(hook.url, json=payload, timeout=10).raise_for_status()
        except httpx.HTTPError as exc:
            log.warning("webhook %s for %s failed: %s", hook.url, event, exc)
