"""Delta I/O: the store every step reads and writes the catalog's tables through.

* Registers the catalog's tables in each session (Sail's catalog lives in memory, per
  session): ``CREATE TABLE IF NOT EXISTS schema.table (...) USING delta LOCATION ...``.
* read (optionally at a version), append, overwrite, merge on keys (SQL ``MERGE INTO``).
* Enforces the table schema before every write (:mod:`lakehouse.io.schema_guard`).
* Resolves a table name once per call, and reads the Delta log once before a write (version,
  schema, protocol: :mod:`lakehouse.io.snapshot`) and once after it (the commit's metrics).
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
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.config.project import Project, TableRef
from lakehouse.core.errors import LakehouseError, SchemaMismatchError
from lakehouse.engine import EngineKind
from lakehouse.io import maintenance
from lakehouse.io.merge import merge_statement
from lakehouse.io.results import Compaction, HistoryEntry, Restored, WriteResult
from lakehouse.io.schema_guard import new_columns, schema_conformed, write_checked
from lakehouse.io.snapshot import TableSnapshot, read_snapshot
from lakehouse.io.sql import create_table_statement, quote, sql_name, sql_string
from lakehouse.io.store import TableName
from lakehouse.io.table_features import (
    Operation,
    TableProtocol,
    read_protocol,
    refuse_unreadable,
    refuse_unwritable,
)
from lakehouse.io.table_schema import (
    effective_columns,
    plan_changes,
    type_name,
    unsafe_change_error,
    wanted_schema,
)

log = logging.getLogger(__name__)


class DeltaStore:
    """Reads and writes the catalog's Delta tables for one session (no governance).

    A table is named by its ``catalog.schema.table`` or by its handle (:class:`TableRef`): a
    public method resolves the name once and its steps pass the handle on. ``on_write`` sees
    the result of every write except the system's own bookkeeping (:meth:`append_system`).
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
        self._registered: dict[str, TableRef] = {}
        self._protocols: dict[str, TableProtocol | None] = {}

    def task_scope(self, task_key: str) -> AbstractContextManager[object]:
        """Nothing to attribute without governance: an empty scope."""
        return contextlib.nullcontext()

    def _handle(self, table: TableName) -> TableRef:
        """The table's handle: given, registered in this session, or looked up in the catalog."""
        if isinstance(table, TableRef):
            return table
        return self._registered.get(table) or self.project.table(table)

    # ------------------------------------------------------------ registration

    def register_all(self) -> None:
        """Register every catalog table in this session, creating the missing ones (a table
        that declares no columns is created by its first write, not empty)."""
        for ref in self.project.tables.values():
            if ref.spec.columns or self._exists(ref):
                self._ensure(ref)

    def is_registered(self, name: str) -> bool:
        """True once :meth:`ensure_table` registered the table in this session."""
        return name in self._registered

    def ensure_table(self, name: TableName) -> TableRef:
        """Create the table at its location if it does not exist, and register it."""
        return self._ensure(self._handle(name))

    def _ensure(self, ref: TableRef) -> TableRef:
        name = ref.full_name
        if name in self._registered:
            return ref
        self.spark.sql(f"CREATE SCHEMA IF NOT EXISTS {quote(ref.schema)}")
        self._unregister_if_elsewhere(ref)
        if self._exists(ref):
            refuse_unreadable(ref.location, self.engine, name)
            self.spark.sql(
                f"CREATE TABLE IF NOT EXISTS {sql_name(ref)} USING delta "
                f"LOCATION {sql_string(ref.location)}"
            )
        elif not ref.spec.columns:
            return ref  # its columns come from the data: created by its first write (evolve)
        else:
            self.spark.sql(create_table_statement(ref))
            log.info("created %s at %s", name, ref.location)
        self._register_qualified(ref)
        self._protocols[name] = read_protocol(ref.location)
        self._registered[name] = ref
        return ref

    def _register_qualified(self, ref: TableRef) -> None:
        """On Sail, register the table under ``catalog.schema.table`` too: the name Databricks
        code uses (``spark.read.table("main.sales.orders")``). Sail keeps a multi-level
        namespace; JVM Spark's session catalog has one level, so there only ``schema.table``."""
        if self.engine != "sail" or self.spark.catalog.currentCatalog() == ref.catalog:
            return  # JVM: one level; Sail started with the project's catalog: native
        namespace = f"{quote(ref.catalog)}.{quote(ref.schema)}"
        qualified = f"{namespace}.{quote(ref.name)}"
        self.spark.sql(f"CREATE SCHEMA IF NOT EXISTS {namespace}")
        self._unregister_if_elsewhere(ref, qualified)
        self.spark.sql(
            f"CREATE TABLE IF NOT EXISTS {qualified} USING delta LOCATION {sql_string(ref.location)}"
        )

    def protocol(self, name: TableName) -> TableProtocol | None:
        """The table's Delta protocol and properties as read when it was registered."""
        ref = self._ensure(self._handle(name))
        return self._protocols.get(ref.full_name)

    def _write_snapshot(self, ref: TableRef, operation: Operation) -> TableSnapshot:
        """The table's version, schema and protocol (one log read), once this engine may
        ``operation`` it (the snapshot's CHECK constraints are what the write checks)."""
        snapshot = read_snapshot(self.spark, self.engine, ref)
        refuse_unwritable(snapshot.protocol, self.engine, ref.full_name, operation)
        return snapshot

    def _unregister_if_elsewhere(self, ref: TableRef, session_name: str | None = None) -> None:
        """Drop a session registration of this name that points at another location.

        A long-lived session (a notebook, a test session) may hold the same
        ``schema.table`` from another project or data root. Only external tables are
        unregistered (their data stays); a managed table of that name is an error.
        """
        name = session_name or sql_name(ref)
        if not self.spark.catalog.tableExists(name):
            return  # asking first: a failed DESCRIBE logs a page of JSON on JVM Spark
        rows = self.spark.sql(f"DESCRIBE TABLE EXTENDED {name}").collect()
        info = {str(r[0]).strip(): str(r[1]).strip() for r in rows if r[0]}
        registered = info.get("Location")
        if registered is None or _same_location(registered, ref.location):
            return
        if info.get("Type", "").upper() != "EXTERNAL":
            raise LakehouseError(
                f"{ref.full_name}: the session already has a {info.get('Type', 'managed').lower()} "
                f"table {name} at {registered}; refusing to replace it"
            )
        log.info("re-pointing %s from %s to %s", name, registered, ref.location)
        self.spark.sql(f"DROP TABLE {name}")

    def exists(self, name: TableName) -> bool:
        """True when a Delta table exists at the table's location."""
        return self._exists(self._handle(name))

    def _exists(self, ref: TableRef) -> bool:
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

    def read(self, name: TableName, version: int | None = None) -> DataFrame:
        """The table as a DataFrame, optionally as of a Delta version (time travel)."""
        ref = self._ensure(self._handle(name))
        if ref.full_name not in self._registered:
            raise LakehouseError(
                f"{ref.full_name}: the table does not exist yet (the catalog declares no "
                "columns: the step that writes it creates it)"
            )
        return self._load(ref, version)

    def _load(self, ref: TableRef, version: int | None = None) -> DataFrame:
        reader = self.spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        return reader.load(ref.location)

    def schema(self, name: TableName) -> T.StructType:
        return self.read(name).schema

    def version(self, name: TableName) -> int:
        """The latest Delta version of the table."""
        entries = self.history(name, limit=1)
        return entries[0].version if entries else -1

    def history(self, name: TableName, limit: int | None = None) -> list[HistoryEntry]:
        """Commits, newest first (``DESCRIBE HISTORY`` or delta-rs on Sail)."""
        ref = self._ensure(self._handle(name))
        return maintenance.read_history(self.spark, self.engine, ref, limit)

    def row_count(self, name: TableName) -> int:
        return int(self.read(name).count())

    def row_count_unchecked(self, name: TableName) -> int:
        """Row count for listings (metadata, no SELECT needed, not audited)."""
        return int(self.read(name).count())

    # ------------------------------------------------------------ writes

    def append(
        self, name: TableName, df: DataFrame, *, add_new_columns: bool = False
    ) -> WriteResult:
        """Append rows (schema enforced); ``add_new_columns`` evolves the table (mergeSchema)."""
        ref = self._ensure(self._handle(name))
        return self._write(ref, df, "append", add_new_columns=add_new_columns)

    def append_system(self, name: TableName, df: DataFrame) -> WriteResult:
        """Append the project's own bookkeeping rows (audit, lineage, job runs): schema
        enforced, not observed."""
        return self._write(self._ensure(self._handle(name)), df, "append", observed=False)

    def overwrite(self, name: TableName, df: DataFrame) -> WriteResult:
        """Replace the table's rows (schema enforced; a new Delta version, old ones kept)."""
        return self._write(self._ensure(self._handle(name)), df, "overwrite")

    def _write(
        self,
        ref: TableRef,
        df: DataFrame,
        mode: str,
        *,
        add_new_columns: bool = False,
        observed: bool = True,
    ) -> WriteResult:
        started = time.perf_counter()
        snapshot = self._write_snapshot(ref, "overwrite" if mode == "overwrite" else "append")
        schema = snapshot.schema
        if add_new_columns:
            new = new_columns(schema, df)
            if new:
                schema = self._add_columns(ref, new, snapshot.protocol)

        def save(data: DataFrame) -> None:
            writer = for_delta_write(data, self.engine, ref.spec.partition_by).write.format("delta")
            writer = writer.mode(mode)
            if ref.spec.partition_by:
                writer = writer.partitionBy(*ref.spec.partition_by)
            writer.save(ref.location)

        conformed = schema_conformed(df, schema, ref.full_name)
        write_checked(replace(conformed, constraints=_constraints(snapshot)), save)
        return self._result(ref, mode, snapshot.version, started, observed=observed)

    def add_columns(self, name: TableName, columns: list[tuple[str, T.DataType]]) -> None:
        """Add nullable columns (schema evolution), as a metadata-only commit.

        Sail ignores ``mergeSchema`` on tables with a NOT NULL column (it drops the new
        column without an error), so columns are added explicitly: ``ALTER TABLE ... ADD
        COLUMNS`` where the engine has it, delta-rs on Sail.
        """
        ref = self._ensure(self._handle(name))
        self._add_columns(ref, columns, self._protocols.get(ref.full_name))

    def _add_columns(
        self, ref: TableRef, columns: list[tuple[str, T.DataType]], protocol: TableProtocol | None
    ) -> T.StructType:
        """Add the columns; the table's schema after the commit (read back to check it)."""
        refuse_unwritable(protocol, self.engine, ref.full_name, "alter")
        maintenance.add_nullable_columns(self.spark, self.engine, ref, columns)
        schema = read_snapshot(self.spark, self.engine, ref).schema
        missing = [col for col, _ in columns if col not in schema.fieldNames()]
        if missing:
            raise SchemaMismatchError(
                f"{ref.full_name}: could not add columns {', '.join(missing)}"
            )
        log.warning("%s: added columns %s", ref.full_name, ", ".join(col for col, _ in columns))
        return schema

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
        """Upsert ``source`` into the table on ``keys`` (SQL ``MERGE INTO``, see
        :func:`lakehouse.io.merge.merge_statement` for the options)."""
        ref = self._ensure(self._handle(name))
        if not keys:
            raise LakehouseError(f"{ref.full_name}: merge needs at least one key column")
        started = time.perf_counter()
        snapshot = self._write_snapshot(ref, "merge")
        conformed = replace(
            schema_conformed(
                source, snapshot.schema, ref.full_name, allow_new_columns=delete_flag is not None
            ),
            constraints=_constraints(snapshot),
            exempt=delete_flag,
        )
        data = conformed.data
        columns = [c for c in data.columns if c != delete_flag]
        unexpected = [c for c in data.columns if c not in columns and c != delete_flag]
        if len(data.columns) - len(columns) > 1 or unexpected:
            raise SchemaMismatchError(f"{ref.full_name}: unexpected columns in the merge source")
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
        return self._result(ref, "merge", snapshot.version, started)

    def _result(
        self, ref: TableRef, operation: str, before: int, started: float, *, observed: bool = True
    ) -> WriteResult:
        """What the write committed, from one read of the table's latest commit."""
        latest = maintenance.read_history(self.spark, self.engine, ref, limit=1)
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
            table=ref.full_name,
            operation=operation,
            rows_written=rows,
            version=entry.version if entry else before,
            previous_version=before if before >= 0 else None,
            seconds=time.perf_counter() - started,
            metrics=metrics,
        )
        log.info("%s %s: %d rows, version %s", operation, ref.full_name, rows, result.version)
        if observed and self.on_write is not None:
            self.on_write(result)
        return result

    # ------------------------------------------------------------ schema evolution

    def evolve(
        self, name: TableName, produced: T.StructType, *, step: str, replace: bool = False
    ) -> TableRef:
        """Make the table take rows of ``produced`` (the columns a Silver or Gold step
        makes): create it when it does not exist (the data's columns with the declared
        types), add the columns it lacks, apply safe type widenings; an unsafe type change
        raises one line naming the fix, unless ``replace`` (a full refresh): then the table
        is deleted and created again from ``produced``, as on a first run."""
        ref = self._handle(name)
        wanted = wanted_schema(ref, produced, step=step)
        if not self._exists(ref):
            self._create_from(ref, wanted)
            return self._ensure(ref)
        ref = self._ensure(ref)
        snapshot = self._write_snapshot(ref, "alter")
        declared = {c.name for c in ref.spec.columns}
        changes = plan_changes(snapshot.schema, wanted, declared)
        if changes.unsafe and replace:
            old_name, old_type, new_type = changes.unsafe[0]
            log.warning(
                "%s: %s changes from %s to %s: creating the table again (full refresh)",
                ref.full_name,
                old_name,
                type_name(old_type),
                type_name(new_type),
            )
            self.drop_data(ref)
            self._create_from(ref, wanted)
            return self._ensure(ref)
        if changes.unsafe:
            raise unsafe_change_error(ref, changes.unsafe[0])
        if changes.added:
            self._add_columns(ref, [(f.name, f.dataType) for f in changes.added], snapshot.protocol)
        if changes.widened:
            widened = {n: new for n, _, new in changes.widened}
            schema = read_snapshot(self.spark, self.engine, ref).schema
            target = T.StructType(
                [
                    T.StructField(f.name, widened.get(f.name, f.dataType), f.nullable, f.metadata)
                    for f in schema
                ]
            )
            self._rewrite(ref, target)
            log.warning(
                "%s: widened %s",
                ref.full_name,
                ", ".join(f"{n} {type_name(o)} -> {type_name(w)}" for n, o, w in changes.widened),
            )
        return ref

    def _create_from(self, ref: TableRef, wanted: T.StructType) -> None:
        """Create the table with ``wanted``'s columns (and what the catalog declares)."""
        names = set(wanted.fieldNames())
        for field_name in ("partition_by", "keys"):
            for col in getattr(ref.spec, field_name):
                if col not in names:
                    raise SchemaMismatchError(
                        f"{ref.full_name}: {field_name} names {col}, which the data does not have"
                    )
        self.spark.sql(f"CREATE SCHEMA IF NOT EXISTS {quote(ref.schema)}")
        self._unregister_if_elsewhere(ref)
        self.spark.sql(create_table_statement(ref, effective_columns(ref, wanted)))
        self._register_qualified(ref)
        log.info("created %s at %s from the data's columns", ref.full_name, ref.location)

    def _rewrite(self, ref: TableRef, schema: T.StructType) -> None:
        """Rewrite the table's rows cast to ``schema`` in one commit (``overwriteSchema``;
        Delta's type widening is not available on Sail)."""
        rows = self._load(ref).select(
            *[
                F.col(quote(f.name)).cast(f.dataType).alias(f.name, metadata=f.metadata)
                for f in schema.fields
            ]
        )
        writer = for_delta_write(rows, self.engine, ref.spec.partition_by).write.format("delta")
        writer = writer.mode("overwrite").option("overwriteSchema", "true")
        if ref.spec.partition_by:
            writer = writer.partitionBy(*ref.spec.partition_by)
        writer.save(ref.location)

    def delete_where(self, name: TableName, predicate: str) -> WriteResult:
        """Delete the rows matching the SQL ``predicate`` (``DELETE FROM``; nothing when the
        table does not exist)."""
        ref = self._handle(name)
        started = time.perf_counter()
        if not self._exists(ref):
            return WriteResult(ref.full_name, "delete", 0, -1, None, 0.0, {})
        ref = self._ensure(ref)
        snapshot = self._write_snapshot(ref, "merge")
        self.spark.sql(f"DELETE FROM {sql_name(ref)} WHERE {predicate}").collect()
        return self._result(ref, "delete", snapshot.version, started)

    def drop_data(self, name: TableName) -> bool:
        """Delete the table's Delta data (all versions) and its session registration; the
        next write creates it again. False when there was no table."""
        ref = self._handle(name)
        existed = self._exists(ref)
        if self.spark.catalog.tableExists(sql_name(ref)):
            self.spark.sql(f"DROP TABLE IF EXISTS {sql_name(ref)}")
        self._registered.pop(ref.full_name, None)
        self._protocols.pop(ref.full_name, None)
        if existed:
            delete_location(ref.location)
        return existed

    # ------------------------------------------------------------ maintenance

    def optimize(self, name: TableName, zorder_by: list[str] | None = None) -> Compaction:
        """Compact small files (and Z-order when columns are given)."""
        ref = self.ensure_table(name)
        return maintenance.optimize_table(self.spark, self.engine, ref, zorder_by)

    def vacuum(
        self,
        name: TableName,
        retention_hours: int = 168,
        *,
        enforce_retention_duration: bool = True,
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

    def restore(self, name: TableName, version: int) -> Restored:
        """Restore the table to an earlier version (a new commit; history is kept)."""
        ref = self.ensure_table(name)
        return maintenance.restore_table(self.spark, self.engine, ref, version)


def for_delta_write(df: DataFrame, engine: EngineKind, partition_by: list[str]) -> DataFrame:
    """``df`` with a shuffle in front of Sail's Delta writer (one file per table partition).

    Sail's cluster modes run the Delta writer in the same stage as the plan under it, and its
    workers decode that stage without Sail's scalar functions (``upper``, ``trim``, ``abs``,
    ``size``, ...: "ExtendedScalarUdf: no UDF found"). A repartition ends the stage before
    the writer, so the plan runs where the functions are: in local and cluster mode alike.
    Unpartitioned tables get one file per write, as Sail writes small frames today.
    """
    if engine != "sail":
        return df
    if partition_by:
        return df.repartition(*[F.col(quote(c)) for c in partition_by])
    return df.repartition(1)


def _constraints(snapshot: TableSnapshot) -> dict[str, str]:
    """The CHECK constraints a write into the snapshot's table must pass."""
    return snapshot.protocol.constraints if snapshot.protocol is not None else {}


def delete_location(location: str) -> None:
    """Delete a table's directory (local or a filesystem URI pyarrow reaches)."""
    import shutil
    from pathlib import Path

    from pyarrow import fs as pafs

    if "://" in location and not location.startswith("file://"):
        filesystem, inner = pafs.FileSystem.from_uri(location)
        filesystem.delete_dir(inner)
        return
    shutil.rmtree(Path(location.removeprefix("file://").removeprefix("file:")), ignore_errors=True)


def _same_location(a: str, b: str) -> bool:
    def norm(p: str) -> str:
        for prefix in ("file://", "file:"):
            if p.startswith(prefix):
                p = p[len(prefix) :]
                break
        return p.rstrip("/")

    return norm(a) == norm(b)
