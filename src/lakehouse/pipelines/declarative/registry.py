"""Loading a pipeline's source files into a :class:`PipelineGraph` through pyspark's own
``GraphElementRegistry`` hook, with the Databricks API Apache Spark lacks.

While the files load (and while a flow function runs) ``pyspark.pipelines`` also has
``expect``, ``expect_or_drop``, ``expect_or_fail``, ``expect_all*``, ``create_streaming_table``
with ``expect_all*``, ``append_flow(once=…)``, ``create_auto_cdc_flow`` with Databricks'
signature (SCD 1 and 2), ``read`` / ``read_stream``, and ``import dlt`` works; the module's
attributes are restored afterwards.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import sys
import types
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pyspark.pipelines as dp_module
from pyspark.pipelines.flow import AutoCdcFlow
from pyspark.pipelines.flow import Flow as PysparkFlow
from pyspark.pipelines.graph_element_registry import (
    GraphElementRegistry,
    graph_element_registration_context,
)
from pyspark.pipelines.output import MaterializedView, Output, StreamingTable, Table, TemporaryView
from pyspark.pipelines.source_code_location import get_caller_source_code_location
from pyspark.sql import DataFrame, SparkSession

from lakehouse.core.errors import LakehouseError
from lakehouse.pipelines.declarative.graph import Dataset, Flow, PipelineGraph
from lakehouse.pipelines.declarative.model import (
    AutoCdc,
    Expectation,
    ExpectationAction,
    SourceLocation,
    SqlDataset,
    SqlFlow,
    SqlSet,
)
from lakehouse.pipelines.declarative.spec import PipelineDefinition

_EXPECTATIONS = "__lakehouse_expectations__"


class PipelineLoadError(LakehouseError):
    """A pipeline source file failed to load (one line naming the file)."""


def _location(loc: Any) -> SourceLocation:
    return SourceLocation(str(loc.filename), loc.line_number)


class LocalRegistry(GraphElementRegistry):
    """pyspark's registry hook, building the graph client-side (no pipeline RPCs)."""

    def __init__(self, pipeline: PipelineDefinition, graph: PipelineGraph) -> None:
        self.pipeline = pipeline
        self.graph = graph
        self.last_dataset: Dataset | None = None
        self.sql_conf: dict[str, str] = dict(pipeline.configuration)

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
                f"{output.name}: sinks are not supported ({_location(output.source_code_location)})"
            )
        ds = Dataset(
            name=self.pipeline.qualify(output.name),
            kind=kind,  # type: ignore[arg-type]
            location=_location(output.source_code_location),
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
        pending = getattr(flow.func, _EXPECTATIONS, [])
        if pending and target in self.graph.datasets:
            self.graph.datasets[target].expectations.extend(pending)
        self.graph.add_flow(
            Flow(
                name=self.pipeline.qualify(flow.name),
                target=target,
                location=_location(flow.source_code_location),
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
        self.add_auto_cdc(spec, _location(flow.source_code_location))

    def add_auto_cdc(self, spec: AutoCdc, location: SourceLocation, *, once: bool = False) -> None:
        self.graph.add_flow(
            Flow(
                name=self.pipeline.qualify(spec.flow_name),
                target=self.pipeline.qualify(spec.target),
                location=location,
                auto_cdc=spec,
                once=once,
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
        """Register parsed SQL definitions (``SET`` applies to the ones after it)."""
        conf: dict[str, str] = {}
        for d in definitions:
            if isinstance(d, SqlSet):
                conf[d.key] = d.value
            elif isinstance(d, SqlDataset):
                self._add_sql_dataset(d, conf)
            elif isinstance(d, SqlFlow):
                self._add_sql_flow(d, conf)

    def _add_sql_dataset(self, d: SqlDataset, conf: dict[str, str]) -> None:
        ds = Dataset(
            name=self.pipeline.qualify(d.name),
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
                )
            )

    def _add_sql_flow(self, d: SqlFlow, conf: dict[str, str]) -> None:
        if d.auto_cdc is not None:
            self.add_auto_cdc(d.auto_cdc, d.location, once=d.once)
            return
        self.graph.add_flow(
            Flow(
                name=self.pipeline.qualify(d.name),
                target=self.pipeline.qualify(d.target),
                location=d.location,
                sql=d.query,
                once=d.once,
                spark_conf=dict(conf),
            )
        )


def column_sql(column: Any) -> str:
    """A column given as a string or a ``Column`` (Connect or classic) as SQL text."""
    if isinstance(column, str):
        return column
    expr = getattr(column, "_expr", None)
    if expr is not None:  # Spark Connect
        ident = getattr(expr, "_unparsed_identifier", None)
        if isinstance(ident, str):
            return ident
        text = getattr(expr, "_expr", None)
        if isinstance(text, str):
            return text
        return str(expr)
    jc = getattr(column, "_jc", None)
    return str(jc.toString()) if jc is not None else str(column)


# -------------------------------------------------------------------- the Databricks API


def _expectation_decorator(
    registry: LocalRegistry, expectations: list[Expectation]
) -> Callable[[Any], Any]:
    """A decorator adding ``expectations`` to the dataset it is stacked with: under
    ``@dp.table`` it marks the function; over it (the table decorator returned None) it
    applies to the dataset registered last."""

    def decorate(target: Any) -> Any:
        if callable(target):
            setattr(target, _EXPECTATIONS, [*expectations, *getattr(target, _EXPECTATIONS, [])])
        elif registry.last_dataset is not None:
            registry.last_dataset.expectations.extend(expectations)
        return target

    return decorate


def _expect_all(
    action: ExpectationAction, registry: LocalRegistry
) -> Callable[[Mapping[str, str]], Any]:
    def expect_all(expectations: Mapping[str, str]) -> Callable[[Any], Any]:
        return _expectation_decorator(
            registry, [Expectation(str(n), str(c), action) for n, c in expectations.items()]
        )

    return expect_all


def _expect_one(action: ExpectationAction, registry: LocalRegistry) -> Callable[[str, str], Any]:
    def expect(name: str, condition: str) -> Callable[[Any], Any]:
        return _expectation_decorator(registry, [Expectation(str(name), str(condition), action)])

    return expect


def _as_expectations(
    warn: Mapping[str, str] | None, drop: Mapping[str, str] | None, fail: Mapping[str, str] | None
) -> list[Expectation]:
    out: list[Expectation] = []
    for action, given in (("warn", warn), ("drop", drop), ("fail", fail)):
        for n, c in (given or {}).items():
            out.append(Expectation(str(n), str(c), action))  # type: ignore[arg-type]
    return out


def databricks_api(
    registry: LocalRegistry, reader: Callable[[str, bool], DataFrame]
) -> dict[str, Any]:
    """The functions ``pyspark.pipelines`` (and ``dlt``) gain while a pipeline loads/runs."""

    def create_streaming_table(
        name: str,
        comment: str | None = None,
        spark_conf: dict[str, str] | None = None,
        table_properties: dict[str, str] | None = None,
        partition_cols: list[str] | None = None,
        cluster_by: list[str] | None = None,
        path: str | None = None,
        schema: Any = None,
        expect_all: Mapping[str, str] | None = None,
        expect_all_or_drop: Mapping[str, str] | None = None,
        expect_all_or_fail: Mapping[str, str] | None = None,
        row_filter: str | None = None,
        format: str | None = None,
    ) -> None:
        loc = get_caller_source_code_location(stacklevel=1)
        registry.register_output(
            StreamingTable(
                name=name,
                comment=comment,
                source_code_location=loc,
                table_properties=table_properties or {},
                partition_cols=partition_cols,
                cluster_by=cluster_by,
                schema=schema,
                format=format,
            )
        )
        ds = registry.last_dataset
        if ds is not None:
            ds.expectations.extend(
                _as_expectations(expect_all, expect_all_or_drop, expect_all_or_fail)
            )

    def append_flow(
        *,
        target: str,
        name: str | None = None,
        spark_conf: dict[str, str] | None = None,
        comment: str | None = None,
        once: bool = False,
    ) -> Callable[[Callable[[], DataFrame]], None]:
        loc = get_caller_source_code_location(stacklevel=1)

        def outer(func: Callable[[], DataFrame]) -> None:
            func.__lakehouse_once__ = once  # type: ignore[attr-defined]
            registry.register_flow(
                PysparkFlow(
                    name=name or func.__name__,
                    target=target,
                    spark_conf=spark_conf or {},
                    source_code_location=loc,
                    func=func,
                )
            )

        return outer

    def create_auto_cdc_flow(
        target: str,
        source: str,
        keys: list[Any],
        sequence_by: Any,
        ignore_null_updates: bool = False,
        apply_as_deletes: Any = None,
        apply_as_truncates: Any = None,
        column_list: list[Any] | None = None,
        except_column_list: list[Any] | None = None,
        stored_as_scd_type: int | str = 1,
        track_history_column_list: list[Any] | None = None,
        track_history_except_column_list: list[Any] | None = None,
        name: str | None = None,
        once: bool = False,
    ) -> None:
        scd = int(stored_as_scd_type)
        if scd not in (1, 2):
            raise PipelineLoadError(
                f"{target}: stored_as_scd_type must be 1 or 2, got {stored_as_scd_type!r}"
            )

        def cols(given: list[Any] | None) -> tuple[str, ...] | None:
            return tuple(column_sql(c) for c in given) if given else None

        spec = AutoCdc(
            target=target,
            source=source,
            keys=tuple(column_sql(k) for k in keys),
            sequence_by=column_sql(sequence_by),
            stored_as_scd_type=scd,  # type: ignore[arg-type]
            apply_as_deletes=column_sql(apply_as_deletes) if apply_as_deletes is not None else None,
            apply_as_truncates=column_sql(apply_as_truncates)
            if apply_as_truncates is not None
            else None,
            column_list=cols(column_list),
            except_column_list=cols(except_column_list),
            track_history_column_list=cols(track_history_column_list),
            track_history_except_column_list=cols(track_history_except_column_list),
            ignore_null_updates=ignore_null_updates,
            name=name,
        )
        registry.add_auto_cdc(
            spec, _location(get_caller_source_code_location(stacklevel=1)), once=once
        )

    return {
        "expect": _expect_one("warn", registry),
        "expect_or_drop": _expect_one("drop", registry),
        "expect_or_fail": _expect_one("fail", registry),
        "expect_all": _expect_all("warn", registry),
        "expect_all_or_drop": _expect_all("drop", registry),
        "expect_all_or_fail": _expect_all("fail", registry),
        "create_streaming_table": create_streaming_table,
        "create_target_table": create_streaming_table,
        "append_flow": append_flow,
        "create_auto_cdc_flow": create_auto_cdc_flow,
        "apply_changes": create_auto_cdc_flow,
        "read": lambda name: reader(name, False),
        "read_stream": lambda name: reader(name, True),
    }


@contextlib.contextmanager
def pipeline_api(
    registry: LocalRegistry, reader: Callable[[str, bool], DataFrame]
) -> Iterator[None]:
    """``pyspark.pipelines`` with the Databricks API, ``import dlt`` as its alias, and the
    registry active; everything restored when the block ends."""
    extra = databricks_api(registry, reader)
    missing = object()
    saved = {name: getattr(dp_module, name, missing) for name in extra}
    dlt = types.ModuleType("dlt", "Delta Live Tables names for pyspark.pipelines (lakehouse)")
    for name in ("table", "materialized_view", "temporary_view", "create_sink"):
        setattr(dlt, name, getattr(dp_module, name))
    dlt.view = dp_module.temporary_view  # type: ignore[attr-defined]
    for name, value in extra.items():
        setattr(dlt, name, value)
        setattr(dp_module, name, value)
    saved_dlt = sys.modules.get("dlt")
    sys.modules["dlt"] = dlt
    try:
        with graph_element_registration_context(registry):
            yield
    finally:
        for name, value in saved.items():
            if value is missing:
                delattr(dp_module, name)
            else:
                setattr(dp_module, name, value)
        if saved_dlt is None:
            sys.modules.pop("dlt", None)
        else:
            sys.modules["dlt"] = saved_dlt


# -------------------------------------------------------------------- loading files


def notebook_source(path: Path) -> str:
    """The Python of a source file: a ``.ipynb``'s code cells (magics dropped), a Databricks
    source notebook as it is (its ``# MAGIC`` lines are comments)."""
    if path.suffix != ".ipynb":
        return path.read_text()
    cells = json.loads(path.read_text()).get("cells", [])
    code = []
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        text = "".join(cell.get("source", []))
        code.append(
            "\n".join(
                line for line in text.splitlines() if not line.lstrip().startswith(("%", "!"))
            )
        )
    return "\n\n".join(code)


def load_file(path: Path, registry: LocalRegistry, spark: SparkSession) -> None:
    """Execute one Python file (``spark`` a global, as on Databricks) or register a SQL file."""
    if path.suffix == ".sql":
        registry.register_sql(path.read_text(), path)
        return
    module_name = f"_lakehouse_pipeline_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, str(path))
    if spec is None:
        raise PipelineLoadError(f"{path}: cannot load")
    module = importlib.util.module_from_spec(spec)
    module.__dict__["spark"] = spark
    code = compile(notebook_source(path), str(path), "exec")
    try:
        exec(code, module.__dict__)
    except LakehouseError:
        raise
    except Exception as exc:
        line = _error_line(exc, str(path))
        raise PipelineLoadError(
            f"{path}{line}: {type(exc).__name__}: {exc}".splitlines()[0]
        ) from exc


def _error_line(exc: BaseException, file: str) -> str:
    tb = exc.__traceback__
    line = ""
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == file:
            line = f":{tb.tb_lineno}"
        tb = tb.tb_next
    return line


@contextlib.contextmanager
def on_sys_path(folder: Path | None) -> Iterator[None]:
    """``folder`` first on ``sys.path`` for the block (the pipeline's ``root_path``)."""
    if folder is None or str(folder) in sys.path:
        yield
        return
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(str(folder))


def load_graph(
    pipeline: PipelineDefinition,
    spark: SparkSession,
    reader: Callable[[str, bool], DataFrame],
) -> tuple[PipelineGraph, LocalRegistry]:
    """Load every source file of ``pipeline`` into a new graph."""
    graph = PipelineGraph()
    registry = LocalRegistry(pipeline, graph)
    with on_sys_path(pipeline.root_path), pipeline_api(registry, reader):
        for path in pipeline.files:
            load_file(path, registry, spark)
    return graph, registry
