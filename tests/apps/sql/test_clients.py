"""One endpoint, two principals, every client people use: each answer equals a governed Spark read.

The demo project's catalog gets row filters (analysts see two regions and no basic-plan
customers, data engineers everything) on top of the masked Gold columns of the module's
``sql_project``. ``bi-reader`` (analysts: masked, filtered) and ``alice`` (data engineers, the
catalog owner: unmasked, unfiltered) log in to the same endpoint with their own secrets; each
client runs the same queries as each principal, and the rows must equal what
:func:`governed_query` returns for that principal through Spark.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import adbc_driver_postgresql.dbapi as adbc
import connectorx as cx
import pandas as pd
import polars as pl
import psycopg
import pytest
import sqlalchemy as sa
import yaml
from pyspark.sql import SparkSession

from lakehouse.apps.sql.auth import SqlLogins
from lakehouse.apps.sql.endpoint import SqlEndpoint
from lakehouse.governance.query import governed_query
from lakehouse.governance.scope import GovernanceScope
from lakehouse.governance.store import GovernedStore
from lakehouse.io.delta import DeltaStore
from tests.apps.sql.conftest import PSQL, load

SECRETS = {"bi-reader": "bi-reader-secret-1", "alice": "alice's secret 2"}
ALICE_ENV = "LAKEHOUSE_TEST_ALICE_SECRET"
ROW_FILTERS = {
    "daily_sales": [
        {"predicate": "region IN ('north', 'east')", "to": ["analysts"]},
        {"predicate": "true", "to": ["data-engineers"]},
    ],
    "customer_features": [
        {"predicate": "plan <> 'basic'", "to": ["analysts"]},
        {"predicate": "true", "to": ["data-engineers"]},
    ],
}
QUERIES = {
    "aggregate": (
        "SELECT region, product, count(*) AS days, sum(orders) AS orders,"
        " sum(revenue) AS revenue FROM lakehouse.gold.daily_sales"
        " GROUP BY region, product ORDER BY region, product"
    ),
    "masked rows": (
        "SELECT customer_id, region, plan, orders_count, total_spend"
        " FROM lakehouse.gold.customer_features ORDER BY customer_id, feature_ts"
    ),
    "dates": (
        "SELECT order_date, region, product, orders, revenue FROM lakehouse.gold.daily_sales"
        " ORDER BY order_date, region, product"
    ),
}
PRINCIPALS = ("bi-reader", "alice")


@pytest.fixture(scope="module")
def filtered_project(sql_project: Path) -> Path:
    """The built demo project with row filters on both Gold tables (reads only: no rebuild)."""
    catalog_file = sql_project / "conf" / "catalog.yml"
    doc = yaml.safe_load(catalog_file.read_text())
    tables = doc["catalog"]["schemas"]["gold"]["tables"]
    for table, rules in ROW_FILTERS.items():
        tables[table]["row_filters"] = rules
    catalog_file.write_text(yaml.safe_dump(doc, sort_keys=False))
    return sql_project


@pytest.fixture(scope="module")
def logins_file(filtered_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("secrets") / "logins.yml"
    path.write_text(
        yaml.safe_dump(
            {"logins": {"bi-reader": {"secret": SECRETS["bi-reader"]}, "alice": {"env": ALICE_ENV}}}
        )
    )
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def shared_endpoint(filtered_project: Path, logins_file: Path) -> Iterator[SqlEndpoint]:
    """One endpoint serving every principal with a login, on a free loopback port."""
    os.environ[ALICE_ENV] = SECRETS["alice"]
    project = load(filtered_project)
    governance = GovernanceScope(project, "lakehouse-job", run_id="r-clients", job="sql-serve")
    endpoint = SqlEndpoint(
        project,
        governance,
        schemas=["gold"],
        port=0,
        logins=SqlLogins.load(project, logins_file),
    ).start()
    yield endpoint
    endpoint.stop()
    os.environ.pop(ALICE_ENV, None)


def url(endpoint: SqlEndpoint, principal: str, scheme: str = "postgresql") -> str:
    info = endpoint.info
    secret = quote(SECRETS[principal], safe="")
    return f"{scheme}://{principal}:{secret}@{info.host}:{info.port}/{info.database}"


def canon(value: Any) -> Any:
    """One spelling per value whatever the client's types and scales: numbers by value
    (connectorx reads every numeric with scale 10, pandas a bigint sum as float, psql
    prints text), dates and times in ISO form."""
    if value is None:
        return None
    if isinstance(value, decimal.Decimal | float | int) and not isinstance(value, bool):
        return _number(str(value) if not isinstance(value, float) else repr(value))
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        return _number(value)
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None).isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars from pandas
        return canon(value.item())
    return str(value)


_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")


def _number(text: str) -> str:
    number = decimal.Decimal(text)
    return format(number.normalize(), "f") if number else "0"


def rows(records: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [tuple(canon(v) for v in record) for record in records]


def spark_rows(spark: SparkSession, project_root: Path, principal: str, sql: str) -> list[Any]:
    project = load(project_root)
    store = GovernedStore(
        DeltaStore(spark, project, "sail"),
        GovernanceScope(project, principal, run_id="r-clients", job="t"),
    )
    with governed_query(store, sql) as df:
        return rows([tuple(r) for r in df.collect()])


# ----------------------------------------------------------------- the clients


def via_psql(endpoint: SqlEndpoint, principal: str, sql: str) -> list[tuple[Any, ...]]:
    info = endpoint.info
    done = subprocess.run(
        [
            PSQL,
            "-X",
            "-v",
            "ON_ERROR_STOP=1",
            "--csv",
            "-h",
            info.host,
            "-p",
            str(info.port),
            "-U",
            principal,
            "-d",
            info.database,
            "-c",
            sql,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PGPASSWORD": SECRETS[principal], "PGCONNECT_TIMEOUT": "10", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    parsed = list(csv.reader(io.StringIO(done.stdout)))[1:]
    return rows([tuple(None if v == "" else v for v in r) for r in parsed])


def via_psycopg(endpoint: SqlEndpoint, principal: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url(endpoint, principal)) as conn:
        return rows(conn.execute(sql).fetchall())


def via_psycopg_binary(endpoint: SqlEndpoint, principal: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url(endpoint, principal)) as conn:
        return rows(conn.cursor(binary=True).execute(sql, prepare=True).fetchall())


def via_sqlalchemy_pandas(endpoint: SqlEndpoint, principal: str, sql: str) -> list[Any]:
    engine = sa.create_engine(url(endpoint, principal, "postgresql+psycopg"))
    try:
        with engine.connect() as conn:
            frame = pd.read_sql(sa.text(sql), conn, coerce_float=False)
    finally:
        engine.dispose()
    return rows([tuple(None if pd.isna(v) else v for v in r) for r in frame.itertuples(False)])


def via_adbc(endpoint: SqlEndpoint, principal: str, sql: str) -> list[tuple[Any, ...]]:
    with adbc.connect(url(endpoint, principal)) as conn, conn.cursor() as cursor:
        cursor.execute(sql)
        table = cursor.fetch_arrow_table()
    return rows([tuple(r.values()) for r in table.to_pylist()])


def via_connectorx(endpoint: SqlEndpoint, principal: str, sql: str) -> list[tuple[Any, ...]]:
    table = cx.read_sql(url(endpoint, principal), sql, return_type="arrow", protocol="binary")
    return rows([tuple(r.values()) for r in table.to_pylist()])


def via_polars(endpoint: SqlEndpoint, principal: str, sql: str) -> list[tuple[Any, ...]]:
    frame = pl.read_database_uri(sql, url(endpoint, principal), engine="connectorx")
    return rows(frame.rows())


def via_polars_adbc(endpoint: SqlEndpoint, principal: str, sql: str) -> list[tuple[Any, ...]]:
    frame = pl.read_database_uri(sql, url(endpoint, principal), engine="adbc")
    return rows(frame.rows())


CLIENTS: dict[str, Callable[[SqlEndpoint, str, str], list[tuple[Any, ...]]]] = {
    "psql": via_psql,
    "psycopg 3": via_psycopg,
    "psycopg 3 binary, prepared": via_psycopg_binary,
    "pandas read_sql (SQLAlchemy)": via_sqlalchemy_pandas,
    "ADBC PostgreSQL": via_adbc,
    "connectorx": via_connectorx,
    "polars (connectorx)": via_polars,
    "polars (ADBC)": via_polars_adbc,
}


@pytest.mark.parametrize("query", list(QUERIES))
@pytest.mark.parametrize("principal", PRINCIPALS)
@pytest.mark.parametrize("client", list(CLIENTS))
def test_client_answer_equals_governed_spark_read(
    shared_endpoint: SqlEndpoint,
    spark: SparkSession,
    filtered_project: Path,
    client: str,
    principal: str,
    query: str,
) -> None:
    expected = spark_rows(spark, filtered_project, principal, QUERIES[query])
    assert expected, "the governed read must return rows for the comparison to mean something"
    assert CLIENTS[client](shared_endpoint, principal, QUERIES[query]) == expected


def test_principals_see_different_rows_and_masks(
    shared_endpoint: SqlEndpoint, spark: SparkSession, filtered_project: Path
) -> None:
    """The two principals' answers differ exactly by the row filters and the masks."""
    regions = "SELECT DISTINCT region FROM lakehouse.gold.daily_sales ORDER BY 1"
    assert via_psycopg(shared_endpoint, "bi-reader", regions) == [("east",), ("north",)]
    assert via_psycopg(shared_endpoint, "alice", regions) == [
        ("east",),
        ("north",),
        ("south",),
        ("west",),
    ]
    features = "SELECT DISTINCT region, plan FROM lakehouse.gold.customer_features ORDER BY 1, 2"
    bi = via_psycopg(shared_endpoint, "bi-reader", features)
    assert bi == [("***", "plus"), ("***", "premium")]
    owner = via_psycopg(shared_endpoint, "alice", features)
    assert {r[0] for r in owner} == {"north", "south", "east", "west"}
    assert {r[1] for r in owner} == {"basic", "plus", "premium"}


def test_sqlalchemy_reflection_per_principal(
    shared_endpoint: SqlEndpoint, filtered_project: Path
) -> None:
    """SQLAlchemy's inspector lists the served schemas and tables, with their columns."""
    for principal in PRINCIPALS:
        engine = sa.create_engine(url(shared_endpoint, principal, "postgresql+psycopg"))
        try:
            inspector = sa.inspect(engine)
            assert "main" not in inspector.get_schema_names()
            assert "gold" in inspector.get_schema_names()
            assert sorted(inspector.get_table_names(schema="gold")) == [
                "churn_predictions",
                "customer_features",
                "daily_sales",
            ]
            columns = [c["name"] for c in inspector.get_columns("daily_sales", schema="gold")]
            assert columns == [
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
        finally:
            engine.dispose()
