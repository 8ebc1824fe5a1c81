"""A plain PySpark job (no lakehouse code, no Delta) for the spark-submit tests.

spark-submit cluster_sum.py OUT N: sums the squares of 1..N in Python on the executors,
in 2 partitions, and writes "<sum> <master> <partitions>" to OUT.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pyspark.sql import SparkSession

if __name__ == "__main__":
    out, n = Path(sys.argv[1]), int(sys.argv[2])
    spark = SparkSession.builder.getOrCreate()
    rdd = spark.sparkContext.parallelize(range(1, n + 1), 2)
    total = rdd.map(lambda x: x * x).sum()
    out.write_text(f"{total} {spark.sparkContext.master} {rdd.getNumPartitions()}\n")
    spark.stop()
