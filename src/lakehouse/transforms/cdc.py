"""AUTO CDC: change events applied to a target as SCD type 1 or 2 (pure DataFrame functions).

The semantics of Databricks' ``create_auto_cdc_flow`` / ``APPLY CHANGES`` / ``AUTO CDC INTO``
(see ``docs``: AUTO CDC). An event is a row of the change feed: its ``sequence_by`` value
orders it among the events of its key; ``apply_as_deletes`` marks deletes and
``apply_as_truncates`` (SCD1) truncates. What the flow remembers between batches is kept in
a state table next to the target, never in the target's own columns:

* SCD1: one row per key, the sequence of the key's last applied event and whether it was a
  delete (a tombstone, so a late upsert older than the delete does not bring the key back),
  plus one truncate watermark row (keys null). Events not newer than the state are ignored.
* SCD2: the log of applied events. A key's history is recomputed from all its events, so
  late events land in the right place, a version takes the untracked values of its latest
  event (even one arriving late) and replaying a batch changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.core.errors import LakehouseError
from lakehouse.io.sql import quote
from lakehouse.pipelines.declarative.model import AutoCdc
from lakehouse.transforms.scd import (
    AUTO_CDC_SCD2,
    DELETE_FLAG,
    fill_null_updates,
    scd2_history,
    sequence_order,
)

START_AT = AUTO_CDC_SCD2.start
END_AT = AUTO_CDC_SCD2.end
EVENT_SEQUENCE = "_lh_sequence"  # an event's sequence_by value
TRUNCATE_FLAG = "_lh_truncate"  # an event matches apply_as_truncates
SEQUENCE = "__sequence"  # state: the sequence of the key's last applied event
DELETED = "__deleted"  # state: that event was a delete (a tombstone)
TRUNCATE = "__truncate"  # SCD1 state: the truncate watermark row (keys null)


class AutoCdcError(LakehouseError):
    """An AUTO CDC flow whose options do not fit its source (one line, names the flow)."""


@dataclass(frozen=True)
class CdcPlan:
    """The columns of a flow, resolved against its source: ``columns`` are the target's data
    columns (source order, keys always included), ``tracked`` the SCD2 columns whose change
    opens a new version."""

    keys: list[str]
    columns: list[str]
    tracked: list[str]


@dataclass(frozen=True)
class CdcChanges:
    """What one batch does: ``rows`` for the target's MERGE (data columns + ``_lh_delete``;
    only rows that change something) and ``state`` rows for the state table's MERGE."""

    rows: DataFrame
    state: DataFrame


def plan_columns(source_columns: list[str], spec: AutoCdc) -> CdcPlan:
    """The flow's target and tracked columns; one line naming the flow for a bad option."""
    where = f"AUTO CDC flow {spec.flow_name}"
    known = set(source_columns)

    def check(option: str, names: tuple[str, ...] | None) -> set[str]:
        missing = [n for n in names or () if n not in known]
        if missing:
            raise AutoCdcError(
                f"{where}: {option} names {', '.join(missing)}, not a column of {spec.source} "
                f"(columns: {', '.join(source_columns)})"
            )
        return set(names or ())

    for a, b in (
        ("column_list", "except_column_list"),
        ("track_history_column_list", "track_history_except_column_list"),
    ):
        if getattr(spec, a) is not None and getattr(spec, b) is not None:
            raise AutoCdcError(f"{where}: give {a} or {b}, not both")
    if spec.stored_as_scd_type != 2 and (
        spec.track_history_column_list is not None
        or spec.track_history_except_column_list is not None
    ):
        raise AutoCdcError(f"{where}: track_history_* options need stored_as_scd_type 2")
    if spec.stored_as_scd_type == 2 and spec.apply_as_truncates:
        raise AutoCdcError(f"{where}: apply_as_truncates is only for stored_as_scd_type 1")
    if not spec.keys:
        raise AutoCdcError(f"{where}: keys is empty")
    keys = list(spec.keys)
    check("keys", spec.keys)
    if spec.column_list is not None:
        chosen = check("column_list", spec.column_list) | set(keys)
    else:
        chosen = known - (check("except_column_list", spec.except_column_list) - set(keys))
    columns = [c for c in source_columns if c in chosen]
    reserved = [c for c in columns if c in (START_AT, END_AT) or c.startswith("_lh_")]
    if reserved:
        raise AutoCdcError(f"{where}: column {reserved[0]} is reserved; rename or except it")
    return CdcPlan(keys, columns, _tracked(columns, spec, check))


