"""Refresh a Gold table: full rebuild, or from the rows its input changed since the last one.

The strategy comes from the query (:func:`lakehouse.core.refresh_plan.plan_refresh`) and
from what the input did since the last refresh:

* ``decomposable``: a per-group state (keys, row count, sums, non-null counts, MIN/MAX) is
  kept in a sidecar Delta table next to ``meta.gold_refreshes`` (the Gold table keeps the
  query's columns); the input's removed rows are subtracted, its added rows added, groups
  left with no rows dropped, and the Gold rows derived from the state. MIN/MAX after
  removed rows, and floating-point SUM/AVG or a decimal AVG (not exact that way), recompute
  the affected groups' state instead.
* ``affected_groups``: the group keys of the removed and added rows are computed again from
  the current input (only their rows are aggregated) and replace their old rows.
* ``full``: the query over all inputs, as before; also the fallback whenever the changes
  cannot be used (first run, the definition changed, the Gold table or its state is not the
  one the last refresh wrote, the input's history is gone, its schema changed, ...).

The changed rows come from the input's Delta log (:mod:`lakehouse.io.delta_changes`). Each
refresh appends a ``meta.gold_refreshes`` row last, naming the Gold version and state
version it wrote and the input versions it read: a crash before that row leaves versions
that no row names, and the next refresh rebuilds in full.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.bundle.context import TaskContext
from lakehouse.config.project import GoldHandle, TableRef
from lakehouse.config.system_tables import GoldRefreshRow, SystemTable, rows_frame
from lakehouse.core.errors import LakehouseError
from lakehouse.core.refresh_plan import RefreshPlan, full, plan_refresh, repeatable_problem
from lakehouse.io.delta_changes import (
    ChangesUnreadableError,
    TableChanges,
    change_read_share,
    table_changes,
)
from lakehouse.io.results import WriteResult
from lakehouse.io.sql import quote
from lakehouse.pipelines.gold_frame import gold_frame, write_gold

log = logging.getLogger(__name__)

ROWS = "__rows"
# Recomputing most of the groups costs about a full rebuild plus the merge with the old rows.
MAX_AFFECTED_SHARE = 0.5
# Reading the changes means reading whole files (each one rewritten or given a deletion vector
# since the last refresh) outside the engine, staging them and aggregating them twice (removed
# and added): from half the table's rows on, the engine's own scan of the input is cheaper
# (TPC-H SF10, 1% of lineitem updated: every file touched, the incremental Gold 5x a rebuild).
MAX_CHANGE_READ_SHARE = 0.5


@dataclass(frozen=True)
class Decision:
    """The strategy of one refresh and why."""

    strategy: str
    reason: str


def definition_hash(t: GoldHandle) -> str:
    """What the table is built from and declared as: a new hash means a full rebuild."""
    spec = t.spec
    text = json.dumps(
        {
            "query": spec.query,
            "transform": spec.transform,
            "params": spec.params,
            "features": spec.features,
            "inputs": {a: r.full_name for a, r in t.inputs.items()},
            "table": t.table.spec.model_dump(mode="json"),  # declared columns and types
            "state": 1,  # the layout of the aggregate state
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def state_location(ctx: TaskContext, t: GoldHandle) -> str:
    """The sidecar Delta table holding ``t``'s aggregate state."""
    refreshes = ctx.project.system_table(SystemTable.GOLD_REFRESHES)
    return f"{refreshes.location.rstrip('/')}_state/{t.name}"


def _delta_version(location: str) -> tuple[int, str] | None:
    """The table's current version and Delta table id (None when there is no table)."""
    from deltalake import DeltaTable

    try:
        table = DeltaTable(location)
    except Exception:  # no table there (delta-rs raises TableNotFoundError)
        return None
    return int(table.version()), str(table.metadata().id)


