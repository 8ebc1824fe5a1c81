"""Delta I/O: the one adapter every step reads and writes tables through.

* Registers the catalog's tables in each session (Sail's catalog lives in memory, per
  session): ``CREATE TABLE IF NOT EXISTS schema.table (...) USING delta LOCATION ...``.
* read (optionally at a version), append, overwrite, merge on keys (SQL ``MERGE INTO``).
* Enforces the table schema before every write: safe widening casts are applied, a value
  that does not fit its column (a BIGINT overflowing an INT, which Sail would silently store
  as NULL) or a NULL in a NOT NULL column refuses the write with a clear error.
* History and maintenance (optimize, vacuum, restore) through Spark SQL where the engine has
  it (JVM Spark, Spark Connect) and through ``deltalake`` (delta-rs) where it does not (Sail).
* Never enables table features Sail cannot write (change data feed, row tracking, domain
  metadata): the config refuses such properties.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import reduce
from typing import TYPE_CHECKING, Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.config.loader import Project, TableRef
from lakehouse.core.errors import LakehouseError, SchemaMismatchError, one_line
from lakehouse.engine import EngineKind
from lakehouse.table_features import (
    Operation,
    TableProtocol,
    read_protocol,
    refuse_unreadable,
    refuse_unwritable,
)

if TYPE_CHECKING:
    from lakehouse.catalog.governance import Governance

log = logging.getLogger(__name__)

_INTEGRAL_RANK = {"tinyint": 1, "smallint": 2, "int": 3, "bigint": 4}


@dataclass(frozen=True)
class WriteResult:
    """What one write did to one table."""

    table: str
    operation: str
    rows_written: int
    version: int
    previous_version: int | None
    seconds: float
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def committed(self) -> bool:
        """False when the write changed nothing (e.g. a MERGE with no changed rows)."""
        return self.version != self.previous_version


@dataclass(frozen=True)
class HistoryEntry:
    version: int
    timestamp_ms: int
    operation: str
    metrics: dict[str, Any]


def quote(identifier: str) -> str:
    """Backtick-quote one identifier part."""
    return "`" + identifier.replace("`", "``") + "`"


def sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def ddl_columns(ref: TableRef) -> str:
    parts = []
    for col in ref.spec.columns:
        part = f"{quote(col.name)} {col.type.upper()}"
        if not col.nullable:
            part += " NOT NULL"
        if col.comment:
            part += f" COMMENT {sql_string(col.comment)}"
        parts.append(part)
    return ", ".join(parts)


def _is_safe_widening(source: T.DataType, target: T.DataType) -> bool:
    s, t = source.simpleString(), target.simpleString()
    if s == t:
        return True
    if s in _INTEGRAL_RANK and t in _INTEGRAL_RANK:
        return _INTEGRAL_RANK[s] <= _INTEGRAL_RANK[t]
    if s in _INTEGRAL_RANK and t in ("double", "string"):
        return True
    if s == "float" and t == "double":
        return True
    if s == "date" and t in ("timestamp", "timestamp_ntz"):
        return True
    if isinstance(source, T.DecimalType) and isinstance(target, T.DecimalType):
        return (
            target.scale >= source.scale
            and target.precision - target.scale >= source.precision - source.scale
        )
    if isinstance(target, T.StringType):
        return isinstance(source, T.AtomicType)
    return isinstance(source, T.NullType)


WRITE_GUARD = "LAKEHOUSE_WRITE_GUARD"


@dataclass(frozen=True)
class SchemaConformed:
    """A frame's columns cast and ordered to a table's schema, with the checks the rows must
    pass: ``checks`` are conditions over the frame's own columns (before the casts),
    ``constraints`` the table's CHECK constraints (SQL over its columns, after the casts),
    not applied to rows whose ``exempt`` column is true (rows a MERGE deletes)."""

    source: DataFrame
    columns: list[Column]  # the table's columns, cast and aliased, then the extra ones
    checks: list[tuple[str, Column]]
    table: str
    constraints: dict[str, str] = field(default_factory=dict)
    exempt: str | None = None

    @property
    def data(self) -> DataFrame:
        return self.source.select(*self.columns)

    @property
    def has_checks(self) -> bool:
        return bool(self.checks or self.constraints)

    def _constraint_checks(self) -> list[tuple[str, Column]]:
        """Delta's rule: a row violates a CHECK constraint when it is false or NULL."""
        exempt = F.coalesce(F.col(quote(self.exempt)), F.lit(False)) if self.exempt else None
        out = []
        for name, expr in self.constraints.items():
            failing = ~F.coalesce(F.expr(expr), F.lit(False))
            out.append(
                (
                    f"CHECK constraint {name} ({expr}) violated",
                    failing if exempt is None else failing & ~exempt,
                )
            )
        return out

    def refuse_failures(self) -> None:
        """Count the rows failing each check (one pass per layer); raise if any does."""
        failures = _failure_counts(self.source, self.checks)
        failures += _failure_counts(self.data, self._constraint_checks())
        if failures:
            raise SchemaMismatchError(f"{self.table}: write refused: {'; '.join(failures)}")

    def guarded(self) -> DataFrame:
        """The rows with the checks riding along: a failing row fails the job that writes
        it (``raise_error``), so the write and its checks are one pass and nothing commits."""
        guard = F.raise_error(F.lit(f"{WRITE_GUARD}: {self.table}"))
        first, *rest = self.columns
        name = self.data.columns[0]
        rows = self.data
        if self.checks:
            failing = reduce(lambda a, b: a | b, [cond for _, cond in self.checks])
            rows = self.source.select(F.when(failing, guard).otherwise(first).alias(name), *rest)
        constraints = self._constraint_checks()
        if constraints:
            failing = reduce(lambda a, b: a | b, [cond for _, cond in constraints])
            others = [F.col(quote(c)) for c in rows.columns[1:]]
            rows = rows.select(
                F.when(failing, guard).otherwise(F.col(quote(name))).alias(name), *others
            )
        return rows