def _tracked(
    columns: list[str], spec: AutoCdc, check: Callable[[str, tuple[str, ...] | None], set[str]]
) -> list[str]:
    """SCD2's tracked columns: the list given, or every data column but the keys and the
    excepted ones (as on Databricks, a ``sequence_by`` column kept in the target is tracked
    too: except it, or leave it out of the target, to version on data changes only)."""
    if spec.track_history_column_list is not None:
        named = check("track_history_column_list", spec.track_history_column_list)
        return [c for c in columns if c in named and c not in spec.keys]
    excepted = check("track_history_except_column_list", spec.track_history_except_column_list)
    return [c for c in columns if c not in spec.keys and c not in excepted]


def cdc_events(changes: DataFrame, spec: AutoCdc, plan: CdcPlan) -> DataFrame:
    """The change rows as events: the target's data columns + the sequence value, the
    delete flag and the truncate flag (events without a sequence value are ignored)."""
    deletes = F.expr(spec.apply_as_deletes) if spec.apply_as_deletes else F.lit(False)
    truncates = F.expr(spec.apply_as_truncates) if spec.apply_as_truncates else F.lit(False)
    return changes.select(
        *[F.col(quote(c)) for c in plan.columns],
        F.expr(spec.sequence_by).alias(EVENT_SEQUENCE),
        F.coalesce(deletes.cast("boolean"), F.lit(False)).alias(DELETE_FLAG),
        F.coalesce(truncates.cast("boolean"), F.lit(False)).alias(TRUNCATE_FLAG),
    ).where(F.col(EVENT_SEQUENCE).isNotNull())


def target_schema(events: DataFrame, plan: CdcPlan, scd_type: int) -> T.StructType:
    """The target's columns: the data columns, plus ``__START_AT`` / ``__END_AT`` typed like
    the sequence for SCD2."""
    fields = [events.schema[c] for c in plan.columns]
    if scd_type == 2:
        sequence = events.schema[EVENT_SEQUENCE].dataType
        fields += [T.StructField(START_AT, sequence, True), T.StructField(END_AT, sequence, True)]
    return T.StructType(fields)


def state_schema(events: DataFrame, plan: CdcPlan, scd_type: int) -> T.StructType:
    """The state table's columns (SCD1: keys + sequence + tombstone + watermark flag; SCD2:
    the event log, data columns + sequence + delete flag)."""
    names = plan.keys if scd_type == 1 else plan.columns
    fields = [T.StructField(c, events.schema[c].dataType, True) for c in names]
    fields += [
        T.StructField(SEQUENCE, events.schema[EVENT_SEQUENCE].dataType, True),
        T.StructField(DELETED, T.BooleanType(), True),
    ]
    if scd_type == 1:
        fields.append(T.StructField(TRUNCATE, T.BooleanType(), True))
    return T.StructType(fields)


def _typed_nulls(events: DataFrame, names: list[str]) -> list[Column]:
    return [F.lit(None).cast(events.schema[c].dataType).alias(c) for c in names]


def _latest(events: DataFrame, keys: list[str]) -> DataFrame:
    """The last event per key (a delete wins a tie)."""
    order = Window.partitionBy(*[F.col(quote(k)) for k in keys]).orderBy(
        *sequence_order(events, EVENT_SEQUENCE, descending=True), F.col(DELETE_FLAG).desc()
    )
    return events.withColumn("_rank", F.row_number().over(order)).where("_rank = 1").drop("_rank")


def _truncations(events: DataFrame, state: DataFrame) -> DataFrame:
    """One row: ``_mark``, the sequence up to which events are ignored (the latest truncate),
    and ``_truncated_at``, the sequence of a truncate newer than the stored watermark."""
    old = state.where(F.col(TRUNCATE)).agg(F.max(SEQUENCE).alias("_old"))
    new = events.where(F.col(TRUNCATE_FLAG)).agg(F.max(EVENT_SEQUENCE).alias("_new"))
    newer = F.col("_new").isNotNull() & (F.col("_old").isNull() | (F.col("_new") > F.col("_old")))
    return old.crossJoin(new).select(
        F.when(newer, F.col("_new")).alias("_truncated_at"),
        F.when(newer, F.col("_new")).otherwise(F.col("_old")).alias("_mark"),
    )


