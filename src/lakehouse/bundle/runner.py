"""Run a bundle job's task DAG in this process, sharing one session.

A task is a ``jobs/`` script (``spark_python_task.python_file``) exposing ``TASK`` (the
same function ``spark-submit jobs/<script>.py`` runs), a plain PySpark script, a
``python_function_task``, a notebook, a wheel entry point, a declarative pipeline, another
job or a condition (:mod:`lakehouse.bundle.tasks`). Tasks run in dependency order,
independent ones side by side, with retries and timeouts; ``run_if`` and condition
outcomes decide which run; a failed task stops its dependants (reported as skipped); every
attempt is recorded.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from lakehouse.bundle.context import RunReport, TaskOutcome
from lakehouse.bundle.job_level import (
    JobTimeoutError,
    attempt_deadline,
    end_notes,
    job_deadline,
    resolve_job_parameters,
    would_notify,
)
from lakehouse.bundle.runlog import RunEntry, RunLog, run_locks
from lakehouse.bundle.tasks.conditions import check_outcomes, decide
from lakehouse.bundle.tasks.dispatch import execute_task, with_resolved_parameters
from lakehouse.bundle.tasks.state import JobRunState, run_folder
from lakehouse.config.jobs import Job, Task, task_order
from lakehouse.config.project import Project
from lakehouse.config.system_tables import JobRunRow, SystemTable, rows_frame, system_table_name
from lakehouse.core.errors import ConfigError, LakehouseError, one_line
from lakehouse.engine import EngineSession
from lakehouse.io.store import TableStore
from lakehouse.runtime.crash import crash_point
from lakehouse.runtime.run import RunAs, RunContext, open_run

log = logging.getLogger(__name__)

TaskEvent = Callable[[str, Task, TaskOutcome | None], None]

UNLIMITED_RETRIES_CAP = 25
"""``max_retries: -1`` (Databricks: retry indefinitely) retries this many times locally."""


def allowed_retries(task: Task) -> int:
    """The task's retries: ``max_retries``, or the local cap for -1 (unlimited)."""
    return UNLIMITED_RETRIES_CAP if task.max_retries < 0 else task.max_retries


def retry_ready_at(task: Task, attempt_started: float) -> float:
    """When a failed attempt's retry may start (``time.monotonic()``): Databricks'
    ``min_retry_interval_millis`` counts from the failed attempt's start, without doubling."""
    return attempt_started + task.min_retry_interval_millis / 1000


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
    started_mono: float = 0.0  # time.monotonic() at the start: retries count from here


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
    lock_wait_s: float | None = None,
    parameters: Mapping[str, str] | None = None,
) -> RunReport:
    """Run the job's tasks as a DAG; never raises for a task failure.

    ``parameters`` override the job's parameter defaults for this run (an unknown name
    raises ``ConfigError``); tasks see the result as ``ctx.job_parameters``.
    ``run_if`` and condition outcomes decide whether a task whose dependencies finished
    runs, is SKIPPED or EXCLUDED (:mod:`lakehouse.bundle.tasks.conditions`).

    Independent tasks run side by side up to the job's ``max_parallel_tasks``. A failed
    attempt is retried up to ``max_retries`` times (-1: up to :data:`UNLIMITED_RETRIES_CAP`),
    no sooner than ``min_retry_interval_millis`` after that attempt started (as on
    Databricks: no doubling); an attempt over ``timeout_seconds`` is TIMED_OUT (retried only with
    ``retry_on_timeout``; ``retries=False`` when a scheduler such as Airflow retries
    instead). A task whose upstream failed is SKIPPED. Every attempt is
    recorded in ``<catalog>.meta.job_runs``; the job's webhooks are called at start and end.

    In-process tasks cannot be killed: a timed-out attempt is abandoned (its thread may
    keep running until it returns); tasks launched with spark-submit are killed.

    The run holds its data root's lock and a ``max_concurrent_runs`` slot of the job
    (:func:`~lakehouse.bundle.runlog.run_locks`; a refused run raises ``RunRefusedError``
    after waiting up to ``lock_wait_s``) and is recorded in the run log; runs that were
    killed before are recorded ABANDONED first.
    """
    name, job = select_job(project, job_name)
    values = resolve_job_parameters(name, job, parameters)  # unknown names fail before the run
    check_outcomes(job, name)
    with run_locks(project.data_root, name, job.max_concurrent_runs, wait_s=lock_wait_s):
        runlog = RunLog(project.data_root)
        reaped = runlog.reap()
        with open_run(
            project,
            job=name,
            session=session,
            run_as=RunAs(job=name),
            run_id=run_id,
            engine=engine,  # spark when tasks are spark-submitted
            register=True,
        ) as run:
            report = run.report
            report.job_parameters = values
            report.notes.extend(would_notify(job, "on_start"))
            records = RunRecords(run.store, report, run.principal)
            records.abandoned(reaped)
            entry = runlog.start(report.run_id, name)
            notify(job, "on_start", report)
            state = _run_state(run, name, job, values, task_runner, retries)
            schedule = _Schedule(
                job,
                select_tasks(job, only, from_task),
                _dispatching(run, state, task_runner),
                records,
                _logged_events(runlog, entry, on_event),
                retries=retries,
                state=state,
            )
            try:
                schedule.run()
            finally:  # an interrupted run (Ctrl-C) ends FAILED; only a killed one never ends
                runlog.end(entry, "SUCCESS" if report.succeeded else "FAILED")
            report.notes.extend(empty_source_notes(report))
            report.notes.extend(end_notes(job, report, time.time() - report.started))
    notify(job, "on_success" if report.succeeded else "on_failure", report)
    return report


