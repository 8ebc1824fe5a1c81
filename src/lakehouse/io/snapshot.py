"""One read of a table's Delta log before a write: its version, schema and protocol.

delta-rs loads the latest snapshot once and answers all three from it. Where delta-rs cannot
reach the location (e.g. ``hdfs://``) or read the log, the engine answers instead, as it
always did: the version from the table's history, the schema from a Spark read, no protocol
(the engine's own errors apply).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyspark.sql import SparkSession
from pyspark.sql import types as T

from lakehouse.config.project import TableRef
from lakehouse.engine import EngineKind
from lakehouse.io import maintenance
from lakehouse.io.table_features import TableProtocol, protocol_of

if TYPE_CHECKING:
    from deltalake import DeltaTable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TableSnapshot:
    """A table as of its latest commit: what a write checks and reports against."""

    version: int
    schema: T.StructType
    protocol: TableProtocol | None


def read_snapshot(spark: SparkSession, engine: EngineKind, ref: TableRef) -> TableSnapshot:
    """The table's latest version, schema and protocol from one read of its Delta log."""
    try:
        from deltalake import DeltaTable

        table = DeltaTable(ref.location)
        version = int(table.version())
    except Exception as exc:  # a location delta-rs cannot reach: ask the engine
        log.debug("no delta-rs snapshot of %s: %s", ref.full_name, exc)
        latest = maintenance.read_history(spark, engine, ref, limit=1)
        return TableSnapshot(
            version=latest[0].version if latest else -1,
            schema=_engine_schema(spark, ref),
            protocol=None,
        )
    return TableSnapshot(version, _schema_of(spark, table, ref), _protocol_of(table, ref))


def _schema_of(spark: SparkSession, table: DeltaTable, ref: TableRef) -> T.StructType:
    """The snapshot's schema; the engine's where its JSON is not one Spark parses."""
    try:
        return spark_schema(table.schema().to_json())
    except Exception as exc:  # a type this pyspark does not know
        log.debug("cannot convert the Delta schema of %s: %s", ref.full_name, exc)
        return _engine_schema(spark, ref)


def _protocol_of(table: DeltaTable, ref: TableRef) -> TableProtocol | None:
    """The snapshot's protocol; None where delta-rs cannot describe it."""
    try:
        return protocol_of(table)
    except Exception as exc:
        log.debug("no Delta protocol for %s: %s", ref.full_name, exc)
        return None


def _engine_schema(spark: SparkSession, ref: TableRef) -> T.StructType:
    """The schema the engine reads the table with (one analysis of a Delta read)."""
    return spark.read.format("delta").load(ref.location).schema


def spark_schema(delta_schema_json: str) -> T.StructType:
    """A Delta schema (Spark's own JSON form) as the engines read it: field metadata such as
    column comments left out, as a Sail read leaves it out."""
    return T.StructType.fromJson(_without_metadata(json.loads(delta_schema_json)))


def _without_metadata(node: Any) -> Any:
    """The JSON schema with every field's ``metadata`` emptied, at any depth."""
    if isinstance(node, dict):
        return {
            key: ({} if key == "metadata" else _without_metadata(value))
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_without_metadata(item) for item in node]
    return node
