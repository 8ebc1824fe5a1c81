"""A Python transform referenced from a test project's silver config."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def tag_big_orders(df: DataFrame) -> DataFrame:
    """Mark orders above 100 in the status column (a pure DataFrame -> DataFrame function)."""
    return df.withColumn(
        "status", F.when(F.col("amount") > 100, F.lit("big")).otherwise(F.col("status"))
    )
