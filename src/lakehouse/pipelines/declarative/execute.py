"""Executing one flow of a pipeline update: call its function (or run its SQL) with the
reads routed, check the dataset's expectations, write through the run's governed store.

A flow into a table that read no stream and is the table's only flow recomputes it
(materialized view semantics: overwrite); a flow that read a stream, a ``once`` flow and
each of several flows into one table append. A temporary view becomes a session view.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.config.catalog import TableSpec
from lakehouse.config.project import Project, TableRef
from lakehouse.config.system_tables import DqResultRow
from lakehouse.core.errors import LakehouseError
from lakehouse.io.store import TableStore
from lakehouse.pipelines.declarative.cdc import apply_auto_cdc, reset_auto_cdc
from lakehouse.pipelines.declarative.expectations import (
    RUN_COLUMN,
    CheckedRows,
    ExpectationFailedError,
    check_expectations,
    dq_rows,
)
from lakehouse.pipelines.declarative.graph import Dataset, Flow, PipelineGraph
from lakehouse.pipelines.declarative.handlers import FlowReads, Names
from lakehouse.pipelines.declarative.reads import routed_reads
from lakehouse.pipelines.declarative.state import FlowState, PipelineState

_LAYERS = ("bronze", "silver", "gold")


@dataclass
class DatasetResult:
    """What one update did to one dataset."""

    name: str
    kind: str
    status: str = "PENDING"  # COMPLETED | FAILED | SKIPPED | PENDING
    rows_written: int = 0
    dropped: int = 0
    expectations_passed: int = 0
    expectations_failed: int = 0
    flows: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class Update:
    """What the flows of one update share."""

    spark: SparkSession
    project: Project
    store: TableStore
    graph: PipelineGraph
    names: Names
    state: PipelineState
    run_id: str
    original_table: Callable[[Any, str], DataFrame]
    api: Callable[[], contextlib.AbstractContextManager[None]]  # pyspark.pipelines patched
    router: Any  # .handler: where dp.read / dp.read_stream go
    pending_datasets: set[str] = field(default_factory=set)
    results: dict[str, DatasetResult] = field(default_factory=dict)
    dq: list[DqResultRow] = field(default_factory=list)
    full_refresh: set[str] = field(default_factory=set)
    deferred: dict[str, tuple[str, FlowState]] = field(default_factory=dict)  # view flows


# ------------------------------------------------------------------ catalog registration


def dataset_ref(project: Project, name: str, dataset: Dataset | None = None) -> TableRef:
    """The catalog table of a pipeline dataset: declared in ``conf/``, or added now (at
    ``<storage_root>/<schema>/<table>``, like an undeclared-columns catalog table, with the
    dataset's comment and partition columns)."""
    known = project.tables.get(name)
    if known is not None:
        return known
    schema = name.split(".")[1]
    spec = TableSpec(
        layer=schema if schema in _LAYERS else "silver",
        description=(dataset.comment or "") if dataset else "",
        partition_by=list(dataset.partition_cols) if dataset else [],
    )
    return project.add_table(name, spec)  # the catalog grows at run time


# ------------------------------------------------------------------ one flow


@contextlib.contextmanager
def session_conf(spark: SparkSession, conf: Mapping[str, str]) -> Iterator[None]:
    """``conf`` set on the session for the block, the previous values restored after."""
    before: dict[str, str | None] = {}
    for key, value in conf.items():
        before[key] = spark.conf.get(key, None)
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, old in before.items():
            if old is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, old)


def flow_frame(u: Update, flow: Flow, reads: FlowReads) -> DataFrame:
    """The flow's rows: its function called (or its SQL run) with the reads routed."""
    with session_conf(u.spark, flow.spark_conf), routed_reads(u.spark, reads), u.api():
        u.router.handler = reads
        try:
            if flow.auto_cdc is not None:
                return reads.table(flow.auto_cdc.source, stream=True)
            if flow.sql is not None:
                for s in flow.sql.streams:
                    incremental = getattr(s, "incremental", True)  # False: a batch read_files
                    if s.files is not None:
                        reads.bind(reads.files(s.files, None, incremental), s.placeholder)
                    elif s.table is not None:
                        reads.bind(reads.table(s.table, stream=incremental), s.placeholder)
                return reads.sql(flow.sql.text)
            assert flow.func is not None
            df = flow.func()
        finally:
            u.router.handler = None
    if not isinstance(df, DataFrame):
        raise LakehouseError(
            f"{flow.name}: the function returned {type(df).__name__}, not a DataFrame ({flow.location})"
        )
    return df


