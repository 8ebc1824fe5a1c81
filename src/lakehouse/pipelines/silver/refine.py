"""Silver refine: Bronze -> conform -> quality gates -> quarantine -> MERGE (SCD1 / SCD2).

Delta Live Tables semantics for the rules: ``warn`` keeps the row and records the failure,
``drop`` moves the row to the quarantine with the names of the rules it broke, ``fail``
stops the run before anything is written to the target. Every run records one row per rule
in ``meta.dq_results`` (plus Data Docs HTML under ``<data_root>/quality/docs``) and its row
accounting in ``meta.silver_runs``: rows read = rows kept + rows quarantined, or the run fails.
Those rows and the refined Bronze batches (``meta.silver_batches``) are kept in a
:class:`~lakehouse.pipelines.silver.ledger.SilverLedger` and written once per job run, also
when a table fails (see that module for what a crash leaves).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.bundle.context import TaskContext
from lakehouse.config.project import SilverHandle
from lakehouse.config.system_tables import (
    DqResultRow,
    SilverRunRow,
)
from lakehouse.core.errors import TaskError
from lakehouse.core.params import TaskParams
from lakehouse.io.results import WriteResult
from lakehouse.pipelines.silver.ledger import SilverLedger
from lakehouse.pipelines.silver.progress import PendingBatches, pending_batches, refined_rows
from lakehouse.transforms.conform import (
    REASONS,
    apply_transforms,
    checked_rows,
    delete_operation,
    latest_per_key,
    load_transforms,
    row_hash,
    split_checked,
    without_deleted_later,
)
from lakehouse.transforms.quality import (
    RuleResult,
    cross_check,
    duplicate_keys,
    evaluate_rules,
    validate_with_gx,
)
from lakehouse.transforms.scd import (
    DELETE_FLAG,
    IS_CURRENT,
    SCD2_COLUMNS,
    VALID_FROM,
    VALID_TO,
    scd2_history,
    scd2_merge_source,
)

log = logging.getLogger(__name__)

VIOLATIONS = "_violations"


class QualityGateError(TaskError):
    """A rule with action ``fail`` found failing rows; the target was not written."""


@dataclass
class RefineSummary:
    table: str
    rows_read: int = 0
    rows_kept: int = 0
    rows_quarantined: int = 0
    rows_deleted: int = 0
    duplicates_collapsed: int = 0
    rows_written: int = 0
    version: int = -1
    rules: list[RuleResult] = field(default_factory=list)
    status: str = "SUCCESS"


def outcome(result: RuleResult) -> str:
    """passed | warned | dropped | failed."""
    if result.success or result.failed == 0:
        return "passed"
    return {"warn": "warned", "drop": "dropped", "fail": "failed"}[result.action]


class RefineParams(TaskParams):
    """``[TABLE]... [--full-refresh]``: the Silver tables (default: all) and how much to read."""

    positional: ClassVar[str | None] = "tables"
    tables: tuple[str, ...] = ()
    full_refresh: bool = False


def refine_silver(ctx: TaskContext) -> None:
    """Refine every configured Silver table (or those named in the task parameters).

    Each table refines the Bronze batches it has not refined yet; the parameter
    ``--full-refresh`` re-reads all of Bronze (the MERGE keeps the result the same unless
    the rules or the conform config changed; a column whose type changed unsafely makes the
    table be created again). The bookkeeping of all the tables is written at the end, in one
    commit per system table, also when a table fails (the tables refined before it keep
    their progress; the task still fails).
    """
    params = RefineParams.parse(ctx.parameters, task=ctx.task_key)
    names = list(dict.fromkeys(params.tables or ctx.project.silver))
    unknown = [n for n in names if n not in ctx.project.silver]
    if unknown:
        raise TaskError(f"unknown Silver table(s): {', '.join(unknown)}")
    ledger = SilverLedger()
    try:
        for name in names:
            refine_table(ctx, name, full_refresh=params.full_refresh, ledger=ledger)
    finally:
        ledger.flush(ctx)


def refine_table(
    ctx: TaskContext,
    name: str,
    *,
    full_refresh: bool = False,
    ledger: SilverLedger | None = None,
) -> RefineSummary:
    """Refine the Bronze batches of ``name``'s source it has not refined yet (all of them
    with ``full_refresh``) into the table.

    Its bookkeeping goes into ``ledger``, for the caller to flush; without one it is
    written before this returns (or raises)."""
    if ledger is not None:
        return _refine_table(ctx, name, full_refresh, ledger)
    own = SilverLedger()
    try:
        return _refine_table(ctx, name, full_refresh, own)
    finally:
        own.flush(ctx)


def _refine_table(
    ctx: TaskContext, name: str, full_refresh: bool, ledger: SilverLedger
) -> RefineSummary:
    t = ctx.project.silver_handle(name)
    summary = RefineSummary(t.name)
    pending = pending_batches(ctx, t, full_refresh=full_refresh)
    if pending.empty:  # nothing new: no rules to run, nothing to write
        summary.version = ctx.tables.version(t.table) if ctx.tables.exists(t.table) else -1
        ledger.record_run(_run_row(ctx, summary))
        ctx.report.count(
            f"silver {t.name}", rows_read=0, batches_refined_before=pending.refined_before
        )
        return summary
    bronze = pending.rows
    summary.rows_read = sum(pending.batches.values()) if pending.incremental else bronze.count()
    # Conform once and stage the result (Parquet under the data root): the rule checks, the
    # counts, GX and the MERGEs below then read it instead of re-running the conform plan.
    staging = ctx.project.data_root / "_staging" / ctx.run_id / t.name.replace(".", "_")
    checked = checked_rows(bronze, t.table, t.spec)
    checked.write.mode("overwrite").parquet(str(staging / "checked"))
    try:
        staged = ctx.spark.read.schema(checked.schema).parquet(str(staging / "checked"))
        summary = _refine_staged(ctx, t, summary, staging, staged, pending, ledger)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    # the table's MERGEs committed: its batches count as refined (at the ledger's flush)
    ledger.record_refined(refined_rows(ctx, t, pending))
    return summary


def _refine_staged(
    ctx: TaskContext,
    t: SilverHandle,
    summary: RefineSummary,
    staging: Path,
    staged: DataFrame,
    pending: PendingBatches,
    ledger: SilverLedger,
) -> RefineSummary:
    """Rules, quality gate, row accounting, the target write and the quarantine, from the
    staged conformed rows."""
    checked = _rule_checked_rows(ctx, t, staged)
    _pass_quality_gate(ctx, t, summary, checked.results, ledger)
    kept = _kept_and_rejected_rows(t, checked)
    _account_rows(ctx, t, summary, staged, checked.flagged, kept.dropped, ledger)
    result = _write_kept_rows(ctx, t, summary, staging, kept.rows, pending)
    summary.rows_written = result.rows_written
    summary.version = result.version
    if summary.rows_quarantined:  # (finding no rejects would be one more pass over the rows)
        _quarantine_rejected_rows(ctx, t, staging, kept.rejected)
    ledger.record_run(_run_row(ctx, summary))
    _report_refine_counts(ctx, t, summary, checked.results)
    return summary


@dataclass(frozen=True)
class _RuleChecked:
    """The staged rows after the transforms, flagged with the rules they break."""

    flagged: DataFrame  # upserts with their violations, deletes with none
    rejected: DataFrame  # rows that did not conform (quarantine shape)
    results: list[RuleResult]


@dataclass(frozen=True)
class _KeptRows:
    """The flagged rows split by the ``drop`` rules."""

    rows: DataFrame
    rejected: DataFrame  # not conformed + dropped by a rule (quarantine shape)
    dropped: Column  # true for a row a ``drop`` rule removes


def _rule_checked_rows(ctx: TaskContext, t: SilverHandle, staged: DataFrame) -> _RuleChecked:
    """Apply the table's transforms and evaluate its rules (cross-checked with GX when on)."""
    spec = t.spec
    split = split_checked(staged)
    conformed = apply_transforms(split.valid, load_transforms(spec))
    row_rules = list(spec.rules)
    upserts = conformed.where(~F.col(DELETE_FLAG))
    checked, sql_results = evaluate_rules(upserts, row_rules)
    deletes = conformed.where(F.col(DELETE_FLAG)).withColumn(
        VIOLATIONS, F.array().cast("array<string>")
    )
    flagged = checked.unionByName(deletes)
    if row_rules and spec.great_expectations:
        docs = ctx.project.data_root / "quality" / "docs"
        gx_results = validate_with_gx(
            upserts.drop(DELETE_FLAG, "_source_file", "_ingested_at"),
            row_rules,
            docs_dir=docs,
            suite_name=t.name,
            run_name=f"{ctx.run_id}-{t.name}",
        )
        cross_check(sql_results, gx_results)
    return _RuleChecked(flagged, split.rejected, sql_results)


