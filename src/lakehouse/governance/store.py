"""The governed store: a :class:`~lakehouse.io.store.TableStore` that checks access first.

Every operation asks the run's :class:`GovernanceScope` (a denial raises
:class:`~lakehouse.governance.scope.AccessDeniedError`), delegates to the inner Delta store,
filters and masks what it reads and publishes :class:`TableRead` / :class:`WriteCommitted` events to the
scope's sink, which the audit log and the lineage recorder subscribe to. The system's own
bookkeeping (audit, lineage, job runs) is written through the inner store (:attr:`system`).
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from lakehouse.config.project import Project, TableRef
from lakehouse.config.system_tables import SystemTable, system_table_name
from lakehouse.engine import EngineKind
from lakehouse.governance.audit import AuditLog
from lakehouse.governance.events import SUCCEEDED, EventSink, TableRead, TaskOutcome, WriteCommitted
from lakehouse.governance.lineage.openlineage import openlineage_emitter
from lakehouse.governance.lineage.recorder import LineageRecorder, RunInfo
from lakehouse.governance.scope import GovernanceScope, TaskScope
from lakehouse.io.delta import DeltaStore
from lakehouse.io.results import Compaction, HistoryEntry, Restored, WriteResult
from lakehouse.io.schema_guard import new_columns
from lakehouse.io.store import TableName
from lakehouse.io.table_features import TableProtocol


class GovernedStore:
    """One principal's access to the catalog's tables during one run.

    An operation takes a table's handle or its name; a name is parsed into the handle once,
    when the operation starts, and access is checked, masks applied and events published
    from the handle (its ``full_name``) without looking the name up again.

    ``system_tables`` are the tables the subscribers write (audit, lineage): creating them
    is the system's doing, not the principal's, so it is not checked.
    """

    def __init__(
        self, inner: DeltaStore, scope: GovernanceScope, system_tables: frozenset[str] = frozenset()
    ) -> None:
        self.system = inner
        self.governance = scope
        self.system_tables = system_tables

    @property
    def spark(self) -> SparkSession:
        return self.system.spark

    @property
    def project(self) -> Project:
        return self.system.project

    @property
    def engine(self) -> EngineKind:
        return self.system.engine

    def task_scope(self, task_key: str) -> TaskScope:
        """Attribute accesses to ``task_key``; write the audit and lineage rows at its end."""
        return self.governance.task_scope(task_key)

    def flush(self, outcome: TaskOutcome = SUCCEEDED) -> None:
        """Write the buffered audit and lineage rows now."""
        self.governance.flush(outcome)

    def _ref(self, table: TableName) -> TableRef:
        """The table's handle: given, or its name parsed (once, here at the edge)."""
        return table if isinstance(table, TableRef) else self.project.table(table)

    def _checked(self, privilege: str, table: TableName) -> TableRef:
        """Authorize ``privilege`` on the table, then its handle. A name is checked as given
        and parsed after the check, so a denial on an unknown name still reads as a denial."""
        self.governance.authorize(
            privilege, table.full_name if isinstance(table, TableRef) else table
        )
        return self._ref(table)

    # ------------------------------------------------------------ registration

    def register_all(self) -> None:
        """Register every catalog table in this session, creating the missing ones where the
        acting principal may CREATE TABLE; the others are registered once they exist."""
        for ref in self.project.tables.values():
            schema = f"{ref.catalog}.{ref.schema}"
            if not ref.spec.columns:  # its columns come from its first write
                if self.system.exists(ref):
                    self._ensure_ref(ref)
            elif self.governance.may("CREATE TABLE", schema) or self.system.exists(ref):
                self._ensure_ref(ref)

    def ensure_table(self, name: TableName) -> TableRef:
        """Register the table; creating it needs CREATE TABLE on its schema."""
        return self._ensure_ref(self._ref(name))

    def _ensure_ref(self, ref: TableRef) -> TableRef:
        """Register the table of a resolved handle (CREATE TABLE checked when it is new)."""
        if (
            ref.full_name not in self.system_tables
            and not self.system.is_registered(ref.full_name)
            and not self.system.exists(ref)
        ):
            self.governance.authorize("CREATE TABLE", f"{ref.catalog}.{ref.schema}")
        return self.system.ensure_table(ref)

    def protocol(self, name: TableName) -> TableProtocol | None:
        return self.system.protocol(self.ensure_table(name))

    def exists(self, name: TableName) -> bool:
        return self.system.exists(name)

    # ------------------------------------------------------------ reads

    def read(self, name: TableName, version: int | None = None) -> DataFrame:
        """The table (needs SELECT): the rows its row filters let the principal see, masked
        for a principal without UNMASK; subscribers (lineage) learn the version read."""
        ref = self._checked("SELECT", name)
        self._ensure_ref(ref)
        if self.governance.events:
            version = self.system.version(ref) if version is None else version
            self.governance.events.publish(TableRead(ref.full_name, version))
        return self.governance.restrict(ref.full_name, self.system.read(ref, version))

    def schema(self, name: TableName) -> T.StructType:
        return self.system.schema(self.ensure_table(name))

    def version(self, name: TableName) -> int:
        return self.system.version(self.ensure_table(name))

    def history(self, name: TableName, limit: int | None = None) -> list[HistoryEntry]:
        return self.system.history(self.ensure_table(name), limit)

    def row_count(self, name: TableName) -> int:
        return int(self.read(name).count())

    def row_count_unchecked(self, name: TableName) -> int:
        """Row count for listings (metadata, no SELECT needed, not audited)."""
        return self.system.row_count_unchecked(self.ensure_table(name))

    # ------------------------------------------------------------ writes

    def append(
        self, name: TableName, df: DataFrame, *, add_new_columns: bool = False
    ) -> WriteResult:
        """Append rows (needs MODIFY; adding columns is checked as its own MODIFY)."""
        ref = self._checked("MODIFY", name)
        self._ensure_ref(ref)
        if add_new_columns and new_columns(self.system.schema(ref), df):
            self.governance.authorize("MODIFY", ref.full_name)
        return self._committed(self.system.append(ref, df, add_new_columns=add_new_columns))

    def append_system(self, name: TableName, df: DataFrame) -> WriteResult:
        """The system's own bookkeeping rows: straight to the inner store."""
        return self.system.append_system(name, df)

    def overwrite(self, name: TableName, df: DataFrame) -> WriteResult:
        ref = self._checked("MODIFY", name)
        return self._committed(self.system.overwrite(self._ensure_ref(ref), df))

    def merge(
        self,
        name: TableName,
        source: DataFrame,
        keys: list[str],
        *,
        newer_than: str | None = None,
        insert_only: bool = False,
        delete_flag: str | None = None,
    ) -> WriteResult:
        ref = self._checked("MODIFY", name)
        result = self.system.merge(
            self._ensure_ref(ref),
            source,
            keys,
            newer_than=newer_than,
            insert_only=insert_only,
            delete_flag=delete_flag,
        )
        return self._committed(result)

    def _committed(self, result: WriteResult) -> WriteResult:
        self.governance.events.publish(WriteCommitted(result))
        return result

    def add_columns(self, name: TableName, columns: list[tuple[str, T.DataType]]) -> None:
        ref = self._checked("MODIFY", name)
        self.system.add_columns(self._ensure_ref(ref), columns)

    def evolve(
        self, name: TableName, produced: T.StructType, *, step: str, replace: bool = False
    ) -> TableRef:
        """Create or evolve the table (MODIFY; creating needs CREATE TABLE on its schema)."""
        ref = self._checked("MODIFY", name)
        if ref.full_name not in self.system_tables and not self.system.exists(ref):
            self.governance.authorize("CREATE TABLE", f"{ref.catalog}.{ref.schema}")
        return self.system.evolve(ref, produced, step=step, replace=replace)

    def delete_where(self, name: TableName, predicate: str) -> WriteResult:
        """Delete the rows matching a SQL predicate (MODIFY)."""
        return self.system.delete_where(self._checked("MODIFY", name), predicate)

    def drop_data(self, name: TableName) -> bool:
        """Delete the table's data (MODIFY)."""
        return self.system.drop_data(self._checked("MODIFY", name))

    # ------------------------------------------------------------ maintenance

    def optimize(self, name: TableName, zorder_by: list[str] | None = None) -> Compaction:
        ref = self._checked("MODIFY", name)
        return self.system.optimize(self._ensure_ref(ref), zorder_by)

    def vacuum(
        self,
        name: TableName,
        retention_hours: int = 168,
        *,
        enforce_retention_duration: bool = True,
    ) -> list[str]:
        ref = self._checked("MODIFY", name)
        return self.system.vacuum(
            self._ensure_ref(ref),
            retention_hours,
            enforce_retention_duration=enforce_retention_duration,
        )

    def restore(self, name: TableName, version: int) -> Restored:
        ref = self._checked("MODIFY", name)
        return self.system.restore(self._ensure_ref(ref), version)


def governed_tables(
    spark: SparkSession,
    project: Project,
    engine: EngineKind,
    *,
    principal: str,
    run_id: str,
    job: str,
    on_write: Any = None,
) -> GovernedStore:
    """The store for one run: access control, with audit and lineage subscribed."""
    inner = DeltaStore(spark, project, engine, on_write=on_write)
    audit = AuditLog(system_table_name(project.catalog.name, SystemTable.ACCESS_AUDIT))
    run = RunInfo(job=job, run_id=run_id, principal=principal, engine=str(engine))
    recorder = LineageRecorder(project, run, emitter=openlineage_emitter(project, run_id))
    scope = GovernanceScope(
        project,
        principal,
        run_id=run_id,
        job=job,
        events=EventSink([audit, recorder]),
        system_store=inner,
    )
    system_tables = frozenset(
        {audit.table, system_table_name(project.catalog.name, SystemTable.LINEAGE)}
    )
    return GovernedStore(inner, scope, system_tables)
