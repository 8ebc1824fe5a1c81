"""The SQL endpoint serves each principal the rows its row filters allow: the same rows as a
governed Spark read, and the filtered-out rows never enter the DuckDB mirror."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pyarrow as pa
import pytest
from deltalake import write_deltalake
from pyspark.sql import SparkSession

from lakehouse.apps.sql.mirror import served_tables
from lakehouse.governance.events import AccessChecked, EventSink, GovernanceEvent, TaskOutcome
from lakehouse.governance.scope import GovernanceScope
from lakehouse.governance.store import governed_tables
from lakehouse.io.store import TableStore
from tests.apps.sql.conftest import load, start_endpoint
from tests.governance.row_filter_project import ORDERS, expected, make_project
from tests.support import session_engine

QUERY = "SELECT id, region, email, amount FROM sales.orders ORDER BY id"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("sql-rowfilters"))


def _spark_rows(spark: SparkSession, root: Path, principal: str) -> list[tuple[object, ...]]:
    tables = governed_tables(
        spark, load(root), session_engine(spark), principal=principal, run_id="r", job="t"
    )
    return sorted(tuple(r) for r in tables.read(ORDERS).collect())


def test_served_tables_carry_the_duckdb_row_filter(root: Path) -> None:
    project = load(root)
    served = {
        p: served_tables(project, GovernanceScope(project, p, run_id="r", job="t"), ["sales"])
        for p in ("alice", "bob", "carol", "dave")
    }
    assert {p: [t.row_filter for t in s] for p, s in served.items()} == {
        "alice": ["TRUE"],
        "bob": ["region = 'EU'"],
        "carol": ["(region = 'US') OR (amount >= 100)"],
        "dave": ["email LIKE '%@example.com'"],
    }


@pytest.mark.parametrize("principal", ["bob", "carol", "dave", "alice"])
def test_the_endpoint_returns_exactly_the_rows_of_the_governed_spark_read(
    spark: SparkSession, root: Path, principal: str
) -> None:
    endpoint = start_endpoint(root, principal, schemas=["sales"])
    try:
        with psycopg.connect(endpoint.info.url()) as conn:
            rows = conn.execute(QUERY).fetchall()
            # the raw rows the filter drops are not in DuckDB at all
            mirrored = endpoint.mirror.db.execute(
                'SELECT count(*) FROM "sales"."orders"'
            ).fetchone()
    finally:
        endpoint.stop()
    assert rows == expected(principal)
    assert rows == _spark_rows(spark, root, principal)
    assert mirrored == (len(expected(principal)),)


def test_a_new_version_is_reloaded_filtered(spark: SparkSession, tmp_path: Path) -> None:
    root = make_project(tmp_path)
    endpoint = start_endpoint(root, "bob", schemas=["sales"])
    try:
        with psycopg.connect(endpoint.info.url()) as conn:
            assert [r[0] for r in conn.execute(QUERY).fetchall()] == [1, 3]
            more = pa.table(
                {
                    "id": pa.array([7, 8], pa.int32()),
                    "region": ["EU", "US"],
                    "email": ["gi@example.com", "ho@example.com"],
                    "amount": [1.0, 2.0],
                }
            )
            write_deltalake(str(root / "data" / "tables" / "sales" / "orders"), more, mode="append")
            assert conn.execute(QUERY).fetchall() == [
                (1, "EU", "***", 10.0),
                (3, "EU", "***", 120.0),
                (7, "EU", "***", 1.0),
            ]
    finally:
        endpoint.stop()


class _Decisions:
    """A subscriber keeping the access decisions it sees."""

    def __init__(self) -> None:
        self.seen: list[AccessChecked] = []

    def handle(self, event: GovernanceEvent) -> None:
        if isinstance(event, AccessChecked):
            self.seen.append(event)

    def flush(self, store: TableStore, outcome: TaskOutcome) -> None:
        pass


def test_the_endpoints_select_decision_names_the_filter(root: Path) -> None:
    project = load(root)
    decisions = _Decisions()
    scope = GovernanceScope(project, "carol", run_id="r", job="sql", events=EventSink([decisions]))
    served_tables(project, scope, ["sales"])
    assert [(d.privilege, d.securable, d.allowed, d.reason) for d in decisions.seen] == [
        (
            "SELECT",
            ORDERS,
            True,
            "SELECT on shop.sales to analysts; row filter: (region = 'US') OR (amount >= 100)",
        )
    ]
