"""Slowly changing dimensions, type 2: version history per key (pure DataFrame functions).

A version is opened by a change in a tracked column and closed by the next change or by a
delete. For the keys that have new rows, the history is recomputed from the versions already
in the table (and the deletes that closed them) plus the new rows, ordered by the sequence
column, so late (out-of-order) rows land in the right place and replaying rows already
applied changes nothing. The result is applied with one MERGE on ``keys + valid_from``
(rows that stop being versions are deleted).

Two callers share it: the YAML Silver layer (``valid_from`` / ``valid_to`` / ``is_current``,
a version keeps the values of the row that opened it) and AUTO CDC flows of declarative
pipelines (Databricks' ``__START_AT`` / ``__END_AT``, a version takes the untracked values of
its latest row, and ``ignore_null_updates``): :class:`Scd2Columns` and the keyword options
select the flavour.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.window import WindowSpec

from lakehouse.io.sql import quote

VALID_FROM = "valid_from"
VALID_TO = "valid_to"
IS_CURRENT = "is_current"
SCD2_COLUMNS = (VALID_FROM, VALID_TO, IS_CURRENT)
DELETE_FLAG = "_lh_delete"


@dataclass(frozen=True)
class Scd2Columns:
    """The names of a history table's validity columns (``current``: None for none)."""

    start: str = VALID_FROM
    end: str = VALID_TO
    current: str | None = IS_CURRENT

    @property
    def names(self) -> tuple[str, ...]:
        return (self.start, self.end) + ((self.current,) if self.current else ())


SILVER_SCD2 = Scd2Columns()
AUTO_CDC_SCD2 = Scd2Columns("__START_AT", "__END_AT", None)


def sequence_order(df: DataFrame, name: str, *, descending: bool = False) -> list[Column]:
    """``ORDER BY`` columns of the sequence column ``name``: a struct (a sequence of several
    columns) by its fields, in order, which is how Spark orders structs (Sail orders a
    window by a struct column only this way)."""

    def parts(column: Column, data_type: T.DataType) -> list[Column]:
        if isinstance(data_type, T.StructType):
            return [p for f in data_type.fields for p in parts(column.getField(f.name), f.dataType)]
        return [column.desc() if descending else column]

    return parts(F.col(quote(name)), df.schema[name].dataType)


def scd2_history(
    existing: DataFrame | None,
    changes: DataFrame,
    *,
    keys: list[str],
    sequence_by: str,
    tracked: list[str],
    data_columns: list[str],
    columns: Scd2Columns = SILVER_SCD2,
    untracked: Literal["first", "latest"] = "first",
    ignore_null_updates: bool = False,
) -> DataFrame:
    """Recomputed versions for every key in ``changes``.

    ``existing``: the table's rows for those keys (``data_columns`` + the validity
    ``columns``), or None when ``changes`` already holds every event of those keys.
    ``changes``: new rows (``data_columns`` + ``sequence_by`` + boolean ``_lh_delete``).
    Returns ``data_columns`` + the validity columns: consecutive rows with the same tracked
    values collapse into one version, which keeps the values of its first row (``untracked=
    "first"``) or of its latest row (``"latest"``: untracked columns are updated in place); a
    delete closes the open version. With ``ignore_null_updates`` a null in an update keeps
    the value of the key's previous row (up to a delete). At one sequence value a new row
    wins over a stored version and a delete over an upsert.
    """
    new = changes.select(
        *[F.col(quote(c)) for c in data_columns],
        F.col(quote(sequence_by)).alias("_seq"),
        F.coalesce(F.col(DELETE_FLAG).cast("boolean"), F.lit(False)).alias(DELETE_FLAG),
        F.lit(1).alias("_priority"),
    )
    events = new
    if existing is not None:
        events = _stored_events(existing, keys, data_columns, columns).unionByName(new)
    by_key = [F.col(quote(k)) for k in keys]
    # One event per key and sequence value: a new row wins over a stored version.
    events = (
        events.withColumn(
            "_rank",
            F.row_number().over(
                Window.partitionBy(*by_key, "_seq").orderBy(
                    F.col("_priority").desc(), F.col(DELETE_FLAG).desc()
                )
            ),
        )
        .where("_rank = 1")
        .drop("_rank")
    )
    ordered = Window.partitionBy(*by_key).orderBy(*sequence_order(events, "_seq"))
    if ignore_null_updates:
        events = fill_null_updates(events, keys, data_columns, "_seq")
    state: Column = F.concat(
        F.col(DELETE_FLAG).cast("string"),
        F.lit("|"),
        F.to_json(F.struct(*[F.col(quote(c)) for c in tracked])),
    )
    events = events.withColumn("_state", state).withColumn(
        "_previous", F.lag("_state").over(ordered)
    )
    starts = F.col("_previous").isNull() | (F.col("_state") != F.col("_previous"))
    if untracked == "latest":
        events = _latest_in_run(events, keys, data_columns, starts, ordered)
    changed = events.where(starts)
    closed = changed.withColumn("_next", F.lead("_seq").over(ordered))
    versions = closed.where(~F.col(DELETE_FLAG))
    current = [F.col("_next").isNull().alias(columns.current)] if columns.current else []
    return versions.select(
        *[F.col(quote(c)) for c in data_columns],
        F.col("_seq").alias(columns.start),
        F.col("_next").alias(columns.end),
        *current,
    )


