"""Customer feature table for the churn model: a time series of weekly snapshots (pure).

Every row describes one customer as of one snapshot time ``feature_ts`` using only the
orders placed *before* that time, so a training set can look features up as of its label
time (see :func:`lakehouse.pipelines.ml.training_set.point_in_time_join`).

The snapshots are computed in one pass over the orders rather than one aggregation per
snapshot: each order is assigned the first snapshot it counts towards, per-snapshot
increments are summed, and cumulative window sums turn increments into as-of values.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

RECENT_DAYS = 90


def _first_snapshot(days_before_last: Column, every_days: int, snapshots: int) -> Column:
    """Index of the first snapshot an event ``days_before_last`` days before the last one counts in.

    Snapshot ``j`` (0 = oldest, ``snapshots - 1`` = latest) is taken at the start of the day
    ``last - (snapshots - 1 - j) * every_days``; an event on day ``d`` counts in every
    snapshot taken after it, i.e. ``j >= snapshots - ceil((last - d) / every_days)``.
    """
    first = F.lit(snapshots) - F.ceil(days_before_last / F.lit(every_days)).cast("int")
    return F.greatest(first, F.lit(0))


def customer_features(
    customers: DataFrame,
    orders: DataFrame,
    every_days: int = 7,
    snapshots: int = 30,
) -> DataFrame:
    """One row per customer and snapshot: activity and value features as of ``feature_ts``.

    Snapshots are taken every ``every_days`` days, ``snapshots`` of them, the latest at the
    start of the day after the latest order in the data (not the wall clock, so the same
    Silver data always yields the same table). A customer appears from the first snapshot
    after their signup. Region, plan and support tickets come from the customer's current
    record; ``avg_order_value`` is declared as a SQL expression in ``conf/pipelines.yml``.
    """
    if every_days < 1 or snapshots < 1:
        raise ValueError(f"every_days and snapshots must be >= 1 (got {every_days}, {snapshots})")
    if "is_current" in customers.columns:  # an SCD2 dimension: the open version per customer
        customers = customers.where(F.col("is_current"))
    last = orders.agg(F.date_add(F.to_date(F.max("order_ts")), 1).alias("last_snapshot"))
    grid = _snapshot_grid(customers, last, every_days, snapshots)
    dated = orders.crossJoin(last).withColumn(
        "days_before", F.datediff(F.col("last_snapshot"), F.to_date("order_ts"))
    )
    per_order = _orders_by_snapshot(dated, every_days, snapshots)
    series = _as_of_totals(
        grid,
        _snapshot_increments(per_order),
        _recent_window_exits(per_order),
        _first_product_purchases(dated, every_days, snapshots),
    )
    return _feature_columns(series)


def _snapshot_grid(
    customers: DataFrame, last: DataFrame, every_days: int, snapshots: int
) -> DataFrame:
    """One row per customer and snapshot index, with the snapshot's day ``snapshot_day``."""
    index = F.explode(F.sequence(F.lit(0), F.lit(snapshots - 1))).alias("snapshot")
    return (
        customers.select("customer_id", "region", "plan", "signup_date", "support_tickets")
        .crossJoin(last)
        .select("*", index)
        .withColumn(
            "snapshot_day",
            F.date_sub(
                F.col("last_snapshot"),
                (F.lit(snapshots - 1) - F.col("snapshot")) * F.lit(every_days),
            ),
        )
    )


def _orders_by_snapshot(dated: DataFrame, every_days: int, snapshots: int) -> DataFrame:
    """Per order: the first snapshot it counts in and the one it leaves the 90-day window in."""
    first = _first_snapshot(F.col("days_before"), every_days, snapshots)
    # an order leaves the 90-day window in the first snapshot taken RECENT_DAYS days after it
    leaves = F.when(
        F.col("days_before") > RECENT_DAYS,
        _first_snapshot(F.col("days_before") - F.lit(RECENT_DAYS), every_days, snapshots),
    )
    return dated.select(
        "customer_id",
        first.alias("snapshot"),
        leaves.alias("leaves_recent"),
        "order_ts",
        F.col("amount").cast("double").alias("amount"),
        (F.col("status") == "refunded").cast("int").alias("refunded"),
    )


