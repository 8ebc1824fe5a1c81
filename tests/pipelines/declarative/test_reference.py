"""The Apache Spark reference: the portable variant of the test bundle's pipeline, run by
``spark-pipelines run`` (JVM Spark 4.2 in a subprocess), gives exactly the expected tables."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from tests.e2e import dab_expected
from tests.pipelines.declarative.reference import (
    SPARK_PIPELINES,
    assert_tables_equal,
    land_with_notebook,
    portable_pipeline,
    portable_reference_tables,
)

PROJECT = Path(__file__).resolve().parents[2] / "data" / "dab_project"


def test_portable_pipeline_drops_the_databricks_only_parts(tmp_path: Path) -> None:
    pipeline = portable_pipeline(PROJECT, tmp_path / "pipeline")
    files = sorted(p.relative_to(pipeline).as_posix() for p in pipeline.rglob("*.*"))
    assert files == [
        "transformations/daily_sales.py",
        "transformations/orders_enriched.py",
        "transformations/orders_raw.py",
        "transformations/products.py",
        "transformations/products_changes.py",
        "transformations/sales_by_category.sql",
        "transformations/valid_orders.sql",
        "utilities/__init__.py",
        "utilities/feeds.py",
    ]
    text = "\n".join(p.read_text() for p in pipeline.rglob("*.*"))
    for databricks_only in (
        "@dp.expect",
        "CONSTRAINT",
        "cloudFiles",
        "OR REFRESH",
        "AS AUTO CDC",
        "create_auto_cdc_flow",
    ):
        assert databricks_only not in text
    assert "CREATE MATERIALIZED VIEW valid_orders\nCOMMENT" in text
    assert text.count('spark.readStream.format("json")') == 2


def test_landing_notebook_lands_every_fixture_file(tmp_path: Path) -> None:
    land_with_notebook(PROJECT, tmp_path / "landing")
    landed = sorted(
        p.relative_to(tmp_path / "landing").as_posix() for p in tmp_path.rglob("*.json")
    )
    assert landed == [
        "customers/customers_1.json",
        "customers/customers_2.json",
        "orders/orders_2026-11-01.json",
        "orders/orders_2026-11-03.json",
        "products/products_1.json",
        "products/products_2.json",
    ]


def test_assert_tables_equal_compares_by_value_and_names_the_difference() -> None:
    assert_tables_equal({"t": [(1, Decimal("1.50")), (2, None)]}, {"t": [(2, None), (1, 1.5)]})
    with pytest.raises(
        AssertionError, match=r"t: 2 rows vs 2; only ours \[\(1, 2\)\], only reference \[\(1, 3\)\]"
    ):
        assert_tables_equal({"t": [(1, 2), (2, None)]}, {"t": [(1, 3), (2, None)]})
    with pytest.raises(AssertionError, match="tables differ: ours"):
        assert_tables_equal({"t": []}, {"t": [], "u": []})


@pytest.mark.reference
@pytest.mark.skipif(
    shutil.which("java") is None or not SPARK_PIPELINES.exists(),
    reason="needs Java and pyspark's spark-pipelines",
)
def test_apache_spark_pipelines_gives_the_expected_portable_tables(tmp_path: Path) -> None:
    tables = portable_reference_tables(PROJECT, tmp_path)
    assert_tables_equal(tables, dab_expected.PORTABLE)
    assert {name: len(rows) for name, rows in tables.items()} == {
        "daily_sales": 3,
        "orders_enriched": 24,
        "orders_raw": 24,
        "products": 4,
        "products_changes": 11,
        "sales_by_category": 4,
        "valid_orders": 24,
    }
