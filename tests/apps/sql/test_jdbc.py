"""The SQL endpoint through the PostgreSQL JDBC driver (pgjdbc from Maven Central).

pgjdbc is the driver behind DBeaver, Tableau and Metabase. ``JdbcProbe.java`` (run with
Java's single-file source launcher, nothing compiled) does what those tools do: list
schemas, tables and columns through ``DatabaseMetaData``, run typed ``PreparedStatement``s,
and stream a whole table with autocommit off and a fetch size (a named portal read in
batches: Execute with a row limit, PortalSuspended). It runs once per module, in a JVM whose
zone is not UTC, and prints JSON lines; each test checks one part against Spark's answer.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import math
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.apps.sql.endpoint import SqlEndpoint
from lakehouse.governance.scope import GovernanceScope
from lakehouse.governance.store import GovernedStore
from lakehouse.io.delta import DeltaStore
from tests.apps.sql.conftest import load
from tests.support import session_engine

REPO = Path(__file__).resolve().parents[3]
PROBE = Path(__file__).with_name("JdbcProbe.java")
DAILY = "lakehouse.gold.daily_sales"
FEATURES = "lakehouse.gold.customer_features"
JVM_ZONE = "Asia/Kolkata"  # UTC+05:30 all year: the driver's dates and timestamps cross a zone
FETCH_SIZE = 500
FETCH_SQL = "SELECT * FROM gold.customer_features ORDER BY customer_id, feature_ts"
DAILY_SQL = (
    "SELECT order_date, region, product, orders, units, revenue FROM gold.daily_sales"
    " WHERE order_date BETWEEN ? AND ? AND region = ? AND units >= ? AND revenue > ?"
    " ORDER BY order_date, region, product"
)
FEATURES_SQL = (
    "SELECT plan, count(*) AS customers, sum(orders_count) AS orders,"
    " min(avg_order_value) AS min_aov FROM gold.customer_features"
    " WHERE feature_ts = ? AND tenure_days >= ? AND avg_order_value > ? GROUP BY plan"
    " ORDER BY plan"
)
ROUND_TRIP_SQL = (
    "SELECT CAST(? AS DECIMAL(18,4)) AS d1, CAST(? AS DECIMAL(38,6)) AS d2, CAST(? AS DATE) AS day,"
    " CAST(? AS TIMESTAMPTZ) AS ts, CAST(? AS BOOLEAN) AS flag, CAST(? AS BIGINT) AS big,"
    " CAST(? AS DOUBLE) AS dbl, CAST(? AS VARCHAR) AS txt, CAST(? AS INTEGER) AS nothing"
)
# (probe parameter, the value read back); seven runs: pgjdbc reads the last two in binary
ROUND_TRIP = (
    ("decimal:-12345.6789", "-12345.6789"),
    ("decimal:12345678901234567890123456789012.000001", "12345678901234567890123456789012.000001"),
    ("date:1999-12-31", "1999-12-31"),
    ("timestamptz:2024-02-29T13:14:15.5+01:00", "2024-02-29 12:14:15.500000+00:00"),
    ("boolean:true", "true"),
    ("long:9007199254740993", "9007199254740993"),
    ("double:-0.25", "-0.25"),
    ("string:a'b \u00e9\t\"", "a'b \u00e9\t\""),
    ("null:", None),
)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def jdbc_jar() -> Path:
    """The pgjdbc jar from $LAKEHOUSE_JDBC_JARS, else build/jars/jdbc (``make jars``)."""
    folder = Path(os.environ.get("LAKEHOUSE_JDBC_JARS") or REPO / "build" / "jars" / "jdbc")
    jars = sorted(folder.glob("postgresql-*.jar"))
    if not jars:
        pytest.fail(
            f"no PostgreSQL JDBC driver (postgresql-*.jar) in {folder}: run `make jars`",
            pytrace=False,
        )
    return jars[-1]


def java() -> str:
    """The ``java`` launcher (17+, for the single-file source launcher and records)."""
    found = shutil.which("java")
    if found is None:
        pytest.fail("no `java` on PATH: the JDBC test needs Java 17 or newer", pytrace=False)
    return found


@dataclass(frozen=True)
class ProbeRun:
    """The probe's JSON lines and the parameters it was given."""

    records: list[dict[str, Any]]
    daily_params: list[tuple[dt.date, dt.date, str, int, decimal.Decimal]]
    snapshots: list[dt.datetime]

    def kind(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["kind"] == kind]

    def rows(self, query: int, run: int) -> list[list[str | None]]:
        return [r["values"] for r in self.kind("row") if r["query"] == query and r["run"] == run]


