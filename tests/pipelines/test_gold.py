"""Gold table frames: a transform with params or a SQL query over named inputs, plus SQL features."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from chispa import assert_df_equality
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession

from lakehouse.bundle.context import TaskContext
from lakehouse.config import load_project
from lakehouse.config.catalog import Column, TableSpec
from lakehouse.config.pipelines import GoldSpec
from lakehouse.config.project import GoldHandle, TableRef
from lakehouse.core.errors import LakehouseError
from lakehouse.io.store import TableName
from lakehouse.pipelines.gold_frame import gold_frame, write_gold
from lakehouse.transforms.quality import duplicate_keys

pytestmark = pytest.mark.transform

ts = dt.datetime
CUSTOMERS = (
    "customer_id string, region string, plan string, signup_date date, support_tickets int, "
    "is_current boolean"
)
ORDERS = (
    "order_id string, customer_id string, order_ts timestamp, product string, quantity int, "
    "amount decimal(12,2), status string"
)
VIEWS = ("gold_test_orders", "gold_test_customers")


@pytest.fixture()
def customers(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame(
        [
            ("C1", "north", "basic", dt.date(2025, 1, 1), 1, False),
            ("C1", "south", "basic", dt.date(2025, 1, 1), 1, True),
            ("C2", "east", "plus", dt.date(2025, 6, 1), 0, True),
        ],
        CUSTOMERS,
    )


@pytest.fixture()
def orders(spark: SparkSession) -> DataFrame:
    def order(
        oid: str, cid: str, at: dt.datetime, product: str, qty: int, amount: str, status: str
    ) -> tuple[object, ...]:
        return (oid, cid, at, product, qty, Decimal(amount), status)

    return spark.createDataFrame(
        [
            order("O1", "C1", ts(2026, 3, 1, 9), "widget", 2, "20.00", "completed"),
            order("O2", "C1", ts(2026, 3, 1, 17), "widget", 1, "10.00", "refunded"),
            order("O3", "C2", ts(2026, 3, 1, 12), "gadget", 3, "45.00", "completed"),
            order("O4", "C3", ts(2026, 3, 2, 8), "widget", 1, "12.50", "completed"),  # no customer
        ],
        ORDERS,
    )


def _temp_views(spark: SparkSession) -> set[str]:
    return {t.name for t in spark.catalog.listTables() if t.name in VIEWS}


def test_query_sees_inputs_as_views_until_the_block_ends(
    spark: SparkSession, customers: DataFrame, orders: DataFrame
) -> None:
    spec = GoldSpec(
        inputs={"gold_test_orders": "c.silver.orders", "gold_test_customers": "c.silver.customers"},
        query="""
            SELECT c.region, COUNT(*) AS orders, SUM(o.amount) AS revenue
            FROM gold_test_orders o
            JOIN gold_test_customers c ON c.customer_id = o.customer_id AND c.is_current
            GROUP BY c.region
        """,
    )
    inputs = {"gold_test_orders": orders, "gold_test_customers": customers}
    with gold_frame(spark, spec, inputs) as frame:
        assert _temp_views(spark) == set(VIEWS)
        assert spark.sql("SELECT COUNT(*) AS n FROM gold_test_orders").first()["n"] == 4  # type: ignore[index]
        rows = sorted(tuple(r) for r in frame.collect())
    assert rows == [("east", 1, Decimal("45.00")), ("south", 2, Decimal("30.00"))]
    assert _temp_views(spark) == set()
    with pytest.raises(AnalysisException):
        spark.sql("SELECT * FROM gold_test_orders").collect()


def test_views_are_dropped_when_the_block_raises(spark: SparkSession, orders: DataFrame) -> None:
    spec = GoldSpec(
        inputs={"gold_test_orders": "c.silver.orders"}, query="SELECT * FROM gold_test_orders"
    )
    with (
        pytest.raises(RuntimeError, match="boom"),
        gold_frame(spark, spec, {"gold_test_orders": orders}),
    ):
        assert _temp_views(spark) == {"gold_test_orders"}
        raise RuntimeError("boom")
    assert _temp_views(spark) == set()


def test_features_add_and_replace_columns_as_sql_expressions(
    spark: SparkSession, orders: DataFrame
) -> None:
    spec = GoldSpec(
        inputs={"gold_test_orders": "c.silver.orders"},
        query="SELECT order_id, quantity, amount, status FROM gold_test_orders",
        features={
            "unit_price": "CAST(amount / quantity AS DOUBLE)",
            "status": "upper(status)",  # replaces the column in place
            "refund": "CASE WHEN status = 'refunded' THEN 1 ELSE 0 END",
        },
    )
    with gold_frame(spark, spec, {"gold_test_orders": orders}) as frame:
        expected = spark.createDataFrame(
            [
                ("O1", 2, Decimal("20.00"), "COMPLETED", 10.0, 0),
                ("O2", 1, Decimal("10.00"), "REFUNDED", 10.0, 1),
                ("O3", 3, Decimal("45.00"), "COMPLETED", 15.0, 0),
                ("O4", 1, Decimal("12.50"), "COMPLETED", 12.5, 0),
            ],
            "order_id string, quantity int, amount decimal(12,2), status string, "
            "unit_price double, refund int",
        )
        # "refund" sees the original status: every expression reads the query's columns
        assert_df_equality(frame, expected, ignore_row_order=True, ignore_nullable=True)


def test_transform_receives_inputs_and_params_then_the_demo_features(
    spark: SparkSession, demo_project_dir: Path, customers: DataFrame, orders: DataFrame
) -> None:
    project = load_project(demo_project_dir)
    name = "lakehouse.gold.customer_features"
    demo = project.gold[name]
    assert demo.params == {"every_days": 7, "snapshots": 30}
    spec = demo.model_copy(update={"params": {"every_days": 1, "snapshots": 2}})
    with gold_frame(spark, spec, {"customers": customers, "orders": orders}) as frame:
        assert sorted(frame.columns) == sorted(c.name for c in project.table(name).spec.columns)
        got = {
            (r.customer_id, r.feature_ts): (r.orders_count, r.total_spend, r.avg_order_value)
            for r in frame.collect()
        }
    # the latest order is on 03-02, so with every_days=1 the two snapshots are 03-02 and 03-03
    assert got == {
        ("C1", ts(2026, 3, 2)): (2, 30.0, 15.0),
        ("C1", ts(2026, 3, 3)): (2, 30.0, 15.0),
        ("C2", ts(2026, 3, 2)): (1, 45.0, 45.0),
        ("C2", ts(2026, 3, 3)): (1, 45.0, 45.0),
    }
    with gold_frame(spark, demo, {"customers": customers, "orders": orders}) as frame:
        rows = frame.select("feature_ts", "orders_count", "avg_order_value").collect()
    assert len({r.feature_ts for r in rows}) == 30  # the configured params
    assert {r.avg_order_value for r in rows if r.orders_count == 0} == {0.0}


def test_demo_daily_sales_query(
    spark: SparkSession, demo_project_dir: Path, customers: DataFrame, orders: DataFrame
) -> None:
    project = load_project(demo_project_dir)
    name = "lakehouse.gold.daily_sales"
    spec = project.gold[name]
    with gold_frame(spark, spec, {"customers": customers, "orders": orders}) as frame:
        assert sorted(frame.columns) == sorted(c.name for c in project.table(name).spec.columns)
        rows = {
            (r.order_date, r.region, r.product): (
                r.order_month,
                r.orders,
                r.units,
                r.revenue,
                r.refunded_orders,
                r.customers,
            )
            for r in frame.collect()
        }
        assert duplicate_keys(frame, project.table(name).spec.keys) == []
    assert rows == {
        (dt.date(2026, 3, 1), "south", "widget"): ("2026-03", 2, 3, Decimal("30.00"), 1, 1),
        (dt.date(2026, 3, 1), "east", "gadget"): ("2026-03", 1, 3, Decimal("45.00"), 0, 1),
        (dt.date(2026, 3, 2), "unknown", "widget"): ("2026-03", 1, 1, Decimal("12.50"), 0, 1),
    }


class _Tables:
    """Stands in for the TableStore: reads from a dict, records what would be written."""

    def __init__(self, frames: dict[str, DataFrame]) -> None:
        self.frames = frames
        self.written: dict[str, list[tuple[Any, ...]]] = {}

    def read(self, table: TableName) -> DataFrame:
        return self.frames[_full_name(table)]

    def evolve(self, table: TableName, produced: Any, *, step: str, replace: bool) -> None:
        """The table takes any columns here."""

    def overwrite(self, table: TableName, df: DataFrame) -> None:
        rows = sorted(tuple(r) for r in df.collect())  # inside the with block
        self.written[_full_name(table)] = rows


def _full_name(table: TableName) -> str:
    return table.full_name if isinstance(table, TableRef) else table


def _ref(schema: str, name: str, columns: list[str], keys: list[str]) -> TableRef:
    spec = TableSpec(
        layer="gold" if schema == "gold" else "silver",
        columns=[Column(name=c, type="string") for c in columns],
        keys=keys,
    )
    return TableRef("c", schema, name, spec, f"/nowhere/{schema}/{name}")


def _context(spark: SparkSession, spec: GoldSpec, tables: _Tables) -> TaskContext:
    keys = ["customer_id", "feature_ts"]
    handle = GoldHandle(
        _ref("gold", "features", [*keys, "value"], keys),
        spec,
        tuple(_ref("silver", t.split(".")[-1], [*keys, "value"], []) for t in spec.inputs.values()),
    )
    handles = {handle.name: handle}
    project = SimpleNamespace(gold={handle.name: spec}, gold_handle=handles.__getitem__)
    return cast(
        TaskContext,
        SimpleNamespace(
            spark=spark, project=project, tables=tables, task_key="build_gold", parameters=[]
        ),
    )


def _build(ctx: TaskContext) -> None:
    """What every refresh strategy ends with: the rows, checked and written (write_gold)."""
    (name,) = ctx.project.gold
    handle = ctx.project.gold_handle(name)
    inputs = {alias: ctx.tables.read(ref) for alias, ref in handle.inputs.items()}
    with gold_frame(ctx.spark, handle.spec, inputs) as result:
        write_gold(ctx, handle, result, replace=False)


@pytest.mark.parametrize("timestamp_key", ["feature_ts", None])
def test_write_gold_refuses_duplicate_keys_in_a_feature_table(
    spark: SparkSession, timestamp_key: str | None
) -> None:
    rows = spark.createDataFrame(
        [("C1", ts(2026, 3, 1), 1), ("C1", ts(2026, 3, 1), 2), ("C1", ts(2026, 3, 8), 3)],
        "customer_id string, feature_ts timestamp, value int",
    )
    spec = GoldSpec(
        inputs={"gold_test_rows": "c.silver.rows"},
        query="SELECT * FROM gold_test_rows",
        timestamp_key=timestamp_key,
    )
    tables = _Tables({"c.silver.rows": rows})
    if timestamp_key is None:  # not a feature table: written as it is
        _build(_context(spark, spec, tables))
        assert [r[2] for r in tables.written["c.gold.features"]] == [1, 2, 3]
        return
    with pytest.raises(LakehouseError) as info:
        _build(_context(spark, spec, tables))
    assert str(info.value) == (
        "c.gold.features: the transform produced more than one row per (customer_id, feature_ts), "
        "e.g. {'customer_id': 'C1', 'feature_ts': datetime.datetime(2026, 3, 1, 0, 0)}; "
        "a feature table needs unique keys"
    )
    assert tables.written == {}
    unique = _Tables({"c.silver.rows": rows.where("value > 1")})
    _build(_context(spark, spec, unique))
    assert [r[2] for r in unique.written["c.gold.features"]] == [2, 3]