def _failure_counts(frame: DataFrame, checks: list[tuple[str, Column]]) -> list[str]:
    """``"N label"`` for each check that ``N > 0`` rows of ``frame`` fail (one pass)."""
    if not checks:
        return []
    counts = frame.select(
        *[F.sum(F.when(cond, 1).otherwise(0)).alias(f"c{i}") for i, (_, cond) in enumerate(checks)]
    ).first()
    assert counts is not None
    return [f"{int(counts[i])} {label}" for i, (label, _) in enumerate(checks) if counts[i]]


def conform_to_schema(
    df: DataFrame, target: T.StructType, table: str, *, allow_new_columns: bool = False
) -> DataFrame:
    """Return ``df`` cast and ordered to ``target``, or raise :class:`SchemaMismatchError`.

    Widening casts are applied directly. Narrowing or converting casts are checked: if any
    non-null value would not survive the cast (and so be stored as NULL), the write is
    refused. NULLs in NOT NULL columns and columns the table does not have are refused too.
    """
    conformed = schema_conformed(df, target, table, allow_new_columns=allow_new_columns)
    conformed.refuse_failures()
    return conformed.data


def schema_conformed(
    df: DataFrame, target: T.StructType, table: str, *, allow_new_columns: bool = False
) -> SchemaConformed:
    """``df`` cast and ordered to ``target`` plus the checks of :func:`conform_to_schema`,
    not yet run (columns the table does not have are refused at once)."""
    source = {f.name: f for f in df.schema.fields}
    target_names = [f.name for f in target.fields]
    extra = [name for name in source if name not in target_names]
    if extra and not allow_new_columns:
        raise SchemaMismatchError(
            f"{table}: the data has columns the table does not have: {', '.join(extra)} "
            "(declare them in the catalog first)"
        )
    columns: list[Column] = []
    checks: list[tuple[str, Column]] = []
    for f in target.fields:
        if f.name not in source:
            if not f.nullable:
                raise SchemaMismatchError(f"{table}: the data lacks NOT NULL column {f.name}")
            columns.append(F.lit(None).cast(f.dataType).alias(f.name))
            continue
        src_col = F.col(quote(f.name))
        src_type = source[f.name].dataType
        if _is_safe_widening(src_type, f.dataType):
            out = src_col if src_type == f.dataType else src_col.cast(f.dataType)
        else:
            out = src_col.try_cast(f.dataType)
            checks.append(
                (
                    f"{f.name}: {src_type.simpleString()} values that do not fit "
                    f"{f.dataType.simpleString()}",
                    src_col.isNotNull() & out.isNull(),
                )
            )
        if not f.nullable and source[f.name].nullable:
            checks.append((f"{f.name}: NULL in a NOT NULL column", out.isNull()))
        columns.append(out.alias(f.name))
    return SchemaConformed(df, [*columns, *[F.col(quote(name)) for name in extra]], checks, table)


