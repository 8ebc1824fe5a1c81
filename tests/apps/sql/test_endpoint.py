"""The SQL endpoint through real clients (psql, SQLAlchemy 2 + psycopg 3) and `lakehouse sql serve`."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import hashlib
import hmac
import io
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from deltalake import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from lakehouse.apps.sql.endpoint import SqlEndpoint
from lakehouse.governance.masks import load_mask_key
from lakehouse.governance.scope import GovernanceScope
from lakehouse.governance.store import GovernedStore
from lakehouse.io.delta import DeltaStore
from tests.apps.sql.conftest import PSQL, load, psql, start_endpoint

DAILY = "lakehouse.gold.daily_sales"
FEATURES = "lakehouse.gold.customer_features"


def spark_csv(spark: SparkSession, sql: str) -> str:
    """Spark's answer to ``sql`` in psql's CSV format (header, NULL as empty)."""
    df = spark.sql(sql)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(df.columns)
    for row in df.collect():
        writer.writerow(["" if v is None else _pg_text(v) for v in row])
    return out.getvalue()


def _pg_text(value: Any) -> str:
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def test_psql_lists_only_tables_the_principal_may_select(endpoint: SqlEndpoint) -> None:
    listed = psql(endpoint, r"\dt *.*")
    assert listed.returncode == 0, listed.stderr
    rows = list(csv.DictReader(io.StringIO(listed.stdout)))
    assert sorted((r["Schema"], r["Name"], r["Type"]) for r in rows) == [
        ("gold", "churn_predictions", "table"),
        ("gold", "customer_features", "table"),
        ("gold", "daily_sales", "table"),
        ("silver", "orders", "table"),  # granted to analysts in conf/grants.yml
    ]
    described = psql(endpoint, r"\d gold.daily_sales")
    assert described.returncode == 0, described.stderr
    columns = {r["Column"]: r["Type"] for r in csv.DictReader(io.StringIO(described.stdout))}
    assert columns["order_date"] == "date"
    assert columns["revenue"] == "numeric(14,2)"
    assert columns["orders"] == "bigint"
    assert columns["order_month"] == "text"
    denied = psql(endpoint, "SELECT count(*) FROM silver.customers")
    assert denied.returncode != 0
    assert "silver.customers" in denied.stderr and "does not exist" in denied.stderr


def test_psql_full_table_equals_spark(
    endpoint: SqlEndpoint, spark: SparkSession, tables: DeltaStore
) -> None:
    tables.read(DAILY).createOrReplaceTempView("daily_sales_spark")
    query = "SELECT * FROM {t} ORDER BY order_date, region, product"
    got = psql(endpoint, query.format(t="gold.daily_sales"))
    assert got.returncode == 0, got.stderr
    expected = spark_csv(spark, query.format(t="daily_sales_spark"))
    assert got.stdout.count("\n") == tables.row_count_unchecked(DAILY) + 1
    assert got.stdout == expected


def test_psql_aggregate_on_partitioned_table_equals_spark(
    endpoint: SqlEndpoint, spark: SparkSession, tables: DeltaStore
) -> None:
    tables.read(DAILY).createOrReplaceTempView("daily_sales_spark")
    query = (
        "SELECT order_month, region, SUM(orders) AS orders, SUM(units) AS units,"
        " SUM(revenue) AS revenue, COUNT(*) AS days_products, MAX(customers) AS top"
        " FROM {t} WHERE order_month >= '2024-01' GROUP BY order_month, region"
        " ORDER BY order_month, region"
    )
    got = psql(endpoint, query.format(t="gold.daily_sales"))
    assert got.returncode == 0, got.stderr
    assert got.stdout == spark_csv(spark, query.format(t="daily_sales_spark"))
    assert got.stdout.count("\n") > 10  # the filter keeps many partitions


def test_sqlalchemy_reflects_and_queries(
    endpoint: SqlEndpoint, spark: SparkSession, tables: DeltaStore
) -> None:
    engine = sa.create_engine(f"postgresql+psycopg://{endpoint.info.url().split('://', 1)[1]}")
    try:
        inspector = sa.inspect(engine)
        assert {"gold", "silver"} <= set(inspector.get_schema_names())
        assert sorted(inspector.get_table_names("gold")) == [
            "churn_predictions",
            "customer_features",
            "daily_sales",
        ]
        assert inspector.get_table_names("silver") == ["orders"]
        assert inspector.get_table_comment("daily_sales", "gold") == {
            "text": "Orders, units and revenue per day, region and product (BI)"
        }
        daily = sa.Table("daily_sales", sa.MetaData(), autoload_with=engine, schema="gold")
        types = {c.name: str(c.type) for c in daily.columns}
        assert types["order_date"] == "DATE"
        assert types["orders"] == "BIGINT"
        assert types["revenue"] == "NUMERIC(14, 2)"
        assert types["region"] == "TEXT"
        stmt = (
            sa.select(daily.c.region, sa.func.sum(daily.c.units).label("units"))
            .where(daily.c.order_month == sa.bindparam("month"))
            .group_by(daily.c.region)
            .order_by(daily.c.region)
        )
        with engine.connect() as conn:
            month = conn.execute(sa.text("SELECT max(order_month) FROM gold.daily_sales")).scalar()
            got = [tuple(r) for r in conn.execute(stmt, {"month": month})]
    finally:
        engine.dispose()
    expected = [
        (r["region"], r["units"])
        for r in tables.read(DAILY)
        .where(f"order_month = '{month}'")
        .groupBy("region")
        .agg({"units": "sum"})
        .withColumnRenamed("sum(units)", "units")
        .orderBy("region")
        .collect()
    ]
    assert got == expected and len(got) == 4


def test_binary_results_and_parameters(endpoint: SqlEndpoint, tables: DeltaStore) -> None:
    with psycopg.connect(endpoint.info.url()) as conn, conn.cursor(binary=True) as cur:
        cur.execute(
            "SELECT order_date, region, orders, revenue FROM gold.daily_sales"
            " WHERE order_date >= %s AND orders >= %s ORDER BY order_date, region, product"
            " LIMIT 3",
            (dt.date(2024, 1, 1), 2),
        )
        got = cur.fetchall()
    expected = [
        (r.order_date, r.region, r.orders, r.revenue)
        for r in tables.read(DAILY)
        .where("order_date >= DATE'2024-01-01' AND orders >= 2")
        .orderBy("order_date", "region", "product")
        .limit(3)
        .collect()
    ]
    assert got == expected and len(got) == 3


def test_masked_gold_columns_stay_masked(
    endpoint: SqlEndpoint, spark: SparkSession, tables: DeltaStore, sql_project: Path
) -> None:
    query = "SELECT customer_id, region, plan, orders_count FROM {t} ORDER BY 1, 2, 3, 4"
    got = psql(endpoint, query.format(t="gold.customer_features"))
    assert got.returncode == 0, got.stderr
    governed = GovernedStore(
        DeltaStore(spark, load(sql_project), "sail"),
        GovernanceScope(load(sql_project), "bi-reader", run_id="r", job="t"),
    )
    governed.read(FEATURES).createOrReplaceTempView("features_as_bi_reader")
    assert got.stdout == spark_csv(spark, query.format(t="features_as_bi_reader"))
    rows = list(csv.DictReader(io.StringIO(got.stdout)))
    raw_ids = {r.customer_id for r in tables.read(FEATURES).select("customer_id").collect()}
    assert {r["region"] for r in rows} == {"***"}
    key = load_mask_key(sql_project / "data", "lakehouse")  # the catalog's key file
    assert {r["customer_id"] for r in rows} == {
        hmac.new(key.secret, c.encode(), hashlib.sha256).hexdigest() for c in raw_ids
    }
    assert not {r["customer_id"] for r in rows} & {
        hashlib.sha256(c.encode()).hexdigest() for c in raw_ids
    }


def test_owner_sees_unmasked_values(sql_project: Path, tables: DeltaStore) -> None:
    ep = start_endpoint(sql_project, "alice")  # data-engineers own the catalog
    try:
        got = psql(ep, "SELECT DISTINCT region FROM gold.customer_features ORDER BY 1", "-t")
    finally:
        ep.stop()
    expected = sorted({r.region for r in tables.read(FEATURES).select("region").collect()})
    assert got.stdout.split() == expected and "***" not in expected


def test_write_after_start_is_visible_to_the_next_query(
    endpoint: SqlEndpoint, tables: DeltaStore
) -> None:
    count = "SELECT count(*) AS n FROM gold.daily_sales WHERE region = 'antarctica'"
    before = psql(endpoint, count, "-t")
    assert before.stdout.strip() == "0"
    daily = tables.read(DAILY)
    extra = (
        daily.limit(3)
        .withColumn("region", F.lit("antarctica"))
        .withColumn("order_month", F.lit("2099-01"))
        .select(*daily.columns)
    )
    tables.append(DAILY, extra)
    after = psql(endpoint, count, "-t")
    assert after.stdout.strip() == "3"
    assert endpoint.mirror.versions[DAILY] == tables.version(DAILY)


def test_writes_are_refused(endpoint: SqlEndpoint) -> None:
    for sql in (
        "INSERT INTO gold.daily_sales SELECT * FROM gold.daily_sales",
        "DELETE FROM gold.daily_sales",
        "CREATE TABLE gold.x AS SELECT 1 AS a",
        "COPY gold.daily_sales FROM STDIN",
    ):
        got = psql(endpoint, sql)
        assert got.returncode != 0
        assert "the lakehouse SQL endpoint is read-only" in got.stderr, sql
    for sql in (  # DuckDB's own statements and server files: 42501 (test_protocol.py)
        "COPY gold.daily_sales TO '/tmp/x.csv'",
        "ATTACH '/tmp/other.duckdb' AS other",
        "INSTALL delta",
    ):
        got = psql(endpoint, sql)
        assert got.returncode != 0
        assert "ERROR:  permission denied" in got.stderr, sql
    with psycopg.connect(endpoint.info.url()) as conn:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("UPDATE gold.daily_sales SET units = 0")
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # a DuckDB setting
            conn.execute("SET enable_external_access = true")
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # no file access
            conn.execute("SELECT * FROM read_csv('/etc/hostname')")


def test_connection_checks_user_database_and_password(sql_project: Path) -> None:
    ep = start_endpoint(sql_project, "bi-reader", password="s3cret")
    base = f"host=127.0.0.1 port={ep.info.port} dbname=lakehouse"
    try:
        with psycopg.connect(f"{base} user=bi-reader password=s3cret") as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("lakehouse",)
        for dsn, message in (
            (f"{base} user=bi-reader password=wrong", "password authentication failed"),
            (f"{base} user=bob password=s3cret", 'connect as user "bi-reader"'),
            (f"host=127.0.0.1 port={ep.info.port} dbname=x user=bi-reader", 'database "x"'),
        ):
            with pytest.raises(psycopg.OperationalError, match=message):
                psycopg.connect(dsn, connect_timeout=5)
    finally:
        ep.stop()


LAKEHOUSE = str(Path(sys.executable).with_name("lakehouse"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sql_serve_prints_connection_info_audits_and_stops_on_ctrl_c(sql_project: Path) -> None:
    port = _free_port()
    env = {**os.environ, "LAKEHOUSE_PRINCIPAL": "bi-reader"}
    cmd = [LAKEHOUSE, "sql", "serve", "--port", str(port), "--schema", "gold", "--schema", "silver"]
    cmd += ["-C", str(sql_project), "--var", f"data_root={sql_project / 'data'}"]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 90
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip())
            if "Ctrl-C stops" in line:
                break
        banner = "\n".join(lines)
        assert f"host 127.0.0.1 · port {port} · database lakehouse · user bi-reader" in banner, (
            banner
        )
        assert "gold.daily_sales" in banner and "silver.customers" not in banner
        url = f"postgresql://bi-reader@127.0.0.1:{port}/lakehouse"
        got = subprocess.run(
            [
                PSQL,
                "-X",
                "-At",
                "-c",
                "SELECT count(DISTINCT order_month) > 12 FROM gold.daily_sales",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert got.stdout.strip() == "t", got.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "SQL endpoint stopped" in out
    audit = DeltaTable(str(sql_project / "data" / "tables" / "meta" / "access_audit")).to_pandas()
    decisions = {
        (r.securable, bool(r.allowed))
        for r in audit[(audit.job == "sql-serve") & (audit.principal == "bi-reader")].itertuples()
    }
    assert ("lakehouse.gold.daily_sales", True) in decisions
    assert ("lakehouse.silver.orders", True) in decisions
    assert ("lakehouse.silver.customers", False) in decisions


def test_concurrent_clients_get_consistent_answers(endpoint: SqlEndpoint) -> None:
    query = "SELECT count(*), sum(revenue) FROM gold.daily_sales WHERE region <> 'antarctica'"

    def client(_: int) -> set[tuple[Any, ...]]:
        with psycopg.connect(endpoint.info.url()) as conn:
            return {tuple(conn.execute(query).fetchone() or ()) for _ in range(5)}

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = set().union(*pool.map(client, range(4)))
    with psycopg.connect(endpoint.info.url()) as conn:
        expected = tuple(conn.execute(query).fetchone() or ())
    assert answers == {expected} and expected[0] > 6000


def test_text_and_binary_formats_agree(endpoint: SqlEndpoint) -> None:
    query = (
        "SELECT * FROM (VALUES"
        " (CAST(0 AS DECIMAL(18,4)), 1::SMALLINT, 2::INTEGER, 3::BIGINT, 1.5::DOUBLE, true,"
        "  DATE '1999-12-31', TIMESTAMP '2024-02-29 13:14:15.5', 'é', NULL::VARCHAR),"
        " (-12345.6789, -1::SMALLINT, -2::INTEGER, -3::BIGINT, -0.25::DOUBLE, false,"
        "  DATE '2024-01-01', TIMESTAMP '1970-01-01 00:00:00', '', 'x'),"
        " (0.0005, 0::SMALLINT, 0::INTEGER, 9007199254740993::BIGINT, 1e300::DOUBLE, NULL,"
        "  DATE '2000-01-01', TIMESTAMP '2000-01-01 00:00:00.000001', 'a''b', 'y'),"
        " (99999999999999.9999, 7::SMALLINT, 7::INTEGER, 7::BIGINT, 0::DOUBLE, true,"
        "  DATE '2038-01-19', TIMESTAMP '2099-12-31 23:59:59', 'z', 'z')"
        ") AS t(d, s, i, b, f, flag, day, ts, txt, n)"
    )
    with psycopg.connect(endpoint.info.url()) as conn:
        text_rows = conn.execute(query).fetchall()
        binary_rows = conn.cursor(binary=True).execute(query).fetchall()
    assert binary_rows == text_rows
    assert text_rows[0][0] == decimal.Decimal("0.0000")
    assert text_rows[1][0] == decimal.Decimal("-12345.6789")
    assert text_rows[2][3] == 9007199254740993
    assert text_rows[0][7] == dt.datetime(2024, 2, 29, 13, 14, 15, 500000)
    assert text_rows[2][8] == "a'b" and text_rows[0][9] is None


def test_nested_and_special_values_as_text(endpoint: SqlEndpoint) -> None:
    got = psql(
        endpoint,
        "SELECT [1, 2] AS l, {'a': 1} AS s, 'NaN'::DOUBLE AS nan, 2.0::DOUBLE AS two,"
        " INTERVAL 1 DAY AS i, 'ab'::BLOB AS b, TIMESTAMPTZ '2024-01-02 03:04:05+00' AS tz",
    )
    assert got.returncode == 0, got.stderr
    assert got.stdout.splitlines()[1] == (
        '"[1, 2]","{""a"": 1}",NaN,2,1 day,\\x6162,2024-01-02 03:04:05+00'
    )


def test_sql_cursors_for_drivers_that_fetch_in_batches(endpoint: SqlEndpoint) -> None:
    query = "SELECT order_date, product FROM gold.daily_sales WHERE region = %s ORDER BY 1, 2"
    with psycopg.connect(endpoint.info.url()) as conn:
        expected = conn.execute(query, ["west"]).fetchall()
        with conn.cursor(name="batches") as cur:  # DECLARE … CURSOR / FETCH FORWARD n
            cur.itersize = 100
            cur.execute(query, ["west"])
            streamed = list(cur)
    assert streamed == expected and len(expected) > 1000
    total = psql(endpoint, "SELECT count(*) FROM gold.daily_sales", "-t").stdout.strip()
    fetched = psql(
        endpoint, "SELECT order_date FROM gold.daily_sales", "-t", "-v", "FETCH_COUNT=500"
    )
    assert fetched.returncode == 0, fetched.stderr
    assert len(fetched.stdout.splitlines()) == int(total) > 6000


def test_the_endpoint_runs_within_its_limits_and_keeps_the_mask_key_out_of_reach(
    endpoint: SqlEndpoint, sql_project: Path
) -> None:
    settings = (
        "SELECT name, value FROM duckdb_settings() WHERE name IN "
        "('memory_limit', 'max_temp_directory_size', 'temp_directory')"
    )
    key = load_mask_key(sql_project / "data", "lakehouse")
    inner, outer = key.pads()
    with psycopg.connect(endpoint.info.url(), autocommit=True) as client:
        assert client.execute("SHOW statement_timeout").fetchone() == ("300s",)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # DuckDB's internals
            client.execute(settings)
    conn = endpoint.mirror.connect()  # the server's own view of its DuckDB
    try:
        got = dict(conn.execute(settings).fetchall())
        assert got == {
            "memory_limit": "2.0 GiB",
            "max_temp_directory_size": "10.0 GiB",
            "temp_directory": str(sql_project / "data" / "_sql_endpoint" / "tmp"),
        }
        # the key enters only the load statements: no macro, view or setting holds it
        for secret in (key.secret.hex(), inner, outer):
            found = conn.execute(
                "SELECT (SELECT count(*) FROM duckdb_functions() WHERE contains("
                "lower(coalesce(macro_definition, '')), $s)) + (SELECT count(*) FROM "
                "duckdb_views() WHERE contains(lower(sql), $s))",
                {"s": secret},
            ).fetchone()
            assert found == (0,)
    finally:
        conn.close()