def daily_windows(tables: DeltaStore) -> list[tuple[dt.date, dt.date, str, int, decimal.Decimal]]:
    """Six (first day, last day, region, minimum units, minimum revenue) filters: 10-day
    windows back from the last order date. Six runs take pgjdbc past its prepareThreshold (5),
    so the later ones use a named server-side statement and binary results."""
    last = tables.read(DAILY).agg(F.max("order_date")).first()
    assert last is not None
    end: dt.date = last[0]
    regions = ["west", "east", "north", "south"]
    out = []
    for k in range(6):
        stop = end - dt.timedelta(days=40 * k)
        out.append((stop - dt.timedelta(days=9), stop, regions[k % 4], 2, decimal.Decimal("40.00")))
    return out


def feature_snapshots(tables: DeltaStore) -> list[dt.datetime]:
    """The last and fifth-last feature snapshot times, as UTC instants."""
    micros = tables.read(FEATURES).select(F.unix_micros("feature_ts").alias("m")).distinct()
    ordered = sorted(r.m for r in micros.collect())
    return [EPOCH + dt.timedelta(microseconds=m) for m in (ordered[-1], ordered[-5])]


def probe_args(run: ProbeRun) -> list[str]:
    """The probe's command line after URL and user."""
    args = ["--describe", "gold.daily_sales", "--query", DAILY_SQL]
    for start, stop, region, units, revenue in run.daily_params:
        args += ["--params", f"date:{start}", f"date:{stop}", f"string:{region}"]
        args += [f"int:{units}", f"decimal:{revenue}"]
    latest, earlier = run.snapshots
    local = earlier.astimezone(ZoneInfo(JVM_ZONE)).strftime("%Y-%m-%d %H:%M:%S")
    args += ["--query", FEATURES_SQL]
    args += ["--params", f"timestamptz:{latest.isoformat()}", "int:365", "double:50.5"]
    args += ["--params", f"timestamp:{local}", "int:30", "double:0"]  # JVM-local wall time
    args += ["--query", ROUND_TRIP_SQL]
    for _ in range(7):
        args += ["--params", *(param for param, _ in ROUND_TRIP)]
    return [*args, "--fetch-size", str(FETCH_SIZE), "--fetch-sample", "5", "--fetch", FETCH_SQL]


@pytest.fixture(scope="module")
def java_command() -> list[str]:
    """``java -cp <pgjdbc jar> JdbcProbe.java``; checked before the project is built."""
    return [java(), f"-Duser.timezone={JVM_ZONE}", "-cp", str(jdbc_jar()), str(PROBE)]


