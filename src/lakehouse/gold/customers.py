"""Customer feature table for the churn model (pure transforms)."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def customer_features(customers: DataFrame, orders: DataFrame) -> DataFrame:
    """One row per customer: activity and value features as of the latest order in the data.

    The reference time is the latest ``order_ts`` seen (not the wall clock), so the same
    Silver data always yields the same features.
    """
    if "is_current" in customers.columns:  # an SCD2 dimension: the open version per customer
        customers = customers.where(F.col("is_current"))
    as_of = orders.agg(F.max("order_ts").alias("feature_ts"))
    activity = orders.groupBy("customer_id").agg(
        F.count("*").alias("orders_count"),
        F.sum("amount").cast("double").alias("total_spend"),
        F.max("order_ts").alias("last_order_ts"),
        F.countDistinct("product").alias("distinct_products"),
        F.sum(F.when(F.col("status") == "refunded", 1).otherwise(0)).alias("refunded_orders"),
    )
    recent = (
        orders.crossJoin(as_of)
        .where(F.col("order_ts") > F.col("feature_ts") - F.expr("INTERVAL 90 DAYS"))
        .groupBy("customer_id")
        .agg(F.count("*").alias("orders_last_90d"))
    )
    joined = (
        customers.crossJoin(as_of)
        .join(activity, "customer_id", "left")
        .join(recent, "customer_id", "left")
    )
    return joined.select(
        "customer_id",
        "region",
        "plan",
        F.datediff(F.to_date("feature_ts"), F.col("signup_date")).cast("int").alias("tenure_days"),
        F.col("support_tickets"),
        F.coalesce("orders_count", F.lit(0)).cast("int").alias("orders_count"),
        F.coalesce("orders_last_90d", F.lit(0)).cast("int").alias("orders_last_90d"),
        F.coalesce("total_spend", F.lit(0.0)).alias("total_spend"),
        F.when(F.col("orders_count") > 0, F.col("total_spend") / F.col("orders_count"))
        .otherwise(F.lit(0.0))
        .alias("avg_order_value"),
        F.datediff(F.to_date("feature_ts"), F.to_date("last_order_ts"))
        .cast("int")
        .alias("days_since_last_order"),
        F.coalesce("distinct_products", F.lit(0)).cast("int").alias("distinct_products"),
        F.coalesce("refunded_orders", F.lit(0)).cast("int").alias("refunded_orders"),
        F.col("churned").cast("int").alias("churned"),
        "feature_ts",
    )