BOOKKEEPING_TABLES = (".meta.access_audit", ".meta.lineage")

# Silver tables are MERGE targets: with deletion vectors a MERGE that touches a few rows in
# every file marks them deleted instead of rewriting the files (SF1 lineitem, 1% changed:
# 1.3 s instead of 8.9 s). Databricks turns them on for new tables too.
SILVER_DEFAULT_PROPERTIES = {"delta.enableDeletionVectors": "true"}


def table_properties(ref: TableRef) -> dict[str, str]:
    """The Delta table properties a new table is created with: the catalog's, over the
    defaults of its layer."""
    defaults = SILVER_DEFAULT_PROPERTIES if ref.spec.layer == "silver" else {}
    return {**defaults, **ref.spec.properties}


class DeltaTables:
    """Reads and writes the catalog's Delta tables for one session."""

    def __init__(
        self,
        spark: SparkSession,
        project: Project,
        engine: EngineKind,
        on_write: Callable[[WriteResult], None] | None = None,
        governance: Governance | None = None,
    ) -> None:
        self.spark = spark
        self.project = project
        self.engine = engine
        self.on_write = on_write
        self.governance = governance
        if governance is not None:
            governance.tables = self
        self._registered: set[str] = set()
        self._protocols: dict[str, TableProtocol | None] = {}

    @contextlib.contextmanager
    def task_scope(self, task_key: str) -> Iterator[None]:
        """Attribute accesses to ``task_key`` and write their audit/lineage rows afterwards."""
        if self.governance is None:
            yield
            return
        with self.governance.task_scope(task_key):
            yield

    def _authorize(self, privilege: str, name: str) -> None:
        if self.governance is not None:
            self.governance.authorize(privilege, name)

    # ------------------------------------------------------------ registration

    def register_all(self) -> None:
        """Register every catalog table in this session, creating the missing ones.

        Under access control, missing tables are created only where the acting principal
        may CREATE TABLE; the others are registered once they exist.
        """
        for ref in self.project.tables.values():
            schema = f"{ref.catalog}.{ref.schema}"
            if (
                self.governance is None
                or self.governance.may("CREATE TABLE", schema)
                or self.exists(ref.full_name)
            ):
                self.ensure_table(ref.full_name)

    def ensure_table(self, name: str) -> TableRef:
        """Create the table at its location if it does not exist, and register it."""
        ref = self.project.table(name)
        if name in self._registered:
            return ref
        self.spark.sql(f"CREATE SCHEMA IF NOT EXISTS {quote(ref.schema)}")
        self._unregister_if_elsewhere(ref)
        location = sql_string(ref.location)
        if self.exists(name):
            refuse_unreadable(ref.location, self.engine, name)
            self.spark.sql(
                f"CREATE TABLE IF NOT EXISTS {self._sql_name(ref)} USING delta LOCATION {location}"
            )
        else:
            if not name.endswith(BOOKKEEPING_TABLES):  # written by the system, not a principal
                self._authorize("CREATE TABLE", f"{ref.catalog}.{ref.schema}")
            partition = (
                f" PARTITIONED BY ({', '.join(quote(c) for c in ref.spec.partition_by)})"
                if ref.spec.partition_by
                else ""
            )
            comment = f" COMMENT {sql_string(ref.spec.description)}" if ref.spec.description else ""
            properties = table_properties(ref)
            props = (
                " TBLPROPERTIES ("
                + ", ".join(f"{sql_string(k)} = {sql_string(v)}" for k, v in properties.items())
                + ")"
                if properties
                else ""
            )
            self.spark.sql(
                f"CREATE TABLE IF NOT EXISTS {self._sql_name(ref)} ({ddl_columns(ref)}) USING delta"
                f"{partition}{comment} LOCATION {location}{props}"
            )
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
        if not self.spark.catalog.tableExists(self._sql_name(ref)):
            return  # asking first: a failed DESCRIBE logs a page of JSON on JVM Spark
        rows = self.spark.sql(f"DESCRIBE TABLE EXTENDED {self._sql_name(ref)}").collect()
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
        self.spark.sql(f"DROP TABLE {self._sql_name(ref)}")

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

    @staticmethod
    def _sql_name(ref: TableRef) -> str:
        return f"{quote(ref.schema)}.{quote(ref.name)}"

    # ------------------------------------------------------------ reads

    def read(self, name: str, version: int | None = None) -> DataFrame:
        """The table as a DataFrame, optionally as of a Delta version (time travel).

        Under access control this needs SELECT; masked columns come back masked for a
        principal without UNMASK, and observers (lineage) learn the version read.
        """
        gov = self.governance
        if gov is None:
            return self._load(name, version)
        gov.authorize("SELECT", name)
        if gov.observers:
            version = self.version(name) if version is None else version
            gov.table_read(name, version)
        return gov.mask(name, self._load(name, version))

    def _load(self, name: str, version: int | None = None) -> DataFrame:
        ref = self.ensure_table(name)
        reader = self.spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        return reader.load(ref.location)

    def schema(self, name: str) -> T.StructType:
        return self._load(name).schema

    def version(self, name: str) -> int:
        """The latest Delta version of the table."""
        entries = self.history(name, limit=1)
        return entries[0].version if entries else -1

    def history(self, name: str, limit: int | None = None) -> list[HistoryEntry]:
        """Commits, newest first (``DESCRIBE HISTORY`` or delta-rs on Sail)."""
        ref = self.ensure_table(name)
        if self.engine != "sail":
            try:
                return self._sql_history(ref, limit)
            except Exception:  # a Connect server without DESCRIBE HISTORY (e.g. Sail)
                log.debug("DESCRIBE HISTORY failed for %s; reading the log with delta-rs", name)
        from deltalake import DeltaTable

        rows = DeltaTable(ref.location).history(limit)
        return [
            HistoryEntry(
                version=int(r["version"]),
                timestamp_ms=int(r.get("timestamp", 0)),
                operation=str(r.get("operation", "")),
                metrics=dict(r.get("operationMetrics") or {}),
            )
            for r in rows
        ]

    def _sql_history(self, ref: TableRef, limit: int | None) -> list[HistoryEntry]:
        limit_sql = f" LIMIT {int(limit)}" if limit else ""
        out = []
        for r in self.spark.sql(f"DESCRIBE HISTORY {self._sql_name(ref)}{limit_sql}").collect():
            ts = r["timestamp"]
            out.append(
                HistoryEntry(
                    version=int(r["version"]),
                    timestamp_ms=int(ts.timestamp() * 1000) if ts else 0,
                    operation=str(r["operation"]),
                    metrics={k: _number(v) for k, v in (r["operationMetrics"] or {}).items()},
                )
            )
        return out

    def row_count(self, name: str) -> int:
        return int(self.read(name).count())

    def row_count_unchecked(self, name: str) -> int:
        """Row count for listings (metadata, no SELECT needed, not audited)."""
        return int(self._load(name).count())

    # ------------------------------------------------------------ writes

    def append(
        self, name: str, df: DataFrame, *, add_new_columns: bool = False, system: bool = False
    ) -> WriteResult:
        """Append rows (schema enforced); ``add_new_columns`` evolves the table (mergeSchema).

        ``system`` marks the project's own bookkeeping (audit, lineage): not checked, not
        observed.
        """
        return self._write(name, df, "append", add_new_columns=add_new_columns, system=system)

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
        system: bool = False,
    ) -> WriteResult:
        if not system:
            self._authorize("MODIFY", name)
        ref = self.ensure_table(name)
        constraints = self._writable(name, "overwrite" if mode == "overwrite" else "append")
        started = time.perf_counter()
        before = self.version(name)
        if add_new_columns:
            known = set(self.schema(name).fieldNames())
            new = [(f.name, f.dataType) for f in df.schema.fields if f.name not in known]
            if new:
                self.add_columns(name, new)

        def save(data: DataFrame) -> None:
            writer = data.write.format("delta").mode(mode)
            if ref.spec.partition_by:
                writer = writer.partitionBy(*ref.spec.partition_by)
            writer.save(ref.location)

        conformed = schema_conformed(df, self.schema(name), name)
        self._write_checked(replace(conformed, constraints=constraints), save)
        return self._result(name, mode, before, started, observed=not system)

    def _write_checked(
        self, conformed: SchemaConformed, write: Callable[[DataFrame], None]
    ) -> None:
        """Write rows that must pass the schema checks, in one pass where that is safe.

        The checks ride along the write (:meth:`SchemaConformed.guarded`): a failing row
        fails the job before the commit, and only then are the failures counted for the
        error. Checking first would run the whole plan twice (a Gold query, a Bronze parse).
        """
        if not conformed.has_checks:
            write(conformed.data)
            return
        try:
            write(conformed.guarded())
        except Exception as e:
            if WRITE_GUARD not in str(e):
                raise
            conformed.refuse_failures()  # raises, with the counts
            # The engine tripped the guard on a row it did not write: the rows pass.
            log.warning("%s: write guard tripped on rows that pass; writing again", conformed.table)
            write(conformed.data)

    def add_columns(self, name: str, columns: list[tuple[str, T.DataType]]) -> None:
        """Add nullable columns (schema evolution), as a metadata-only commit.

        Sail ignores ``mergeSchema`` on tables with a NOT NULL column (it drops the new
        column without an error), so columns are added explicitly: ``ALTER TABLE ... ADD
        COLUMNS`` where the engine has it, delta-rs on Sail.
        """
        self._authorize("MODIFY", name)
        ref = self.ensure_table(name)
        self._writable(name, "alter")
        if self.engine == "sail":
            from deltalake import DeltaTable
            from deltalake.schema import Field, PrimitiveType

            fields = [
                Field(col, PrimitiveType(_delta_type(dtype)), nullable=True)
                for col, dtype in columns
            ]
            DeltaTable(ref.location).alter.add_columns(fields)
        else:
            spec = ", ".join(
                f"{quote(col)} {dtype.simpleString().upper()}" for col, dtype in columns
            )
            self.spark.sql(f"ALTER TABLE {self._sql_name(ref)} ADD COLUMNS ({spec})")
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
        """Upsert ``source`` into the table on ``keys`` (SQL ``MERGE INTO``).

        Matched rows are updated only when a column changed (so replaying the same data
        commits nothing), and, with ``newer_than``, only when the source's value of that
        column is at least the target's. ``insert_only`` never updates matched rows.
        ``delete_flag`` names a boolean source column: flagged rows delete their match
        (respecting ``newer_than``) and are never inserted.
        """
        self._authorize("MODIFY", name)
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
        on = " AND ".join(f"t.{quote(k)} <=> s.{quote(k)}" for k in keys)
        newer = f" AND s.{quote(newer_than)} >= t.{quote(newer_than)}" if newer_than else ""
        flagged = f"s.{quote(delete_flag)}" if delete_flag else "false"
        clauses = []
        if delete_flag:
            clauses.append(f"WHEN MATCHED AND {flagged}{newer} THEN DELETE")
        if not insert_only:
            others = [c for c in columns if c not in keys]
            changed = " OR ".join(f"NOT (t.{quote(c)} <=> s.{quote(c)})" for c in others) or "false"
            assignments = ", ".join(f"{quote(c)} = s.{quote(c)}" for c in others)
            if assignments:
                clauses.append(
                    f"WHEN MATCHED AND NOT {flagged} AND ({changed}){newer} THEN UPDATE SET {assignments}"
                )
        names = ", ".join(quote(c) for c in columns)
        values = ", ".join(f"s.{quote(c)}" for c in columns)
        clauses.append(
            f"WHEN NOT MATCHED AND NOT {flagged} THEN INSERT ({names}) VALUES ({values})"
        )
        statement = f"MERGE INTO {self._sql_name(ref)} t USING {view} s ON {on} {' '.join(clauses)}"

        def run_merge(rows: DataFrame) -> None:
            rows.createOrReplaceTempView(view)
            try:
                self.spark.sql(statement).collect()
            finally:
                self.spark.catalog.dropTempView(view)

        self._write_checked(conformed, run_merge)
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
        if observed and self.governance is not None:
            self.governance.table_written(result)
        return result

    # ------------------------------------------------------------ maintenance

    def optimize(self, name: str, zorder_by: list[str] | None = None) -> Compaction:
        """Compact small files (and Z-order when columns are given)."""
        self._authorize("MODIFY", name)
        ref = self.ensure_table(name)
        if self.engine == "sail":
            from deltalake import DeltaTable

            table = DeltaTable(ref.location)
            done = table.optimize.z_order(zorder_by) if zorder_by else table.optimize.compact()
            return Compaction(int(done["numFilesAdded"]), int(done["numFilesRemoved"]))
        zorder = f" ZORDER BY ({', '.join(quote(c) for c in zorder_by)})" if zorder_by else ""
        row = self.spark.sql(f"OPTIMIZE {self._sql_name(ref)}{zorder}").first()
        metrics = row["metrics"].asDict() if row else {}
        return Compaction(
            int(metrics.get("numFilesAdded", 0)), int(metrics.get("numFilesRemoved", 0))
        )

    def vacuum(
        self, name: str, retention_hours: int = 168, *, enforce_retention_duration: bool = True
    ) -> list[str]:
        """Delete files no longer referenced by versions within the retention window; the
        files deleted.

        As in Delta, a window shorter than the table's ``delta.deletedFileRetentionDuration``
        (7 days by default) is refused unless ``enforce_retention_duration=False``: readers
        of an older version may still need those files.
        """
        self._authorize("MODIFY", name)
        ref = self.ensure_table(name)
        if self.engine == "sail":
            from deltalake import DeltaTable

            try:
                return list(
                    DeltaTable(ref.location).vacuum(
                        retention_hours=retention_hours,
                        dry_run=False,
                        enforce_retention_duration=enforce_retention_duration,
                    )
                )
            except Exception as e:
                if "retention" in str(e).lower():
                    raise LakehouseError(f"{name}: {one_line(e, with_type=False)}") from e
                raise
        statement = f"VACUUM {self._sql_name(ref)} RETAIN {int(retention_hours)} HOURS"
        check = "spark.databricks.delta.retentionDurationCheck.enabled"
        with _sql_conf(self.spark, check, None if enforce_retention_duration else "false"):
            try:
                files = [str(r[0]) for r in self.spark.sql(f"{statement} DRY RUN").collect()]
            except Exception as e:
                if "retention" in str(e).lower():
                    raise LakehouseError(f"{name}: {one_line(e, with_type=False)}") from e
                raise
            self.spark.sql(statement).collect()
        return files

    def restore(self, name: str, version: int) -> Restored:
        """Restore the table to an earlier version (a new commit; history is kept)."""
        self._authorize("MODIFY", name)
        ref = self.ensure_table(name)
        if self.engine == "sail":
            from deltalake import DeltaTable

            done = DeltaTable(ref.location).restore(version)
            return Restored(int(done["numRemovedFile"]), int(done["numRestoredFile"]))
        row = self.spark.sql(
            f"RESTORE TABLE {self._sql_name(ref)} TO VERSION AS OF {int(version)}"
        ).first()
        metrics = row.asDict() if row else {}
        return Restored(
            int(metrics.get("num_removed_files", 0)), int(metrics.get("num_restored_files", 0))
        )


