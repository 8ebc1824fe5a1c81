"""pyspark's ``GraphElementRegistry`` hook implemented client-side: datasets and flows the
pipeline's Python code (``pyspark.pipelines``) and SQL definitions register become a
:class:`PipelineGraph` (no pipeline RPCs: the embedded engine has none)."""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pyspark.pipelines.flow import AutoCdcFlow
from pyspark.pipelines.flow import Flow as PysparkFlow
from pyspark.pipelines.graph_element_registry import (
    GraphElementRegistry,
)
from pyspark.pipelines.output import MaterializedView, Output, StreamingTable, Table, TemporaryView

from lakehouse.core.errors import LakehouseError
from lakehouse.pipelines.declarative.graph import Dataset, Flow, PipelineGraph, Read
from lakehouse.pipelines.declarative.model import (
    AutoCdc,
    SourceLocation,
    SqlDataset,
    SqlFlow,
    SqlSet,
)
from lakehouse.pipelines.declarative.spec import PipelineDefinition

EXPECTATIONS_ATTR = "__lakehouse_expectations__"


class PipelineLoadError(LakehouseError):
    """A pipeline source file failed to load (one line naming the file)."""


def source_location(loc: Any) -> SourceLocation:
    return SourceLocation(str(loc.filename), loc.line_number)