def _pass_quality_gate(
    ctx: TaskContext,
    t: SilverHandle,
    summary: RefineSummary,
    sql_results: list[RuleResult],
    ledger: SilverLedger,
) -> None:
    """Record the rule results; raise QualityGateError if a ``fail`` rule failed."""
    summary.rules = sql_results
    ledger.record_results(_result_rows(ctx, t.name, sql_results))
    failing = [r for r in sql_results if r.action == "fail" and outcome(r) == "failed"]
    if failing:
        summary.status = "FAILED"
        ledger.record_run(_run_row(ctx, summary))
        details = ", ".join(f"{r.rule} ({r.failed} of {r.evaluated} rows)" for r in failing)
        raise QualityGateError(f"{t.name}: quality gate failed, nothing written: {details}")


def _kept_and_rejected_rows(t: SilverHandle, checked: _RuleChecked) -> _KeptRows:
    """The rows no ``drop`` rule removes, and the quarantine rows (not conformed + dropped)."""
    drop_rules = sorted(r.name for r in t.spec.rules if r.action == "drop")
    flagged = checked.flagged
    broken = (
        F.filter(VIOLATIONS, lambda v: v.isin(drop_rules))
        if drop_rules
        else F.array().cast("array<string>")
    )
    dropped = F.size(broken) > 0
    payload = [c for c in flagged.columns if c not in (VIOLATIONS, DELETE_FLAG, "_ingested_at")]
    rule_rejects = (
        flagged.where(dropped)
        .select(
            F.to_json(F.struct(*[F.col(c) for c in payload])).alias("_row"),
            broken.alias(REASONS),
            "_source_file",
        )
        .select("_row", REASONS, row_hash().alias("_row_hash"), "_source_file")
    )
    rejected = checked.rejected.unionByName(rule_rejects)
    return _KeptRows(flagged.where(~dropped), rejected, dropped)


