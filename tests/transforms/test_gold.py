"""Customer features: a weekly time series, each snapshot from earlier orders only (pure, both engines)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession

from lakehouse.samples.generator import SampleSpec, build_sample_data
from lakehouse.transforms.gold import customer_features
from lakehouse.transforms.quality import duplicate_keys

pytestmark = pytest.mark.transform

ts = dt.datetime
day = dt.date

CUSTOMERS = (
    "customer_id string, region string, plan string, signup_date date, support_tickets int, "
    "churned int, updated_at timestamp"
)
SCD2_CUSTOMERS = CUSTOMERS + ", valid_from timestamp, valid_to timestamp, is_current boolean"
ORDERS = (
    "order_id string, customer_id string, order_ts timestamp, product string, quantity int, "
    "amount decimal(12,2), status string, updated_at timestamp"
)
FEATURES = (
    "customer_id string, feature_ts timestamp, region string, plan string, tenure_days int, "
    "support_tickets int, orders_count int, orders_last_90d int, total_spend double, "
    "days_since_last_order int, distinct_products int, refunded_orders int"
)
FEATURE_COLUMNS = [c.split()[0] for c in FEATURES.split(", ")]


def _customer(
    cid: str, region: str, plan: str, signup: dt.date, tickets: int, current: bool
) -> tuple[object, ...]:
    changed = ts(2026, 2, 1)
    valid = (ts(2025, 1, 1), changed) if not current else (changed, None)
    return (cid, region, plan, signup, tickets, 0, changed, *valid, current)


def _order(
    oid: str, cid: str, at: dt.datetime, product: str | None, amount: str, status: str
) -> tuple[object, ...]:
    return (oid, cid, at, product, 1, Decimal(amount), status, at)


# Snapshots with every_days=7, snapshots=4: the latest order is on 2026-03-31, so the
# snapshots are taken at 00:00 on 03-11, 03-18, 03-25 and 04-01. The 90-day window of a
# snapshot starts at: 03-11 -> 2025-12-11, 03-18 -> 12-18, 03-25 -> 12-25, 04-01 -> 2026-01-01.
HAND_CUSTOMERS = [
    _customer("C1", "south", "plus", day(2025, 12, 1), 9, current=False),  # old SCD2 version
    _customer("C1", "north", "basic", day(2025, 12, 1), 2, current=True),
    _customer("C2", "east", "premium", day(2026, 3, 20), 0, current=True),
    _customer(
        "C3", "west", "plus", day(2026, 3, 11), 4, current=True
    ),  # signs up ON a snapshot day
]
HAND_ORDERS = [
    _order(
        "O1", "C1", ts(2025, 12, 11, 10), "widget", "10.00", "completed"
    ),  # 90-day edge of 03-11
    _order("O2", "C1", ts(2026, 1, 1, 9), "gadget", "30.00", "refunded"),  # 90-day edge of 04-01
    _order("O3", "C1", ts(2026, 3, 17, 23, 59, 59), "widget", "20.00", "completed"),  # just before
    _order("O5", "C1", ts(2026, 3, 18), "widget", "7.25", "completed"),  # exactly AT 03-18 00:00
    _order("O4", "C1", ts(2026, 3, 31, 15), "gizmo", "5.50", "completed"),  # the latest order
    _order("O6", "C2", ts(2026, 3, 25), "sprocket", "100.00", "completed"),  # exactly AT 03-25
    _order("O7", "C9", ts(2026, 3, 20, 12), "widget", "1.00", "completed"),  # unknown customer
]
HAND_EXPECTED = [
    # customer, feature_ts, region, plan, tenure, tickets, orders, last_90d, spend, since, products, refunded
    ("C1", ts(2026, 3, 11), "north", "basic", 100, 2, 2, 2, 40.0, 69, 2, 1),
    ("C1", ts(2026, 3, 18), "north", "basic", 107, 2, 3, 2, 60.0, 1, 2, 1),
    ("C1", ts(2026, 3, 25), "north", "basic", 114, 2, 4, 3, 67.25, 7, 2, 1),
    ("C1", ts(2026, 4, 1), "north", "basic", 121, 2, 5, 4, 72.75, 1, 3, 1),
    ("C2", ts(2026, 3, 25), "east", "premium", 5, 0, 0, 0, 0.0, 5, 0, 0),
    ("C2", ts(2026, 4, 1), "east", "premium", 12, 0, 1, 1, 100.0, 7, 1, 0),
    ("C3", ts(2026, 3, 18), "west", "plus", 7, 4, 0, 0, 0.0, 7, 0, 0),
    ("C3", ts(2026, 3, 25), "west", "plus", 14, 4, 0, 0, 0.0, 14, 0, 0),
    ("C3", ts(2026, 4, 1), "west", "plus", 21, 4, 0, 0, 0.0, 21, 0, 0),
]


def _hand_features(spark: SparkSession, extra_orders: list[Any] | None = None) -> DataFrame:
    customers = spark.createDataFrame(HAND_CUSTOMERS, SCD2_CUSTOMERS)
    orders = spark.createDataFrame(HAND_ORDERS + (extra_orders or []), ORDERS)
    return customer_features(customers, orders, every_days=7, snapshots=4)


def test_hand_checked_snapshots(spark: SparkSession) -> None:
    """Boundaries: an order at 00:00 of a snapshot day counts from the next snapshot; the
    90-day window includes its first day; signup on a snapshot day appears a week later;
    only the current SCD2 version is used; orders of unknown customers are ignored."""
    assert_df_equality(
        _hand_features(spark),
        spark.createDataFrame(HAND_EXPECTED, FEATURES),
        ignore_row_order=True,
        ignore_nullable=True,
    )


def test_output_schema_is_the_documented_one(spark: SparkSession) -> None:
    assert _hand_features(spark).dtypes == [
        (c.split()[0], c.split()[1]) for c in FEATURES.split(", ")
    ]


def test_orders_at_or_after_a_snapshot_do_not_change_it(spark: SparkSession) -> None:
    later = [
        _order("X1", "C1", ts(2026, 3, 25), "doohickey", "50.00", "refunded"),  # AT 03-25 00:00
        _order("X2", "C3", ts(2026, 3, 28, 8), "gizmo", "3.00", "completed"),
    ]
    before = {(r.customer_id, r.feature_ts): r for r in _hand_features(spark).collect()}
    after = {(r.customer_id, r.feature_ts): r for r in _hand_features(spark, later).collect()}
    assert before.keys() == after.keys()
    cutoff = ts(2026, 3, 25)
    for key, row in before.items():
        if key[1] <= cutoff:
            assert after[key] == row, key
    assert after[("C1", ts(2026, 4, 1))].asDict() == {
        **before[("C1", ts(2026, 4, 1))].asDict(),
        "orders_count": 6,
        "orders_last_90d": 5,
        "total_spend": 122.75,
        "distinct_products": 4,
        "refunded_orders": 2,
    }
    assert after[("C3", ts(2026, 4, 1))].asDict() == {
        **before[("C3", ts(2026, 4, 1))].asDict(),
        "orders_count": 1,
        "orders_last_90d": 1,
        "total_spend": 3.0,
        "days_since_last_order": 4,
        "distinct_products": 1,
    }
    assert after[("C2", ts(2026, 4, 1))] == before[("C2", ts(2026, 4, 1))]


def test_null_product_is_not_a_distinct_product(spark: SparkSession) -> None:
    customers = spark.createDataFrame(
        [("C1", "north", "basic", day(2026, 1, 1), 0, 0, ts(2026, 1, 1))], CUSTOMERS
    )
    orders = spark.createDataFrame(
        [
            _order("O1", "C1", ts(2026, 3, 1, 9), "widget", "1.00", "completed"),
            _order("O2", "C1", ts(2026, 3, 2, 9), None, "2.00", "completed"),
        ],
        ORDERS,
    )
    [row] = customer_features(customers, orders, every_days=7, snapshots=1).collect()
    assert (row.feature_ts, row.orders_count, row.distinct_products) == (ts(2026, 3, 3), 2, 1)


# ---------------------------------------------------------------- property: brute force


def _sample(spark: SparkSession) -> tuple[pd.DataFrame, pd.DataFrame, DataFrame, DataFrame]:
    """40 generated customers and their orders (every 7th refunded, every 11th without product).

    Returned as pandas frames (for the brute force) and as Spark frames with Silver's types.
    """
    raw_customers, raw_orders = build_sample_data(SampleSpec(customers=40))
    people = [
        (
            c["customer_id"],
            c["region"],
            c["plan"],
            day.fromisoformat(c["signup_date"]),
            int(c["support_tickets"]),
            int(c["churned"]),
            ts.fromisoformat(c["updated_at"]),
        )
        for c in raw_customers
    ]
    # and one customer who signed up ten days before the latest order and has not ordered yet
    last_day = max(ts.fromisoformat(str(o["order_ts"])) for o in raw_orders).date()
    people.append(("C90000", "north", "basic", last_day - dt.timedelta(days=10), 1, 0, ts.now()))
    rows = []
    for n, o in enumerate(raw_orders):
        at = ts.fromisoformat(str(o["order_ts"]))
        product = None if n % 11 == 5 else str(o["product"])
        status = "refunded" if n % 7 == 3 else str(o["status"])
        quantity = int(str(o["quantity"]))
        amount = Decimal(str(o["amount"]))
        rows.append(
            (str(o["order_id"]), str(o["customer_id"]), at, product, quantity, amount, status, at)
        )
    customers = pd.DataFrame(people, columns=[c.split()[0] for c in CUSTOMERS.split(", ")])
    orders = pd.DataFrame(rows, columns=[c.split()[0] for c in ORDERS.split(", ")])
    customers_df = spark.createDataFrame(people, CUSTOMERS)
    orders_df = spark.createDataFrame(rows, ORDERS)
    return customers, orders, customers_df, orders_df


def _brute_force(
    customers: pd.DataFrame, orders: pd.DataFrame, every_days: int, snapshots: int
) -> dict[tuple[str, dt.datetime], dict[str, Any]]:
    """For each snapshot, aggregate the orders with order_ts < feature_ts, one snapshot at a time."""
    orders = orders.assign(
        order_date=orders["order_ts"].dt.date,
        amount=orders["amount"].astype(float),
        refunded=(orders["status"] == "refunded").astype(int),
    )
    latest = orders["order_ts"].max().date() + dt.timedelta(days=1)
    out: dict[tuple[str, dt.datetime], dict[str, Any]] = {}
    for k in range(snapshots):
        snap_day = latest - dt.timedelta(days=k * every_days)
        feature_ts = ts.combine(snap_day, dt.time())
        before = orders[orders["order_ts"] < feature_ts]
        recent_start = snap_day - dt.timedelta(days=90)
        for c in customers.itertuples(index=False):
            if not c.signup_date < snap_day:
                continue
            mine = before[before["customer_id"] == c.customer_id]
            tenure = (snap_day - c.signup_date).days
            out[(c.customer_id, feature_ts)] = {
                "customer_id": c.customer_id,
                "feature_ts": feature_ts,
                "region": c.region,
                "plan": c.plan,
                "tenure_days": tenure,
                "support_tickets": c.support_tickets,
                "orders_count": len(mine),
                "orders_last_90d": int((mine["order_date"] >= recent_start).sum()),
                "total_spend": float(mine["amount"].sum()),
                "days_since_last_order": (
                    (snap_day - mine["order_date"].max()).days if len(mine) else tenure
                ),
                "distinct_products": int(mine["product"].nunique()),
                "refunded_orders": int(mine["refunded"].sum()),
            }
    return out


@pytest.mark.parametrize(("every_days", "snapshots"), [(7, 30), (1, 12), (30, 8)])
def test_every_row_matches_a_brute_force_computation(
    spark: SparkSession, every_days: int, snapshots: int
) -> None:
    customers, orders, customers_df, orders_df = _sample(spark)
    features = customer_features(customers_df, orders_df, every_days, snapshots)
    assert features.columns == FEATURE_COLUMNS
    assert duplicate_keys(features, ["customer_id", "feature_ts"]) == []
    actual = {(r.customer_id, r.feature_ts): r.asDict() for r in features.collect()}
    expected = _brute_force(customers, orders, every_days, snapshots)
    # the exact same (customer, snapshot) rows: nobody before signup, nobody missing after it
    assert sorted(actual) == sorted(expected)
    signup = dict(zip(customers["customer_id"], customers["signup_date"], strict=True))
    assert all(signup[cid] < feature_ts.date() for cid, feature_ts in actual)
    for key, want in expected.items():
        got = actual[key]
        assert got["total_spend"] == pytest.approx(want["total_spend"], abs=1e-6), key
        assert {**got, "total_spend": None} == {**want, "total_spend": None}, key
    # the fixture exercises what it should: history before the first snapshot, orders
    # leaving the 90-day window, refunds, null products and customers without orders yet
    rows = list(expected.values())
    assert any(r["orders_count"] > r["orders_last_90d"] > 0 for r in rows)
    assert any(r["refunded_orders"] > 0 for r in rows)
    assert any(r["orders_count"] == 0 for r in rows)
    assert orders["product"].isna().any()
    assert len({snapshot for _, snapshot in expected}) == snapshots


@pytest.mark.transform
def test_snapshot_params_must_be_positive(spark: SparkSession) -> None:
    customers = spark.createDataFrame([], CUSTOMERS)
    orders = spark.createDataFrame([], ORDERS)
    with pytest.raises(ValueError, match="must be >= 1"):
        customer_features(customers, orders, snapshots=0)