def _logged_events(runlog: RunLog, entry: RunEntry, on_event: TaskEvent | None) -> TaskEvent:
    """``on_event`` plus the run log's record of running tasks (and the task kill points)."""

    def logged(event: str, task: Task, outcome: TaskOutcome | None) -> None:
        if event == "started":
            runlog.task_started(entry, task.task_key)
        if on_event is not None:
            on_event(event, task, outcome)
        if event == "finished":
            runlog.task_ended(entry, task.task_key)
            crash_point(f"task:{task.task_key}")

    return logged


def empty_source_notes(report: RunReport) -> list[str]:
    """A note per ingested source that yielded no new rows (an exhausted API, no new files)."""
    return [
        f"{scope.removeprefix('source ')}: yielded no new rows"
        + (f" ({counts['requests']} requests)" if counts.get("requests") else "")
        for scope, counts in report.counters.items()
        if scope.startswith("source ") and counts.get("rows", 0) == 0
    ]


def _run_state(
    run: RunContext,
    name: str,
    job: Job,
    parameters: dict[str, str],
    task_runner: TaskRunner | None,
    retries: bool,
) -> JobRunState:
    """What the tasks of the run of ``job`` share."""
    state = JobRunState(
        name, job, run.run_id, run_folder(run.project.data_root, run.run_id), parameters
    )
    state.run_child = _child_runner(run, state, task_runner, retries)
    return state


def _child_runner(
    run: RunContext, parent: JobRunState, task_runner: TaskRunner | None, retries: bool
) -> Callable[[str, str, dict[str, str]], RunReport]:
    """Run another job of the bundle inside this run (a ``run_job_task``); its report.

    The called job runs as run ``<run_id>.<task_key>`` on the same session; its task
    values and notebooks live in ``<run folder>/<task_key>/``.
    """

    def run_child(task_key: str, job_name: str, parameters: dict[str, str]) -> RunReport:
        name, job = select_job(run.project, job_name)
        state = JobRunState(
            name,
            job,
            f"{parent.run_id}.{task_key}",
            parent.folder / task_key,
            resolve_job_parameters(name, job, parameters),
            calls=(*parent.calls, parent.job_name),
        )
        state.run_child = _child_runner(run, state, task_runner, retries)
        report = RunReport(
            name, state.run_id, run.report.target, run.report.engine, run.report.engine_mode
        )
        execute = _dispatching(run, state, task_runner)
        records = RunRecords(run.store, report, run.principal)
        _Schedule(job, task_order(job), execute, records, None, retries=retries, state=state).run()
        return report

    return run_child


