"""Loading a pipeline's source files into a :class:`PipelineGraph`: Python files executed
(``spark`` a global, as on Databricks; notebooks' code cells), SQL files parsed."""

from __future__ import annotations

import contextlib
import json
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from lakehouse.core.errors import LakehouseError
from lakehouse.pipelines.declarative.api import pipeline_api
from lakehouse.pipelines.declarative.graph import PipelineGraph
from lakehouse.pipelines.declarative.registry import LocalRegistry, PipelineLoadError
from lakehouse.pipelines.declarative.spec import PipelineDefinition


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
    module = types.ModuleType(f"_lakehouse_pipeline_{path.stem}")
    module.__file__ = str(path)
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
