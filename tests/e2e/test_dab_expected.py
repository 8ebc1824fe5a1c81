"""The test bundle's expected results: the hand-written values agree with an independent
pandas derivation from the fixture files, and the wheel's report logic gives TOP_CATEGORIES."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from pyspark.sql import SparkSession

from tests.e2e import dab_expected
from tests.e2e.derive_dab_expected import derive_full, derive_portable
from tests.pipelines.declarative.reference import assert_tables_equal

PROJECT = Path(__file__).resolve().parents[1] / "data" / "dab_project"


def test_hand_written_tables_equal_the_pandas_derivation() -> None:
    derived = derive_full()
    assert_tables_equal(derived["tables"], dab_expected.TABLES)
    assert derived["expectations"] == dab_expected.EXPECTATIONS
    assert derived["quarantine"] == dab_expected.QUARANTINE
    assert derived["top_categories"] == dab_expected.TOP_CATEGORIES
    assert_tables_equal(derive_portable(), dab_expected.PORTABLE)


def test_expected_rows_match_their_columns() -> None:
    tables = {**dab_expected.TABLES, "top_categories": dab_expected.TOP_CATEGORIES}
    for name, rows in tables.items():
        assert {len(r) for r in rows} == {len(dab_expected.COLUMNS[name])}, name
    assert dab_expected.ROW_COUNTS == {
        "orders_raw": 22,
        "products_changes": 11,
        "products": 4,
        "customers_history": 11,
        "orders_enriched": 22,
        "valid_orders": 17,
        "daily_sales": 3,
        "sales_by_category": 3,
    }


@pytest.fixture()
def coffee_shop_main(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The bundle's wheel module, imported from its source folder."""
    monkeypatch.syspath_prepend(str(PROJECT / "src"))
    import coffee_shop.main

    yield coffee_shop.main
    sys.modules.pop("coffee_shop.main", None)
    sys.modules.pop("coffee_shop", None)


def test_wheel_report_ranks_the_top_categories(
    spark: SparkSession, coffee_shop_main: ModuleType
) -> None:
    sales = spark.createDataFrame(
        dab_expected.TABLES["sales_by_category"],
        "category STRING, orders BIGINT, units BIGINT, revenue DECIMAL(27,2)",
    )
    report = coffee_shop_main.top_categories(sales, 2)
    assert report.columns == list(dab_expected.COLUMNS["top_categories"])
    assert [tuple(r) for r in report.orderBy("rank").collect()] == dab_expected.TOP_CATEGORIES
    args = coffee_shop_main.parse_args(
        ["--catalog", "main", "--schema", "coffee_shop", "--top", "2"]
    )
    assert (args.catalog, args.schema, args.top) == ("main", "coffee_shop", 2)