def run_flow(u: Update, flow: Flow) -> None:
    """Execute ``flow`` and record what it did in its dataset's result."""
    ds = u.graph.datasets[flow.target]
    result = u.results[ds.name]
    result.flows.append(flow.name)
    prior = FlowState() if ds.name in u.full_refresh else u.state.load(flow.name)
    if flow.once and prior.once_done:
        return
    reads = FlowReads(
        u.spark,
        u.names,
        u.store,
        u.original_table,
        prior,
        lambda d: d in u.pending_datasets,
        namespace=flow.namespace,
    )
    reads.pending = FlowState(dict(prior.tables), dict(prior.files), prior.once_done)
    df = flow_frame(u, flow, reads)
    flow.reads = reads.reads
    if flow.auto_cdc is not None:
        result.rows_written += _apply_cdc(u, ds, flow, df)
    else:
        try:
            checked = check_expectations(df, ds.expectations, dataset=ds.name)
        except ExpectationFailedError as exc:
            _count(u, ds, result, CheckedRows(df, None, exc.results))
            raise
        _count(u, ds, result, checked)
        _write(u, ds, flow, reads, checked, result)
    reads.pending.once_done = flow.once
    if ds.is_view:  # committed once the flows reading the view in this update have written
        u.deferred[flow.name] = (ds.name, reads.pending)
    else:
        u.state.save(flow.name, reads.pending)


def commit_views(u: Update, queued: list[Flow]) -> None:
    """Commit what the views consumed once no queued flow reads them any more (a failed
    reader leaves them uncommitted: the next update reads those rows again)."""
    for name, (view, state) in list(u.deferred.items()):
        if not any(view in u.graph.upstream(f) for f in queued):
            u.state.save(name, state)
            del u.deferred[name]


def _count(u: Update, ds: Dataset, result: DatasetResult, checked: CheckedRows) -> None:
    result.expectations_passed += sum(1 for r in checked.results if r.failed == 0)
    result.expectations_failed += sum(1 for r in checked.results if r.failed)
    u.dq.extend(dq_rows(u.run_id, ds.name, ds.expectations, checked.results))


def _write(
    u: Update,
    ds: Dataset,
    flow: Flow,
    reads: FlowReads,
    checked: CheckedRows,
    result: DatasetResult,
) -> None:
    complete = len(u.graph.flows_of(ds.name)) == 1 and not reads.streamed and not flow.once
    if ds.is_view:
        checked.kept.createOrReplaceTempView(ds.short_name)
    else:
        ref = dataset_ref(u.project, ds.name, ds)
        kept = checked.kept
        if complete and u.store.exists(ref):
            current = u.store.schema(ref)
            if [f.name for f in current] != kept.columns:
                u.store.drop_data(ref)  # a recomputed view takes its query's columns
        u.store.evolve(ref, kept.schema, step=f"pipeline flow {flow.name}", replace=complete)
        written = u.store.overwrite(ref, kept) if complete else u.store.append(ref, kept)
        result.rows_written += written.rows_written
    if checked.quarantined is not None and checked.failed("drop"):
        result.dropped += checked.quarantined.count()
        q_ref = dataset_ref(u.project, f"{ds.name}_quarantine")
        rows = checked.quarantined.withColumn(RUN_COLUMN, F.lit(u.run_id))
        # a recomputed dataset's quarantine holds this refresh's dropped rows, as the dataset
        # holds its kept ones; an incremental one accumulates, batch by batch
        u.store.evolve(q_ref, rows.schema, step="pipeline quarantine", replace=complete)
        if complete:
            u.store.overwrite(q_ref, rows)
        else:
            u.store.append(q_ref, rows, add_new_columns=True)


def _apply_cdc(u: Update, ds: Dataset, flow: Flow, changes: DataFrame) -> int:
    assert flow.auto_cdc is not None
    result = apply_auto_cdc(u.store, dataset_ref(u.project, ds.name, ds), changes, flow.auto_cdc)
    if flow.auto_cdc.stored_as_scd_type == 2:
        return result.history_rows
    return result.upserted + result.deleted


def reset_dataset(u: Update, ds: Dataset) -> None:
    """Forget what the dataset's flows consumed and delete its data (``--full-refresh``)."""
    for flow in u.graph.flows_of(ds.name):
        u.state.reset(flow.name)
    if ds.is_view:
        return
    if any(f.auto_cdc for f in u.graph.flows_of(ds.name)):
        reset_auto_cdc(u.store, dataset_ref(u.project, ds.name, ds))
    ref = dataset_ref(u.project, ds.name, ds)
    if u.store.exists(ref):
        u.store.drop_data(ref)
    quarantine = f"{ds.name}_quarantine"
    if quarantine in u.project.tables or _is_delta(f"{ref.location}_quarantine"):
        q_ref = dataset_ref(u.project, quarantine)
        if u.store.exists(q_ref):
            u.store.drop_data(q_ref)


def _is_delta(location: str) -> bool:
    from deltalake import DeltaTable

    try:
        return bool(DeltaTable.is_deltatable(location))
    except Exception:
        return False


def storage_of(project: Project, storage: Path | None, key: str) -> Path:
    """Where the pipeline's checkpoints live (default: ``<data_root>/pipelines/<key>``)."""
    return storage if storage is not None else project.data_root / "pipelines" / key
