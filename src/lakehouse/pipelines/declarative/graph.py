"""The dataflow graph of a declarative pipeline: datasets, the flows that write them, the
reads each flow makes, and the checks ``dry-run`` makes (like ``spark-pipelines dry-run``).

Names in the graph are full ``catalog.schema.name`` strings (lower case); a temporary view
is named the same way and known to the session by its last part.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from lakehouse.core.errors import LakehouseError
from lakehouse.pipelines.declarative.model import (
    AutoCdc,
    DatasetKind,
    Expectation,
    SourceLocation,
    SqlQuery,
)


class PipelineGraphError(LakehouseError):
    """The graph is invalid: one line naming the dataset and the source file."""


@dataclass
class Dataset:
    """A materialized view, streaming table or temporary view of the pipeline."""

    name: str
    kind: DatasetKind
    location: SourceLocation
    expectations: list[Expectation] = field(default_factory=list)
    comment: str | None = None
    partition_cols: tuple[str, ...] = ()
    table_properties: dict[str, str] = field(default_factory=dict)
    schema: Any = None  # DDL string or StructType, when declared

    @property
    def short_name(self) -> str:
        return self.name.rsplit(".", 1)[-1]

    @property
    def is_view(self) -> bool:
        return self.kind == "temporary_view"


@dataclass(frozen=True)
class Read:
    """One read a flow makes: a dataset or table by full name, as a stream or as a batch."""

    name: str
    stream: bool = False


@dataclass
class Flow:
    """A flow: a Python function, a SQL query or an AUTO CDC spec, writing ``target``."""

    name: str
    target: str
    location: SourceLocation
    func: Callable[[], Any] | None = None
    sql: SqlQuery | None = None
    auto_cdc: AutoCdc | None = None
    once: bool = False
    spark_conf: dict[str, str] = field(default_factory=dict)
    reads: list[Read] = field(default_factory=list)
    discovered: bool = False  # all its reads are known (the function ran to its end)
    namespace: tuple[str, str] | None = None  # (catalog, schema) of a SQL file's USE

    def read_names(self) -> set[str]:
        return {r.name for r in self.reads}


@dataclass
class PipelineGraph:
    """What loading the pipeline's source files registered."""

    datasets: dict[str, Dataset] = field(default_factory=dict)
    flows: dict[str, Flow] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # found while registering

    def add_dataset(self, ds: Dataset) -> None:
        known = self.datasets.get(ds.name)
        if known is not None:
            self.problems.append(
                f"dataset {ds.name} is defined twice ({ds.location} and {known.location})"
            )
            return
        self.datasets[ds.name] = ds

    def add_flow(self, flow: Flow) -> None:
        known = self.flows.get(flow.name)
        if known is not None and flow.name == flow.target == known.target:
            return  # the default flow of a dataset defined twice: reported once, above
        if known is not None:
            self.problems.append(
                f"flow {flow.name} is defined twice ({flow.location} and {known.location})"
            )
            return
        self.flows[flow.name] = flow

    def flows_of(self, dataset: str) -> list[Flow]:
        return [f for f in self.flows.values() if f.target == dataset]

    def upstream(self, flow: Flow) -> set[str]:
        """The pipeline datasets ``flow`` reads."""
        names = flow.read_names()
        return {n for n in names if n in self.datasets and n != flow.target}


def validate(graph: PipelineGraph, table_exists: Callable[[str], bool]) -> list[str]:
    """Every problem of the graph, one line each, naming the dataset and ``file:line``."""
    problems = list(graph.problems)
    for flow in graph.flows.values():
        if flow.target not in graph.datasets:
            problems.append(
                f"flow {flow.name} writes {flow.target}, which the pipeline does not define "
                f"({flow.location})"
            )
        sources = {r.name for r in flow.reads}
        for name in sorted(sources):
            if name not in graph.datasets and not table_exists(name):
                problems.append(
                    f"{flow.target} reads {name}, which is neither a dataset of the pipeline "
                    f"nor an existing table ({flow.location})"
                )
    for ds in graph.datasets.values():
        if not graph.flows_of(ds.name) and ds.kind != "streaming_table":
            problems.append(f"dataset {ds.name} has no query ({ds.location})")
    cycle = find_cycle(graph)
    if cycle:
        first = graph.flows_of(cycle[0])
        where = first[0].location if first else graph.datasets[cycle[0]].location
        problems.append(f"cycle: {' -> '.join(cycle)} ({where})")
    return problems


def _dataset_edges(graph: PipelineGraph) -> dict[str, set[str]]:
    """Dataset -> the datasets its flows read."""
    edges: dict[str, set[str]] = {name: set() for name in graph.datasets}
    for flow in graph.flows.values():
        if flow.target in edges:
            edges[flow.target] |= graph.upstream(flow)
    return edges


def find_cycle(graph: PipelineGraph) -> list[str]:
    """A cycle of datasets (first repeated at the end), or ``[]``."""
    edges = _dataset_edges(graph)
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return []

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


def flow_order(graph: PipelineGraph, flows: Iterable[Flow]) -> list[Flow]:
    """``flows`` in dependency order (a flow after the flows writing what it reads; flows
    into one dataset in definition order)."""
    chosen = list(flows)
    writers: dict[str, list[Flow]] = {}
    for f in chosen:
        writers.setdefault(f.target, []).append(f)
    done: set[str] = set()
    ordered: list[Flow] = []
    pending = chosen[:]
    while pending:
        for f in pending:
            needs = [w for d in graph.upstream(f) for w in writers.get(d, []) if w is not f]
            if all(w.name in done for w in needs):
                break
        else:
            raise PipelineGraphError(f"cycle among {', '.join(x.target for x in pending)}")
        pending.remove(f)
        done.add(f.name)
        ordered.append(f)
    return ordered


def needed_datasets(
    graph: PipelineGraph, wanted: Iterable[str], exists: Callable[[str], bool]
) -> set[str]:
    """``wanted`` and what they need, transitively (what ``--refresh`` runs): the temporary
    views they read (evaluated again to feed them) and the tables they read that do not
    exist yet; existing upstream tables are read as they are."""
    result = set(wanted)
    stack = list(result)
    while stack:
        name = stack.pop()
        for flow in graph.flows_of(name):
            for up in graph.upstream(flow):
                if up not in result and (graph.datasets[up].is_view or not exists(up)):
                    result.add(up)
                    stack.append(up)
    return result
