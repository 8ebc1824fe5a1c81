"""The lineage recorder: what every task write read, at which Delta versions.

:class:`LineageRecorder` subscribes to the governed store's events: it learns every Delta
version a task reads and every write it makes. For each write that committed a new version
it records one row per input -> output edge in ``<catalog>.meta.lineage`` (appended once per
task, when the task scope closes) and hands the task's reads and writes to an OpenLineage
emitter (:mod:`lakehouse.governance.lineage.openlineage`). Which inputs and columns feed a
write follows from the configuration (:mod:`lakehouse.governance.lineage.columns`).

Tables of the ``meta`` schema (bookkeeping: processed files, API responses, quality results,
audit, lineage) are not recorded. A write that committed nothing (a MERGE that changed no
row) adds no row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from lakehouse.config.project import Project
from lakehouse.config.system_tables import LineageRow, SystemTable, rows_frame, system_table_name
from lakehouse.governance.events import (
    GovernanceEvent,
    TableRead,
    TaskOutcome,
    TaskStarted,
    WriteCommitted,
)
from lakehouse.governance.lineage.columns import (
    ColumnLineage,
    InputRef,
    column_lineage,
    column_lineage_json,
    is_system_table,
    resolve_inputs,
)
from lakehouse.io.results import WriteResult
from lakehouse.io.store import TableStore


@dataclass(frozen=True)
class RunInfo:
    """Who runs what: the job, its run id, the acting principal and the engine."""

    job: str
    run_id: str
    principal: str
    engine: str


@dataclass
class TableWrite:
    """What one task wrote to one table (several writes to a table are merged)."""

    table: str
    operations: list[str]
    version: int
    rows_written: int
    committed: bool
    inputs: list[InputRef]
    columns: ColumnLineage


@dataclass
class TaskActivity:
    """One task's reads and writes, as the OpenLineage emitter sees them."""

    job: str
    task: str
    run_id: str
    principal: str
    engine: str
    started_at: dt.datetime
    reads: dict[str, int] = field(default_factory=dict)  # table -> latest Delta version read
    writes: dict[str, TableWrite] = field(default_factory=dict)


class RunEventSink(Protocol):
    """Receives a task's activity (the OpenLineage emitter implements this)."""

    def start(self, activity: TaskActivity) -> None: ...

    def finish(self, activity: TaskActivity, error: BaseException | None) -> None: ...


# ---------------------------------------------------------------- the recorder


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class LineageRecorder:
    """Buffers a task's lineage rows and appends them to ``meta.lineage`` at the task's end."""

    def __init__(self, project: Project, run: RunInfo, emitter: RunEventSink | None = None) -> None:
        self.project = project
        self.run = run
        self._task = run.job  # the task of reads and writes outside any task scope
        self.emitter = emitter
        self.table = system_table_name(project.catalog.name, SystemTable.LINEAGE)
        self._columns: dict[str, ColumnLineage] = {}
        self._rows: list[LineageRow] = []
        self._activity: TaskActivity | None = None
        self._started = False
        self._terminal: str | None = None

    # ------------------------------------------------------------ subscriber protocol

    def handle(self, event: GovernanceEvent) -> None:
        """Dispatch one event of the governed store."""
        if isinstance(event, TaskStarted):
            self.start_task(event.task)
        elif isinstance(event, TableRead):
            self.table_read(event.table, event.version)
        elif isinstance(event, WriteCommitted):
            self.table_written(event.result)

    def start_task(self, task_key: str) -> None:
        self._rows = []
        self._task = task_key
        self._activity = TaskActivity(
            job=self.run.job,
            task=task_key,
            run_id=self.run.run_id,
            principal=self.run.principal,
            engine=self.run.engine,
            started_at=_now(),
        )
        self._started = False
        self._terminal = None

    def table_read(self, table: str, version: int) -> None:
        self._current().reads[table] = version

    def table_written(self, result: WriteResult) -> None:
        if is_system_table(self.project, result.table):
            return
        activity = self._current()
        inputs = resolve_inputs(self.project, result.table, activity.reads)
        columns = self.columns_of(result.table)
        previous = activity.writes.get(result.table)
        if previous is None:
            activity.writes[result.table] = TableWrite(
                result.table,
                [result.operation],
                result.version,
                result.rows_written,
                result.committed,
                inputs,
                columns,
            )
        else:
            if result.operation not in previous.operations:
                previous.operations.append(result.operation)
            previous.version = result.version
            previous.rows_written += result.rows_written
            previous.committed = previous.committed or result.committed
            previous.inputs = _merge_inputs(previous.inputs, inputs)
        self._ensure_started()
        if result.committed:
            self._rows.extend(self.rows_for(result, inputs, columns, activity))

    def flush(self, store: TableStore, outcome: TaskOutcome) -> None:
        """Emit the task's OpenLineage event (a failure when ``outcome`` says so) and append
        its lineage rows through ``store`` (once per task)."""
        try:
            self._finish(outcome.error)
        finally:
            rows, self._rows = self._rows, []
            if rows:
                df = rows_frame(store.spark, SystemTable.LINEAGE, rows)
                store.append_system(self.table, df)

    # ------------------------------------------------------------ helpers

    def columns_of(self, table: str) -> ColumnLineage:
        if table not in self._columns:
            self._columns[table] = column_lineage(self.project, table)
        return self._columns[table]

    def rows_for(
        self,
        result: WriteResult,
        inputs: Iterable[InputRef],
        columns: ColumnLineage,
        activity: TaskActivity,
    ) -> list[LineageRow]:
        """The ``meta.lineage`` rows of one committed write (one per input)."""
        now = _now()
        mapping = column_lineage_json(columns)
        head = (now, activity.run_id, activity.job, activity.task, activity.principal)
        tail = (result.operation, result.table, result.version)
        refs = list(inputs) or [InputRef("none", "")]
        return [
            LineageRow(*head, *tail, ref.kind, ref.name or None, ref.version, mapping)
            for ref in refs
        ]

    def _current(self) -> TaskActivity:
        if self._activity is None:  # a read or write outside any task scope
            self.start_task(self._task)
        assert self._activity is not None
        return self._activity

    def _ensure_started(self) -> None:
        if self._started or self.emitter is None or self._activity is None:
            return
        self._started = True
        self.emitter.start(self._activity)

    def _finish(self, error: BaseException | None) -> None:
        activity = self._activity
        if self.emitter is None or activity is None:
            return
        if not self._started and any(not is_system_table(self.project, t) for t in activity.reads):
            self._ensure_started()  # a task that only read tables (e.g. training)
        if not self._started:
            return
        state = "FAIL" if error is not None else "COMPLETE"
        if self._terminal in (state, "FAIL"):
            return
        self._terminal = state
        self.emitter.finish(activity, error)


def _merge_inputs(old: list[InputRef], new: list[InputRef]) -> list[InputRef]:
    """Union by (kind, name); the later version wins where one was read."""
    merged = {ref.key: ref for ref in old}
    for ref in new:
        if ref.key not in merged or ref.version is not None:
            merged[ref.key] = ref
    return list(merged.values())