def _dispatching(run: RunContext, state: JobRunState, task_runner: TaskRunner | None) -> TaskRunner:
    """Run a task in this process (``task_runner``, e.g. spark-submit, for jobs/ scripts)."""

    def execute(task: Task, attempt: int) -> None:
        if task_runner is not None and task.kind in ("spark_python_task", "python_function_task"):
            task_runner(with_resolved_parameters(task, state), attempt)
        else:
            execute_task(run, task, attempt, state)

    return execute


class _Schedule:
    """The scheduling state of one run: pending, running and finished tasks."""

    job_deadline: float | None = None  # the job's timeout_seconds (set when the run starts)

    def __init__(
        self,
        job: Job,
        tasks: list[Task],
        execute: TaskRunner,
        records: RunRecords,
        on_event: TaskEvent | None,
        *,
        retries: bool,
        state: JobRunState,
    ) -> None:
        self.job = job
        self.state = state
        self.execute = execute
        self.records = records
        self.report = records.report
        self.on_event = on_event
        self.retries = retries
        self.selected_keys = {t.task_key for t in tasks}
        self.pending = list(tasks)
        self.done: dict[str, str] = {}  # task_key -> final status
        self.ready_at: dict[str, float] = {}
        self.attempts: dict[str, int] = {}
        self.running: dict[str, _Attempt] = {}
        self.pool = self._new_pool()

    def _new_pool(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(
            max_workers=self.job.max_parallel_tasks, thread_name_prefix="task"
        )

    def run(self) -> None:
        """Start what is ready, wait for an attempt to end (or a deadline), settle, repeat."""
        self.job_deadline = job_deadline(self.job, time.monotonic())
        try:
            while self.pending or self.running:
                self._start_ready()
                timeout = self._next_wakeup()
                if not self.running:
                    time.sleep(timeout or 0.0)
                    continue
                futures = [a.future for a in self.running.values()]
                wait(futures, timeout=timeout, return_when=FIRST_COMPLETED)
                self._settle_ended()
        finally:
            self.pool.shutdown(wait=False)
            self.records.flush()

    def _start_ready(self) -> None:
        """Once a task's upstream finished: start it, or skip or exclude it (``run_if``)."""
        now = time.monotonic()
        for task in list(self.pending):
            upstream = [d.task_key for d in task.depends_on if d.task_key in self.selected_keys]
            if any(k not in self.done for k in upstream):
                continue
            if task.task_key not in self.attempts:  # decided once, before the first attempt
                verdict, reason = decide(task, self.done, self.state.outcomes, self.selected_keys)
                if verdict != "RUN":
                    self._skip(task, verdict, reason)
                    continue
            if len(self.running) >= self.job.max_parallel_tasks:
                continue
            if self.ready_at.get(task.task_key, 0.0) > now:
                continue
            self._start(task, now)

    def _skip(self, task: Task, status: str, reason: str) -> None:
        self.pending.remove(task)
        outcome = TaskOutcome(task.task_key, status, error=reason)
        self.records.add(task.task_key, 0, status, None, None, outcome.error)
        self._finish(task, outcome)

    def _start(self, task: Task, now: float) -> None:
        self.pending.remove(task)
        number = self.attempts[task.task_key] = self.attempts.get(task.task_key, 0) + 1
        if self.on_event and number == 1:
            self.on_event("started", task, None)
            now = time.monotonic()  # the event handler took its time: the clock starts here
        deadline = attempt_deadline(task.timeout_seconds, now, self.job_deadline)
        self.running[task.task_key] = _Attempt(
            task,
            number,
            time.perf_counter(),
            _utcnow(),
            self._submit(task, number, now),
            deadline,
            now,
        )

    def _submit(self, task: Task, number: int, now: float) -> Future[None]:
        """The attempt running in the pool; not started once the job's timeout passed."""
        if self.job_deadline is not None and now >= self.job_deadline:
            late: Future[None] = Future()
            late.set_exception(JobTimeoutError(self._job_timeout_message()))
            return late
        return self.pool.submit(self.execute, task, number)

    def _job_timeout_message(self) -> str:
        return f"the job timed out after {self.job.timeout_seconds}s (its timeout_seconds)"

    def _next_wakeup(self) -> float | None:
        """Seconds until the next deadline or retry (None: wait for an attempt to end)."""
        now = time.monotonic()
        waits = [a.deadline - now for a in self.running.values() if a.deadline is not None]
        waits += [
            self.ready_at[t.task_key] - now for t in self.pending if t.task_key in self.ready_at
        ]
        return max(0.0, min(waits)) if waits else None

    def _settle_ended(self) -> None:
        """Record every attempt that ended or passed its deadline; retry or finish its task."""
        for key, attempt in list(self.running.items()):
            ended = self._ending(attempt)
            if ended is None:
                continue
            status, error = ended
            del self.running[key]
            seconds = time.perf_counter() - attempt.started
            self.records.add(key, attempt.number, status, attempt.started_at, _utcnow(), error)
            if self._retry(attempt, status):
                continue
            self._finish(
                attempt.task,
                TaskOutcome(key, status, seconds, error=error or "", attempts=attempt.number),
            )

    def _ending(self, attempt: _Attempt) -> tuple[str, str | None] | None:
        """The attempt's status and error once it ended or timed out; None while it runs."""
        if attempt.future.done():
            exc = attempt.future.exception()
            if exc is None:
                return "SUCCESS", None
            log.debug("task %s failed", attempt.task.task_key, exc_info=exc)
            if isinstance(exc, JobTimeoutError):
                return "TIMED_OUT", str(exc)
            return "FAILED", one_line(exc)
        if attempt.deadline is not None and time.monotonic() >= attempt.deadline:
            # the thread cannot be stopped; a fresh pool keeps capacity for the others
            self.pool.shutdown(wait=False)
            self.pool = self._new_pool()
            if attempt.deadline == self.job_deadline:
                return "TIMED_OUT", self._job_timeout_message()
            timeout = attempt.task.timeout_seconds
            return "TIMED_OUT", f"timed out after {timeout}s (attempt {attempt.number})"
        return None

    def _retry(self, attempt: _Attempt, status: str) -> bool:
        """Queue another attempt when the task's retry policy allows one."""
        task = attempt.task
        retry = status == "FAILED" or (status == "TIMED_OUT" and task.retry_on_timeout)
        allowed = allowed_retries(task) if self.retries else 0
        if status == "SUCCESS" or not retry or attempt.number > allowed:
            return False
        if self.job_deadline is not None and time.monotonic() >= self.job_deadline:
            return False  # the job timed out: no more attempts
        ready = retry_ready_at(task, attempt.started_mono)
        log.warning(
            "task %s attempt %d %s; retrying in %.1fs",
            task.task_key,
            attempt.number,
            status.lower(),
            max(0.0, ready - time.monotonic()),
        )
        self.ready_at[task.task_key] = ready
        self.pending.append(task)
        return True

    def _finish(self, task: Task, outcome: TaskOutcome) -> None:
        self.done[task.task_key] = outcome.status
        self.report.tasks.append(outcome)
        if self.on_event:
            skipped = outcome.status in ("SKIPPED", "EXCLUDED")
            self.on_event("skipped" if skipped else "finished", task, outcome)


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

    def abandoned(self, runs: list[RunEntry]) -> None:
        """Record the tasks killed runs were running as ABANDONED, under those runs' ids."""
        r = self.report
        now = _utcnow()
        error = "the run's process ended without recording this task (killed?)"
        rows = [
            JobRunRow(e.job, e.run_id, task, 0, "ABANDONED", None, now, error, None, r.target, None)
            for e in runs
            for task in e.running_tasks
        ]
        with self._lock:
            self._rows.extend(rows)
        self.flush()

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
        if hook.url is None:  # a Databricks destination id: noted in the run, not called
            continue
        try:
            httpx.post(hook.url, json=payload, timeout=10).raise_for_status()
        except httpx.HTTPError as exc:
            log.warning("webhook %s for %s failed: %s", hook.url, event, exc)