class RefreshLedger:
    """``meta.gold_refreshes`` for one task: the last row of each table read once, the new
    rows appended in one commit by :meth:`flush` (after the Gold writes they describe)."""

    def __init__(self, ctx: TaskContext, names: list[str]) -> None:
        self.ctx = ctx
        self.table = ctx.project.system_table(SystemTable.GOLD_REFRESHES)
        self.pending: list[GoldRefreshRow] = []
        self._changes: dict[tuple[str, int, int], TableChanges] = {}
        self._staged: dict[int, tuple[str, str]] = {}  # id(changes) -> Parquet paths
        self._staging = ctx.project.data_root / "_staging" / ctx.run_id / "gold_changes"
        self._columns: dict[str, set[str]] = {}
        for name in names:
            handle = ctx.project.gold_handle(name)
            plan = plan_for(handle)
            if plan.alias is not None:
                ref = handle.inputs[plan.alias]
                self._columns.setdefault(ref.full_name, set()).update(plan.columns)
        self._rows: dict[str, dict[str, Any]] = {}
        if names:
            for r in ctx.tables.read(self.table).where(F.col("table").isin(names)).collect():
                known = self._rows.get(r["table"])
                order = (r["refreshed_at"], r["gold_version"])
                if known is None or order > (known["refreshed_at"], known["gold_version"]):
                    self._rows[r["table"]] = r.asDict()

    def changes(self, ref: TableRef, old: int, new: int) -> TableChanges:
        """The input's removed and added rows between two versions, read once per task for
        all of its Gold tables (the columns any of them references; all on a governed store,
        whose row filters and masks may use any)."""
        key = (ref.full_name, old, new)
        if key not in self._changes:
            schema = self.ctx.tables.schema(ref)
            if hasattr(self.ctx.tables, "governance"):
                wanted = schema.fieldNames()
            else:
                referenced = {c.lower() for c in self._columns.get(ref.full_name, ())}
                wanted = [f.name for f in schema.fields if f.name.lower() in referenced]
            self._changes[key] = table_changes(ref.location, old, new, wanted)
        return self._changes[key]

    def staged(self, changes: TableChanges) -> tuple[str, str]:
        """The changes' removed and added rows as Parquet files under the data root's staging
        area, written once per task: the engine reads them as files, so no changed row passes
        through the session's client (at TPC-H SF10 a 1% change re-reads whole files with
        deletion vectors, more rows than a Spark Connect local relation carries)."""
        key = id(changes)
        if key not in self._staged:
            directory = self._staging / str(len(self._staged))
            directory.mkdir(parents=True, exist_ok=True)
            paths = (str(directory / "removed.parquet"), str(directory / "added.parquet"))
            pq.write_table(changes.removed, paths[0])
            pq.write_table(changes.added, paths[1])
            self._staged[key] = paths
        return self._staged[key]

    def discard_staged(self) -> None:
        """Remove the staged changes (the task's Gold writes are done)."""
        shutil.rmtree(self._staging, ignore_errors=True)
        self._staged.clear()

    def last(self, name: str) -> dict[str, Any] | None:
        """The latest refresh row of the Gold table ``name``."""
        return self._rows.get(name)

    def add(self, row: GoldRefreshRow) -> None:
        self.pending.append(row)

    def flush(self) -> None:
        if self.pending:
            rows = rows_frame(self.ctx.spark, SystemTable.GOLD_REFRESHES, self.pending)
            self.ctx.tables.append_system(self.table, rows)
            self.pending = []


def plan_for(t: GoldHandle) -> RefreshPlan:
    """The table's plan, ``full`` when its config asks for it."""
    if t.spec.refresh == "full":
        return full("refresh: full")
    return plan_refresh(t.spec.query, tuple(t.spec.inputs), t.spec.features)


def refresh_gold_table(
    ctx: TaskContext, t: GoldHandle, ledger: RefreshLedger, *, full_refresh: bool = False
) -> None:
    """Refresh ``t`` by the strategy its query and its input's changes allow (see module);
    its ``meta.gold_refreshes`` row goes to ``ledger``."""
    plan = plan_for(t)
    if plan.strategy == "decomposable":
        inexact = _inexact_aggregates(ctx, t, plan)
        if inexact:
            plan = replace(plan, strategy="affected_groups", reason=inexact, aggregates=())
    versions = {ref.full_name: ctx.tables.version(ref) for ref in t.inputs.values()}
    decision, last, changes = _decide(ctx, t, plan, ledger, versions, full_refresh)
    if decision.strategy == "unchanged":
        log.info("%s: unchanged (%s)", t.name, decision.reason)
        ctx.report.notes.append(f"{t.name}: refresh skipped ({decision.reason})")
        return
    if decision.strategy == "affected_groups" and last is not None and changes is not None:
        share = _affected_share(ctx, t, plan, last, changes, ledger)
        if share >= MAX_AFFECTED_SHARE:
            decision = Decision("full", f"the changes touch {share:.0%} of the groups")
    if decision.strategy == "full" or last is None or changes is None:
        written, state_version = _rebuild(ctx, t, plan, versions, replace_table=full_refresh)
    else:
        written, state_version = _apply_changes(
            ctx, t, plan, decision, last, changes, versions, ledger
        )
    gold = _delta_version(t.table.location)
    if gold is None:
        raise LakehouseError(f"{t.name}: no Delta table after the write")
    row = GoldRefreshRow(
        table=t.name,
        run_id=ctx.run_id,
        strategy=decision.strategy,
        reason=decision.reason,
        gold_version=written.version,
        gold_table_id=gold[1],
        state_version=state_version,
        input_versions=json.dumps(versions, sort_keys=True),
        definition_hash=definition_hash(t),
        rows_removed=changes.removed.num_rows if changes else None,
        rows_added=changes.added.num_rows if changes else None,
        refreshed_at=datetime.now(tz=UTC).replace(tzinfo=None),
    )
    ledger.add(row)
    log.info("%s: %s refresh (%s)", t.name, decision.strategy, decision.reason)
    ctx.report.notes.append(f"{t.name}: {decision.strategy} refresh ({decision.reason})")