def _stored_events(
    existing: DataFrame, keys: list[str], data_columns: list[str], columns: Scd2Columns
) -> DataFrame:
    """The stored versions as events at their start, plus a delete at the end of every
    version closed without a successor."""
    old = existing.select(
        *[F.col(quote(c)) for c in data_columns],
        F.col(quote(columns.start)).alias("_seq"),
        F.lit(False).alias(DELETE_FLAG),
        F.lit(0).alias("_priority"),
    )
    # A stored version closed without a successor was closed by a delete: replay it, so a
    # late row older than the delete does not reopen the key (the delete's Bronze row was
    # refined by an earlier run and is not among ``changes``).
    starts = existing.select(
        *[F.col(quote(k)).alias(f"_start_{i}") for i, k in enumerate(keys)],
        F.col(quote(columns.start)).alias("_start"),
    )
    successor = [F.col(quote(k)) == F.col(f"_start_{i}") for i, k in enumerate(keys)] + [
        F.col(quote(columns.end)) == F.col("_start")
    ]
    deleted = (
        existing.where(F.col(quote(columns.end)).isNotNull())
        .join(starts, on=successor, how="left_anti")
        .select(
            *[F.col(quote(c)) for c in data_columns],
            F.col(quote(columns.end)).alias("_seq"),
            F.lit(True).alias(DELETE_FLAG),
            F.lit(0).alias("_priority"),
        )
    )
    return old.unionByName(deleted)


def fill_null_updates(
    events: DataFrame, keys: list[str], data_columns: list[str], sequence: str
) -> DataFrame:
    """Every null of an upsert (``_lh_delete`` false) replaced by the key's previous non-null
    value since its last delete, in ``sequence`` order (``ignore_null_updates``)."""
    by_key = [F.col(quote(k)) for k in keys]
    ordered = Window.partitionBy(*by_key).orderBy(*sequence_order(events, sequence))
    events = events.withColumn(
        "_segment",
        F.sum(F.col(DELETE_FLAG).cast("int")).over(
            ordered.rowsBetween(Window.unboundedPreceding, Window.currentRow)
        ),
    )
    segment = (
        Window.partitionBy(*by_key, "_segment")
        .orderBy(*sequence_order(events, sequence))
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    for c in data_columns:
        if c in keys:
            continue
        filled = F.last(F.when(~F.col(DELETE_FLAG), F.col(quote(c))), ignorenulls=True)
        events = events.withColumn(
            c, F.when(F.col(DELETE_FLAG), F.col(quote(c))).otherwise(filled.over(segment))
        )
    return events.drop("_segment")


def _latest_in_run(
    events: DataFrame,
    keys: list[str],
    data_columns: list[str],
    starts: Column,
    ordered: WindowSpec,
) -> DataFrame:
    """Every row of a run of equal tracked values given the values of the run's last row."""
    by_key = [F.col(quote(k)) for k in keys]
    events = events.withColumn(
        "_run",
        F.sum(starts.cast("int")).over(
            ordered.rowsBetween(Window.unboundedPreceding, Window.currentRow)
        ),
    )
    run = (
        Window.partitionBy(*by_key, "_run")
        .orderBy(*sequence_order(events, "_seq"))
        .rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)
    )
    for c in data_columns:
        if c not in keys:
            events = events.withColumn(c, F.last(F.col(quote(c))).over(run))
    return events.drop("_run")


def scd2_merge_source(
    existing: DataFrame,
    history: DataFrame,
    keys: list[str],
    columns: Scd2Columns = SILVER_SCD2,
) -> DataFrame:
    """``history`` plus delete markers for stored versions that are no longer versions."""
    match = [*keys, columns.start]
    gone = existing.join(history.select(*[quote(c) for c in match]), on=match, how="left_anti")
    return history.withColumn(DELETE_FLAG, F.lit(False)).unionByName(
        gone.select(*history.columns).withColumn(DELETE_FLAG, F.lit(True))
    )
