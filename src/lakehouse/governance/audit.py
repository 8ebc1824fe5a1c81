"""The access audit: one row of ``<catalog>.meta.access_audit`` per access decision."""

from __future__ import annotations

import logging

from lakehouse.config.system_tables import AccessAuditRow, SystemTable, rows_frame
from lakehouse.governance.events import AccessChecked, GovernanceEvent, TaskOutcome
from lakehouse.io.store import TableStore

log = logging.getLogger(__name__)


def audit_row(event: AccessChecked) -> AccessAuditRow:
    """The audit table row of one decision."""
    return AccessAuditRow(
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
        self._rows: list[AccessAuditRow] = []

    def handle(self, event: GovernanceEvent) -> None:
        if isinstance(event, AccessChecked):
            self._rows.append(audit_row(event))

    def flush(self, store: TableStore, outcome: TaskOutcome) -> None:
        """Append the buffered rows; a bookkeeping error is logged, never raised."""
        rows, self._rows = self._rows, []
        if not rows:
            return
        try:
            store.append_system(self.table, rows_frame(store.spark, SystemTable.ACCESS_AUDIT, rows))
        except Exception:  # never hide the task's own outcome behind a bookkeeping error
            log.warning("could not write the access audit rows", exc_info=True)
