"""The project's own bookkeeping tables (``<catalog>.meta.*``): one registry.

Each :class:`SystemTable` member carries its name within the catalog, its :class:`TableSpec`
(the generated catalog entry, from which the table is created) and a frozen row dataclass
whose fields are the table's columns in order. Rows are written with :func:`rows_frame`, so
the schema a row is written with is the schema the table was created with.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, fields
from enum import Enum
from typing import TYPE_CHECKING, Any

from lakehouse.config.catalog import Column, TableSpec

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql import types as T

SYSTEM_SCHEMA = "meta"  # "system" is a reserved catalog name on Sail
QUARANTINE_SUFFIX = "_quarantine"


# ---------------------------------------------------------------- rows


@dataclass(frozen=True)
class ProcessedFileRow:
    """A file ingested into Bronze."""

    source: str
    path: str
    size: int
    modified_at: dt.datetime
    rows: int
    corrupt_rows: int
    run_id: str
    ingested_at: dt.datetime


@dataclass(frozen=True)
class HttpResponseRow:
    """An API response Bronze ingested, kept raw."""

    source: str
    batch_id: str
    request: str
    http_status: int
    fetched_at: dt.datetime
    payload: str
    records: int | None
    error: str | None
    run_id: str


@dataclass(frozen=True)
class DqResultRow:
    """One quality rule's result in one Silver run."""

    run_id: str
    table: str
    rule: str
    expectation: str
    action: str
    evaluated: int
    failed: int
    pass_rate: float
    outcome: str
    evaluated_at: dt.datetime


@dataclass(frozen=True)
class AccessAuditRow:
    """One access decision, allowed or denied."""

    event_time: dt.datetime
    principal: str
    privilege: str
    securable: str
    allowed: bool
    reason: str | None
    job: str | None
    task: str | None
    run_id: str | None


@dataclass(frozen=True)
class ModelMonitoringRow:
    """One monitored metric of one monitoring run."""

    monitored_at: dt.datetime
    monitor_run_id: str
    model_name: str
    model_version: str | None
    kind: str
    subject: str
    metric: str
    value: float | None
    threshold: float | None
    alert: bool
    window_start: dt.datetime | None
    window_end: dt.datetime | None
    reference_rows: int | None
    current_rows: int | None
    details: str | None


@dataclass(frozen=True)
class JobRunRow:
    """One task attempt (or skipped task) of a bundle job run."""

    job: str
    run_id: str
    task: str
    attempt: int
    status: str
    start_time: dt.datetime | None
    end_time: dt.datetime | None
    error: str | None
    principal: str | None
    target: str | None
    engine: str | None


@dataclass(frozen=True)
class LineageRow:
    """One input -> output edge of a committed write."""

    event_time: dt.datetime
    run_id: str
    job: str | None
    task: str | None
    principal: str | None
    operation: str
    output_table: str
    output_version: int
    input_kind: str | None
    input_name: str | None
    input_version: int | None
    column_lineage: str | None


@dataclass(frozen=True)
class SilverRunRow:
    """The row accounting of one Silver run."""

    run_id: str
    table: str
    rows_read: int
    rows_kept: int
    rows_quarantined: int
    rows_deleted: int
    duplicates_collapsed: int
    rows_written: int
    version: int
    status: str
    finished_at: dt.datetime


@dataclass(frozen=True)
class SilverBatchRow:
    """A Bronze batch a Silver table has refined."""

    table: str
    source: str
    batch_id: str
    rows: int
    run_id: str
    refined_at: dt.datetime


@dataclass(frozen=True)
class SqlQueryLogRow:
    """One statement a client ran on the SQL endpoint (``lakehouse sql serve``)."""

    event_time: dt.datetime
    principal: str
    client_address: str
    application_name: str
    statement: str
    tables: list[str]
    rows_returned: int
    duration_ms: float
    outcome: str
    sqlstate: str | None
    error: str | None
    pid: int
    endpoint_id: str


