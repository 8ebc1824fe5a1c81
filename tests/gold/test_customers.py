"""Customer features (pure, both engines)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from chispa import assert_df_equality
from pyspark.sql import SparkSession

from lakehouse.gold.customers import customer_features

CUSTOMERS = (
    "customer_id string, name string, email string, region string, plan string, "
    "signup_date date, support_tickets int, churned int, updated_at timestamp"
)
ORDERS = (
    "order_id string, customer_id string, order_ts timestamp, product string, quantity int, "
    "amount decimal(12,2), status string, updated_at timestamp"
)


@pytest.mark.transform
def test_customer_features_as_of_latest_order(spark: SparkSession) -> None:
    ts = dt.datetime
    customers = spark.createDataFrame(
        [
            ("C1", "a", "a@x", "north", "basic", dt.date(2026, 1, 1), 2, 1, ts(2026, 6, 1)),
            ("C2", "b", "b@x", "south", "plus", dt.date(2025, 6, 30), 0, 0, ts(2026, 6, 1)),
        ],
        CUSTOMERS,
    )
    orders = spark.createDataFrame(
        [
            (
                "O1",
                "C1",
                ts(2026, 1, 10, 9),
                "widget",
                1,
                Decimal("10.00"),
                "completed",
                ts(2026, 1, 10),
            ),
            (
                "O2",
                "C1",
                ts(2026, 6, 1, 9),
                "gadget",
                2,
                Decimal("30.00"),
                "refunded",
                ts(2026, 6, 1),
            ),
            (
                "O3",
                "C1",
                ts(2026, 6, 20, 9),
                "widget",
                1,
                Decimal("20.00"),
                "completed",
                ts(2026, 6, 20),
            ),
        ],
        ORDERS,
    )
    as_of = ts(2026, 6, 20, 9)
    expected = spark.createDataFrame(
        [
            ("C1", "north", "basic", 170, 2, 3, 2, 60.0, 20.0, 0, 2, 1, 1, as_of),
            ("C2", "south", "plus", 355, 0, 0, 0, 0.0, 0.0, None, 0, 0, 0, as_of),
        ],
        "customer_id string, region string, plan string, tenure_days int, support_tickets int, "
        "orders_count int, orders_last_90d int, total_spend double, avg_order_value double, "
        "days_since_last_order int, distinct_products int, refunded_orders int, churned int, "
        "feature_ts timestamp",
    )
    assert_df_equality(
        customer_features(customers, orders), expected, ignore_row_order=True, ignore_nullable=True
    )
