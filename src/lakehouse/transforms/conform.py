"""Silver conform: Bronze rows -> typed Silver rows, declaratively (pure DataFrame functions).

Per the table's ``silver:`` entry: rename, trim, case, standardise values (a mapping), cast
to the declared types, then optional Python transforms. Rows that cannot be conformed (corrupt
in Bronze, a value that does not fit its type, a missing key or required value) are split off
with their reasons, for the quarantine: nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.config.catalog import Column as ColumnSpec
from lakehouse.config.loader import import_callable
from lakehouse.config.pipelines import SilverSpec
from lakehouse.config.project import TableRef
from lakehouse.config.sources import BRONZE_METADATA_COLUMNS
from lakehouse.core.errors import TaskError
from lakehouse.io.sql import quote
from lakehouse.transforms.scd import DELETE_FLAG, SCD2_COLUMNS

REASONS = "_reasons"
ORDERING = ("_source_file", "_ingested_at")


@dataclass(frozen=True)
class ConformedRows:
    """Bronze rows split into rows fit for Silver and rows for quarantine."""

    valid: DataFrame
    rejected: DataFrame


def _standardized(raw: Column, column: str, spec: SilverSpec) -> Column:
    out = raw
    case = spec.case.get(column)
    if case == "lower":
        out = F.lower(out)
    elif case == "upper":
        out = F.upper(out)
    mapping = spec.standardize.get(column)
    if mapping:
        lookup = F.create_map(*[F.lit(x) for pair in mapping.items() for x in pair])
        out = F.coalesce(lookup[out], out)
    return out


def conform_rows(bronze: DataFrame, target: TableRef, spec: SilverSpec) -> ConformedRows:
    """Rename, trim, standardise, cast and check Bronze rows for the Silver table.

    ``valid`` has the Silver columns (SCD2 validity columns excluded), ``_lh_delete``
    (the row is a delete, per ``operation``) and ``_source_file``/``_ingested_at`` (for
    ordering); ``rejected`` has the quarantine columns ``_row`` (the Bronze row as JSON),
    ``_reasons``, ``_row_hash`` and ``_source_file``.
    """
    return split_checked(checked_rows(bronze, target, spec))


def split_checked(checked: DataFrame) -> ConformedRows:
    """Split :func:`checked_rows` output into rows fit for Silver and rows for quarantine."""
    ok = F.size(REASONS) == 0
    valid = checked.where(ok).drop(REASONS, "_row")
    rejected = checked.where(~ok).select(
        "_row", REASONS, row_hash().alias("_row_hash"), "_source_file"
    )
    return ConformedRows(valid, rejected)


def row_hash() -> Column:
    """Identity of a quarantined row: its source file and its JSON (``_row``)."""
    return F.sha2(F.concat_ws("|", F.coalesce("_source_file", F.lit("")), "_row"), 256)


def checked_rows(bronze: DataFrame, target: TableRef, spec: SilverSpec) -> DataFrame:
    """Every Bronze row conformed, with ``_reasons`` it cannot go to Silver (empty if none)
    and ``_row`` (the Bronze row as JSON, only for rows with reasons)."""
    bronze_cols = list(bronze.columns)
    reasons: list[Column] = []
    values: list[Column] = []
    is_delete: Column = F.lit(False)
    if spec.operation is not None:
        if spec.operation.column not in bronze_cols:
            raise TaskError(
                f"{target.full_name}: operation column {spec.operation.column!r} is not in {spec.source}"
            )
        is_delete = delete_operation(spec)
    if "_corrupt" in bronze_cols:
        reasons.append(
            F.when(
                F.col("_corrupt").isNotNull(),
                F.concat(F.lit("corrupt_record: "), F.col("_corrupt")),
            )
        )
    bronze_types = {f.name: f.dataType.simpleString() for f in bronze.schema.fields}
    for col in silver_columns(bronze.schema, target, spec):
        value, column_reasons = _conformed_column(col, bronze_types, target, spec, is_delete)
        values.append(value)
        reasons.extend(column_reasons)
    source_file = (
        F.col("_source_file") if "_source_file" in bronze_cols else F.lit(None).cast("string")
    )
    ingested_at = (
        F.col("_ingested_at") if "_ingested_at" in bronze_cols else F.lit(None).cast("timestamp")
    )
    row_json = F.to_json(F.struct(*[F.col(quote(c)) for c in bronze_cols]))
    problems = F.array_compact(F.array(*reasons))
    return bronze.select(
        *values,
        is_delete.alias(DELETE_FLAG),
        problems.alias(REASONS),
        source_file.alias("_source_file"),
        ingested_at.alias("_ingested_at"),
        F.when(F.size(problems) > 0, row_json).alias("_row"),
    )


def silver_columns(bronze: T.StructType, target: TableRef, spec: SilverSpec) -> list[ColumnSpec]:
    """The Silver columns the conform step makes, before the transforms: the declared ones
    (SCD2 validity columns aside) plus those ``cast`` names; with none declared, every Bronze
    data column (renamed per ``rename``) with its Bronze type or the ``cast`` type.

    Bronze's metadata columns (``_source_file`` ...) and the ``operation`` column are not
    Silver data.
    """
    scd2 = spec.mode == "scd2"
    declared = [c for c in target.spec.columns if not (scd2 and c.name in SCD2_COLUMNS)]
    if declared:
        names = {c.name for c in declared}
        return declared + [_derived(n, t) for n, t in spec.cast.items() if n not in names]
    target_of = {source: name for name, source in spec.rename.items()}
    skip = {c.name for c in BRONZE_METADATA_COLUMNS}
    if spec.operation is not None:
        skip.add(spec.operation.column)
    out = []
    for f in bronze.fields:
        if f.name in skip:
            continue
        name = target_of.get(f.name, f.name)
        out.append(_derived(name, spec.cast.get(name, f.dataType.simpleString())))
    return out


def _derived(name: str, type_: str) -> ColumnSpec:
    """A Silver column the catalog does not declare (nullable, no comment, tags or mask)."""
    return ColumnSpec.model_construct(
        name=name, type=type_, nullable=True, comment="", tags=[], mask=None
    )


def _conformed_column(
    col: ColumnSpec,
    bronze_types: dict[str, str],
    target: TableRef,
    spec: SilverSpec,
    is_delete: Column,
) -> tuple[Column, list[Column]]:
    """One target column from its Bronze value (through its text unless the Bronze column
    has the target's type already), and the reasons a row cannot keep it."""
    source_name = spec.rename.get(col.name, col.name)
    if source_name not in bronze_types:
        raise TaskError(
            f"{target.full_name}: column {col.name!r} has no source column {source_name!r} in {spec.source}"
        )
    reasons: list[Column] = []
    if col.type != "string" and bronze_types[source_name] == col.type:
        raw = typed = F.col(quote(source_name))  # typed in Bronze already: kept as it is
    else:
        text = F.col(quote(source_name)).cast("string")
        if spec.trim:
            text = F.trim(text)
        raw = _standardized(F.nullif(text, F.lit("")), col.name, spec)
        typed = raw if col.type == "string" else raw.try_cast(col.type)
    if col.type != "string" and typed is not raw:
        reasons.append(
            F.when(raw.isNotNull() & typed.isNull(), F.lit(f"not_a_{col.type}: {col.name}"))
        )
    if col.name in spec.keys or col.name == spec.sequence_by:
        label = "missing_key" if col.name in spec.keys else "missing_sequence"
        reasons.append(F.when(raw.isNull(), F.lit(f"{label}: {col.name}")))
    elif not col.nullable:
        reasons.append(F.when(raw.isNull() & ~is_delete, F.lit(f"missing_required: {col.name}")))
    return typed.alias(col.name), reasons


def delete_operation(spec: SilverSpec) -> Column:
    """True for a Bronze row whose ``operation`` column says delete (false without one)."""
    if spec.operation is None:
        return F.lit(False)
    op = F.upper(F.trim(F.col(quote(spec.operation.column)).cast("string")))
    return F.coalesce(op.isin([v.upper() for v in spec.operation.delete_values]), F.lit(False))


def without_deleted_later(
    upserts: DataFrame, deletes: DataFrame, keys: list[str], sequence_by: str
) -> DataFrame:
    """``upserts`` minus the rows a delete of the same key with a higher sequence overrides.

    ``deletes`` are conformed delete rows refined by earlier runs: their keys are gone from
    an SCD1 table, so without this a late, older upsert would bring the key back.
    """
    last_delete = deletes.groupBy(*[quote(k) for k in keys]).agg(
        F.max(quote(sequence_by)).alias("_deleted_at")
    )
    return (
        upserts.join(last_delete, on=keys, how="left")
        .where(F.col("_deleted_at").isNull() | (F.col(quote(sequence_by)) >= F.col("_deleted_at")))
        .drop("_deleted_at")
    )


Transform = Callable[[DataFrame], DataFrame]


def load_transforms(spec: SilverSpec) -> list[Transform]:
    """Import the ``transforms`` (``package.module:function``)."""
    return [cast(Transform, import_callable(dotted)) for dotted in spec.transforms]


def apply_transforms(df: DataFrame, transforms: list[Transform]) -> DataFrame:
    """Apply the table's Python transforms in order."""
    for fn in transforms:
        df = fn(df)
    return df


def latest_per_key(df: DataFrame, keys: list[str], sequence_by: str | None) -> DataFrame:
    """One row per key: the highest ``sequence_by`` wins, then the latest ingested file."""
    order = []
    if sequence_by:
        order.append(F.col(quote(sequence_by)).desc_nulls_last())
    for col in ("_ingested_at", "_source_file"):
        if col in df.columns:
            order.append(F.col(col).desc_nulls_last())
    if not order:
        return df.dropDuplicates(keys)
    window = Window.partitionBy(*[F.col(quote(k)) for k in keys]).orderBy(*order)
    return df.withColumn("_rank", F.row_number().over(window)).where("_rank = 1").drop("_rank")
