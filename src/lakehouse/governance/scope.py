"""One principal's access to the catalog during one run (job or command), task by task.

Every read and write the project performs through the governed store asks the scope first
(a denial raises :class:`AccessDeniedError`), reads come back with masked columns for
principals without ``UNMASK`` and only the rows the table's row filters let the principal
see, and every decision, allowed or denied, is published to the
run's event sink (the audit log writes it to ``<catalog>.meta.access_audit``).

This is enforcement in the client, like a catalog-aware client library: it governs what
goes through ``lakehouse`` (jobs, CLI, notebooks), not someone reading the files under the
storage root directly.
"""

from __future__ import annotations

import datetime as dt
import getpass
import logging
import os
from types import TracebackType
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame

from lakehouse.config.project import Project
from lakehouse.config.system_tables import SystemTable, system_table_name
from lakehouse.core.errors import LakehouseError
from lakehouse.governance.audit import AuditLog
from lakehouse.governance.events import (
    SUCCEEDED,
    AccessChecked,
    EventSink,
    TaskOutcome,
    TaskStarted,
)
from lakehouse.governance.masks import load_mask_key
from lakehouse.governance.policy import AccessPolicy
from lakehouse.io.store import TableStore

if TYPE_CHECKING:
    from lakehouse.config.jobs import Task

log = logging.getLogger(__name__)

ENV_PRINCIPAL = "LAKEHOUSE_PRINCIPAL"


class AccessDeniedError(LakehouseError):
    """A principal lacks a privilege; the message names principal, privilege and object."""


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


class GovernanceScope:
    """One principal's decisions during one run, published to ``events``.

    ``system_store`` is where the subscribers write their rows when the scope flushes (the
    system's own, ungoverned store); without one, nothing is written.
    """

    def __init__(
        self,
        project: Project,
        principal: str,
        *,
        run_id: str,
        job: str,
        events: EventSink | None = None,
        system_store: TableStore | None = None,
    ) -> None:
        self.project = project
        self.policy = AccessPolicy(
            project.catalog,
            project.grants,
            mask_key=lambda: load_mask_key(project.data_root, project.catalog.name),
        )
        self.principal = principal
        self.run_id = run_id
        self.job = job
        self.task = job
        self.events = events if events is not None else EventSink()
        self.system_store = system_store
        self._audit_table = system_table_name(project.catalog.name, SystemTable.ACCESS_AUDIT)

    @property
    def enabled(self) -> bool:
        return self.policy.enabled

    # ------------------------------------------------------------ decisions

    def may(self, privilege: str, securable: str) -> bool:
        """A check without an audit row (for choices such as whether to create a table)."""
        return self.policy.check(self.principal, privilege, securable).allowed

    def authorize(self, privilege: str, securable: str) -> None:
        """Publish the decision; raise :class:`AccessDeniedError` when it is a denial."""
        if securable == self._audit_table:
            return  # the audit log itself is written by the system
        decision = self.policy.check(self.principal, privilege, securable)
        if self.enabled:
            now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
            self.events.publish(
                AccessChecked(
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
        if not decision.allowed:
            self._flush_audit()  # the denial is on record even if the caller gives up now
            raise AccessDeniedError(
                f"access denied: {self.principal} may not {privilege} on {securable} "
                f"({decision.reason})"
            )

    def restrict(self, table: str, df: DataFrame) -> DataFrame:
        """The rows the principal may see (row filters), masked (see AccessPolicy.restrict)."""
        return self.policy.restrict(self.principal, table, df)

    # ------------------------------------------------------------ tasks and flushing

    def task_scope(self, task_key: str) -> TaskScope:
        """Attribute accesses to ``task_key``; write the audit and lineage rows at its end."""
        return TaskScope(self, task_key)

    def _flush_audit(self) -> None:
        if self.system_store is None:
            return
        for subscriber in self.events.subscribers:
            if isinstance(subscriber, AuditLog):
                subscriber.flush(self.system_store, SUCCEEDED)

    def flush(self, outcome: TaskOutcome = SUCCEEDED) -> None:
        """Let every subscriber append its buffered rows, knowing how the task ended."""
        store = self.system_store
        if store is None:
            return
        try:
            for subscriber in self.events.subscribers:
                subscriber.flush(store, outcome)
        except AccessDeniedError:
            raise
        except Exception:  # never hide the task's own outcome behind a bookkeeping error
            log.warning("could not write the access audit / lineage rows", exc_info=True)


class TaskScope:
    """A task's scope: opened with its key, closed with its outcome."""

    def __init__(self, scope: GovernanceScope, task_key: str) -> None:
        self.scope = scope
        self.task_key = task_key
        self._previous = scope.task

    def __enter__(self) -> TaskScope:
        self._previous, self.scope.task = self.scope.task, self.task_key
        self.scope.events.publish(TaskStarted(self.task_key))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(TaskOutcome(exc))

    def close(self, outcome: TaskOutcome) -> None:
        """Flush the task's rows with its outcome and go back to the enclosing task."""
        try:
            self.scope.flush(outcome)
        finally:
            self.scope.task = self._previous
