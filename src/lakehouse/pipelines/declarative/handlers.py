"""The two ways a flow's reads are answered.

:class:`DiscoveryReads` records what the flow reads and hands back lazy DataFrames (the
graph is built without running a query). :class:`FlowReads` answers them for real while
the flow executes: a pipeline table or catalog table through the run's governed store
(access checked, lineage recorded); a stream read of a table as the rows added since the
Delta version this flow read last; a file source as the files it has not processed yet.
"""

from __future__ import annotations

import glob as globlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from lakehouse.config.project import TableRef
from lakehouse.core.errors import LakehouseError
from lakehouse.io.store import TableStore
from lakehouse.pipelines.bronze.files import LandedFile, list_landed_files
from lakehouse.pipelines.declarative.graph import PipelineGraph, Read
from lakehouse.pipelines.declarative.model import FilesSource
from lakehouse.pipelines.declarative.reads import original_sql, rewrite_tables, sql_tables
from lakehouse.pipelines.declarative.spec import PipelineDefinition
from lakehouse.pipelines.declarative.state import FlowState


class NotReadyError(LakehouseError):
    """The flow read a dataset of this update that has not been written yet."""

    def __init__(self, dataset: str) -> None:
        super().__init__(f"{dataset} is not computed yet")
        self.dataset = dataset


@dataclass
class Names:
    """How names in pipeline code resolve: a pipeline dataset, a catalog table, or as given."""

    pipeline: PipelineDefinition
    graph: PipelineGraph
    tables: Callable[[str], TableRef | None]  # a catalog table by full name (pipeline's too)

    def resolve(self, name: str, namespace: tuple[str, str] | None = None) -> str:
        """The full name a read means (a name the engine knows as given when it is neither
        a dataset nor a catalog table, e.g. ``delta.`/path```)."""
        if "`" in name and name.lower().startswith("delta."):
            return name
        full = self.pipeline.qualify(name, namespace)
        if full in self.graph.datasets or self.tables(full) is not None:
            return full
        return name

    def engine_name(self, full: str) -> str:
        """The name the session knows ``full`` by."""
        ds = self.graph.datasets.get(full)
        if ds is not None and ds.is_view:
            return ds.short_name
        ref = self.tables(full)
        return ref.engine_name if ref is not None else full


def _plain_reader(spark: SparkSession) -> Any:
    """The session's batch reader with its original ``table`` (reads may be routed)."""
    return spark.read


@dataclass
class DiscoveryReads:
    """Records a flow's reads; returns lazy DataFrames of the names as the engine knows them."""

    spark: SparkSession
    names: Names
    original_table: Callable[[Any, str], DataFrame]
    reads: list[Read] = field(default_factory=list)
    namespace: tuple[str, str] | None = None

    def _record(self, name: str, stream: bool) -> str:
        full = self.names.resolve(name, self.namespace)
        if Read(full, stream) not in self.reads:
            self.reads.append(Read(full, stream))
        return full

    def table(self, name: str, *, stream: bool) -> DataFrame:
        full = self._record(name, stream)
        return self.original_table(self.spark.read, self.names.engine_name(full))

    def files(self, source: FilesSource, schema: Any, incremental: bool = True) -> DataFrame:
        self.reads.append(Read(f"files:{source.path}", incremental))
        reader = self.spark.read.format(source.format).options(**_reader_options(source))
        if schema is not None:
            reader = reader.schema(schema)
        return reader.load(source.path)

    def sql(self, text: str) -> DataFrame:
        names = {}
        for name in sql_tables(text):
            full = self._record(name, False)
            names[name] = self.names.engine_name(full)
        return original_sql(self.spark, rewrite_tables(text, names))


def _reader_options(source: FilesSource) -> dict[str, str]:
    """The options a batch reader takes (Auto Loader's ``cloudFiles.*`` ones dropped)."""
    opts = {k: v for k, v in source.options.items() if not k.startswith("cloudFiles.")}
    if source.options.get("cloudFiles.inferColumnTypes", "").lower() == "true":
        opts.setdefault("inferSchema", "true")
    return opts


def _file_id(f: LandedFile) -> str:
    return f"{f.path}@{f.size}:{int(f.modified_at.timestamp() * 1_000_000)}"


def landed_files(path: str) -> list[LandedFile]:
    """The data files of a file source (a folder, searched recursively, or a glob). A local
    folder that does not exist is an error (as for Auto Loader), not an empty source: a
    ``/Volumes/...`` path kept from Databricks would otherwise read nothing, silently."""
    if not globlib.has_magic(path):
        base, pattern = path.rstrip("/"), "**/*"
    else:
        parts = path.split("/")
        cut = next(i for i, p in enumerate(parts) if globlib.has_magic(p))
        base, pattern = "/".join(parts[:cut]) or "/", "/".join(parts[cut:])
    local = base.removeprefix("file://") if base.startswith("file://") else base
    if "://" not in local and not Path(local).exists():
        raise LakehouseError(f"{path}: no such file or folder to read")
    return list_landed_files(base, pattern)