def _rebuild(
    ctx: TaskContext,
    t: GoldHandle,
    plan: RefreshPlan,
    versions: dict[str, int],
    *,
    replace_table: bool,
) -> tuple[WriteResult, int | None]:
    """The query over all of the inputs (at ``versions``); the state too when it has one."""
    spark = ctx.spark
    inputs = {a: ctx.tables.read(r, version=versions[r.full_name]) for a, r in t.inputs.items()}
    with gold_frame(spark, t.spec, inputs) as result:
        written = write_gold(ctx, t, result, replace=replace_table)
    if plan.strategy != "decomposable":
        return written, None
    rows = inputs[str(plan.alias)]
    state = _state_of(spark, plan, rows, _types(ctx, t, plan, inputs))
    return written, _write_state(spark, state_location(ctx, t), state)


def _apply_changes(
    ctx: TaskContext,
    t: GoldHandle,
    plan: RefreshPlan,
    decision: Decision,
    last: dict[str, Any],
    changes: TableChanges,
    versions: dict[str, int],
    ledger: RefreshLedger,
) -> tuple[WriteResult, int | None]:
    """The Gold table (and its state) moved on by the input's removed and added rows."""
    spark = ctx.spark
    alias = str(plan.alias)
    ref = t.inputs[alias]
    current = ctx.tables.read(ref, version=versions[ref.full_name])
    removed, added = _frames(ctx, ref, ledger.staged(changes), changes, current.schema)
    types = _types(ctx, t, plan, {alias: current})
    affected = _affected_keys(plan, removed, added)
    if plan.strategy != "decomposable":
        old_gold = ctx.tables.read(t.table, version=int(last["gold_version"]))
        result = _groups_replaced(
            plan,
            old_gold,
            affected,
            current,
            lambda rows: _query_over(spark, t, plan, rows, old_gold.schema),
        )
        try:
            return write_gold(ctx, t, result, replace=False), None
        finally:
            spark.catalog.dropTempView(alias)  # registered by _query_over
    path = state_location(ctx, t)
    old_state = spark.read.format("delta").option("versionAsOf", last["state_version"]).load(path)
    if decision.strategy == "decomposable":
        state = _state_updated(plan, types, old_state, removed, added)
    else:
        state = _groups_replaced(
            plan, old_state, affected, current, lambda rows: _state_of(spark, plan, rows, types)
        )
    state_version = _write_state(spark, path, state)
    state = spark.read.format("delta").option("versionAsOf", state_version).load(path)
    with gold_frame(spark, t.spec, {alias: current}) as rebuilt:
        final = rebuilt.schema
    derived = _features(_gold_of_state(plan, types, state), t)
    result = derived.select(
        *[F.col(quote(f.name)).cast(f.dataType).alias(f.name) for f in final.fields]
    )
    return write_gold(ctx, t, result, replace=False), state_version


