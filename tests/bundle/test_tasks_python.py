"""python_wheel_task (the bundle's own package) and plain PySpark spark_python_task scripts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from lakehouse.bundle.runner import run_job
from lakehouse.bundle.tasks.wheel import own_package
from lakehouse.config import Project
from lakehouse.engine import EngineSession
from tests.bundle.dab_tasks_fixture import make_project


def _jobs(out: Path) -> dict[str, Any]:
    return {
        "wheels": {
            "tasks": [
                {
                    "task_key": "positional",
                    "python_wheel_task": {
                        "package_name": "lh-demo-wheel",
                        "entry_point": "lh-demo",
                        "parameters": [
                            "--table",
                            "wheel_rows",
                            "--rows",
                            3,
                            "--out",
                            f"{out}/a.json",
                        ],
                    },
                    "environment_key": "default",
                },
                {
                    "task_key": "named",
                    "depends_on": [{"task_key": "positional"}],
                    "python_wheel_task": {
                        "package_name": "lh_demo_wheel",
                        "entry_point": "lh-demo",
                        "named_parameters": {
                            "table": "wheel_named_rows",
                            "rows": "7",
                            "out": f"{out}/b.json",
                        },
                    },
                },
            ]
        },
        "failing_wheel": {
            "tasks": [
                {
                    "task_key": "fails",
                    "python_wheel_task": {"package_name": "lh-demo-wheel", "entry_point": "fail"},
                },
                {
                    "task_key": "unknown",
                    "python_wheel_task": {"package_name": "lh-demo-wheel", "entry_point": "nope"},
                },
            ]
        },
        "script": {
            "tasks": [
                {
                    "task_key": "plain",
                    "spark_python_task": {
                        "python_file": "scripts/plain_pyspark.py",
                        "parameters": ["plain_rows", f"{out}/plain.json"],
                    },
                }
            ]
        },
    }


@pytest.fixture()
def project(tmp_path: Path) -> Project:
    (tmp_path / "out").mkdir()
    return make_project(tmp_path / "bundle", _jobs(tmp_path / "out"), tmp_path / "data")


@pytest.mark.delta  # both engines
def test_wheel_entry_point_gets_parameters_and_named_parameters(
    spark: SparkSession, engine_session: EngineSession, project: Project, tmp_path: Path
) -> None:
    report = run_job(project, "wheels", engine_session, run_id="r-wheel")
    assert [(t.task_key, t.status, t.error) for t in report.tasks] == [
        ("positional", "SUCCESS", ""),
        ("named", "SUCCESS", ""),
    ]
    out = tmp_path / "out"
    assert json.loads((out / "a.json").read_text()) == {
        "argv": ["lh-demo-wheel", "--table", "wheel_rows", "--rows", "3", "--out", f"{out}/a.json"],
        "rest": [],
    }
    assert json.loads((out / "b.json").read_text()) == {
        "argv": ["lh_demo_wheel", "--table=wheel_named_rows", "--rows=7", f"--out={out}/b.json"],
        "rest": [],
    }
    assert spark.table("wheel_rows").count() == 3
    assert spark.table("wheel_named_rows").count() == 7


def test_wheel_exit_code_and_unknown_entry_point(
    engine_session: EngineSession, project: Project
) -> None:
    report = run_job(project, "failing_wheel", engine_session, run_id="r-wheel-fail")
    assert {t.task_key: (t.status, t.error) for t in report.tasks} == {
        "fails": ("FAILED", "lh-demo-wheel fail exited with code 2"),
        "unknown": (
            "FAILED",
            "python_wheel_task: no entry point 'nope' of package 'lh-demo-wheel' (looked in "
            "the bundle's pyproject.toml and for lh-demo-wheel.nope)",
        ),
    }


def test_own_package_is_found_from_source(project: Project) -> None:
    found = own_package(project.root, "LH_Demo.Wheel")
    assert found is not None
    import_root, groups = found
    assert import_root == project.root / "wheel_pkg" / "src"
    assert groups == {
        "console_scripts": {"lh-demo": "lh_demo_wheel.cli:main"},
        "lh_demo.tasks": {"fail": "lh_demo_wheel.cli:fail"},
    }
    assert own_package(project.root, "another") is None


@pytest.mark.delta  # both engines
def test_plain_pyspark_script_gets_the_run_session_from_the_builder(
    spark: SparkSession, engine_session: EngineSession, project: Project, tmp_path: Path
) -> None:
    report = run_job(project, "script", engine_session, run_id="r-script")
    assert [(t.task_key, t.status, t.error) for t in report.tasks] == [("plain", "SUCCESS", "")]
    out = tmp_path / "out" / "plain.json"
    assert json.loads(out.read_text()) == {
        "argv": ["plain_rows", str(out)],
        "active_is_builder": True,
        "name": "__main__",
    }
    rows = spark.table("plain_rows").orderBy("id").collect()
    assert [(r["id"], r["tens"]) for r in rows] == [(i, i * 10) for i in range(5)]
