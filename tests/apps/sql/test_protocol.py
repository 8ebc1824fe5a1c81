"""Typed parameters, DuckDB's internals hidden or refused, and SQLAlchemy reflection."""

from __future__ import annotations

import datetime as dt
import decimal

import adbc_driver_postgresql.dbapi as adbc  # type: ignore[import-untyped]
import psycopg
import pytest
import sqlalchemy as sa

from lakehouse.apps.sql.endpoint import SqlEndpoint
from lakehouse.io.delta import DeltaStore
from tests.apps.sql.conftest import psql
from tests.apps.sql.test_copy import wait_results

DAILY = "lakehouse.gold.daily_sales"
TYPED = (
    "SELECT order_date, region, orders, revenue FROM gold.daily_sales"
    " WHERE orders >= $1 AND order_date >= $2 AND region = $3 AND revenue > $4"
    " AND CAST(order_date AS TIMESTAMP) < $5 AND (orders > 1) = $6 AND CAST(revenue AS DOUBLE) > $7"
    " AND CAST(units AS INTEGER) > $8"
    " ORDER BY order_date, region, product LIMIT $9"
)
ARGS = (
    2,
    dt.date(2024, 1, 1),
    "west",
    decimal.Decimal("10.50"),
    dt.datetime(2030, 1, 1),
    True,
    1.5,
    0,
    5,
)


def _expected(tables: DeltaStore) -> list[tuple[object, ...]]:
    rows = (
        tables.read(DAILY)
        .where(
            "orders >= 2 AND order_date >= DATE'2024-01-01' AND region = 'west'"
            " AND revenue > 10.50 AND units > 0"
        )
        .orderBy("order_date", "region", "product")
        .limit(5)
        .collect()
    )
    return [(r.order_date, r.region, r.orders, r.revenue) for r in rows]


def _parameter_types(conn: psycopg.Connection, name: bytes, sql: str) -> list[int]:
    """ParameterDescription of ``sql`` prepared unnamed-typed (every OID 0)."""
    conn.pgconn.send_prepare(name, sql.encode())
    (prepared,) = wait_results(conn.pgconn)
    assert prepared.status == psycopg.pq.ExecStatus.COMMAND_OK, prepared.error_message
    conn.pgconn.send_describe_prepared(name)
    (described,) = wait_results(conn.pgconn)
    return [described.param_type(i) for i in range(described.nparams)]


def test_parameter_types_are_inferred(endpoint: SqlEndpoint) -> None:
    with psycopg.connect(endpoint.info.url()) as conn:
        # int8, date, text, numeric, timestamp, bool, float8, int4, int8 (LIMIT)
        assert _parameter_types(conn, b"typed", TYPED) == [
            20,
            1082,
            25,
            1700,
            1114,
            16,
            701,
            23,
            20,
        ]
        cast = "SELECT $1::INTEGER + 1, $2, $3 || 'x'"
        assert _parameter_types(conn, b"cast", cast) == [23, 25, 25]  # unknown: text
        between = (
            "SELECT count(*) FROM gold.daily_sales d"
            " WHERE d.order_date BETWEEN $1 AND $2 AND d.product IN ($3, $4)"
        )
        assert _parameter_types(conn, b"between", between) == [1082, 1082, 25, 25]


def test_typed_binary_binds(endpoint: SqlEndpoint, tables: DeltaStore) -> None:
    expected = _expected(tables)
    assert len(expected) == 5
    query = TYPED
    for i in range(9, 0, -1):
        query = query.replace(f"${i}", "%s")
    with psycopg.connect(endpoint.info.url()) as conn:
        binary = conn.cursor(binary=True).execute(query, ARGS).fetchall()
        placeholders = query.replace("%s", "%b")
        prepared = conn.cursor().execute(placeholders, ARGS, prepare=True).fetchall()
        again = conn.cursor().execute(placeholders, ARGS, prepare=True).fetchall()
        text = conn.cursor().execute(query, ARGS).fetchall()
    assert binary == prepared == again == text == expected


def test_adbc_bind_parameters(endpoint: SqlEndpoint, tables: DeltaStore) -> None:
    expected = _expected(tables)
    with adbc.connect(endpoint.info.url()) as conn, conn.cursor() as cur:
        cur.execute(TYPED, parameters=ARGS)
        table = cur.fetch_arrow_table()
    got = table.to_pydict()
    assert got["order_date"] == [r[0] for r in expected]
    assert got["orders"] == [r[2] for r in expected]
    assert got["revenue"] == [format(r[3], "f") for r in expected]  # ADBC: numeric as text


