"""notebook_task: .ipynb and Databricks source notebooks in a kernel sharing the run's session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pytest
from pyspark.sql import SparkSession

from lakehouse.bundle.runner import run_job
from lakehouse.config import Project
from lakehouse.config.jobs import Job
from lakehouse.engine import EngineSession
from tests.bundle.dab_tasks_fixture import make_project, with_parameters

JOBS: dict[str, Any] = {
    "notebooks": with_parameters(
        {
            "tasks": [
                {
                    "task_key": "nb_ipynb",
                    "notebook_task": {
                        "notebook_path": "./notebooks/widgets.ipynb",
                        "base_parameters": {"rows": 4},
                    },
                    "job_cluster_key": "ignored_locally",
                    "libraries": [{"whl": "./dist/*.whl"}],
                },
                {
                    "task_key": "nb_source",
                    "depends_on": [{"task_key": "nb_ipynb"}],
                    "notebook_task": {
                        "notebook_path": "./notebooks/source_format",  # no extension
                        "base_parameters": {"label": "from-task"},
                        "source": "WORKSPACE",
                    },
                },
            ]
        },
        label="from-job",
    ),
    "broken": {
        "tasks": [{"task_key": "nb", "notebook_task": {"notebook_path": "notebooks/broken"}}]
    },
    "exits": {"tasks": [{"task_key": "nb", "notebook_task": {"notebook_path": "notebooks/exits"}}]},
}


@pytest.fixture()
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path / "bundle", JOBS, tmp_path / "data")


@pytest.mark.delta  # both engines
def test_notebooks_share_widgets_tables_and_task_values(
    spark: SparkSession, engine_session: EngineSession, project: Project
) -> None:
    report = run_job(project, "notebooks", engine_session, run_id="r-nb")
    assert [(t.task_key, t.status, t.error) for t in report.tasks] == [
        ("nb_ipynb", "SUCCESS", ""),
        ("nb_source", "SUCCESS", ""),
    ]
    # the .ipynb notebook wrote widget "rows" = 4 rows; the source one labelled them with
    # the job parameter (a job parameter wins over base_parameters, as on Databricks)
    label = "from-job" if "parameters" in Job.model_fields else "from-task"
    rows = spark.table("nb_source_rows").orderBy("n").collect()
    assert [(r["n"], r["label"]) for r in rows] == [(i, label) for i in range(4)]
    run_dir = project.data_root / "runs" / "r-nb"
    assert (run_dir / "values" / "nb_ipynb.json").read_text() == '{"rows": 4}'
    for key in ("nb_ipynb", "nb_source"):
        executed = nbformat.read(run_dir / f"{key}.ipynb", as_version=4)
        assert executed.cells[0].metadata["tags"] == ["lakehouse-bootstrap"]
        assert f"{key}: executed notebook {run_dir / f'{key}.ipynb'}" in report.notes
    source = nbformat.read(run_dir / "nb_source.ipynb", as_version=4)
    # %md cells kept as markdown; %run inlined helpers' 2 cells; %sql displayed its result
    kinds = [c.cell_type for c in source.cells[1:]]
    assert kinds == ["markdown", "code", "markdown", "code", "code", "code", "code"]
    sql_cell = source.cells[6]
    assert "_lakehouse_sql" in sql_cell.source
    assert any("text/plain" in o.get("data", {}) for o in sql_cell.outputs)
    assert (
        "nb_source: cell 2: %pip install some-package-we-do-not-install not run locally "
        "(install packages into the environment)"
    ) in report.notes


def test_a_failing_cell_fails_the_task_naming_notebook_and_cell(
    engine_session: EngineSession, project: Project
) -> None:
    report = run_job(project, "broken", engine_session, run_id="r-broken")
    executed = project.data_root / "runs" / "r-broken" / "nb.ipynb"
    assert [(t.task_key, t.status, t.error) for t in report.tasks] == [
        (
            "nb",
            "FAILED",
            f"notebook broken.ipynb: cell 2: ValueError: boom in the second cell "
            f"(executed copy: {executed})",
        )
    ]
    cells = nbformat.read(executed, as_version=4).cells
    assert [c.get("execution_count") for c in cells[1:]] == [2, 3, None]  # cell 3 never ran


def test_notebook_exit_ends_the_notebook_with_its_value(
    engine_session: EngineSession, project: Project
) -> None:
    report = run_job(project, "exits", engine_session, run_id="r-exit")
    assert [(t.task_key, t.status) for t in report.tasks] == [("nb", "SUCCESS")]
    assert "nb: notebook exited with 'done early'" in report.notes
