"""Pure parts of the task kinds: notebook parsing, conditions, references, dbutils, models."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from pydantic import ValidationError

from lakehouse.bundle.tasks.conditions import check_outcomes, evaluate
from lakehouse.bundle.tasks.dbutils import DBUtils, NotebookExit, secret_env_name
from lakehouse.bundle.tasks.dispatch import with_resolved_parameters
from lakehouse.bundle.tasks.kernel import split_sql
from lakehouse.bundle.tasks.notebook_source import find_notebook, read_cells
from lakehouse.bundle.tasks.references import resolve
from lakehouse.bundle.tasks.state import JobRunState, TaskValues
from lakehouse.config.jobs import Job, Task
from lakehouse.core.errors import ConfigError, LakehouseError

DATA = Path(__file__).resolve().parents[1] / "data" / "dab_tasks" / "notebooks"


def test_source_notebook_cells_and_magics() -> None:
    parsed = read_cells(find_notebook(DATA / "source_format"))
    assert [(c.kind, c.origin) for c in parsed.cells] == [
        ("markdown", "cell 1"),
        ("code", "cell 2"),  # %pip: a note, not run
        ("markdown", "cell 1 of helpers.py (%run)"),
        ("code", "cell 2 of helpers.py (%run)"),
        ("code", "cell 4"),
        ("code", "cell 5"),  # %sql
        ("code", "cell 6"),
    ]
    assert parsed.cells[0].source == "# Source-format notebook\nReads the rows the .ipynb " + (
        "notebook wrote, labels them, writes another table."
    )
    assert parsed.cells[5].source == (
        "_sqldf = _lakehouse_sql('CREATE OR REPLACE TEMPORARY VIEW nb_source_view AS SELECT * "
        "FROM nb_source_rows;\\nSELECT count(*) AS n FROM nb_source_view')"
    )
    assert parsed.notes == [
        "cell 2: %pip install some-package-we-do-not-install not run locally "
        "(install packages into the environment)"
    ]


def test_run_cycle_and_refused_languages(tmp_path: Path) -> None:
    header = "# Databricks notebook source\n"
    (tmp_path / "a.py").write_text(header + "# MAGIC %run ./b\n")
    (tmp_path / "b.py").write_text(header + "# MAGIC %run ./a\n")
    with pytest.raises(LakehouseError, match=r"^%run cycle: a.py -> b.py -> a.py$"):
        read_cells(tmp_path / "a.py")
    (tmp_path / "s.py").write_text(header + "x = 1\n# COMMAND ----------\n# MAGIC %scala\n")
    with pytest.raises(LakehouseError, match=r"^cell 2: %scala cells cannot run locally"):
        read_cells(tmp_path / "s.py")
    with pytest.raises(LakehouseError, match=r"notebook .*/missing not found \(also tried"):
        find_notebook(tmp_path / "missing")


def test_split_sql_keeps_quoted_semicolons() -> None:
    assert split_sql("-- a comment\nSELECT 'a;b' AS x;\n\nSELECT 2;") == [
        "SELECT 'a;b' AS x",
        "SELECT 2",
    ]


@pytest.mark.parametrize(
    ("op", "left", "right", "expected"),
    [
        ("EQUAL_TO", "12", "12", True),
        ("EQUAL_TO", "12.0", "12", False),  # string comparison, as on Databricks
        ("NOT_EQUAL", "a", "b", True),
        ("GREATER_THAN", "10", "9", True),
        ("GREATER_THAN_OR_EQUAL", "12.0", "12", True),
        ("LESS_THAN", "2", "10", True),  # numbers, not strings
        ("LESS_THAN_OR_EQUAL", "10.5", "10", False),
    ],
)
def test_condition_operators(op: str, left: str, right: str, expected: bool) -> None:
    assert evaluate(op, left, right, "t") is expected  # type: ignore[arg-type]


def test_ordering_needs_numbers() -> None:
    with pytest.raises(LakehouseError, match="task t: condition LESS_THAN compares numbers"):
        evaluate("LESS_THAN", "abc", "1", "t")


def _state(tmp_path: Path) -> JobRunState:
    job = Job.model_validate(
        {"name": "Nightly", "tasks": [{"task_key": "a", "condition_task": {
            "op": "EQUAL_TO", "left": "1", "right": "1"}}]}
    )  # fmt: skip
    start = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
    return JobRunState("nightly", job, "r1", tmp_path, {"day": "mon"}, start_time=start)


def test_references(tmp_path: Path) -> None:
    state = _state(tmp_path)
    state.values.set("up", "n", 3)
    state.values.set("up", "names", ["a", "b"])
    text = (
        "{{job.id}} {{job.name}} {{job.run_id}} {{task.name}} {{job.parameters.day}} "
        "{{job.start_time.iso_datetime}} {{tasks.up.values.n}} {{tasks.up.values.names}} "
        "{{run_id}} {{job_id}}"
    )
    assert resolve(text, state, "me") == (
        'nightly Nightly r1 me mon 2026-03-04T05:06:07 3 ["a", "b"] r1 nightly'
    )
    with pytest.raises(LakehouseError) as err:
        resolve("x{{job.parameters.nope}}", state, "me")
    assert (
        str(err.value) == "task me: unknown reference {{job.parameters.nope}} (job parameters: day)"
    )


def test_dbutils(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dbutils = DBUtils("me", TaskValues(tmp_path), {"given": "1"})
    dbutils.widgets.text("given", "default")
    dbutils.widgets.dropdown("choice", "b", ["a", "b"])
    assert (dbutils.widgets.get("given"), dbutils.widgets.get("choice")) == ("1", "b")
    assert dbutils.widgets.getArgument("absent", "fallback") == "fallback"
    with pytest.raises(LakehouseError, match="InputWidgetNotDefined: no input widget named 'x'"):
        dbutils.widgets.get("x")
    dbutils.jobs.taskValues.set("k", {"a": 1})
    assert dbutils.jobs.taskValues.get("me", "k") == {"a": 1}
    assert dbutils.jobs.taskValues.get("other", "k", default=5) == 5
    with pytest.raises(LakehouseError, match="no task value 'k' set by task 'other'"):
        dbutils.jobs.taskValues.get("other", "k")
    with pytest.raises(NotebookExit, match="bye"):
        dbutils.notebook.exit("bye")
    folder = tmp_path / "files"
    assert dbutils.fs.mkdirs(f"file:{folder}")
    dbutils.fs.put(str(folder / "a.txt"), "hello")
    assert dbutils.fs.head(str(folder / "a.txt"), 4) == "hell"
    assert [(f.name, f.size) for f in dbutils.fs.ls(str(folder))] == [("a.txt", 5)]
    assert dbutils.fs.rm(str(folder), recurse=True)
    assert secret_env_name("my-scope", "db.password") == "LAKEHOUSE_SECRET_MY_SCOPE_DB_PASSWORD"
    with pytest.raises(LakehouseError, match="export LAKEHOUSE_SECRET_S_K to provide it"):
        dbutils.secrets.get("s", "k")
    monkeypatch.setenv("LAKEHOUSE_SECRET_S_K", "v")
    assert dbutils.secrets.get("s", "k") == "v"


def test_a_task_has_exactly_one_kind() -> None:
    with pytest.raises(ValidationError, match="give exactly one of 'spark_python_task'"):
        Task.model_validate(
            {
                "task_key": "t",
                "notebook_task": {"notebook_path": "a"},
                "pipeline_task": {"pipeline_id": "p"},
            }
        )
    task = Task.model_validate(
        {
            "task_key": "t",
            "run_if": "ALL_DONE",
            "depends_on": [{"task_key": "c", "outcome": "true"}],
            "run_job_task": {"job_id": 123, "job_parameters": {"n": 1}},
            "existing_cluster_id": "abc",
        }
    )
    assert task.kind == "run_job_task"
    assert task.run_job_task is not None
    assert (task.run_job_task.job_id, task.run_job_task.job_parameters) == ("123", {"n": "1"})


def test_an_outcome_needs_a_condition_task() -> None:
    job = Job.model_validate(
        {
            "tasks": [
                {"task_key": "a", "pipeline_task": {"pipeline_id": "p"}},
                {
                    "task_key": "b",
                    "depends_on": [{"task_key": "a", "outcome": "true"}],
                    "pipeline_task": {"pipeline_id": "p"},
                },
            ]
        }
    )
    with pytest.raises(ConfigError) as err:
        check_outcomes(job, "j")
    assert str(err.value) == (
        "bundle: resources.jobs.j.tasks[b].depends_on[0].outcome: 'a' is not a condition_task "
        "(only those have an outcome)"
    )


def test_script_parameters_resolved_for_an_outside_runner(tmp_path: Path) -> None:
    task = Task.model_validate(
        {
            "task_key": "s",
            "spark_python_task": {"python_file": "x.py", "parameters": ["{{job.run_id}}", "a"]},
        }
    )
    resolved = with_resolved_parameters(task, _state(tmp_path))
    assert resolved.parameters == ["r1", "a"]
    assert task.parameters == ["{{job.run_id}}", "a"]