def _account_rows(
    ctx: TaskContext,
    t: SilverHandle,
    summary: RefineSummary,
    staged: DataFrame,
    flagged: DataFrame,
    dropped: Column,
    ledger: SilverLedger,
) -> None:
    """Count kept, quarantined and deleted rows; raise TaskError unless read = kept + quarantined."""
    counts = flagged.agg(
        F.count_if(~dropped).alias("kept"),
        F.count_if(dropped).alias("dropped"),
        F.count_if(~dropped & F.col(DELETE_FLAG)).alias("deleted"),
    ).first()
    assert counts is not None
    not_conformed = staged.where(F.size(REASONS) > 0).count()
    summary.rows_kept = int(counts["kept"])
    summary.rows_quarantined = not_conformed + int(counts["dropped"])
    summary.rows_deleted = int(counts["deleted"])
    if summary.rows_kept + summary.rows_quarantined != summary.rows_read:
        summary.status = "FAILED"
        ledger.record_run(_run_row(ctx, summary))
        raise TaskError(
            f"{t.name}: row accounting failed: read {summary.rows_read}, kept {summary.rows_kept} "
            f"+ quarantined {summary.rows_quarantined}"
        )


def _write_kept_rows(
    ctx: TaskContext,
    t: SilverHandle,
    summary: RefineSummary,
    staging: Path,
    kept: DataFrame,
    pending: PendingBatches,
) -> WriteResult:
    """Write the kept rows into the target (created or evolved to take them first): SCD1
    upsert/delete or SCD2 history."""
    scd2 = t.spec.mode == "scd2"
    internal = {VIOLATIONS, DELETE_FLAG, "_source_file", "_ingested_at"}
    columns = [c for c in kept.columns if c not in internal and not (scd2 and c in SCD2_COLUMNS)]
    rows = kept.select(*columns, DELETE_FLAG, "_source_file", "_ingested_at")
    ctx.tables.evolve(
        t.table,
        _target_schema(rows.select(*columns).schema, t),
        step="Silver conform step",
        replace=pending.full_refresh,
    )
    if not scd2:
        return _write_scd1(ctx, t, summary, staging, rows, columns, pending)
    return _merge_scd2(ctx, t, rows, columns)