class LocalRegistry(GraphElementRegistry):
    """pyspark's registry hook, building the graph client-side (no pipeline RPCs)."""

    def __init__(self, pipeline: PipelineDefinition, graph: PipelineGraph) -> None:
        self.pipeline = pipeline
        self.graph = graph
        self.last_dataset: Dataset | None = None
        self.sql_conf: dict[str, str] = dict(pipeline.configuration)
        self._where: SourceLocation | None = None
        self._namespace: tuple[str, str] | None = None  # a SQL file's USE

    @contextlib.contextmanager
    def located(self, where: SourceLocation) -> Iterator[None]:
        """Definitions registered in the block are located at ``where`` (a wrapper of
        pyspark's decorators would otherwise be taken for the user's code)."""
        self._where = where
        try:
            yield
        finally:
            self._where = None

    def _at(self, loc: Any) -> SourceLocation:
        return self._where or source_location(loc)

    # ---------------------------------------------------------------- pyspark's hook

    def register_output(self, output: Output) -> None:
        kind = (
            "materialized_view"
            if isinstance(output, MaterializedView)
            else "streaming_table"
            if isinstance(output, StreamingTable)
            else "temporary_view"
            if isinstance(output, TemporaryView)
            else None
        )
        if kind is None:
            raise PipelineLoadError(
                f"{output.name}: sinks are not supported ({source_location(output.source_code_location)})"
            )
        ds = Dataset(
            name=self.pipeline.qualify(output.name),
            kind=kind,  # type: ignore[arg-type]
            location=self._at(output.source_code_location),
            comment=output.comment,
        )
        if isinstance(output, Table):
            ds.partition_cols = tuple(output.partition_cols or ())
            ds.table_properties = dict(output.table_properties)
            ds.schema = output.schema
        self.graph.add_dataset(ds)
        self.last_dataset = ds

    def register_flow(self, flow: PysparkFlow) -> None:
        target = self.pipeline.qualify(flow.target)
        pending = getattr(flow.func, EXPECTATIONS_ATTR, [])
        if pending and target in self.graph.datasets:
            self.graph.datasets[target].expectations.extend(pending)
        self.graph.add_flow(
            Flow(
                name=self.pipeline.qualify(flow.name),
                target=target,
                location=self._at(flow.source_code_location),
                func=flow.func,
                once=bool(getattr(flow.func, "__lakehouse_once__", False)),
                spark_conf=dict(flow.spark_conf),
            )
        )

    def register_auto_cdc_flow(self, flow: AutoCdcFlow) -> None:
        spec = AutoCdc(
            target=flow.target,
            source=flow.source,
            keys=tuple(column_sql(k) for k in flow.keys),
            sequence_by=column_sql(flow.sequence_by),
            stored_as_scd_type=1,
            apply_as_deletes=column_sql(flow.apply_as_deletes)
            if flow.apply_as_deletes is not None
            else None,
            column_list=tuple(column_sql(c) for c in flow.column_list)
            if flow.column_list
            else None,
            except_column_list=tuple(column_sql(c) for c in flow.except_column_list)
            if flow.except_column_list
            else None,
            name=flow.name,
        )
        self.add_auto_cdc(spec, source_location(flow.source_code_location))

    def add_auto_cdc(self, spec: AutoCdc, location: SourceLocation, *, once: bool = False) -> None:
        self.graph.add_flow(
            Flow(
                name=self._q(spec.flow_name),
                target=self._q(spec.target),
                location=location,
                auto_cdc=spec,
                once=once,
                reads=[Read(self._q(spec.source), stream=True)],
                discovered=True,
                namespace=self._namespace,
            )
        )

    def register_sql(self, sql_text: str, file_path: Path) -> None:
        try:
            parse_pipeline_sql = importlib.import_module(
                "lakehouse.pipelines.declarative.sql"
            ).parse_pipeline_sql
        except ImportError:
            raise PipelineLoadError(
                f"{file_path}: SQL pipeline files need lakehouse.pipelines.declarative.sql"
            ) from None
        self.add_sql(parse_pipeline_sql(sql_text, str(file_path), self.sql_conf))

    # ---------------------------------------------------------------- SQL definitions

    def add_sql(self, definitions: list[Any]) -> None:
        """Register one file's parsed SQL definitions (``SET`` and ``USE`` apply to the
        definitions after them in the file)."""
        conf: dict[str, str] = {}
        self._namespace = None
        for d in definitions:
            if isinstance(d, SqlSet):
                conf[d.key] = d.value
            elif type(d).__name__ == "SqlUse":
                self._use(getattr(d, "catalog", None), getattr(d, "schema", None))
            elif isinstance(d, SqlDataset):
                self._add_sql_dataset(d, conf)
            elif isinstance(d, SqlFlow):
                self._add_sql_flow(d, conf)
        self._namespace = None

    def _use(self, catalog: str | None, schema: str | None) -> None:
        """``USE CATALOG c`` (schema ``default``), ``USE SCHEMA s``, ``USE c.s``."""
        current = self._namespace or (self.pipeline.catalog, self.pipeline.schema)
        if catalog is not None:
            self._namespace = (catalog.lower(), (schema or "default").lower())
        elif schema is not None:
            self._namespace = (current[0], schema.lower())

    def _q(self, name: str) -> str:
        return self.pipeline.qualify(name, self._namespace)

    def _add_sql_dataset(self, d: SqlDataset, conf: dict[str, str]) -> None:
        ds = Dataset(
            name=self._q(d.name),
            kind=d.kind,
            location=d.location,
            expectations=list(d.expectations),
            comment=d.comment,
            partition_cols=d.partition_cols,
            table_properties=dict(d.table_properties),
            schema=d.schema,
        )
        self.graph.add_dataset(ds)
        if d.query is not None:
            self.graph.add_flow(
                Flow(
                    name=ds.name,
                    target=ds.name,
                    location=d.location,
                    sql=d.query,
                    spark_conf=dict(conf),
                    namespace=self._namespace,
                )
            )

    def _add_sql_flow(self, d: SqlFlow, conf: dict[str, str]) -> None:
        if d.auto_cdc is not None:
            self.add_auto_cdc(d.auto_cdc, d.location, once=d.once)
            return
        self.graph.add_flow(
            Flow(
                name=self._q(d.name),
                target=self._q(d.target),
                location=d.location,
                sql=d.query,
                once=d.once,
                spark_conf=dict(conf),
                namespace=self._namespace,
            )
        )


def column_sql(column: Any) -> str:
    """A column given as a string or a ``Column`` (Connect or classic) as SQL text."""
    if isinstance(column, str):
        return column
    # a classic Column answers any attribute with a field access (col._expr is a Column):
    # look at the instance's own attributes only
    jc = vars(column).get("_jc") if hasattr(column, "__dict__") else None
    if jc is not None:  # classic (JVM): the Catalyst expression's SQL, literals quoted
        return str(jc.node().sql())
    expr = vars(column).get("_expr") if hasattr(column, "__dict__") else None
    if expr is not None:  # Spark Connect
        ident = getattr(expr, "_unparsed_identifier", None)
        if isinstance(ident, str):
            return ident
        text = getattr(expr, "_expr", None)
        if isinstance(text, str):
            return text
        return str(expr)
    return str(column)