@dataclass(frozen=True)
class GoldRefreshRow:
    """One refresh of one Gold table: how (strategy, reason) and from which input versions."""

    table: str
    run_id: str
    strategy: str
    reason: str
    gold_version: int
    gold_table_id: str
    state_version: int | None
    input_versions: str
    definition_hash: str
    rows_removed: int | None
    rows_added: int | None
    refreshed_at: dt.datetime


# ---------------------------------------------------------------- specs


def _col(name: str, type_: str, nullable: bool = True, comment: str = "") -> Column:
    return Column(name=name, type=type_, nullable=nullable, comment=comment)


_PROCESSED_FILES = TableSpec(
    layer="system",
    description="Files ingested into Bronze, keyed by path + size + modification time",
    columns=[
        _col("source", "string", False),
        _col("path", "string", False),
        _col("size", "bigint", False),
        _col("modified_at", "timestamp", False),
        _col("rows", "bigint", False),
        _col("corrupt_rows", "bigint", False),
        _col("run_id", "string", False),
        _col("ingested_at", "timestamp", False),
    ],
    keys=["source", "path", "size", "modified_at"],
)

_HTTP_RESPONSES = TableSpec(
    layer="system",
    description="Every API response Bronze ingested, kept raw (payload text)",
    columns=[
        _col("source", "string", False),
        _col("batch_id", "string", False),
        _col("request", "string", False, "URL, secrets redacted"),
        _col("http_status", "int", False),
        _col("fetched_at", "timestamp", False),
        _col("payload", "string", False),
        _col("records", "bigint"),
        _col("error", "string"),
        _col("run_id", "string", False),
    ],
    keys=["source", "batch_id"],
)

_DQ_RESULTS = TableSpec(
    layer="system",
    description="Data-quality results: one row per rule per Silver run",
    columns=[
        _col("run_id", "string", False),
        _col("table", "string", False),
        _col("rule", "string", False),
        _col("expectation", "string", False),
        _col("action", "string", False),
        _col("evaluated", "bigint", False),
        _col("failed", "bigint", False),
        _col("pass_rate", "double", False),
        _col("outcome", "string", False, "passed|warned|dropped|failed"),
        _col("evaluated_at", "timestamp", False),
    ],
    keys=["run_id", "table", "rule"],
)

_ACCESS_AUDIT = TableSpec(
    layer="system",
    description="Every access decision of the project's table access path, allowed or denied",
    columns=[
        _col("event_time", "timestamp", False),
        _col("principal", "string", False),
        _col("privilege", "string", False),
        _col("securable", "string", False),
        _col("allowed", "boolean", False),
        _col("reason", "string"),
        _col("job", "string"),
        _col("task", "string"),
        _col("run_id", "string"),
    ],
)

_MODEL_MONITORING = TableSpec(
    layer="system",
    description="Model monitoring results, long format: one row per metric per monitoring run",
    columns=[
        _col("monitored_at", "timestamp", False),
        _col("monitor_run_id", "string", False),
        _col("model_name", "string", False),
        _col("model_version", "string"),
        _col("kind", "string", False, "drift|quality|performance|ab"),
        _col("subject", "string", False, "feature, rule, run, version"),
        _col("metric", "string", False),
        _col("value", "double"),
        _col("threshold", "double"),
        _col("alert", "boolean", False),
        _col("window_start", "timestamp"),
        _col("window_end", "timestamp"),
        _col("reference_rows", "bigint"),
        _col("current_rows", "bigint"),
        _col("details", "string", comment="JSON"),
    ],
)

_JOB_RUNS = TableSpec(
    layer="system",
    description="One row per task attempt of every bundle job run (and per skipped task)",
    columns=[
        _col("job", "string", False),
        _col("run_id", "string", False),
        _col("task", "string", False),
        _col("attempt", "int", False, "0 for a skipped task"),
        _col("status", "string", False, "SUCCESS | FAILED | TIMED_OUT | SKIPPED"),
        _col("start_time", "timestamp"),
        _col("end_time", "timestamp"),
        _col("error", "string"),
        _col("principal", "string"),
        _col("target", "string"),
        _col("engine", "string"),
    ],
)