def _affected_share(
    ctx: TaskContext,
    t: GoldHandle,
    plan: RefreshPlan,
    last: dict[str, Any],
    changes: TableChanges,
    ledger: RefreshLedger,
) -> float:
    """The share of the last refresh's groups that the changed rows touch (new groups count)."""
    from deltalake import DeltaTable

    if plan.strategy == "decomposable":
        location, version = state_location(ctx, t), int(last["state_version"])
    else:
        location, version = t.table.location, int(last["gold_version"])
    actions = pa.table(DeltaTable(location, version=version).get_add_actions(flatten=True))
    groups = sum(n or 0 for n in actions.column("num_records").to_pylist())
    ref = t.inputs[str(plan.alias)]
    removed, added = _frames(ctx, ref, ledger.staged(changes), changes, ctx.tables.schema(ref))
    touched = _affected_keys(plan, removed, added).count()
    return touched / groups if groups else 1.0


# ---------------------------------------------------------------- deciding


def _decide(
    ctx: TaskContext,
    t: GoldHandle,
    plan: RefreshPlan,
    ledger: RefreshLedger,
    versions: dict[str, int],
    full_refresh: bool,
) -> tuple[Decision, dict[str, Any] | None, TableChanges | None]:
    """The refresh's strategy, the last refresh it continues from and the input's changes."""
    last = ledger.last(t.name)
    if full_refresh:
        return Decision("full", "--full-refresh"), None, None
    problem = _continuation_problem(ctx, t, plan, last)
    if (
        last is not None
        and problem is None
        and json.loads(last["input_versions"]) == versions
        and repeatable_problem(t.spec.query, t.spec.features) is None
    ):
        return Decision("unchanged", "no input changed since the last refresh"), last, None
    if plan.strategy == "full":
        return Decision("full", plan.reason), None, None
    if last is None or problem is not None:
        return Decision("full", problem or "first refresh"), None, None
    consumed = json.loads(last["input_versions"])
    ref = t.inputs[str(plan.alias)]
    if consumed.get(ref.full_name, versions[ref.full_name] + 1) > versions[ref.full_name]:
        return Decision("full", "the input is older than the last refresh read"), None, None
    share = change_read_share(ref.location, int(consumed[ref.full_name]), versions[ref.full_name])
    if share is not None and share >= MAX_CHANGE_READ_SHARE:
        reason = f"its changes would re-read {share:.0%} of the input's rows (files rewritten)"
        return Decision("full", reason), None, None
    try:
        changes = ledger.changes(ref, int(consumed[ref.full_name]), versions[ref.full_name])
    except ChangesUnreadableError as e:
        return Decision("full", f"the input's changes cannot be read: {e}"), None, None
    if plan.strategy == "decomposable" and plan.has_min_max and not changes.append_only:
        reason = "MIN/MAX after rows were updated or deleted"
        return Decision("affected_groups", reason), last, changes
    return Decision(plan.strategy, plan.reason), last, changes


def _continuation_problem(
    ctx: TaskContext, t: GoldHandle, plan: RefreshPlan, last: dict[str, Any] | None
) -> str | None:
    """Why the last refresh's result cannot be moved on (None when it can)."""
    if last is None:
        return "first refresh"
    if last["definition_hash"] != definition_hash(t):
        return "the table's definition changed"
    gold = _delta_version(t.table.location)
    if gold is None or (gold[0], gold[1]) != (last["gold_version"], last["gold_table_id"]):
        return "the Gold table is not the one the last refresh wrote"
    if plan.strategy == "decomposable":
        state = _delta_version(state_location(ctx, t))
        if state is None or state[0] != last["state_version"]:
            return "the aggregate state is not the last refresh's"
    return None


def _inexact_aggregates(ctx: TaskContext, t: GoldHandle, plan: RefreshPlan) -> str:
    """Why the aggregates' state would not reproduce a full rebuild exactly ('' if it would)."""
    alias = str(plan.alias)
    rows = ctx.tables.read(t.inputs[alias]).alias(alias)
    for a in plan.aggregates:
        if a.kind not in ("sum", "avg") or a.arg is None:
            continue
        type_ = rows.select(F.expr(a.arg)).schema.fields[0].dataType
        if isinstance(type_, T.FloatType | T.DoubleType):
            return f"{a.kind.upper()}({a.arg}) adds floating-point values (order-dependent)"
        if a.kind == "avg" and not isinstance(type_, T.IntegralType):
            return f"AVG({a.arg}) of {type_.simpleString()} is recomputed (rounding)"
    return ""


# ---------------------------------------------------------------- changed rows


