"""Publish the top product categories by revenue from the pipeline's Gold table.

Plain PySpark: the session comes from ``SparkSession.builder.getOrCreate()`` (Databricks,
spark-submit, or the local runner), so the same wheel runs everywhere.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="coffee_shop", description=__doc__)
    parser.add_argument("--catalog", required=True)
    parser.add_argument("--schema", required=True)
    parser.add_argument("--top", type=int, default=3, help="how many categories to keep")
    return parser.parse_args(argv)


def top_categories(sales_by_category: DataFrame, top: int) -> DataFrame:
    """The ``top`` categories by revenue, ranked 1..top (ties broken by name)."""
    by_revenue = Window.orderBy(F.col("revenue").desc(), F.col("category"))
    return (
        sales_by_category.where(F.col("category").isNotNull())
        .withColumn("rank", F.row_number().over(by_revenue))
        .where(F.col("rank") <= top)
        .select("rank", "category", "revenue")
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    spark = SparkSession.builder.getOrCreate()
    spark.sql(f"USE CATALOG {args.catalog}")
    spark.sql(f"USE SCHEMA {args.schema}")
    report = top_categories(spark.read.table("sales_by_category"), args.top)
    report.write.mode("overwrite").saveAsTable("top_categories")
    print(f"wrote {report.count()} rows to {args.catalog}.{args.schema}.top_categories")


if __name__ == "__main__":
    main()
