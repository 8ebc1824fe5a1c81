"""Silver: conform Bronze rows to the typed table, dedupe by key, upsert with MERGE.

Rows that cannot be conformed (corrupt in Bronze, a value that does not fit its type, a
missing key or required value) go to the table's quarantine with the reasons; nothing is
dropped silently: rows read = rows conformed + rows quarantined, checked on every run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from lakehouse.bundle.context import TaskContext
from lakehouse.config.loader import TableRef, quarantine_table_name
from lakehouse.config.models import SilverSpec
from lakehouse.errors import TaskError
from lakehouse.tables import quote

log = logging.getLogger(__name__)

REASONS = "_reasons"


@dataclass(frozen=True)
class ConformedRows:
    """Bronze rows split into rows fit for Silver and rows for quarantine."""

    valid: DataFrame
    rejected: DataFrame


def conform_rows(bronze: DataFrame, target: TableRef, spec: SilverSpec) -> ConformedRows:
    """Cast, trim and check Bronze rows against the Silver table's declared columns.

    ``valid`` has the Silver columns plus ``_source_file``/``_ingested_at`` (for ordering);
    ``rejected`` has the quarantine columns ``_row`` (the Bronze row as JSON),
    ``_reasons``, ``_row_hash`` and ``_source_file``.
    """
    bronze_cols = [c for c in bronze.columns]
    reasons: list[Column] = []
    values: list[Column] = []
    if "_corrupt" in bronze_cols:
        reasons.append(
            F.when(
                F.col("_corrupt").isNotNull(),
                F.concat(F.lit("corrupt_record: "), F.col("_corrupt")),
            )
        )
    for col in target.spec.columns:
        source_name = spec.rename.get(col.name, col.name)
        if source_name not in bronze_cols:
            raise TaskError(
                f"{target.full_name}: column {col.name!r} has no source column {source_name!r} in {spec.source}"
            )
        raw = F.nullif(F.trim(F.col(quote(source_name)).cast("string")), F.lit(""))
        typed = raw if col.type == "string" else raw.try_cast(col.type)
        values.append(typed.alias(col.name))
        if col.type != "string":
            reasons.append(
                F.when(raw.isNotNull() & typed.isNull(), F.lit(f"not_a_{col.type}: {col.name}"))
            )
        if col.name in spec.keys:
            reasons.append(F.when(raw.isNull(), F.lit(f"missing_key: {col.name}")))
        elif not col.nullable:
            reasons.append(F.when(raw.isNull(), F.lit(f"missing_required: {col.name}")))
    source_file = (
        F.col("_source_file") if "_source_file" in bronze_cols else F.lit(None).cast("string")
    )
    ingested_at = (
        F.col("_ingested_at") if "_ingested_at" in bronze_cols else F.lit(None).cast("timestamp")
    )
    row_json = F.to_json(F.struct(*[F.col(quote(c)) for c in bronze_cols]))
    checked = bronze.select(
        *values,
        F.array_compact(F.array(*reasons)).alias(REASONS),
        source_file.alias("_source_file"),
        ingested_at.alias("_ingested_at"),
        row_json.alias("_row"),
    )
    ok = F.size(REASONS) == 0
    valid = checked.where(ok).drop(REASONS, "_row")
    rejected = checked.where(~ok).select(
        "_row",
        REASONS,
        F.sha2(F.concat_ws("|", F.coalesce("_source_file", F.lit("")), "_row"), 256).alias(
            "_row_hash"
        ),
        "_source_file",
    )
    return ConformedRows(valid, rejected)


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


def refine_silver(ctx: TaskContext) -> None:
    """Conform, dedupe and MERGE every configured Silver table."""
    for name in ctx.project.silver:
        refine_table(ctx, name)


def refine_table(ctx: TaskContext, name: str) -> None:
    """Refresh one Silver table from its Bronze source."""
    spec = ctx.project.silver[name]
    target = ctx.project.table(name)
    tables = ctx.tables
    bronze = tables.read(spec.source)
    rows_in = bronze.count()
    split = conform_rows(bronze, target, spec)
    valid_count = split.valid.count()
    rejected_count = split.rejected.count()
    if valid_count + rejected_count != rows_in:
        raise TaskError(
            f"{name}: row accounting failed: read {rows_in}, conformed {valid_count} + quarantined {rejected_count}"
        )
    deduped = latest_per_key(split.valid, spec.keys, spec.sequence_by)
    silver_cols = [c.name for c in target.spec.columns]
    tables.merge(name, deduped.select(*silver_cols), spec.keys, newer_than=spec.sequence_by)
    quarantine = split.rejected.select(
        "*",
        F.lit(ctx.run_id).alias("_run_id"),
        F.current_timestamp().alias("_quarantined_at"),
    )
    tables.merge(quarantine_table_name(name), quarantine, ["_row_hash"], insert_only=True)
    ctx.report.count(
        f"silver {name}",
        rows_read=rows_in,
        rows_conformed=valid_count,
        rows_quarantined=rejected_count,
        duplicates_collapsed=valid_count - deduped.count(),
    )
