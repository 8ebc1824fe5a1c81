"""Run a declarative pipeline on any engine, client-side (no pipeline RPCs: the embedded
engine has none).

``run_pipeline`` loads the pipeline's source files into a graph (pyspark's
``GraphElementRegistry`` hook), learns each flow's reads by calling it with the reads
recorded, validates the graph (``dry_run`` stops there) and executes the flows in
dependency order through the run's governed store; expectation counts go to the DQ system
table, dropped rows to ``<dataset>_quarantine``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame

from lakehouse.config.project import Project, TableRef
from lakehouse.config.runtime_tables import save_runtime_tables
from lakehouse.config.system_tables import SystemTable, rows_frame
from lakehouse.core.errors import LakehouseError, one_line
from lakehouse.pipelines.declarative.api import pipeline_api
from lakehouse.pipelines.declarative.execute import (
    DatasetResult,
    Update,
    commit_views,
    reset_dataset,
    run_flow,
    session_conf,
    storage_of,
)
from lakehouse.pipelines.declarative.graph import (
    Flow,
    PipelineGraph,
    PipelineGraphError,
    Read,
    flow_order,
    needed_datasets,
    validate,
)
from lakehouse.pipelines.declarative.handlers import DiscoveryReads, Names, NotReadyError
from lakehouse.pipelines.declarative.loader import load_graph, on_sys_path
from lakehouse.pipelines.declarative.reads import (
    original_table,
    routed_reads,
    serving,
    sql_tables,
)
from lakehouse.pipelines.declarative.spec import PipelineDefinition, pipeline_definition
from lakehouse.pipelines.declarative.state import PipelineState
from lakehouse.runtime.run import RunContext


@dataclass
class PipelineUpdate:
    """The outcome of one pipeline update (or dry run)."""

    pipeline: str
    update_id: str
    datasets: dict[str, DatasetResult] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # graph validation
    error: str | None = None
    dry_run: bool = False
    seconds: float = 0.0

    @property
    def succeeded(self) -> bool:
        return not self.problems and self.error is None

    def raise_on_failure(self) -> PipelineUpdate:
        """This update, or :class:`PipelineUpdateError` (one line) when it failed."""
        if self.problems:
            raise PipelineUpdateError(f"pipeline {self.pipeline}: {self.problems[0]}")
        if self.error is not None:
            raise PipelineUpdateError(f"pipeline {self.pipeline}: {self.error}")
        return self


class PipelineUpdateError(LakehouseError):
    """A pipeline update failed or its graph is invalid."""


class _Router:
    """Where ``dp.read`` / ``dp.read_stream`` go: the handler of the flow running now."""

    handler: Any = None

    def read(self, name: str, stream: bool) -> DataFrame:
        if self.handler is None:
            raise PipelineGraphError(f"dp.read({name!r}) outside of a flow function")
        with serving():
            return self.handler.table(name, stream=stream)  # type: ignore[no-any-return]


def run_pipeline(
    run: RunContext,
    key: str,
    *,
    full_refresh: bool = False,
    refresh: Sequence[str] = (),
    dry_run: bool = False,
) -> PipelineUpdate:
    """Run (or with ``dry_run`` only validate) the bundle's pipeline ``key``."""
    pipeline = pipeline_definition(run.project, key)
    return run_definition(
        run, pipeline, full_refresh=full_refresh, refresh=refresh, dry_run=dry_run
    )


def run_definition(
    run: RunContext,
    pipeline: PipelineDefinition,
    *,
    full_refresh: bool = False,
    refresh: Sequence[str] = (),
    dry_run: bool = False,
) -> PipelineUpdate:
    """Run (or validate) one pipeline definition in ``run``; failures are in the result."""
    started = time.perf_counter()
    update = PipelineUpdate(pipeline.name, run.run_id, dry_run=dry_run)
    with run.open_task(f"pipeline:{pipeline.key}"), _pipeline_session(run, pipeline):
        try:
            _update(run, pipeline, update, full_refresh, refresh)
        except NotReadyError as exc:
            update.error = f"{exc.dataset}: read before it was computed (cycle?)"
        except Exception as exc:
            update.error = one_line(exc)
        finally:
            if not dry_run:  # later commands and sessions know the datasets as tables
                save_runtime_tables(run.project)
    update.seconds = time.perf_counter() - started
    return update


@contextlib.contextmanager
def _pipeline_session(run: RunContext, pipeline: PipelineDefinition) -> Iterator[None]:
    """The pipeline's configuration on the session, its ``root_path`` importable."""
    with session_conf(run.spark, pipeline.configuration), on_sys_path(pipeline.root_path):
        yield


def _update(
    run: RunContext,
    pipeline: PipelineDefinition,
    update: PipelineUpdate,
    full_refresh: bool,
    refresh: Sequence[str],
) -> None:
    project, store = run.project, run.store
    router = _Router()
    graph, registry = load_graph(pipeline, run.spark, router.read)
    names = Names(pipeline, graph, lambda full: _catalog_table(project, graph, full))
    _discover(
        run, graph, names, original_table, lambda: pipeline_api(registry, router.read), router
    )
    update.problems = validate(graph, lambda name: _exists(run, names, name))
    for name, ds in graph.datasets.items():
        update.datasets[name] = DatasetResult(name, ds.kind)
    if update.problems and not update.dry_run:
        update.error = update.problems[0]  # an update of an invalid graph fails (one line)
    if update.problems or update.dry_run:
        return
    selected = _selected(
        graph, [pipeline.qualify(n) for n in refresh], lambda n: _exists(run, names, n)
    )
    u = Update(
        run.spark,
        project,
        store,
        graph,
        names,
        PipelineState(storage_of(project, pipeline.storage, pipeline.key)),
        run.run_id,
        original_table,
        lambda: pipeline_api(registry, router.read),
        router,
        results=update.datasets,
    )
    if full_refresh:
        u.full_refresh = set(selected)
        for name in selected:
            reset_dataset(u, graph.datasets[name])
    try:
        _execute(u, [f for f in graph.flows.values() if f.target in selected])
    finally:
        _record_dq(run, u)
        for result in update.datasets.values():
            if result.status == "PENDING":  # not selected, or after a failure
                result.status = "SKIPPED"


