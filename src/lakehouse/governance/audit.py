"""The access audit: one row of ``<catalog>.meta.access_audit`` per access decision."""

from __future__ import annotations

import logging
from typing import Any

from lakehouse.governance.events import AccessChecked, GovernanceEvent, TaskOutcome
from lakehouse.io.store import TableStore

log = logging.getLogger(__name__)

AUDIT_SCHEMA = (
    "event_time timestamp, principal string, privilege string, securable string, "
    "allowed boolean, reason string, job string, task string, run_id string"
)


def audit_row(event: AccessChecked) -> tuple[Any, ...]:
    """The audit table row of one decision (columns of :data:`AUDIT_SCHEMA`)."""
    return (
        event.at,
        event.principal,
        event.privilege,
        event.securable,
        event.allowed,
        event.reason,
        event.job,
        event.task,
        event.run_id,
    )


class AuditLog:
    """Buffers the decisions of a run and appends them to the audit table on flush."""

    def __init__(self, table: str) -> None:
        self.table = table
        self._rows: list[tuple[Any, ...]] = []

    def handle(self, event: GovernanceEvent) -> None:
        if isinstance(event, AccessChecked):
            self._rows.append(audit_row(event))

    def flush(self, store: TableStore, outcome: TaskOutcome) -> None:
        """Append the buffered rows; a bookkeeping error is logged, never raised."""
        rows, self._rows = self._rows, []
        if not rows:
            return
        try:
            store.append_system(self.table, store.spark.createDataFrame(rows, AUDIT_SCHEMA))
        except Exception:  # never hide the task's own outcome behind a bookkeeping error
            log.warning("could not write the access audit rows", exc_info=True)