_LINEAGE = TableSpec(
    layer="system",
    description="One row per input -> output edge of every write (table versions, columns)",
    columns=[
        _col("event_time", "timestamp", False),
        _col("run_id", "string", False),
        _col("job", "string"),
        _col("task", "string"),
        _col("principal", "string"),
        _col("operation", "string", False),
        _col("output_table", "string", False),
        _col("output_version", "bigint", False),
        _col("input_kind", "string", comment="table | files | http | none"),
        _col("input_name", "string", comment="table name, landing path or URL"),
        _col("input_version", "bigint", comment="Delta version read (tables)"),
        _col("column_lineage", "string", comment="JSON: output column -> inputs"),
    ],
)

_SILVER_RUNS = TableSpec(
    layer="system",
    description="Row accounting of every Silver run: read = kept + quarantined",
    columns=[
        _col("run_id", "string", False),
        _col("table", "string", False),
        _col("rows_read", "bigint", False),
        _col("rows_kept", "bigint", False),
        _col("rows_quarantined", "bigint", False),
        _col("rows_deleted", "bigint", False),
        _col("duplicates_collapsed", "bigint", False),
        _col("rows_written", "bigint", False),
        _col("version", "bigint", False),
        _col("status", "string", False),
        _col("finished_at", "timestamp", False),
    ],
    keys=["run_id", "table"],
)

_SILVER_BATCHES = TableSpec(
    layer="system",
    description="Which Bronze batches each Silver table has refined: its incremental progress",
    columns=[
        _col("table", "string", False),
        _col("source", "string", False, "the Bronze table"),
        _col("batch_id", "string", False, "Bronze _batch_id"),
        _col("rows", "bigint", False, "Bronze rows of the batch"),
        _col("run_id", "string", False),
        _col("refined_at", "timestamp", False),
    ],
    keys=["table", "batch_id"],
)

_SQL_QUERY_LOG = TableSpec(
    layer="system",
    description="Every statement clients ran on the SQL endpoint (lakehouse sql serve)",
    columns=[
        _col("event_time", "timestamp", False, "statement start (UTC)"),
        _col("principal", "string", False),
        _col("client_address", "string", False, "host:port"),
        _col("application_name", "string", False),
        _col("statement", "string", False, "the query text as sent"),
        _col("tables", "array<string>", False, "catalog tables the statement read"),
        _col("rows_returned", "bigint", False),
        _col("duration_ms", "double", False),
        _col("outcome", "string", False, "ok|error|canceled|timeout|limit"),
        _col("sqlstate", "string"),
        _col("error", "string"),
        _col("pid", "int", False, "the connection's backend process id"),
        _col("endpoint_id", "string", False, "the serving endpoint process"),
    ],
)

_GOLD_REFRESHES = TableSpec(
    layer="system",
    description="Every Gold refresh: the strategy chosen and why, the versions it read and wrote",
    columns=[
        _col("table", "string", False),
        _col("run_id", "string", False),
        _col("strategy", "string", False, "decomposable|affected_groups|full"),
        _col("reason", "string", False),
        _col("gold_version", "bigint", False, "the Gold table version the refresh wrote"),
        _col("gold_table_id", "string", False, "the Gold table's Delta table id"),
        _col("state_version", "bigint", comment="version of the table's aggregate state"),
        _col("input_versions", "string", False, "JSON: input table -> version read"),
        _col("definition_hash", "string", False, "hash of the query, features and inputs"),
        _col("rows_removed", "bigint", comment="input rows removed since the last refresh"),
        _col("rows_added", "bigint", comment="input rows added since the last refresh"),
        _col("refreshed_at", "timestamp", False),
    ],
    keys=["table", "gold_version"],
)


# ---------------------------------------------------------------- the registry