def test_duckdb_schemas_are_not_listed(endpoint: SqlEndpoint) -> None:
    with psycopg.connect(endpoint.info.url()) as conn:
        schemata = conn.execute(
            "SELECT catalog_name, schema_name FROM information_schema.schemata ORDER BY 2"
        ).fetchall()
        assert schemata == [
            ("lakehouse", "gold"),
            ("lakehouse", "information_schema"),
            ("lakehouse", "pg_catalog"),
            ("lakehouse", "silver"),
        ]
        listed = conn.execute(
            "SELECT DISTINCT table_catalog, table_schema FROM information_schema.tables ORDER BY 2"
        ).fetchall()
        assert listed == [("lakehouse", "gold"), ("lakehouse", "silver")]
        columns = conn.execute(
            "SELECT DISTINCT table_schema FROM information_schema.columns ORDER BY 1"
        ).fetchall()
        assert columns == [("gold",), ("silver",)]
        namespaces = conn.execute("SELECT nspname FROM pg_catalog.pg_namespace ORDER BY 1")
        assert namespaces.fetchall() == [
            ("gold",),
            ("information_schema",),
            ("pg_catalog",),
            ("silver",),
        ]
    engine = sa.create_engine(endpoint.info.url().replace("postgresql://", "postgresql+psycopg://"))
    try:
        assert sa.inspect(engine).get_schema_names() == ["gold", "information_schema", "silver"]
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM duckdb_settings()",
        "SELECT table_name FROM duckdb_tables",
        "SELECT * FROM pragma_table_info('gold.daily_sales')",
        "SELECT 1 FROM (SELECT * FROM duckdb_functions()) f",
        "PRAGMA version",
        "CALL pragma_version()",
        "ATTACH ':memory:' AS other",
        "DETACH lakehouse",
        "INSTALL httpfs",
        "LOAD httpfs",
        "EXPORT DATABASE '/tmp/lh_export'",
        "IMPORT DATABASE '/tmp/lh_export'",
        "CHECKPOINT",
        "SET enable_progress_bar = true",
        "SET preserve_insertion_order TO false",
        "RESET threads",
        "SET memory_limit = '10GB'",
    ],
)
def test_duckdb_internals_are_refused(endpoint: SqlEndpoint, sql: str) -> None:
    got = psql(endpoint, sql)
    assert got.returncode != 0
    assert "ERROR:  permission denied" in got.stderr, got.stderr


def test_postgresql_session_settings_are_accepted(endpoint: SqlEndpoint) -> None:
    with psycopg.connect(endpoint.info.url(), autocommit=True) as conn:
        for sql in (
            "SET extra_float_digits = 3",
            "SET application_name = 'dbeaver'",
            "SET client_encoding TO 'UTF8'",
            "SET DateStyle = ISO",
            "SET search_path TO gold, public",
            "SET TimeZone = 'UTC'",
            "RESET ALL",
        ):
            conn.execute(sql)
        assert conn.execute("SELECT 'duckdb_settings()' AS s").fetchone() == ("duckdb_settings()",)


def test_sqlalchemy_reflection(endpoint: SqlEndpoint) -> None:
    engine = sa.create_engine(endpoint.info.url().replace("postgresql://", "postgresql+psycopg://"))
    try:
        inspector = sa.inspect(engine)
        assert sorted(inspector.get_table_names("gold")) == [
            "churn_predictions",
            "customer_features",
            "daily_sales",
        ]
        columns = {c["name"]: c for c in inspector.get_columns("daily_sales", "gold")}
        assert list(columns) == [
            "order_month",
            "order_date",
            "region",
            "product",
            "orders",
            "units",
            "revenue",
            "refunded_orders",
            "customers",
        ]
        assert isinstance(columns["order_date"]["type"], sa.Date)
        assert isinstance(columns["orders"]["type"], sa.BigInteger)
        revenue = columns["revenue"]["type"]
        assert isinstance(revenue, sa.Numeric) and (revenue.precision, revenue.scale) == (14, 2)
        assert inspector.get_pk_constraint("daily_sales", "gold")["constrained_columns"] == []
        assert inspector.get_foreign_keys("daily_sales", "gold") == []
        assert inspector.get_indexes("daily_sales", "gold") == []
        assert inspector.get_view_names("gold") == []
        table = sa.Table("daily_sales", sa.MetaData(), autoload_with=engine, schema="gold")
        with engine.connect() as conn:
            count = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
        assert count > 6000
    finally:
        engine.dispose()
