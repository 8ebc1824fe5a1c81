"""condition_task, run_if, run_job_task, pipeline_task and {{...}} references in a job run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lakehouse.bundle.runner import run_job
from lakehouse.config import Project
from lakehouse.config.jobs import Job
from lakehouse.engine import EngineSession
from tests.bundle.dab_tasks_fixture import calls, fn_task, make_project, with_parameters


def _condition(key: str, op: str, left: str, right: str, *deps: str) -> dict[str, Any]:
    task: dict[str, Any] = {
        "task_key": key,
        "condition_task": {"op": op, "left": left, "right": right},
    }
    if deps:
        task["depends_on"] = [{"task_key": d} for d in deps]
    return task


def _on(key: str, condition: str, outcome: str, **more: Any) -> dict[str, Any]:
    task = fn_task(key, "record", **more)
    task["depends_on"] = [{"task_key": condition, "outcome": outcome}]
    return task


JOBS: dict[str, Any] = {
    "branching": {
        "tasks": [
            fn_task("count", "set_values", parameters=["rows=12", "kind=orders"]),
            _condition(
                "enough", "GREATER_THAN_OR_EQUAL", "{{tasks.count.values.rows}}", "10", "count"
            ),
            _on("big", "enough", "true"),
            _on("small", "enough", "false"),
            fn_task("after_small", "record", "small"),
            _condition("is_orders", "EQUAL_TO", "{{tasks.count.values.kind}}", "orders", "count"),
            _on("orders", "is_orders", "true"),
            # string comparison for EQUAL_TO: 12.0 is not "12"
            _condition("as_text", "EQUAL_TO", "12.0", "{{tasks.count.values.rows}}"),
            _on("text_equal", "as_text", "true"),
        ]
    },
    "recovering": {
        "max_parallel_tasks": 1,
        "tasks": [
            fn_task("ok", "record"),
            fn_task("fails", "broken"),
            fn_task("after_fail", "record", "fails"),
            fn_task("cleanup", "record", "ok", "fails", run_if="ALL_DONE"),
            fn_task("alert", "record", "fails", run_if="AT_LEAST_ONE_FAILED"),
            fn_task("all_failed", "record", "ok", "fails", run_if="ALL_FAILED"),
            fn_task("some_ok", "record", "ok", "fails", run_if="AT_LEAST_ONE_SUCCESS"),
            fn_task("none_failed", "record", "ok", "fails", run_if="NONE_FAILED"),
            fn_task("only_when_failing", "record", "ok", run_if="AT_LEAST_ONE_FAILED"),
        ],
    },
    "parent": {
        "tasks": [
            fn_task("before", "record", parameters=["{{job.run_id}}"]),
            {
                "task_key": "call_child",
                "depends_on": [{"task_key": "before"}],
                "run_job_task": {"job_id": "child", "job_parameters": {"who": "{{job.id}}"}},
            },
        ]
    },
    "child": with_parameters(
        {
            "tasks": [
                fn_task("inner", "record", parameters=["{{job.parameters.who}}", "{{job.run_id}}"])
            ]
        },
        who="nobody",
    ),
    "loop_a": {"tasks": [{"task_key": "go", "run_job_task": {"job_id": "loop_b"}}]},
    "loop_b": {"tasks": [{"task_key": "back", "run_job_task": {"job_id": "loop_a"}}]},
    "references": with_parameters(
        {
            "name": "Reference demo",
            "tasks": [
                fn_task(
                    "refs",
                    "record",
                    parameters=[
                        "{{job.id}}|{{job.name}}|{{job.run_id}}|{{task.name}}",
                        "{{run_id}}|{{job_id}}|{{ job.start_time.iso_date }}",
                        "{{job.parameters.region}}",
                    ],
                ),
                fn_task("bad", "record", parameters=["{{job.nope}}"]),
            ],
        },
        region="eu",
    ),
    "cli_params": with_parameters(
        {
            "tasks": [
                fn_task(
                    "show",
                    "record",
                    parameters=["{{job.parameters.region}}/{{job.parameters.tier}}"],
                )
            ]
        },
        region="eu",
        tier="silver",
    ),
    "pipeline": {
        "tasks": [
            {"task_key": "update", "pipeline_task": {"pipeline_id": "nope", "full_refresh": True}}
        ]
    },
}


@pytest.fixture()
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path / "bundle", JOBS, tmp_path / "data")


def test_condition_outcomes_choose_the_branch(
    engine_session: EngineSession, project: Project
) -> None:
    report = run_job(project, "branching", engine_session, run_id="r-branch")
    assert report.succeeded
    assert {t.task_key: (t.status, t.error) for t in report.tasks} == {
        "count": ("SUCCESS", ""),
        "enough": ("SUCCESS", ""),
        "big": ("SUCCESS", ""),
        "small": ("EXCLUDED", "excluded upstream: enough"),
        "after_small": ("EXCLUDED", "excluded upstream: small"),
        "is_orders": ("SUCCESS", ""),
        "orders": ("SUCCESS", ""),
        "as_text": ("SUCCESS", ""),
        "text_equal": ("EXCLUDED", "excluded upstream: as_text"),
    }
    assert sorted(c["task"] for c in calls(project)) == ["big", "orders"]


def test_run_if_after_a_failure(engine_session: EngineSession, project: Project) -> None:
    report = run_job(project, "recovering", engine_session, run_id="r-runif")
    assert not report.succeeded
    assert {t.task_key: (t.status, t.error) for t in report.tasks} == {
        "ok": ("SUCCESS", ""),
        "fails": ("FAILED", "ValueError: this task always fails"),
        "after_fail": ("SKIPPED", "upstream failed: fails"),
        "cleanup": ("SUCCESS", ""),
        "alert": ("SUCCESS", ""),
        "all_failed": ("EXCLUDED", "run_if ALL_FAILED not met"),
        "some_ok": ("SUCCESS", ""),
        "none_failed": ("SKIPPED", "upstream failed: fails"),
        "only_when_failing": ("EXCLUDED", "run_if AT_LEAST_ONE_FAILED not met"),
    }
    assert sorted(c["task"] for c in calls(project)) == ["alert", "cleanup", "ok", "some_ok"]


def test_run_job_task_runs_the_other_job_in_this_run(
    engine_session: EngineSession, project: Project
) -> None:
    report = run_job(project, "parent", engine_session, run_id="r-parent")
    assert [(t.task_key, t.status, t.error) for t in report.tasks] == [
        ("before", "SUCCESS", ""),
        ("call_child", "SUCCESS", ""),
    ]
    assert calls(project) == [
        {"task": "before", "parameters": ["r-parent"]},
        {"task": "inner", "parameters": ["parent", "r-parent.call_child"]},
    ]
    assert "call_child: ran job child as run r-parent.call_child (1/1 tasks succeeded)" in (
        report.notes
    )


def test_run_job_task_cycle_is_an_error(engine_session: EngineSession, project: Project) -> None:
    report = run_job(project, "loop_a", engine_session, run_id="r-loop")
    assert [(t.task_key, t.status, t.error) for t in report.tasks] == [
        (
            "go",
            "FAILED",
            "job loop_b failed: task back FAILED: task back: run_job_task cycle: "
            "loop_a -> loop_b -> loop_a",
        )
    ]


def test_references_in_task_parameters(engine_session: EngineSession, project: Project) -> None:
    declared = "parameters" in Job.model_fields
    given = {"region": "us"}
    report = run_job(project, "references", engine_session, run_id="r-refs", parameters=given)
    outcome = {t.task_key: (t.status, t.error) for t in report.tasks}
    assert outcome["bad"] == (
        "FAILED",
        "task bad: unknown reference {{job.nope}} (see the dynamic value references of "
        "Databricks jobs)",
    )
    date = report_date(project, "r-refs")
    assert calls(project) == [
        {
            "task": "refs",
            "parameters": [
                "references|Reference demo|r-refs|refs",
                f"r-refs|references|{date}",
                "us",
            ],
        }
    ]
    if declared:
        with pytest.raises(Exception, match=r"job references has no parameter '?nope"):
            run_job(project, "references", engine_session, parameters={"nope": "1"})


def report_date(project: Project, run_id: str) -> str:
    """The UTC date of the run (its start time, as {{job.start_time.iso_date}} gives it)."""
    import datetime as dt

    return dt.datetime.now(dt.UTC).date().isoformat()


def test_pipeline_task_calls_the_declarative_runner(
    engine_session: EngineSession, project: Project
) -> None:
    report = run_job(project, "pipeline", engine_session, run_id="r-pipe")
    assert [(t.status, t.error) for t in report.tasks] == [
        (
            "FAILED",
            "bundle: resources.jobs.pipeline.tasks[update].pipeline_task.pipeline_id: no "
            "pipeline 'nope' in resources.pipelines (defined: none)",
        )
    ]


def test_cli_params_override_job_parameters(project: Project, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from tests.bundle.dab_tasks_fixture import REPO

    lakehouse = str(Path(sys.executable).parent / "lakehouse")
    command = [
        lakehouse, "bundle", "run", "cli_params", "--project-dir", str(project.root),
        "--var", f"data_root={project.data_root}", "--params", "region=us,tier=gold",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *sys.path])}
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=120, check=False, env=env
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert calls(project) == [{"task": "show", "parameters": ["us/gold"]}]


def test_pipeline_task_updates_a_bundle_pipeline(
    spark: Any, engine_session: EngineSession, tmp_path: Path
) -> None:
    source = tmp_path / "bundle" / "src" / "numbers.py"
    source.parent.mkdir(parents=True)
    source.write_text(
        "from pyspark import pipelines as dp\n\n\n"
        "@dp.materialized_view\n"
        "def dab_task_numbers():\n"
        "    return spark.range(6)\n"
    )
    pipelines = {
        "numbers": {
            "catalog": "lakehouse",
            "schema": "gold",
            "libraries": [{"file": {"path": str(source)}}],
        }
    }
    jobs = {
        "with_pipeline": {
            "tasks": [
                {
                    "task_key": "update",
                    "pipeline_task": {"pipeline_id": "numbers", "full_refresh": True},
                },
                fn_task("after", "record", "update"),
            ]
        }
    }
    project = make_project(tmp_path / "bundle", jobs, tmp_path / "data", pipelines=pipelines)
    report = run_job(project, "with_pipeline", engine_session, run_id="r-pipeline")
    assert [(t.task_key, t.status, t.error) for t in report.tasks] == [
        ("update", "SUCCESS", ""),
        ("after", "SUCCESS", ""),
    ]
    assert spark.table("gold.dab_task_numbers").count() == 6