def _target_schema(data: T.StructType, t: SilverHandle) -> T.StructType:
    """The Silver table's columns: the data's, plus the SCD2 validity columns (typed like
    ``sequence_by``) for an SCD2 table."""
    if t.spec.mode != "scd2":
        return data
    sequence = data[str(t.spec.sequence_by)].dataType
    return T.StructType(
        [
            *data.fields,
            T.StructField(VALID_FROM, sequence, False),
            T.StructField(VALID_TO, sequence, True),
            T.StructField(IS_CURRENT, T.BooleanType(), False),
        ]
    )


def _write_scd1(
    ctx: TaskContext,
    t: SilverHandle,
    summary: RefineSummary,
    staging: Path,
    rows: DataFrame,
    columns: list[str],
    pending: PendingBatches,
) -> WriteResult:
    """The latest row per key, appended on a first load, else MERGEd (deletes applied)."""
    spec = t.spec
    # The window ranking is a third of a large refine: skip it when every key is unique.
    unique = not duplicate_keys(rows, spec.keys)
    latest = rows if unique else latest_per_key(rows, spec.keys, spec.sequence_by)
    latest = latest.select(*columns, DELETE_FLAG)
    if spec.operation is not None and spec.sequence_by and pending.refined_before:
        latest = _without_deleted_later(t, latest, pending)
    if unique and summary.rows_deleted == 0 and _is_empty(ctx, t):
        # The first load: no keys to match and no deletes to apply, so the MERGE is an
        # append (SF1 lineitem: 7 s less than a MERGE into the empty table), straight from
        # the staged conformed rows (a second staging copy cost 6 s at SF1).
        result = ctx.tables.append(t.table, latest.select(*columns))
        summary.duplicates_collapsed = summary.rows_kept - result.rows_written
        return result
    # Staged: on Sail a MERGE from a lazy source with window functions (dedupe, unique
    # rules) is 4-5x slower than from written rows (benchmarks/silver.py, 1M rows).
    latest.write.mode("overwrite").parquet(str(staging / "merge"))
    source = ctx.spark.read.schema(latest.schema).parquet(str(staging / "merge"))
    summary.duplicates_collapsed = summary.rows_kept - source.count()
    return ctx.tables.merge(
        t.table,
        source,
        spec.keys,
        newer_than=spec.sequence_by,
        delete_flag=DELETE_FLAG,
    )


def _quarantine_rejected_rows(
    ctx: TaskContext, t: SilverHandle, staging: Path, rejected: DataFrame
) -> None:
    """Insert the rejected rows (not yet there by row hash) into the table's quarantine."""
    # Staged too: Sail's MERGE loses values of a UNION source built from different plans.
    rejected.write.mode("overwrite").parquet(str(staging / "rejected"))
    quarantine = (
        ctx.spark.read.schema(rejected.schema)
        .parquet(str(staging / "rejected"))
        .select(
            "*",
            F.lit(ctx.run_id).alias("_run_id"),
            F.current_timestamp().alias("_quarantined_at"),
        )
    )
    ctx.tables.merge(t.quarantine, quarantine, ["_row_hash"], insert_only=True)