def _frames(
    ctx: TaskContext,
    ref: TableRef,
    staged: tuple[str, str],
    changes: TableChanges,
    schema: T.StructType,
) -> tuple[DataFrame, DataFrame]:
    """The removed and added rows (staged as Parquet, see :meth:`RefreshLedger.staged`) as
    DataFrames of the input's types, restricted as a governed read would be."""
    spark = ctx.spark

    def frame(rows: pa.Table, path: str) -> DataFrame:
        fields = [schema[name] for name in rows.column_names]
        struct = T.StructType([T.StructField(f.name, f.dataType, True) for f in fields])
        if rows.num_rows == 0:
            df = spark.createDataFrame([], struct)
        else:
            df = spark.read.parquet(path).select(
                *[F.col(quote(f.name)).cast(f.dataType).alias(f.name) for f in fields]
            )
        governance = getattr(ctx.tables, "governance", None)
        return governance.restrict(ref.full_name, df) if governance is not None else df

    return frame(changes.removed, staged[0]), frame(changes.added, staged[1])


def _types(
    ctx: TaskContext, t: GoldHandle, plan: RefreshPlan, inputs: dict[str, DataFrame]
) -> T.StructType:
    """The query's result schema (what a full rebuild produces, before features)."""
    with gold_frame(ctx.spark, t.spec.model_copy(update={"features": {}}), inputs) as q:
        return q.schema


def _key_columns(plan: RefreshPlan, types: T.StructType) -> list[Column]:
    return [F.expr(k.sql).cast(types[k.output].dataType).alias(k.output) for k in plan.keys]


def _where(plan: RefreshPlan, rows: DataFrame) -> DataFrame:
    rows = rows.alias(str(plan.alias))
    return rows.where(F.expr(plan.where)) if plan.where else rows


def _affected_keys(plan: RefreshPlan, removed: DataFrame, added: DataFrame) -> DataFrame:
    """The group keys (``__k<i>``) of the changed rows that pass the WHERE clause."""

    def keys(rows: DataFrame) -> DataFrame:
        return _where(plan, rows).select(
            *[F.expr(k.sql).alias(f"__k{i}") for i, k in enumerate(plan.keys)]
        )

    return keys(removed).unionByName(keys(added)).distinct()


def _groups_replaced(
    plan: RefreshPlan,
    old: DataFrame,
    affected: DataFrame,
    current: DataFrame,
    recompute: Any,
) -> DataFrame:
    """``old`` with the affected groups' rows replaced by ``recompute`` of their input rows."""
    alias = str(plan.alias)
    tagged = current.alias(alias).withColumns(
        {f"__k{i}": F.expr(k.sql) for i, k in enumerate(plan.keys)}
    )
    match = [tagged[f"__k{i}"].eqNullSafe(affected[f"__k{i}"]) for i in range(len(plan.keys))]
    rows = tagged.join(affected, match, "left_semi").drop(
        *[f"__k{i}" for i in range(len(plan.keys))]
    )
    fresh = recompute(rows)
    keep = [old[quote(k.output)].eqNullSafe(affected[f"__k{i}"]) for i, k in enumerate(plan.keys)]
    kept = old.join(affected, keep, "left_anti")
    fresh = fresh.select(
        *[F.col(quote(f.name)).cast(f.dataType).alias(f.name) for f in old.schema.fields]
    )
    return kept.unionByName(fresh)


def _query_over(
    spark: SparkSession, t: GoldHandle, plan: RefreshPlan, rows: DataFrame, schema: T.StructType
) -> DataFrame:
    """The query (and features) over ``rows`` as the input, in the Gold table's columns.

    The temporary view outlives the ``with`` block until the result is written; the view
    name is the alias, so it is registered again here for the final plan."""
    rows.createOrReplaceTempView(str(plan.alias))
    frame = spark.sql(str(t.spec.query))
    if t.spec.features:
        frame = frame.withColumns({n: F.expr(sql) for n, sql in t.spec.features.items()})
    return frame.select(*[F.col(quote(f.name)) for f in schema.fields])


# ---------------------------------------------------------------- aggregate state


def _state_type(a_kind: str, output: T.DataType) -> T.DataType:
    return T.LongType() if a_kind == "avg" else output


