"""Access control, audit and lineage hooks for the project's table access path.

:class:`Governance` sits inside :class:`lakehouse.tables.DeltaTables`: every read and write
the project performs asks it first (a denial raises :class:`AccessDeniedError`), reads come back
with masked columns for principals without ``UNMASK``, and every decision, allowed or
denied, becomes a row of ``<catalog>.meta.access_audit``. Observers (the lineage recorder)
see every read with its Delta version and every write with its new version.

This is enforcement in the client, like a catalog-aware client library: it governs what
goes through ``lakehouse`` (jobs, CLI, notebooks that use ``lakehouse.tables``), not
someone reading the files under the storage root directly.
"""

from __future__ import annotations

import datetime as dt
import getpass
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from pyspark.sql import DataFrame

from lakehouse.catalog.access import AccessPolicy, Decision
from lakehouse.config.loader import Project, access_audit_table_name
from lakehouse.core.errors import LakehouseError

if TYPE_CHECKING:
    from lakehouse.config.models import Task
    from lakehouse.tables import DeltaTables, WriteResult

log = logging.getLogger(__name__)

ENV_PRINCIPAL = "LAKEHOUSE_PRINCIPAL"
AUDIT_SCHEMA = (
    "event_time timestamp, principal string, privilege string, securable string, "
    "allowed boolean, reason string, job string, task string, run_id string"
)


class AccessDeniedError(LakehouseError):
    """A principal lacks a privilege; the message names principal, privilege and object."""


class TableObserver(Protocol):
    """Sees what a task reads and writes (the lineage recorder implements this)."""

    def start_task(self, task_key: str) -> None: ...

    def table_read(self, table: str, version: int) -> None: ...

    def table_written(self, result: WriteResult) -> None: ...

    def flush(self, tables: DeltaTables) -> None: ...


def resolve_principal(
    project: Project, job: str | None = None, explicit: str | None = None, task: Task | None = None
) -> str:
    """Who is acting.

    A job's task runs as the task's ``run_as``, else the job's, else the bundle's. A CLI
    command acts as ``--principal`` / ``LAKEHOUSE_PRINCIPAL``, else as the bundle's
    ``run_as``, else the OS user.
    """
    jobs = project.bundle.resources.jobs
    if job is not None and job in jobs:
        for run_as in (task.run_as if task else None, jobs[job].run_as, project.bundle.run_as):
            if run_as is not None:
                return run_as.principal
    if explicit:
        return explicit
    if os.environ.get(ENV_PRINCIPAL):
        return os.environ[ENV_PRINCIPAL]
    if project.bundle.run_as is not None:
        return project.bundle.run_as.principal
    return getpass.getuser()


class Governance:
    """One principal's access to the catalog during one run (job or command)."""

    def __init__(self, project: Project, principal: str, *, run_id: str, job: str) -> None:
        self.project = project
        self.policy = AccessPolicy(project.catalog, project.grants)
        self.principal = principal
        self.run_id = run_id
        self.job = job
        self.task = job
        self.observers: list[TableObserver] = []
        self.tables: DeltaTables | None = None
        self._audit: list[tuple[Any, ...]] = []
        self._audit_table = access_audit_table_name(project.catalog.name)

    @property
    def enabled(self) -> bool:
        return self.policy.enabled

    # ------------------------------------------------------------ decisions

    def may(self, privilege: str, securable: str) -> bool:
        """A check without an audit row (for choices such as whether to create a table)."""
        return self.policy.check(self.principal, privilege, securable).allowed

    def authorize(self, privilege: str, securable: str) -> None:
        """Record the decision; raise :class:`AccessDeniedError` when it is a denial."""
        if securable == self._audit_table:
            return  # the audit log itself is written by the system
        decision = self.policy.check(self.principal, privilege, securable)
        self._record(privilege, securable, decision)
        if not decision.allowed:
            self._flush_audit()  # the denial is on record even if the caller gives up now
            raise AccessDeniedError(
                f"access denied: {self.principal} may not {privilege} on {securable} "
                f"({decision.reason})"
            )

    def mask(self, table: str, df: DataFrame) -> DataFrame:
        return self.policy.mask(self.principal, table, df)

    def _record(self, privilege: str, securable: str, decision: Decision) -> None:
        if not self.enabled:
            return
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        self._audit.append(
            (
                now,
                self.principal,
                privilege,
                securable,
                decision.allowed,
                decision.reason,
                self.job,
                self.task,
                self.run_id,
            )
        )

    # ------------------------------------------------------------ observers

    def table_read(self, table: str, version: int) -> None:
        for observer in self.observers:
            observer.table_read(table, version)

    def table_written(self, result: WriteResult) -> None:
        for observer in self.observers:
            observer.table_written(result)

    @contextmanager
    def task_scope(self, task_key: str) -> Iterator[None]:
        """Attribute accesses to ``task_key``; write the audit and lineage rows afterwards."""
        previous, self.task = self.task, task_key
        for observer in self.observers:
            observer.start_task(task_key)
        try:
            yield
        finally:
            self.flush()
            self.task = previous

    def _flush_audit(self) -> None:
        tables = self.tables
        rows, self._audit = self._audit, []
        if tables is None or not rows:
            return
        try:
            df = tables.spark.createDataFrame(rows, AUDIT_SCHEMA)
            tables.append(self._audit_table, df, system=True)
        except Exception:  # never hide the task's own outcome behind a bookkeeping error
            log.warning("could not write the access audit rows", exc_info=True)

    def flush(self) -> None:
        """Append buffered audit rows (and observers' rows) to their Delta tables."""
        tables = self.tables
        if tables is None:
            return
        self._flush_audit()
        try:
            for observer in self.observers:
                observer.flush(tables)
        except AccessDeniedError:
            raise
        except Exception:  # never hide the task's own outcome behind a bookkeeping error
            log.warning("could not write the access audit / lineage rows", exc_info=True)


def governed_tables(
    spark: Any,
    project: Project,
    engine: Any,
    *,
    principal: str,
    run_id: str,
    job: str,
    on_write: Any = None,
) -> DeltaTables:
    """The table adapter for one run, with access control, audit and lineage attached."""
    from lakehouse.tables import DeltaTables

    governance = Governance(project, principal, run_id=run_id, job=job)
    for observer in default_observers(project, governance):
        governance.observers.append(observer)
    return DeltaTables(spark, project, engine, on_write=on_write, governance=governance)


def default_observers(project: Project, governance: Governance) -> list[TableObserver]:
    """The observers every governed run gets (lineage)."""
    from lakehouse.catalog.lineage import LineageRecorder
    from lakehouse.catalog.openlineage import openlineage_emitter

    emitter = openlineage_emitter(project, governance.run_id)
    return [LineageRecorder(project, governance, emitter=emitter)]
