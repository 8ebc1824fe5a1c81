"""A lakehouse entry point that writes a Delta table: an append, then a MERGE whose source
is computed by a Python UDF on the executors."""

from __future__ import annotations

from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.bundle.context import TaskContext
from lakehouse.bundle.entrypoint import run_task_script

TABLE = "lh.s.items"


def _label(i: int) -> str:
    return f"item-{i}"


def TASK(ctx: TaskContext) -> None:  # noqa: N802 - the jobs/ convention
    label = F.udf(_label, T.StringType())
    rows = ctx.spark.range(1, 5, numPartitions=2).select(
        F.col("id").cast("int").alias("id"), label("id").alias("label")
    )
    ctx.tables.append(TABLE, rows)
    changes = ctx.spark.createDataFrame([(2, "two"), (9, "nine")], "id int, label string")
    ctx.tables.merge(TABLE, changes, ["id"])


if __name__ == "__main__":
    raise SystemExit(run_task_script(TASK))