def scd1_changes(
    events: DataFrame,
    state: DataFrame,
    target: DataFrame,
    plan: CdcPlan,
    *,
    ignore_null_updates: bool = False,
) -> CdcChanges:
    """SCD1: the latest applicable event per key upserts or deletes the key's row.

    ``events`` from :func:`cdc_events`; ``state`` the state table (SCD1 shape); ``target``
    the target's rows. An event applies when it is newer than the key's last applied event
    and than the last truncate. A truncate deletes every row last changed before it.
    """
    keys, data = plan.keys, plan.columns
    applied = state.where(~F.col(TRUNCATE)).select(
        *[F.col(quote(k)) for k in keys], F.col(SEQUENCE).alias("_applied")
    )
    marks = _truncations(events, state)
    newer = (F.col("_applied").isNull() | (F.col(EVENT_SEQUENCE) > F.col("_applied"))) & (
        F.col("_mark").isNull() | (F.col(EVENT_SEQUENCE) > F.col("_mark"))
    )
    fresh = (
        events.where(~F.col(TRUNCATE_FLAG))
        .join(applied, on=keys, how="left")
        .crossJoin(marks)
        .where(newer)
        .select(*[F.col(quote(c)) for c in data], EVENT_SEQUENCE, DELETE_FLAG)
    )
    truncated = (
        target.select(*[F.col(quote(k)) for k in keys])
        .join(applied, on=keys, how="left")
        .crossJoin(marks)
        .where(
            F.col("_truncated_at").isNotNull()
            & (F.col("_applied").isNull() | (F.col("_applied") <= F.col("_truncated_at")))
        )
        .select(
            *[F.col(quote(k)) for k in keys],
            *_typed_nulls(events, [c for c in data if c not in keys]),
            F.col("_truncated_at").alias(EVENT_SEQUENCE),
            F.lit(True).alias(DELETE_FLAG),
        )
        .select(*[F.col(quote(c)) for c in data], EVENT_SEQUENCE, DELETE_FLAG)
    )
    candidates = fresh.unionByName(truncated)
    if ignore_null_updates:
        candidates = _with_nulls_filled(candidates, keys, data)
    latest = _latest(candidates, keys)
    if ignore_null_updates:
        latest = _keep_stored_values(latest, target, keys, data)
    rows = _effective_rows(latest, target, keys, data)
    watermark = marks.where(F.col("_truncated_at").isNotNull()).select(
        *_typed_nulls(events, keys),
        F.col("_truncated_at").alias(SEQUENCE),
        F.lit(True).alias(DELETED),
        F.lit(True).alias(TRUNCATE),
    )
    new_state = latest.select(
        *[F.col(quote(k)) for k in keys],
        F.col(EVENT_SEQUENCE).alias(SEQUENCE),
        F.col(DELETE_FLAG).alias(DELETED),
        F.lit(False).alias(TRUNCATE),
    ).unionByName(watermark)
    return CdcChanges(rows, new_state)