@pytest.fixture(scope="module")
def probe(java_command: list[str], endpoint: SqlEndpoint, tables: DeltaStore) -> ProbeRun:
    """Run JdbcProbe.java once against the endpoint (as bi-reader)."""
    planned = ProbeRun([], daily_windows(tables), feature_snapshots(tables))
    info = endpoint.info
    url = f"jdbc:postgresql://{info.host}:{info.port}/{info.database}"
    done = subprocess.run(
        [*java_command, url, info.user, *probe_args(planned)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO,
    )
    if done.returncode != 0:
        pytest.fail(f"JdbcProbe exited {done.returncode}:\n{done.stderr[-3000:]}", pytrace=False)
    records = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert records[-1] == {"kind": "done"}, done.stdout[-2000:]
    return ProbeRun(records, planned.daily_params, planned.snapshots)


# ------------------------------------------------------------------ canonical values


def exact_double(value: float) -> str:
    """What JdbcProbe prints for a double: its exact decimal value, plain."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return "0" if value == 0 else format(decimal.Decimal(value), "f")


def utc_micros_text(micros: int) -> str:
    """What JdbcProbe prints for a timestamptz, from microseconds since the epoch."""
    return (EPOCH + dt.timedelta(microseconds=micros)).strftime("%Y-%m-%d %H:%M:%S.%f+00:00")


def _text_of(dtype: T.DataType) -> Callable[[Any], str]:
    if isinstance(dtype, T.BooleanType):
        return lambda v: "true" if v else "false"
    if isinstance(dtype, T.DecimalType):
        return lambda v: format(v, "f")
    if isinstance(dtype, T.DoubleType | T.FloatType):
        return exact_double
    if isinstance(dtype, T.DateType):
        return lambda v: v.isoformat()
    if isinstance(dtype, T.TimestampType):
        return utc_micros_text  # the column was turned into unix_micros
    return str


def canonical_rows(df: DataFrame, *order: str) -> list[list[str | None]]:
    """Spark's rows sorted by ``order``, in JdbcProbe's canonical text (timestamps read as
    epoch microseconds). The sort comes last: on Sail 0.7.2 a computed column projected
    after ``orderBy`` can put rows out of order (seen past 8192 rows)."""
    fields = df.schema.fields
    texts = [_text_of(f.dataType) for f in fields]
    cols = [
        F.unix_micros(F.col(f.name)).alias(f.name)
        if isinstance(f.dataType, T.TimestampType)
        else F.col(f.name)
        for f in fields
    ]
    return [
        [None if v is None else text(v) for v, text in zip(row, texts, strict=True)]
        for row in df.select(*cols).orderBy(*order).collect()
    ]


def checksum(rows: list[list[str | None]]) -> str:
    """JdbcProbe's fetch checksum: SHA-256 of tab-joined rows (NULL as \\N), newline-ended."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(("\t".join("\\N" if v is None else v for v in row) + "\n").encode())
    return digest.hexdigest()


# ------------------------------------------------------------------ tests


def test_jdbc_lists_schemas_and_exactly_the_selectable_tables(
    probe: ProbeRun, sql_project: Path
) -> None:
    project = load(sql_project)
    assert [(s["catalog"], s["schema"]) for s in probe.kind("schema")] == [
        ("lakehouse", name) for name in ("gold", "information_schema", "pg_catalog", "silver")
    ]
    listed = [(t["schema"], t["name"], t["type"], t["remarks"]) for t in probe.kind("table")]
    visible = [  # as psql's \dt: silver.orders is granted to analysts, silver.customers is not
        "lakehouse.gold.churn_predictions",
        "lakehouse.gold.customer_features",
        "lakehouse.gold.daily_sales",
        "lakehouse.silver.orders",
    ]
    assert listed == [
        (*name.split(".")[1:], "TABLE", project.tables[name].spec.description) for name in visible
    ]


def test_jdbc_columns_and_types_of_a_gold_table(
    probe: ProbeRun, tables: DeltaStore, sql_project: Path
) -> None:
    types = {  # name -> (JDBC type, PostgreSQL type name, COLUMN_SIZE, DECIMAL_DIGITS)
        "order_month": ("VARCHAR", "text", 2147483647, 0),
        "order_date": ("DATE", "date", 13, 0),
        "region": ("VARCHAR", "text", 2147483647, 0),
        "product": ("VARCHAR", "text", 2147483647, 0),
        "orders": ("BIGINT", "int8", 19, 0),
        "units": ("BIGINT", "int8", 19, 0),
        "revenue": ("NUMERIC", "numeric", 14, 2),
        "refunded_orders": ("BIGINT", "int8", 19, 0),
        "customers": ("BIGINT", "int8", 19, 0),
    }
    comments = {c.name: c.comment or None for c in load(sql_project).tables[DAILY].spec.columns}
    keys = ("schema", "table", "position", "name", "jdbc_type", "type_name", "size", "digits")
    got = [(*(c[k] for k in keys), c["remarks"]) for c in probe.kind("column")]
    assert got == [
        ("gold", "daily_sales", i, name, *types[name], comments[name])
        for i, name in enumerate(tables.read(DAILY).columns, start=1)
    ]
    assert comments["order_month"] == "yyyy-MM"
    # The mirror declares no constraints or indexes (the catalog's keys are not enforced)
    assert probe.kind("primary_key") == probe.kind("imported_key") == probe.kind("index") == []


def test_jdbc_prepared_statement_with_typed_parameters_equals_spark(
    probe: ProbeRun, tables: DeltaStore
) -> None:
    result = [
        (c["name"], c["jdbc_type"], c["type_name"], c["precision"], c["scale"])
        for c in probe.kind("result_column")
        if c["query"] == 0
    ]
    assert result == [
        ("order_date", "DATE", "date", 13, 0),
        ("region", "VARCHAR", "text", 2147483647, 0),
        ("product", "VARCHAR", "text", 2147483647, 0),
        ("orders", "BIGINT", "int8", 19, 0),
        ("units", "BIGINT", "int8", 19, 0),
        ("revenue", "NUMERIC", "numeric", 14, 2),
    ]
    counts = [len([p for p in probe.kind("parameter") if p["query"] == q]) for q in (0, 1, 2)]
    assert counts == [5, 3, len(ROUND_TRIP)]
    daily = tables.read(DAILY)
    total = 0
    for run, (start, stop, region, units, revenue) in enumerate(probe.daily_params):
        expected = canonical_rows(
            daily.where(F.col("order_date").between(start, stop))
            .where((F.col("region") == region) & (F.col("units") >= units))
            .where(F.col("revenue") > revenue)
            .select("order_date", "region", "product", "orders", "units", "revenue"),
            "order_date",
            "region",
            "product",
        )
        assert probe.rows(0, run) == expected, (run, start, stop, region)
        total += len(expected)
    assert total >= 10  # the six filters select real rows


def test_jdbc_timestamp_parameters_equal_spark(probe: ProbeRun, tables: DeltaStore) -> None:
    features = tables.read(FEATURES)
    for run, (snapshot, tenure, aov) in enumerate(
        zip(probe.snapshots, (365, 30), (50.5, 0.0), strict=True)
    ):
        expected = canonical_rows(
            features.where(
                F.unix_micros("feature_ts") == (snapshot - EPOCH) // dt.timedelta(microseconds=1)
            )
            .where((F.col("tenure_days") >= tenure) & (F.col("avg_order_value") > aov))
            .groupBy("plan")
            .agg(
                F.count(F.lit(1)).alias("customers"),
                F.sum("orders_count").alias("orders"),
                F.min("avg_order_value").alias("min_aov"),
            ),
            "plan",
        )
        assert probe.rows(1, run) == expected and len(expected) >= 2, (run, snapshot)


def test_jdbc_parameters_round_trip_in_text_and_binary(probe: ProbeRun) -> None:
    expected = [[value for _, value in ROUND_TRIP]]
    assert [probe.rows(2, run) for run in range(7)] == [expected] * 7


def test_jdbc_streams_a_whole_masked_gold_table(
    probe: ProbeRun, spark: SparkSession, tables: DeltaStore, sql_project: Path
) -> None:
    governed = GovernedStore(
        DeltaStore(spark, load(sql_project), session_engine(spark)),
        GovernanceScope(load(sql_project), "bi-reader", run_id="r", job="t"),
    )
    as_bi_reader = governed.read(FEATURES)
    expected = canonical_rows(as_bi_reader, "customer_id", "feature_ts")
    [fetched] = probe.kind("fetch")
    assert fetched["columns"] == as_bi_reader.columns
    assert fetched["rows"] == len(expected) == tables.row_count_unchecked(FEATURES)
    assert fetched["rows"] > 10 * FETCH_SIZE  # pgjdbc reads it in batches of FETCH_SIZE rows
    assert [r["values"] for r in probe.kind("fetch_row")] == expected[:5]
    assert fetched["sha256"] == checksum(expected)
    assert {row[as_bi_reader.columns.index("region")] for row in expected} == {"***"}