def _state_of(
    spark: SparkSession, plan: RefreshPlan, rows: DataFrame, types: T.StructType
) -> DataFrame:
    """The aggregate state of ``rows``: keys, row count, per aggregate its parts."""
    values: list[Column] = []
    aggregates: list[Column] = [F.count(F.lit(1)).cast("bigint").alias(ROWS)]
    for i, a in enumerate(plan.aggregates):
        out = types[a.output].dataType
        if a.kind == "count_star":
            continue
        value = f"__v{i}"
        if a.kind == "count":
            values.append(F.expr(str(a.arg)).alias(value))
            aggregates.append(F.count(value).cast("bigint").alias(f"__a{i}_n"))
        elif a.kind in ("sum", "avg"):
            st = _state_type(a.kind, out)
            values.append(F.expr(str(a.arg)).cast(st).alias(value))
            aggregates.append(F.sum(value).cast(st).alias(f"__a{i}_s"))
            aggregates.append(F.count(value).cast("bigint").alias(f"__a{i}_n"))
        else:
            agg = F.min if a.kind == "min" else F.max
            values.append(F.expr(str(a.arg)).cast(out).alias(value))
            aggregates.append(agg(value).alias(f"__a{i}_m"))
    projected = _where(plan, rows).select(*_key_columns(plan, types), *values)
    return projected.groupBy(*[quote(k.output) for k in plan.keys]).agg(*aggregates)


def _state_updated(
    plan: RefreshPlan,
    types: T.StructType,
    old: DataFrame,
    removed: DataFrame,
    added: DataFrame,
) -> DataFrame:
    """``old`` state plus the added rows minus the removed ones; empty groups dropped."""

    def contributions(rows: DataFrame, sign: int) -> DataFrame:
        columns: list[Column] = [F.lit(sign).cast("bigint").alias(ROWS)]
        for i, a in enumerate(plan.aggregates):
            out = types[a.output].dataType
            if a.kind == "count_star":
                continue
            arg = F.expr(str(a.arg))
            if a.kind in ("count", "sum", "avg"):
                counted = F.when(arg.isNull(), 0).otherwise(sign).cast("bigint")
                if a.kind != "count":
                    value = arg.cast(_state_type(a.kind, out))
                    columns.append((value if sign > 0 else -value).alias(f"__a{i}_s"))
                columns.append(counted.alias(f"__a{i}_n"))
            else:
                columns.append(arg.cast(out).alias(f"__a{i}_m"))
        return _where(plan, rows).select(*_key_columns(plan, types), *columns)

    parts = old.unionByName(contributions(added, 1))
    if not plan.has_min_max:
        parts = parts.unionByName(contributions(removed, -1))
    merged: list[Column] = [F.sum(ROWS).cast("bigint").alias(ROWS)]
    for name in old.columns:
        if name.startswith("__a"):
            if name.endswith("_m"):
                kind = plan.aggregates[int(name[3:].split("_")[0])].kind
                agg = F.min if kind == "min" else F.max
                merged.append(agg(name).alias(name))
            else:
                merged.append(F.sum(name).cast(old.schema[name].dataType).alias(name))
    keys = [quote(k.output) for k in plan.keys]
    return parts.groupBy(*keys).agg(*merged).where(F.col(ROWS) > 0)


def _gold_of_state(plan: RefreshPlan, types: T.StructType, state: DataFrame) -> DataFrame:
    """The query's rows from the state, in the query's column order and types."""
    values: dict[str, Column] = {k.output: F.col(quote(k.output)) for k in plan.keys}
    for i, a in enumerate(plan.aggregates):
        n = F.col(f"__a{i}_n")
        if a.kind == "count_star":
            value = F.col(ROWS)
        elif a.kind == "count":
            value = n
        elif a.kind == "sum":
            value = F.when(n > 0, F.col(f"__a{i}_s"))
        elif a.kind == "avg":
            value = F.when(n > 0, F.col(f"__a{i}_s").cast("double") / n.cast("double"))
        else:
            value = F.col(f"__a{i}_m")
        values[a.output] = value
    return state.select(
        *[values[name].cast(types[name].dataType).alias(name) for name in plan.outputs]
    )


def _features(rows: DataFrame, t: GoldHandle) -> DataFrame:
    if not t.spec.features:
        return rows
    return rows.withColumns({n: F.expr(sql) for n, sql in t.spec.features.items()})


def _write_state(spark: SparkSession, location: str, state: DataFrame) -> int:
    """Overwrite the sidecar state table; its new version."""
    (
        state.repartition(1)
        .write.format("delta")
        .mode("overwrite")
        .option("overwriteSchema", "true")
        .save(location)
    )
    version = _delta_version(location)
    assert version is not None
    return version[0]