def _with_nulls_filled(events: DataFrame, keys: list[str], data: list[str]) -> DataFrame:
    """``ignore_null_updates`` inside the batch, plus ``_after_delete``: a delete of the
    key precedes the event in the batch (so the stored row's values do not carry over)."""
    filled = fill_null_updates(events, keys, data, EVENT_SEQUENCE)
    upto = (
        Window.partitionBy(*[F.col(quote(k)) for k in keys])
        .orderBy(*sequence_order(filled, EVENT_SEQUENCE))
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    return filled.withColumn("_after_delete", F.max(F.col(DELETE_FLAG).cast("int")).over(upto) > 0)


def _keep_stored_values(
    latest: DataFrame, target: DataFrame, keys: list[str], data: list[str]
) -> DataFrame:
    """Nulls of an upsert replaced by the target's values (``ignore_null_updates``)."""
    others = [c for c in data if c not in keys]
    stored = target.select(
        *[F.col(quote(k)) for k in keys],
        *[F.col(quote(c)).alias(f"_stored_{i}") for i, c in enumerate(others)],
    )
    joined = latest.join(stored, on=keys, how="left")
    fresh = F.col(DELETE_FLAG) | F.col("_after_delete")
    kept = {
        c: F.when(fresh, F.col(quote(c))).otherwise(
            F.coalesce(F.col(quote(c)), F.col(f"_stored_{i}"))
        )
        for i, c in enumerate(others)
    }
    return joined.select(
        *[kept[c].alias(c) if c in kept else F.col(quote(c)) for c in data],
        EVENT_SEQUENCE,
        DELETE_FLAG,
    )


def _effective_rows(
    latest: DataFrame, target: DataFrame, keys: list[str], data: list[str]
) -> DataFrame:
    """The upserts that insert or change a row, and the deletes of rows that exist."""
    upserts = latest.where(~F.col(DELETE_FLAG)).select(*[F.col(quote(c)) for c in data])
    stored = target.select(*[F.col(quote(c)).cast(upserts.schema[c].dataType) for c in data])
    changed = upserts.subtract(stored).withColumn(DELETE_FLAG, F.lit(False))
    deletes = (
        latest.where(F.col(DELETE_FLAG))
        .join(target.select(*[F.col(quote(k)) for k in keys]), on=keys, how="left_semi")
        .select(*[F.col(quote(c)) for c in data], DELETE_FLAG)
    )
    return changed.unionByName(deletes)


def scd2_changes(
    events: DataFrame,
    log: DataFrame,
    target: DataFrame,
    plan: CdcPlan,
    *,
    ignore_null_updates: bool = False,
) -> CdcChanges:
    """SCD2: the history of every key with new events, recomputed from its logged events
    and the new ones.

    ``log`` is the state table (SCD2 shape), ``target`` the target's rows. ``rows`` are the
    versions to insert or update (on keys + ``__START_AT``) and, flagged, the stored
    versions that are no longer versions; ``state`` the new events for the log (one per
    key and sequence, a delete winning a tie; events already logged left out).
    """
    keys, data = plan.keys, plan.columns
    new = events.select(*[F.col(quote(c)) for c in data], EVENT_SEQUENCE, DELETE_FLAG)
    affected = new.select(*[F.col(quote(k)) for k in keys]).distinct()
    logged = log.join(affected, on=keys, how="left_semi").select(
        *[F.col(quote(c)) for c in data],
        F.col(SEQUENCE).alias(EVENT_SEQUENCE),
        F.col(DELETED).alias(DELETE_FLAG),
    )
    history = scd2_history(
        None,
        logged.unionByName(new),
        keys=keys,
        sequence_by=EVENT_SEQUENCE,
        tracked=plan.tracked,
        data_columns=data,
        columns=AUTO_CDC_SCD2,
        untracked="latest",
        ignore_null_updates=ignore_null_updates,
    )
    schema = history.schema
    stored = target.join(affected, on=keys, how="left_semi").select(
        *[F.col(quote(c)).cast(schema[c].dataType) for c in history.columns]
    )
    written = history.subtract(stored).withColumn(DELETE_FLAG, F.lit(False))
    match = [*keys, START_AT]
    gone = stored.join(
        history.select(*[F.col(quote(c)) for c in match]), on=match, how="left_anti"
    ).withColumn(DELETE_FLAG, F.lit(True))
    unlogged = _latest_per_sequence(new, keys).join(
        log.select(*[F.col(quote(k)) for k in keys], F.col(SEQUENCE).alias(EVENT_SEQUENCE)),
        on=[*keys, EVENT_SEQUENCE],
        how="left_anti",
    )
    state = unlogged.select(
        *[F.col(quote(c)) for c in data],
        F.col(EVENT_SEQUENCE).alias(SEQUENCE),
        F.col(DELETE_FLAG).alias(DELETED),
    )
    return CdcChanges(written.unionByName(gone), state)


def _latest_per_sequence(events: DataFrame, keys: list[str]) -> DataFrame:
    """One event per key and sequence value (a delete wins a tie)."""
    order = Window.partitionBy(*[F.col(quote(k)) for k in keys], F.col(EVENT_SEQUENCE)).orderBy(
        F.col(DELETE_FLAG).desc()
    )
    return events.withColumn("_rank", F.row_number().over(order)).where("_rank = 1").drop("_rank")
