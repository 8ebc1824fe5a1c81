"""Slowly changing dimensions, type 2: version history per key (pure DataFrame functions).

A version is opened by a change in a tracked column and closed by the next change or by a
delete. For the keys that have new rows, the history is recomputed from the versions already
in the table (and the deletes that closed them) plus the new rows, ordered by the sequence
column, so late (out-of-order) rows land in the right place and replaying rows already
applied changes nothing. The result is applied with one MERGE on ``keys + valid_from``
(rows that stop being versions are deleted).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from lakehouse.io.sql import quote

VALID_FROM = "valid_from"
VALID_TO = "valid_to"
IS_CURRENT = "is_current"
SCD2_COLUMNS = (VALID_FROM, VALID_TO, IS_CURRENT)
DELETE_FLAG = "_lh_delete"


def scd2_history(
    existing: DataFrame,
    changes: DataFrame,
    *,
    keys: list[str],
    sequence_by: str,
    tracked: list[str],
    data_columns: list[str],
) -> DataFrame:
    """Recomputed versions for every key in ``changes``.

    ``existing``: the table's rows for those keys (``data_columns`` + valid_from/valid_to/
    is_current). ``changes``: new rows (``data_columns`` + boolean ``_lh_delete``).
    Returns ``data_columns`` + valid_from/valid_to/is_current: consecutive rows with the
    same tracked values collapse into one version; a delete closes the open version.
    """
    old = existing.select(
        *[F.col(quote(c)) for c in data_columns],
        F.col(VALID_FROM).alias("_seq"),
        F.lit(False).alias(DELETE_FLAG),
        F.lit(0).alias("_priority"),
    )
    new = changes.select(
        *[F.col(quote(c)) for c in data_columns],
        F.col(quote(sequence_by)).alias("_seq"),
        F.col(DELETE_FLAG).cast("boolean").alias(DELETE_FLAG),
        F.lit(1).alias("_priority"),
    )
    by_key = [F.col(quote(k)) for k in keys]
    # A stored version closed without a successor was closed by a delete: replay it, so a
    # late row older than the delete does not reopen the key (the delete's Bronze row was
    # refined by an earlier run and is not among ``changes``).
    starts = existing.select(
        *[F.col(quote(k)).alias(f"_start_{i}") for i, k in enumerate(keys)],
        F.col(VALID_FROM).alias("_start"),
    )
    successor = [F.col(quote(k)) == F.col(f"_start_{i}") for i, k in enumerate(keys)] + [
        F.col(VALID_TO) == F.col("_start")
    ]
    deleted = (
        existing.where(F.col(VALID_TO).isNotNull())
        .join(starts, on=successor, how="left_anti")
        .select(
            *[F.col(quote(c)) for c in data_columns],
            F.col(VALID_TO).alias("_seq"),
            F.lit(True).alias(DELETE_FLAG),
            F.lit(0).alias("_priority"),
        )
    )
    events = old.unionByName(deleted).unionByName(new)
    # One event per key and sequence value: a new row wins over a stored version.
    events = (
        events.withColumn(
            "_rank",
            F.row_number().over(
                Window.partitionBy(*by_key, "_seq").orderBy(F.col("_priority").desc())
            ),
        )
        .where("_rank = 1")
        .drop("_rank")
    )
    ordered = Window.partitionBy(*by_key).orderBy("_seq")
    state: Column = F.concat(
        F.col(DELETE_FLAG).cast("string"),
        F.lit("|"),
        F.to_json(F.struct(*[F.col(quote(c)) for c in tracked])),
    )
    events = events.withColumn("_state", state).withColumn(
        "_previous", F.lag("_state").over(ordered)
    )
    changed = events.where(F.col("_previous").isNull() | (F.col("_state") != F.col("_previous")))
    closed = changed.withColumn("_next", F.lead("_seq").over(ordered))
    versions = closed.where(~F.col(DELETE_FLAG))
    return versions.select(
        *[F.col(quote(c)) for c in data_columns],
        F.col("_seq").alias(VALID_FROM),
        F.col("_next").alias(VALID_TO),
        F.col("_next").isNull().alias(IS_CURRENT),
    )


def scd2_merge_source(existing: DataFrame, history: DataFrame, keys: list[str]) -> DataFrame:
    """``history`` plus delete markers for stored versions that are no longer versions."""
    match = [*keys, VALID_FROM]
    gone = existing.join(history.select(*[quote(c) for c in match]), on=match, how="left_anti")
    return history.withColumn(DELETE_FLAG, F.lit(False)).unionByName(
        gone.select(*history.columns).withColumn(DELETE_FLAG, F.lit(True))
    )