@dataclass
class FlowReads:
    """Answers one flow's reads while it executes; what it consumed goes to ``pending``."""

    spark: SparkSession
    names: Names
    store: TableStore
    original_table: Callable[[Any, str], DataFrame]
    state: FlowState
    not_ready: Callable[[str], bool]  # a dataset of this update not written yet
    pending: FlowState = field(default_factory=FlowState)
    streamed: bool = False
    reads: list[Read] = field(default_factory=list)
    namespace: tuple[str, str] | None = None
    _views: int = 0

    def _full(self, name: str, stream: bool) -> str:
        full = self.names.resolve(name, self.namespace)
        if self.not_ready(full):
            raise NotReadyError(full)
        if Read(full, stream) not in self.reads:
            self.reads.append(Read(full, stream))
        return full

    def table(self, name: str, *, stream: bool) -> DataFrame:
        full = self._full(name, stream)
        ds = self.names.graph.datasets.get(full)
        if ds is not None and ds.is_view:
            if stream and not self._streams(full):
                raise LakehouseError(
                    f"a stream read of {full}, a view without a streaming source (read it "
                    "with spark.read.table / dp.read)"
                )
            self.streamed = self.streamed or stream
            return self.original_table(self.spark.read, ds.short_name)
        ref = self.names.tables(full)
        if ref is None and full.lower().startswith("delta.`"):
            return self._delta_path(full[len("delta.`") :].rstrip("`"), stream)
        if ref is None:
            return self.original_table(self.spark.read, name)
        if not stream:
            return self.store.read(ref)
        self.streamed = True
        return self._new_rows(ref)

    def _delta_path(self, path: str, stream: bool) -> DataFrame:
        """A Delta table by path (``readStream.format("delta").load(path)``): new rows
        since this flow's last read, like a catalog table (not governed: no catalog name)."""
        from deltalake import DeltaTable

        def at(version: int) -> DataFrame:
            return self.spark.read.format("delta").option("versionAsOf", version).load(path)

        now = int(DeltaTable(path).version())
        if not stream:
            return at(now)
        self.streamed = True
        key = f"delta.`{path}`"
        then = self.state.tables.get(key)
        self.pending.tables[key] = now
        if then is None or then < 0:
            return at(now)
        return at(now).limit(0) if then == now else at(now).exceptAll(at(then))

    def _streams(self, view: str) -> bool:
        """Whether the view's flows read a stream (directly or through another view)."""
        graph = self.names.graph
        for flow in graph.flows_of(view):
            for r in flow.reads:
                inner = graph.datasets.get(r.name)
                if r.stream and (inner is None or not inner.is_view or self._streams(r.name)):
                    return True
        return False

    def _new_rows(self, ref: TableRef) -> DataFrame:
        """The rows added to ``ref`` since this flow last read it (all, the first time).

        rows(v_now) EXCEPT ALL rows(v_then): exact for the append-only tables streams read.
        """
        now = self.store.version(ref)
        then = self.state.tables.get(ref.full_name)
        self.pending.tables[ref.full_name] = now
        current = self.store.read(ref, version=now)
        if then is None or then < 0:
            return current
        if then == now:
            return current.limit(0)
        return current.exceptAll(self.store.read(ref, version=then))

    def files(self, source: FilesSource, schema: Any, incremental: bool = True) -> DataFrame:
        """The files of ``source`` this flow has not processed (Auto Loader's contract);
        all of them for a batch ``read_files`` (``incremental=False``)."""
        if Read(f"files:{source.path}", incremental) not in self.reads:
            self.reads.append(Read(f"files:{source.path}", incremental))
        landed = landed_files(source.path)
        reader = self.spark.read.format(source.format).options(**_reader_options(source))
        if schema is not None:
            reader = reader.schema(schema)
        if not incremental:
            new = landed
        else:
            self.streamed = True
            seen = set(self.state.files.get(source.path, []))
            new = [f for f in landed if _file_id(f) not in seen]
            self.pending.files[source.path] = sorted(seen | {_file_id(f) for f in new})
        if new:
            return reader.load([f.path for f in new])
        if schema is not None:
            return self.spark.createDataFrame([], schema)
        if not landed:
            raise LakehouseError(
                f"{source.path}: no files to read and no schema given (pass .schema(...))"
            )
        return reader.load([f.path for f in landed]).limit(0)

    def sql(self, text: str) -> DataFrame:
        """The query with every table it reads bound to a temporary view of its read here."""
        names = {}
        for name in sql_tables(text):
            full = self.names.resolve(name, self.namespace)
            if full in self.names.graph.datasets or self.names.tables(full) is not None:
                names[name] = self.bind(self.table(name, stream=False))
        return original_sql(self.spark, rewrite_tables(text, names))

    def bind(self, df: DataFrame, view: str | None = None) -> str:
        """``df`` as a session temporary view (a new name unless given); its name."""
        if view is None:
            self._views += 1
            view = f"_lakehouse_src_{id(self) % 100000}_{self._views}"
        df.createOrReplaceTempView(view)
        return view