def _snapshot_increments(per_order: DataFrame) -> DataFrame:
    """Per customer and snapshot: the orders, spend and refunds that first count there."""
    return per_order.groupBy("customer_id", "snapshot").agg(
        F.count("*").alias("new_orders"),
        F.sum("amount").alias("new_spend"),
        F.sum("refunded").alias("new_refunded"),
        F.max("order_ts").alias("latest_order_ts"),
    )


def _recent_window_exits(per_order: DataFrame) -> DataFrame:
    """Per customer and snapshot: the orders that leave the 90-day window there."""
    return (
        per_order.where(F.col("leaves_recent").isNotNull())
        .groupBy("customer_id", F.col("leaves_recent").alias("snapshot"))
        .agg(F.count("*").alias("expired_orders"))
    )


def _first_product_purchases(dated: DataFrame, every_days: int, snapshots: int) -> DataFrame:
    """Per customer and snapshot: the products bought for the first time before it."""
    return (
        dated.where(F.col("product").isNotNull())  # as COUNT(DISTINCT product): NULL is no product
        .groupBy("customer_id", "product")
        .agg(F.max("days_before").alias("days_before"))  # the first purchase
        .groupBy(
            "customer_id",
            _first_snapshot(F.col("days_before"), every_days, snapshots).alias("snapshot"),
        )
        .agg(F.count("*").alias("new_products"))
    )


def _as_of_totals(
    grid: DataFrame, increments: DataFrame, expiring: DataFrame, first_buys: DataFrame
) -> DataFrame:
    """The grid with running sums of the increments: as-of totals per snapshot after signup."""
    upto = (
        Window.partitionBy("customer_id")
        .orderBy("snapshot")
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )

    def running(column: str) -> Column:
        return F.sum(F.coalesce(F.col(column), F.lit(0))).over(upto)

    return (
        grid.join(increments, ["customer_id", "snapshot"], "left")
        .join(expiring, ["customer_id", "snapshot"], "left")
        .join(first_buys, ["customer_id", "snapshot"], "left")
        .select(
            "customer_id",
            "region",
            "plan",
            "signup_date",
            "support_tickets",
            "snapshot_day",
            running("new_orders").alias("orders_count"),
            (running("new_orders") - running("expired_orders")).alias("orders_last_90d"),
            running("new_spend").alias("total_spend"),
            running("new_refunded").alias("refunded_orders"),
            running("new_products").alias("distinct_products"),
            F.max("latest_order_ts").over(upto).alias("last_order_ts"),
        )
        .where(F.col("signup_date") < F.col("snapshot_day"))
    )


def _feature_columns(series: DataFrame) -> DataFrame:
    """The feature table's columns, named and typed, from the as-of totals."""
    tenure = F.datediff(F.col("snapshot_day"), F.col("signup_date"))
    return series.select(
        "customer_id",
        F.col("snapshot_day").cast("timestamp").alias("feature_ts"),
        "region",
        "plan",
        tenure.cast("int").alias("tenure_days"),
        F.col("support_tickets").cast("int").alias("support_tickets"),
        F.col("orders_count").cast("int").alias("orders_count"),
        F.col("orders_last_90d").cast("int").alias("orders_last_90d"),
        F.col("total_spend").cast("double").alias("total_spend"),
        # no order yet: days since signup, the longest the customer can have been inactive
        F.coalesce(F.datediff(F.col("snapshot_day"), F.to_date("last_order_ts")), tenure)
        .cast("int")
        .alias("days_since_last_order"),
        F.col("distinct_products").cast("int").alias("distinct_products"),
        F.col("refunded_orders").cast("int").alias("refunded_orders"),
    )