def _catalog_table(project: Project, graph: PipelineGraph, full: str) -> TableRef | None:
    """The catalog table ``full`` names: a pipeline table (registered on first use) or a
    table of the project's catalog."""
    from lakehouse.pipelines.declarative.execute import dataset_ref

    ds = graph.datasets.get(full)
    if ds is not None:
        return None if ds.is_view else dataset_ref(project, full, ds)
    return project.tables.get(full)


def _exists(run: RunContext, names: Names, name: str) -> bool:
    """A read of something outside the pipeline: an existing table of the catalog or the
    session (or a file source)."""
    if name.startswith("files:") or name.lower().startswith("delta.`"):
        return True
    ref = names.tables(name)
    if ref is not None:
        return run.store.exists(ref)
    try:
        return bool(run.spark.catalog.tableExists(name))
    except Exception:
        return False


def _discover(
    run: RunContext,
    graph: PipelineGraph,
    names: Names,
    original_table: Any,
    api: Any,
    router: _Router,
) -> None:
    """Learn every flow's reads: Python flows called with the reads recorded (lazy
    DataFrames, no query runs), SQL flows parsed."""
    for flow in graph.flows.values():
        if flow.sql is not None:
            ns = flow.namespace
            placeholders = {s.placeholder.lower() for s in flow.sql.streams}
            flow.reads = [
                Read(names.resolve(n, ns))
                for n in sql_tables(flow.sql.text)
                if n.lower() not in placeholders
            ]
            flow.reads += [
                Read(names.resolve(s.table, ns), getattr(s, "incremental", True))
                for s in flow.sql.streams
                if s.table
            ]
            flow.discovered = True
        elif flow.func is not None:
            recorder = DiscoveryReads(run.spark, names, original_table)
            with routed_reads(run.spark, recorder), api():
                router.handler = recorder
                try:
                    flow.func()
                    flow.discovered = True
                except Exception:
                    flow.discovered = False
                finally:
                    router.handler = None
            flow.reads = recorder.reads


def _selected(graph: PipelineGraph, refresh: list[str], exists: Callable[[str], bool]) -> set[str]:
    """The datasets this update computes: all, or those refreshed and the views they read."""
    if not refresh:
        return set(graph.datasets)
    unknown = [n for n in refresh if n not in graph.datasets]
    if unknown:
        raise PipelineGraphError(
            f"--refresh {unknown[0]}: not a dataset of the pipeline "
            f"(datasets: {', '.join(sorted(graph.datasets))})"
        )
    return needed_datasets(graph, refresh, exists)


def _execute(u: Update, flows: list[Flow]) -> None:
    """Run ``flows`` in dependency order; a flow that reads a dataset not written yet waits
    for it (its read becomes an edge of the graph)."""
    u.pending_datasets = {f.target for f in flows}
    queue = flow_order(u.graph, flows)
    while queue:
        flow = queue[0]
        result = u.results[flow.target]
        try:
            run_flow(u, flow)
        except NotReadyError as exc:
            flow.reads.append(Read(exc.dataset))
            queue = flow_order(u.graph, queue)
            if queue[0] is flow:
                raise
            continue
        except Exception as exc:
            message = one_line(exc)
            if not message.startswith(f"{flow.target}:"):
                message = f"{flow.target}: {message}"
            result.status = "FAILED"
            result.error = f"{message} ({flow.location})"
            raise PipelineUpdateError(result.error) from exc
        queue.pop(0)
        commit_views(u, queue)
        if not any(f.target == flow.target for f in queue):
            u.pending_datasets.discard(flow.target)
            result.status = "COMPLETED"


def _record_dq(run: RunContext, u: Update) -> None:
    """The update's expectation counts into the DQ system table (one row per dataset and
    expectation: several flows into one dataset add up)."""
    if not u.dq:
        return
    merged: dict[tuple[str, str], Any] = {}
    for row in u.dq:
        key = (row.table, row.rule)
        if key in merged:
            old = merged[key]
            evaluated, failed = old.evaluated + row.evaluated, old.failed + row.failed
            rate = 1.0 if evaluated == 0 else 1.0 - failed / evaluated
            outcome = old.outcome if old.outcome != "passed" else row.outcome
            merged[key] = type(row)(
                row.run_id,
                row.table,
                row.rule,
                row.expectation,
                row.action,
                evaluated,
                failed,
                rate,
                outcome,
                row.evaluated_at,
            )
        else:
            merged[key] = row
    table = run.project.system_table(SystemTable.DQ_RESULTS)
    frame = rows_frame(run.spark, SystemTable.DQ_RESULTS, list(merged.values()))
    run.store.merge(table, frame, ["run_id", "table", "rule"])
