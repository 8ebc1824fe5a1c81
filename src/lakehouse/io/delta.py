"""Delta I/O: the store every step reads and writes the catalog's tables through.

* Registers the catalog's tables in each session (Sail's catalog lives in memory, per
  session): ``CREATE TABLE IF NOT EXISTS schema.table (...) USING delta LOCATION ...``.
* read (optionally at a version), append, overwrite, merge on keys (SQL ``MERGE INTO``).
* Enforces the table schema before every write (:mod:`lakehouse.io.schema_guard`).
* History and maintenance (optimize, vacuum, restore) through Spark SQL where the engine has
  it (JVM Spark, Spark Connect) and through ``deltalake`` (delta-rs) where it does not (Sail)
  (:mod:`lakehouse.io.maintenance`).
* Never enables table features Sail cannot write (change data feed, row tracking, domain
  metadata): the config refuses such properties.

Access control, masks, audit and lineage are not here: :mod:`lakehouse.governance` wraps
this store.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import replace

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from lakehouse.config.project import Project, TableRef
from lakehouse.core.errors import LakehouseError, SchemaMismatchError
from lakehouse.engine import EngineKind
from lakehouse.io import maintenance
from lakehouse.io.merge import merge_statement
from lakehouse.io.results import Compaction, HistoryEntry, Restored, WriteResult
from lakehouse.io.schema_guard import new_columns, schema_conformed, write_checked
from lakehouse.io.sql import create_table_statement, quote, sql_name, sql_string
from lakehouse.io.table_features import (
    Operation,
    TableProtocol,
    read_protocol,
    refuse_unreadable,
    refuse_unwritable,
)

log = logging.getLogger(__name__)


class DeltaStore:
    """Reads and writes the catalog's Delta tables for one session (no governance).

    ``on_write`` sees the result of every write except the system's own bookkeeping
    (:meth:`append_system`).
    """

    def __init__(
        self,
        spark: SparkSession,
        project: Project,
        engine: EngineKind,
        on_write: Callable[[WriteResult], None] | None = None,
    ) -> None:
        self.spark = spark
        self.project = project
        self.engine = engine
        self.on_write = on_write
        self._registered: set[str] = set()
        self._protocols: dict[str, TableProtocol | None] = {}

    def task_scope(self, task_key: str) -> AbstractContextManager[object]:
        """Nothing to attribute without governance: an empty scope."""
        return contextlib.nullcontext()

    # ------------------------------------------------------------ registration

    def register_all(self) -> None:
        """Register every catalog table in this session, creating the missing ones."""
        for ref in self.project.tables.values():
            self.ensure_table(ref.full_name)

    def is_registered(self, name: str) -> bool:
        """True once :meth:`ensure_table` registered the table in this session."""
        return name in self._registered

    def ensure_table(self, name: str) -> TableRef:
        """Create the table at its location if it does not exist, and register it."""
        ref = self.project.table(name)
        if name in self._registered:
            return ref
        self.spark.sql(f"CREATE SCHEMA IF NOT EXISTS {quote(ref.schema)}")
        self._unregister_if_elsewhere(ref)
        if self.exists(name):
            refuse_unreadable(ref.location, self.engine, name)
            self.spark.sql(
                f"CREATE TABLE IF NOT EXISTS {sql_name(ref)} USING delta "
                f"LOCATION {sql_string(ref.location)}"
            )
        else:
            self.spark.sql(create_table_statement(ref))
            log.info("created %s at %s", name, ref.location)
        self._protocols[name] = read_protocol(ref.location)
        self._registered.add(name)
        return ref

    def protocol(self, name: str) -> TableProtocol | None:
        """The table's Delta protocol and properties as read when it was registered."""
        self.ensure_table(name)
        return self._protocols.get(name)

    def _writable(self, name: str, operation: Operation) -> dict[str, str]:
        """Refuse what this engine cannot write; the table's CHECK constraints otherwise."""
        protocol = self.protocol(name)
        refuse_unwritable(protocol, self.engine, name, operation)
        return protocol.constraints if protocol is not None else {}

    def _unregister_if_elsewhere(self, ref: TableRef) -> None:
        """Drop a session registration of this name that points at another location.

        A long-lived session (a notebook, a test session) may hold the same
        ``schema.table`` from another project or data root. Only external tables are
        unregistered (their data stays); a managed table of that name is an error.
        """
        if not self.spark.catalog.tableExists(sql_name(ref)):
            return  # asking first: a failed DESCRIBE logs a page of JSON on JVM Spark
        rows = self.spark.sql(f"DESCRIBE TABLE EXTENDED {sql_name(ref)}").collect()
        info = {str(r[0]).strip(): str(r[1]).strip() for r in rows if r[0]}
        registered = info.get("Location")
        if registered is None or _same_location(registered, ref.location):
            return
        if info.get("Type", "").upper() != "EXTERNAL":
            raise LakehouseError(
                f"{ref.full_name}: the session already has a {info.get('Type', 'managed').lower()} "
                f"table {ref.engine_name} at {registered}; refusing to replace it"
            )
        log.info("re-pointing %s from %s to %s", ref.engine_name, registered, ref.location)
        self.spark.sql(f"DROP TABLE {sql_name(ref)}")

    def exists(self, name: str) -> bool:
        """True when a Delta table exists at the table's location."""
        ref = self.project.table(name)
        try:
            from deltalake import DeltaTable

            return bool(DeltaTable.is_deltatable(ref.location))
        except Exception:  # a location delta-rs cannot reach (e.g. hdfs://): ask the engine
            try:
                self.spark.read.format("delta").load(ref.location).schema  # noqa: B018
                return True
            except Exception:
                return False

    # ------------------------------------------------------------ reads

    def read(self, name: str, version: int | None = None) -> DataFrame:
        """The table as a DataFrame, optionally as of a Delta version (time travel)."""
        ref = self.ensure_table(name)
        reader = self.spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        return reader.load(ref.location)

    def schema(self, name: str) -> T.StructType:
        return self.read(name).schema

    def version(self, name: str) -> int:
        """The latest Delta version of the table."""
        entries = self.history(name, limit=1)
        return entries[0].version if entries else -1

    def history(self, name: str, limit: int | None = None) -> list[HistoryEntry]:
        """Commits, newest first (``DESCRIBE HISTORY`` or delta-rs on Sail)."""
        ref = self.ensure_table(name)
        return maintenance.read_history(self.spark, self.engine, ref, limit)

    def row_count(self, name: str) -> int:
        return int(self.read(name).count())

    def row_count_unchecked(self, name: str) -> int:
        """Row count for listings (metadata, no SELECT needed, not audited)."""
        return int(self.read(name).count())

    # ------------------------------------------------------------ writes

    def append(self, name: str, df: DataFrame, *, add_new_columns: bool = False) -> WriteResult:
        """Append rows (schema enforced); ``add_new_columns`` evolves the table (mergeSchema)."""
        return self._write(name, df, "append", add_new_columns=add_new_columns)

    def append_system(self, name: str, df: DataFrame) -> WriteResult:
        """Append the project's own bookkeeping rows (audit, lineage, job runs): schema
        enforced, not observed."""
        return self._write(name, df, "append", observed=False)

    def overwrite(self, name: str, df: DataFrame) -> WriteResult:
        """Replace the table's rows (schema enforced; a new Delta version, old ones kept)."""
        return self._write(name, df, "overwrite")

    def _write(
        self,
        name: str,
        df: DataFrame,
        mode: str,
        *,
        add_new_columns: bool = False,
        observed: bool = True,
    ) -> WriteResult:
        ref = self.ensure_table(name)
        constraints = self._writable(name, "overwrite" if mode == "overwrite" else "append")
        started = time.perf_counter()
        before = self.version(name)
        if add_new_columns:
            new = new_columns(self.schema(name), df)
            if new:
                self.add_columns(name, new)

        def save(data: DataFrame) -> None:
            writer = data.write.format("delta").mode(mode)
            if ref.spec.partition_by:
                writer = writer.partitionBy(*ref.spec.partition_by)
            writer.save(ref.location)

        conformed = schema_conformed(df, self.schema(name), name)
        write_checked(replace(conformed, constraints=constraints), save)
        return self._result(name, mode, before, started, observed=observed)

    def add_columns(self, name: str, columns: list[tuple[str, T.DataType]]) -> None:
        """Add nullable columns (schema evolution), as a metadata-only commit.

        Sail ignores ``mergeSchema`` on tables with a NOT NULL column (it drops the new
        column without an error), so columns are added explicitly: ``ALTER TABLE ... ADD
        COLUMNS`` where the engine has it, delta-rs on Sail.
        """
        ref = self.ensure_table(name)
        self._writable(name, "alter")
        maintenance.add_nullable_columns(self.spark, self.engine, ref, columns)
        missing = [col for col, _ in columns if col not in self.schema(name).fieldNames()]
        if missing:
            raise SchemaMismatchError(f"{name}: could not add columns {', '.join(missing)}")
        log.warning("%s: added columns %s", name, ", ".join(col for col, _ in columns))

    def merge(
        self,
        name: str,
        source: DataFrame,
        keys: list[str],
        *,
        newer_than: str | None = None,
        insert_only: bool = False,
        delete_flag: str | None = None,
    ) -> WriteResult:
        """Upsert ``source`` into the table on ``keys`` (SQL ``MERGE INTO``, see
        :func:`lakehouse.io.merge.merge_statement` for the options)."""
        ref = self.ensure_table(name)
        if not keys:
            raise LakehouseError(f"{name}: merge needs at least one key column")
        constraints = self._writable(name, "merge")
        started = time.perf_counter()
        before = self.version(name)
        conformed = replace(
            schema_conformed(
                source, self.schema(name), name, allow_new_columns=delete_flag is not None
            ),
            constraints=constraints,
            exempt=delete_flag,
        )
        data = conformed.data
        columns = [c for c in data.columns if c != delete_flag]
        unexpected = [c for c in data.columns if c not in columns and c != delete_flag]
        if len(data.columns) - len(columns) > 1 or unexpected:
            raise SchemaMismatchError(f"{name}: unexpected columns in the merge source")
        view = f"lakehouse_merge_{uuid.uuid4().hex[:12]}"
        statement = merge_statement(
            sql_name(ref),
            view,
            columns,
            keys,
            newer_than=newer_than,
            insert_only=insert_only,
            delete_flag=delete_flag,
        )

        def run_merge(rows: DataFrame) -> None:
            rows.createOrReplaceTempView(view)
            try:
                self.spark.sql(statement).collect()
            finally:
                self.spark.catalog.dropTempView(view)

        write_checked(conformed, run_merge)
        return self._result(name, "merge", before, started)

    def _result(
        self, name: str, operation: str, before: int, started: float, *, observed: bool = True
    ) -> WriteResult:
        latest = self.history(name, limit=1)
        entry = latest[0] if latest else None
        committed = entry is not None and entry.version != before
        metrics = entry.metrics if (entry and committed) else {}
        if operation == "merge":
            rows = (
                int(metrics.get("numTargetRowsInserted", 0))
                + int(metrics.get("numTargetRowsUpdated", 0))
                + int(metrics.get("numTargetRowsDeleted", 0))
            )
        else:
            rows = int(metrics.get("numOutputRows", 0))
        result = WriteResult(
            table=name,
            operation=operation,
            rows_written=rows,
            version=entry.version if entry else before,
            previous_version=before if before >= 0 else None,
            seconds=time.perf_counter() - started,
            metrics=metrics,
        )
        log.info("%s %s: %d rows, version %s", operation, name, rows, result.version)
        if observed and self.on_write is not None:
            self.on_write(result)
        return result

    # ------------------------------------------------------------ maintenance

    def optimize(self, name: str, zorder_by: list[str] | None = None) -> Compaction:
        """Compact small files (and Z-order when columns are given)."""
        ref = self.ensure_table(name)
        return maintenance.optimize_table(self.spark, self.engine, ref, zorder_by)

    def vacuum(
        self, name: str, retention_hours: int = 168, *, enforce_retention_duration: bool = True
    ) -> list[str]:
        """Delete files no longer referenced by versions within the retention window; the
        files deleted.

        As in Delta, a window shorter than the table's ``delta.deletedFileRetentionDuration``
        (7 days by default) is refused unless ``enforce_retention_duration=False``: readers
        of an older version may still need those files.
        """
        ref = self.ensure_table(name)
        return maintenance.vacuum_table(
            self.spark, self.engine, ref, retention_hours, enforce_retention_duration
        )

    def restore(self, name: str, version: int) -> Restored:
        """Restore the table to an earlier version (a new commit; history is kept)."""
        ref = self.ensure_table(name)
        return maintenance.restore_table(self.spark, self.engine, ref, version)


def _same_location(a: str, b: str) -> bool:
    def norm(p: str) -> str:
        for prefix in ("file://", "file:"):
            if p.startswith(prefix):
                p = p[len(prefix) :]
                break
        return p.rstrip("/")

    return norm(a) == norm(b)