@dataclass(frozen=True)
class Compaction:
    """What an OPTIMIZE did."""

    files_added: int
    files_removed: int


@dataclass(frozen=True)
class Restored:
    """What a RESTORE did (data files taken out of and put back into the table)."""

    files_removed: int
    files_restored: int


@contextlib.contextmanager
def _sql_conf(spark: SparkSession, key: str, value: str | None) -> Iterator[None]:
    """Set a session conf for the block (``None``: leave it as it is), then put it back."""
    if value is None:
        yield
        return
    before = spark.conf.get(key, None)
    spark.conf.set(key, value)
    try:
        yield
    finally:
        if before is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, before)


_DELTA_PRIMITIVE = {"int": "integer", "bigint": "long", "smallint": "short", "tinyint": "byte"}


def _delta_type(dtype: T.DataType) -> str:
    """Spark type -> delta-rs primitive type name."""
    if not isinstance(dtype, T.AtomicType):
        raise SchemaMismatchError(f"cannot add a column of type {dtype.simpleString()}")
    name = dtype.simpleString()
    return _DELTA_PRIMITIVE.get(name, name)


def _same_location(a: str, b: str) -> bool:
    def norm(p: str) -> str:
        for prefix in ("file://", "file:"):
            if p.startswith(prefix):
                p = p[len(prefix) :]
                break
        return p.rstrip("/")

    return norm(a) == norm(b)


def _number(value: Any) -> Any:
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return float(value)
        except (TypeError, ValueError):
            return value
