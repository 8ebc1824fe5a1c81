"""History, schema evolution and maintenance of one Delta table, per engine.

Spark SQL where the engine has the statement (JVM Spark, Spark Connect) and ``deltalake``
(delta-rs) where it does not (Sail).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import types as T

from lakehouse.config.project import TableRef
from lakehouse.core.errors import LakehouseError, SchemaMismatchError, one_line
from lakehouse.engine import EngineKind
from lakehouse.io.results import Compaction, HistoryEntry, Restored
from lakehouse.io.sql import quote, sql_name

log = logging.getLogger(__name__)


def read_history(
    spark: SparkSession, engine: EngineKind, ref: TableRef, limit: int | None
) -> list[HistoryEntry]:
    """Commits, newest first (``DESCRIBE HISTORY`` or delta-rs on Sail)."""
    if engine != "sail":
        try:
            return _sql_history(spark, ref, limit)
        except Exception:  # a Connect server without DESCRIBE HISTORY (e.g. Sail)
            log.debug(
                "DESCRIBE HISTORY failed for %s; reading the log with delta-rs", ref.full_name
            )
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


def _sql_history(spark: SparkSession, ref: TableRef, limit: int | None) -> list[HistoryEntry]:
    limit_sql = f" LIMIT {int(limit)}" if limit else ""
    out = []
    for r in spark.sql(f"DESCRIBE HISTORY {sql_name(ref)}{limit_sql}").collect():
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


def add_nullable_columns(
    spark: SparkSession, engine: EngineKind, ref: TableRef, columns: list[tuple[str, T.DataType]]
) -> None:
    """``ALTER TABLE ... ADD COLUMNS`` where the engine has it, delta-rs on Sail."""
    if engine == "sail":
        from deltalake import DeltaTable
        from deltalake.schema import Field, PrimitiveType

        fields = [
            Field(col, PrimitiveType(_delta_type(dtype)), nullable=True)
            if isinstance(dtype, T.AtomicType)
            # a map, array or struct: Spark's JSON form of a type is the Delta protocol's
            else Field.from_json(
                json.dumps(
                    {"name": col, "type": dtype.jsonValue(), "nullable": True, "metadata": {}}
                )
            )
            for col, dtype in columns
        ]
        DeltaTable(ref.location).alter.add_columns(fields)
        return
    spec = ", ".join(f"{quote(col)} {dtype.simpleString().upper()}" for col, dtype in columns)
    spark.sql(f"ALTER TABLE {sql_name(ref)} ADD COLUMNS ({spec})")


def optimize_table(
    spark: SparkSession, engine: EngineKind, ref: TableRef, zorder_by: list[str] | None
) -> Compaction:
    """Compact small files (and Z-order when columns are given)."""
    if engine == "sail":
        from deltalake import DeltaTable

        table = DeltaTable(ref.location)
        done = table.optimize.z_order(zorder_by) if zorder_by else table.optimize.compact()
        return Compaction(int(done["numFilesAdded"]), int(done["numFilesRemoved"]))
    zorder = f" ZORDER BY ({', '.join(quote(c) for c in zorder_by)})" if zorder_by else ""
    row = spark.sql(f"OPTIMIZE {sql_name(ref)}{zorder}").first()
    metrics = row["metrics"].asDict() if row else {}
    return Compaction(int(metrics.get("numFilesAdded", 0)), int(metrics.get("numFilesRemoved", 0)))


def vacuum_table(
    spark: SparkSession,
    engine: EngineKind,
    ref: TableRef,
    retention_hours: int,
    enforce_retention_duration: bool,
) -> list[str]:
    """Delete unreferenced files older than the window; the files deleted."""
    name = ref.full_name
    if engine == "sail":
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
    statement = f"VACUUM {sql_name(ref)} RETAIN {int(retention_hours)} HOURS"
    check = "spark.databricks.delta.retentionDurationCheck.enabled"
    with _sql_conf(spark, check, None if enforce_retention_duration else "false"):
        try:
            files = [str(r[0]) for r in spark.sql(f"{statement} DRY RUN").collect()]
        except Exception as e:
            if "retention" in str(e).lower():
                raise LakehouseError(f"{name}: {one_line(e, with_type=False)}") from e
            raise
        spark.sql(statement).collect()
    return files


def restore_table(spark: SparkSession, engine: EngineKind, ref: TableRef, version: int) -> Restored:
    """Restore the table to an earlier version (a new commit; history is kept)."""
    if engine == "sail":
        from deltalake import DeltaTable

        done = DeltaTable(ref.location).restore(version)
        return Restored(int(done["numRemovedFile"]), int(done["numRestoredFile"]))
    row = spark.sql(f"RESTORE TABLE {sql_name(ref)} TO VERSION AS OF {int(version)}").first()
    metrics = row.asDict() if row else {}
    return Restored(
        int(metrics.get("num_removed_files", 0)), int(metrics.get("num_restored_files", 0))
    )


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


def _number(value: Any) -> Any:
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return float(value)
        except (TypeError, ValueError):
            return value
