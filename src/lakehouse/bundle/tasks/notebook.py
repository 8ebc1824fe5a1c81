"""``notebook_task``: run a notebook with nbclient in a kernel that shares the run's engine.

The kernel gets ``spark``, ``dbutils``, ``display`` (see :mod:`.kernel`), widget values
from ``base_parameters`` and the job's parameters, and runs in the notebook's folder. The
executed copy is written to ``<data_root>/runs/<run_id>/<task_key>.ipynb`` whatever the
outcome; a failing cell fails the task with one line naming the notebook and the cell.
``dbutils.notebook.exit(value)`` ends the notebook successfully with ``value``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat as _nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

from lakehouse.bundle.tasks.notebook_source import Cell, find_notebook, read_cells
from lakehouse.bundle.tasks.script import connect_url
from lakehouse.core.errors import LakehouseError, TaskError
from lakehouse.runtime.run import RunContext

nbformat: Any = _nbformat
BOOTSTRAP_TAG = "lakehouse-bootstrap"


@dataclass
class NotebookResult:
    executed: Path
    exit_value: str | None
    notes: list[str]


def kernel_settings(
    run: RunContext, folder: Path, task_key: str, widgets: dict[str, str]
) -> dict[str, Any]:
    """What the kernel's bootstrap cell needs to build ``spark`` and ``dbutils``."""
    settings: dict[str, Any] = {
        "task_key": task_key,
        "run_folder": str(folder),
        "widgets": widgets,
        "remote": connect_url(run),
    }
    if settings["remote"] is None:  # JVM Spark: a session of the kernel's own, same conf
        conf = dict(run.spark.sparkContext.getConf().getAll())
        settings["master"] = conf.get("spark.master", "local[*]")
        settings["conf"] = {k: v for k, v in conf.items() if k.startswith(_JVM_CONF)}
        settings["tables"] = jvm_tables(run)
    return settings


_JVM_CONF = ("spark.sql.", "spark.jars", "spark.databricks.", "spark.delta.", "spark.ui.")


def jvm_tables(run: RunContext) -> list[tuple[str, str]]:
    """The catalog's Delta tables that exist, and the managed ones of the warehouse."""
    from lakehouse.bundle.tasks.kernel import managed_tables

    catalog = [
        (ref.engine_name, ref.location)
        for ref in run.project.tables.values()
        if (Path(ref.location.removeprefix("file:")) / "_delta_log").is_dir()
    ]
    warehouse = run.spark.conf.get("spark.sql.warehouse.dir") or ""
    return catalog + managed_tables(Path(warehouse.removeprefix("file:")))


def _bootstrap_cell(settings: dict[str, Any]) -> Any:
    source = (
        "import json as _lakehouse_json\n"
        "from lakehouse.bundle.tasks.kernel import bootstrap as _lakehouse_bootstrap\n\n"
        f"globals().update(_lakehouse_bootstrap(_lakehouse_json.loads({json.dumps(settings)!r})))"
    )
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = [BOOTSTRAP_TAG]
    cell.metadata["jupyter"] = {"source_hidden": True}
    return cell


def _notebook(cells: list[Cell], settings: dict[str, Any]) -> Any:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells.append(_bootstrap_cell(settings))
    for cell in cells:
        new = (
            nbformat.v4.new_code_cell(cell.source)
            if cell.kind == "code"
            else nbformat.v4.new_markdown_cell(cell.source)
        )
        new.metadata["lakehouse"] = {"origin": cell.origin}
        nb.cells.append(new)
    return nb


def _failed_cell(nb: Any) -> tuple[str, str, str] | None:
    """``(origin, ename, evalue)`` of the first cell with an error output."""
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                origin = cell.metadata.get("lakehouse", {}).get("origin")
                where = origin or ("setup cell" if index == 0 else f"cell {index}")
                return where, output.get("ename", ""), output.get("evalue", "")
    return None


def run_notebook(
    run: RunContext,
    folder: Path,
    task_key: str,
    notebook_path: str,
    widgets: dict[str, str],
    *,
    timeout_s: int = 0,
) -> NotebookResult:
    """Execute the notebook; keep the executed copy in ``folder``; raise TaskError on a
    failing cell."""
    path = find_notebook(Path(run.project.resolve_path(notebook_path)))
    parsed = read_cells(path)
    settings = kernel_settings(run, folder, task_key, widgets)
    nb = _notebook(parsed.cells, settings)
    executed = folder / f"{task_key}.ipynb"
    executed.parent.mkdir(parents=True, exist_ok=True)
    client = NotebookClient(
        nb,
        timeout=timeout_s or None,
        kernel_name="python3",
        extra_arguments=["--IPKernelApp.log_level=ERROR"],  # no start-up warnings in the run
        resources={"metadata": {"path": str(path.parent)}},
    )
    exit_value = None
    try:
        client.execute(env=_kernel_env())
    except CellTimeoutError as exc:
        raise TaskError(f"notebook {path.name}: a cell timed out ({exc})") from None
    except CellExecutionError as exc:
        failed = _failed_cell(nb)
        if exc.ename != "NotebookExit":
            where = failed[0] if failed else "a cell"
            raise TaskError(
                f"notebook {path.name}: {where}: {exc.ename}: {_first_line(exc.evalue)} "
                f"(executed copy: {executed})"
            ) from None
        exit_value = exc.evalue
    finally:
        nbformat.write(nb, executed)
        if settings["remote"] is None:  # JVM: what the kernel created, for the next tasks
            from lakehouse.bundle.tasks.kernel import register_tables

            register_tables(run.spark, jvm_tables(run))
    return NotebookResult(executed, exit_value, parsed.notes)


def _first_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0][:500] if lines else ""


def _kernel_env() -> dict[str, str]:
    """The kernel's environment: this one, with this process's import path."""
    import sys

    env = dict(os.environ)
    paths = [p for p in sys.path if p and Path(p).is_dir()]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env.pop("SPARK_REMOTE", None)  # the bootstrap cell sets the run's own
    env.pop("SPARK_CONNECT_MODE_ENABLED", None)
    if not env.get("PYTHONPATH"):
        raise LakehouseError("cannot start a notebook kernel: empty import path")
    return env
