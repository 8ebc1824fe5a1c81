"""The one place a run is assembled: engine session, governed store, scope and registration.

A run is a job run, one CLI command, a ``spark-submit`` task or a notebook. :func:`open_run`
builds (or takes) the session, resolves who acts, builds the governed store with audit and
lineage subscribed, registers the catalog when asked and hands back a :class:`RunContext`.
Tasks open scopes on it (:meth:`RunContext.open_task`) that close with their outcome.
Closing the run stops the session only if the run started it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from pyspark.sql import SparkSession

from lakehouse.bundle.context import RunReport, TaskContext
from lakehouse.config.jobs import Task
from lakehouse.config.project import Project
from lakehouse.engine import EngineSession, build_session
from lakehouse.governance.events import SUCCEEDED, TaskOutcome
from lakehouse.governance.scope import GovernanceScope, TaskScope, resolve_principal
from lakehouse.governance.store import GovernedStore, governed_tables
from lakehouse.io.results import WriteResult
from lakehouse.runtime.crash import crash_point

REGISTER_TASK = "register"
"""The task scope :func:`open_run` registers the catalog under."""


def new_run_id() -> str:
    """A run id: the local start time and a random suffix (``20260101T120000-1a2b3c4d``)."""
    return time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


def project_session(project: Project, app: str) -> EngineSession:
    """A session on the project's engine (or the active one), named ``<project>:<app>``."""
    return build_session(
        project.engine,
        warehouse_dir=project.data_root / "warehouse",
        app_name=f"{project.name}:{app}",
        log_dir=project.data_root / "logs",
        catalog=project.catalog.name,
    )


@dataclass(frozen=True)
class RunAs:
    """What decides the acting principal: a bundle job (and task) with ``run_as``, else an
    explicit principal (``--principal``), else ``LAKEHOUSE_PRINCIPAL``, the bundle's
    ``run_as`` or the OS user (see :func:`~lakehouse.governance.scope.resolve_principal`)."""

    job: str | None = None
    task: Task | None = None
    explicit: str | None = None

    def principal(self, project: Project, task: Task | None = None) -> str:
        """Who acts in the run, or in its bundle ``task`` when one is given."""
        return resolve_principal(
            project,
            job=self.job,
            explicit=self.explicit,
            task=task if task is not None else self.task,
        )


class TaskRun:
    """An open task scope: accesses are attributed to ``task_key`` until it closes.

    Closing it (explicitly with :meth:`close`, or leaving the ``with`` block) writes the
    task's audit and lineage rows with its outcome.
    """

    def __init__(self, run: RunContext, task_key: str, store: GovernedStore) -> None:
        self.run = run
        self.task_key = task_key
        self.store = store
        self._scope: TaskScope | None = store.task_scope(task_key).__enter__()

    def context(
        self, parameters: list[str] | None = None, extra: dict[str, Any] | None = None
    ) -> TaskContext:
        """What a task function receives: session, project, this task's store, the report."""
        return TaskContext(
            spark=self.run.spark,
            project=self.run.project,
            tables=self.store,
            report=self.run.report,
            task_key=self.task_key,
            parameters=parameters if parameters is not None else [],
            extra=extra if extra is not None else {},
        )

    def close(self, outcome: TaskOutcome = SUCCEEDED) -> None:
        """Write the task's rows with ``outcome`` (once) and go back to the enclosing task."""
        scope, self._scope = self._scope, None
        if scope is not None:
            scope.close(outcome)

    def __enter__(self) -> TaskRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(TaskOutcome(exc))


@dataclass
class RunContext:
    """One run: its session, governed store and report; tasks open their scopes on it."""

    project: Project
    session: EngineSession
    store: GovernedStore
    report: RunReport
    run_as: RunAs
    owns_session: bool

    @property
    def spark(self) -> SparkSession:
        return self.session.spark

    @property
    def governance(self) -> GovernanceScope:
        return self.store.governance

    @property
    def principal(self) -> str:
        return self.store.governance.principal

    @property
    def run_id(self) -> str:
        return self.report.run_id

    @property
    def job(self) -> str:
        return self.report.job

    def open_task(
        self, task_key: str, *, task: Task | None = None, register: bool = False
    ) -> TaskRun:
        """Open the scope of ``task_key``; with ``register``, register the catalog in it.

        A bundle ``task`` gets a store of its own, acting as the task's principal (its own
        audit and lineage buffers: tasks run side by side); otherwise the run's store is used.
        """
        store = self.store if task is None else self.task_store(task)
        opened = TaskRun(self, task_key, store)
        if register:
            try:
                store.register_all()
            except BaseException as exc:
                opened.close(TaskOutcome(exc))
                raise
        return opened

    def task_store(self, task: Task) -> GovernedStore:
        """A governed store for one bundle task of this run, acting as the task's principal."""
        return _governed_store(
            self.project, self.session, self.report, self.run_as.principal(self.project, task)
        )

    def close(self) -> None:
        """Stop the session if the run started it (a session it was given keeps running)."""
        if self.owns_session:
            self.owns_session = False
            self.session.stop()

    def __enter__(self) -> RunContext:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_run(
    project: Project,
    *,
    job: str,
    session: EngineSession | None = None,
    start_session: Callable[[], EngineSession] | None = None,
    run_as: RunAs | None = None,
    run_id: str | None = None,
    engine: str | None = None,
    register: bool = False,
) -> RunContext:
    """Assemble the run ``job``: THE place a session, governed store and scope come together.

    ``session``: use this one (never stopped here); without it the run starts one with
    ``start_session`` (default: the project's engine) and stops it when it closes.
    ``run_as`` decides the principal; ``run_id`` defaults to a new one; ``engine`` is what
    the report records (default: the session's kind). ``register`` registers the
    catalog's tables now, under a ``register`` task scope (to register inside a task's own
    scope instead, open it with ``run.open_task(key, register=True)``).
    """
    owned = session is None
    if session is None:
        session = start_session() if start_session is not None else project_session(project, job)
    try:
        run = _assemble(project, job, session, run_as or RunAs(), run_id, engine, owned)
        if register:
            run.open_task(REGISTER_TASK, register=True).close()
    except BaseException:
        if owned:
            session.stop()
        raise
    return run


def _assemble(
    project: Project,
    job: str,
    session: EngineSession,
    run_as: RunAs,
    run_id: str | None,
    engine: str | None,
    owned: bool,
) -> RunContext:
    """The report and the governed store (audit and lineage subscribed) of a run."""
    report = RunReport(
        job=job,
        run_id=run_id or new_run_id(),
        target=project.target_name,
        engine=engine or session.kind,
        engine_mode="" if session.mode in ("local", "master local[*]") else session.mode,
    )
    store = _governed_store(project, session, report, run_as.principal(project))
    return RunContext(project, session, store, report, run_as, owns_session=owned)


def _governed_store(
    project: Project, session: EngineSession, report: RunReport, principal: str
) -> GovernedStore:
    """``principal``'s governed store in the run of ``report`` (its writes land in the report)."""
    return governed_tables(
        session.spark,
        project,
        session.kind,
        principal=principal,
        run_id=report.run_id,
        job=report.job,
        on_write=lambda result: _committed(report, result),
    )


def _committed(report: RunReport, result: WriteResult) -> None:
    """A write committed: into the report, then past its kill point (crash-matrix tests)."""
    report.writes.append(result)
    crash_point(f"commit:{result.table}")