def _report_refine_counts(
    ctx: TaskContext, t: SilverHandle, summary: RefineSummary, sql_results: list[RuleResult]
) -> None:
    """The run report's row counts for the table and its failing rules."""
    ctx.report.count(
        f"silver {t.name}",
        rows_read=summary.rows_read,
        rows_kept=summary.rows_kept,
        rows_quarantined=summary.rows_quarantined,
        duplicates_collapsed=summary.duplicates_collapsed,
    )
    for r in sql_results:
        if r.failed:
            ctx.report.count(f"rules {t.name}", **{f"{r.rule} ({r.action})": r.failed})


def _is_empty(ctx: TaskContext, t: SilverHandle) -> bool:
    """True if the table does not exist yet or has no rows."""
    return not ctx.tables.exists(t.table) or ctx.tables.read(t.table).limit(1).count() == 0


def _without_deleted_later(
    t: SilverHandle, latest: DataFrame, pending: PendingBatches
) -> DataFrame:
    """``latest`` minus the upserts that a delete refined by an earlier run overrides (a
    higher sequence): the delete removed the key, so the late upsert must not bring it back."""
    spec = t.spec
    assert spec.sequence_by is not None and pending.earlier is not None
    earlier_deletes = pending.earlier.where(delete_operation(spec))
    conformed = checked_rows(earlier_deletes, t.table, spec)
    deletes = conformed.where((F.size(REASONS) == 0) & F.col(DELETE_FLAG))
    upserts = without_deleted_later(
        latest.where(~F.col(DELETE_FLAG)), deletes, spec.keys, spec.sequence_by
    )
    return upserts.unionByName(latest.where(F.col(DELETE_FLAG)))


def _merge_scd2(
    ctx: TaskContext, t: SilverHandle, rows: DataFrame, columns: list[str]
) -> WriteResult:
    """Close the versions the rows supersede and add the new ones (SCD2 history MERGE)."""
    spec = t.spec
    assert spec.sequence_by is not None
    tracked = spec.track_columns or [
        c for c in columns if c not in spec.keys and c != spec.sequence_by
    ]
    keys = [F.col(k) for k in spec.keys]
    affected = rows.select(*keys).distinct()
    existing = ctx.tables.read(t.table).join(affected, on=spec.keys, how="left_semi")
    history = scd2_history(
        existing,
        rows,
        keys=spec.keys,
        sequence_by=spec.sequence_by,
        tracked=tracked,
        data_columns=columns,
    )
    source = scd2_merge_source(existing.select(*columns, *SCD2_COLUMNS), history, spec.keys)
    return ctx.tables.merge(t.table, source, [*spec.keys, VALID_FROM], delete_flag=DELETE_FLAG)


def _result_rows(ctx: TaskContext, name: str, results: list[RuleResult]) -> list[DqResultRow]:
    """The ``meta.dq_results`` rows of the table's rule results."""
    now = datetime.now(tz=UTC).replace(tzinfo=None)
    return [
        DqResultRow(
            ctx.run_id,
            name,
            r.rule,
            r.expectation,
            r.action,
            r.evaluated,
            r.failed,
            r.pass_rate,
            outcome(r),
            now,
        )
        for r in results
    ]


def _run_row(ctx: TaskContext, s: RefineSummary) -> SilverRunRow:
    """The ``meta.silver_runs`` row of the table's run."""
    return SilverRunRow(
        ctx.run_id,
        s.table,
        s.rows_read,
        s.rows_kept,
        s.rows_quarantined,
        s.rows_deleted,
        s.duplicates_collapsed,
        s.rows_written,
        s.version,
        s.status,
        datetime.now(tz=UTC).replace(tzinfo=None),
    )