class SystemTable(Enum):
    """A bookkeeping table: its name in the ``meta`` schema, its spec, its row type."""

    PROCESSED_FILES = ("processed_files", _PROCESSED_FILES, ProcessedFileRow)
    DQ_RESULTS = ("dq_results", _DQ_RESULTS, DqResultRow)
    SILVER_RUNS = ("silver_runs", _SILVER_RUNS, SilverRunRow)
    SILVER_BATCHES = ("silver_batches", _SILVER_BATCHES, SilverBatchRow)
    ACCESS_AUDIT = ("access_audit", _ACCESS_AUDIT, AccessAuditRow)
    LINEAGE = ("lineage", _LINEAGE, LineageRow)
    JOB_RUNS = ("job_runs", _JOB_RUNS, JobRunRow)
    MODEL_MONITORING = ("model_monitoring", _MODEL_MONITORING, ModelMonitoringRow)
    HTTP_RESPONSES = ("http_responses", _HTTP_RESPONSES, HttpResponseRow)
    SQL_QUERY_LOG = ("sql_query_log", _SQL_QUERY_LOG, SqlQueryLogRow)
    GOLD_REFRESHES = ("gold_refreshes", _GOLD_REFRESHES, GoldRefreshRow)

    def __init__(self, table: str, spec: TableSpec, row_type: type[Any]) -> None:
        self.table = table
        self.spec = spec
        self.row_type = row_type

    @property
    def schema_table(self) -> str:
        """``meta.<table>``: the table's name within its catalog."""
        return f"{SYSTEM_SCHEMA}.{self.table}"


def system_table_name(catalog: str, table: SystemTable) -> str:
    """``<catalog>.meta.<table>``."""
    return f"{catalog}.{table.schema_table}"


def system_table_specs() -> dict[str, TableSpec]:
    """The generated ``meta`` schema entries: table name -> spec, in registry order."""
    return {t.table: t.spec for t in SystemTable}


# ---------------------------------------------------------------- writing rows


def _spark_type(type_name: str) -> T.DataType:
    from pyspark.sql import types as T

    simple: dict[str, T.DataType] = {
        "string": T.StringType(),
        "bigint": T.LongType(),
        "int": T.IntegerType(),
        "double": T.DoubleType(),
        "boolean": T.BooleanType(),
        "timestamp": T.TimestampType(),
    }
    if type_name == "array<string>":
        return T.ArrayType(T.StringType())
    if type_name not in simple:
        raise ValueError(f"system table column type {type_name!r} has no Spark type here")
    return simple[type_name]


def spark_schema(table: SystemTable) -> T.StructType:
    """The registered columns as a Spark schema (names, types, nullability; no comments)."""
    from pyspark.sql import types as T

    return T.StructType(
        [T.StructField(c.name, _spark_type(c.type), c.nullable) for c in table.spec.columns]
    )


def row_values(row: object) -> tuple[Any, ...]:
    """A row dataclass's values in column order."""
    return tuple(getattr(row, f.name) for f in fields(row))  # type: ignore[arg-type]


def rows_frame(spark: SparkSession, table: SystemTable, rows: Sequence[object]) -> DataFrame:
    """``rows`` (each a ``table.row_type``) as a DataFrame of the table's registered schema."""
    for row in rows:
        if not isinstance(row, table.row_type):
            raise TypeError(
                f"{table.name} rows are {table.row_type.__name__}, got {type(row).__name__}"
            )
    return spark.createDataFrame([row_values(r) for r in rows], spark_schema(table))


# ---------------------------------------------------------------- quarantine tables

QUARANTINE_COLUMNS = (
    _col("_row", "string", False, "the rejected row as JSON"),
    _col("_reasons", "array<string>", False, "violated rules"),
    _col("_row_hash", "string", False, "identity of the rejected row"),
    _col("_source_file", "string"),
    _col("_run_id", "string", False),
    _col("_quarantined_at", "timestamp", False),
)


def quarantine_spec(silver_table: str) -> TableSpec:
    """The generated quarantine table of a Silver table: rejected rows with their reasons."""
    return TableSpec(
        layer="silver",
        description=f"Rows rejected on their way into {silver_table}, with the reasons",
        columns=list(QUARANTINE_COLUMNS),
        keys=["_row_hash"],
    )
