"""Job-level Databricks keys in a run: job parameters (``--params``), "would notify"
notes for email and destination notifications, and DAB retry timing."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from lakehouse.bundle.runner import (
    UNLIMITED_RETRIES_CAP,
    allowed_retries,
    retry_ready_at,
    run_job,
)
from lakehouse.config import Project, load_project
from lakehouse.config.jobs import Task
from lakehouse.core.errors import LakehouseError
from lakehouse.engine import EngineSession

REPO = Path(__file__).resolve().parents[2]
FIXTURE = "tests.bundle.tasks_fixture"


def _task(key: str, fn: str, *deps: str, **settings: Any) -> dict[str, Any]:
    parameters = settings.pop("parameters", None)
    call: dict[str, Any] = {"function": f"{FIXTURE}:{fn}"}
    if parameters:
        call["parameters"] = parameters
    task: dict[str, Any] = {"task_key": key, "python_function_task": call, **settings}
    if deps:
        task["depends_on"] = [{"task_key": d} for d in deps]
    return task


JOBS: dict[str, Any] = {
    "params": {
        "parameters": [
            {"name": "env", "default": "dev"},
            {"name": "batch_size", "default": 100},
            {"name": "dry", "default": False},
        ],
        "tags": {"team": "data", "cost_center": 42},
        "email_notifications": {
            "on_start": ["a@example.com"],
            "on_success": ["a@example.com", "b@example.com"],
            "on_failure": ["oncall@example.com"],
            "no_alert_for_skipped_runs": True,
        },
        "webhook_notifications": {"on_failure": [{"id": "dest-123"}]},
        "notification_settings": {"no_alert_for_canceled_runs": True},
        "job_clusters": [
            {"job_cluster_key": "c", "new_cluster": {"spark_version": "15.4.x-scala2.12"}}
        ],
        "environments": [{"environment_key": "default", "spec": {"client": "1"}}],
        "queue": {"enabled": True},
        "timeout_seconds": 3600,
        "health": {"rules": [{"metric": "RUN_DURATION_SECONDS", "op": "GREATER_THAN", "value": 0}]},
        "permissions": [{"level": "CAN_MANAGE_RUN", "group_name": "data-engineers"}],
        "tasks": [_task("show", "job_parameters")],
    },
    "job_timeout": {
        "timeout_seconds": 1,
        "tasks": [
            _task("sleeps", "sleepy", parameters=["3"], max_retries=2, retry_on_timeout=True),
            _task("late", "ok"),
            _task("after", "ok", "sleeps"),
        ],
    },
    "retry_spacing": {
        "tasks": [
            _task(
                "fails",
                "slow_broken",
                parameters=["0"],
                max_retries=2,
                min_retry_interval_millis=1000,
            )
        ]
    },
    "retry_after_slow": {
        "tasks": [
            _task(
                "fails",
                "slow_broken",
                parameters=["1.0"],
                max_retries=2,
                min_retry_interval_millis=600,
            )
        ]
    },
}


@pytest.fixture(scope="module")
def project_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("joblevel")
    (root / "conf").mkdir()
    (root / "conf" / "catalog.yml").write_text(
        "catalog:\n  name: lakehouse\n  storage_root: ${var.data_root}/tables\n"
    )
    bundle = {
        "bundle": {"name": "joblevel"},
        "include": ["conf/*.yml"],
        "variables": {"data_root": {"default": "./data"}},
        "targets": {"local": {"default": True}},
        "resources": {"jobs": JOBS},
    }
    (root / "bundle.yml").write_text(yaml.safe_dump(bundle, sort_keys=False))
    return root


@pytest.fixture()
def project(project_root: Path, tmp_path: Path) -> Project:
    return load_project(project_root, var_overrides={"data_root": str(tmp_path / "data")})


def _log(project: Project) -> list[dict[str, Any]]:
    path = project.data_root / "task-log.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_job_parameters_defaults_and_overrides_reach_the_task(
    engine_session: EngineSession, project: Project
) -> None:
    job = project.bundle.resources.jobs["params"]
    assert job.parameter_defaults == {"env": "dev", "batch_size": "100", "dry": "false"}
    assert job.tags == {"team": "data", "cost_center": 42}
    report = run_job(project, "params", engine_session, parameters={"env": "prod"})
    assert report.succeeded
    assert report.job_parameters == {"env": "prod", "batch_size": "100", "dry": "false"}
    logged = [json.loads(e["event"]) for e in _log(project)]
    assert logged == [{"batch_size": "100", "dry": "false", "env": "prod"}]
    # locally no mail is sent: the run notes say who would have been told
    assert report.notes == [
        "would notify a@example.com by email (on_start; no mail sent locally)",
        "would notify a@example.com, b@example.com by email (on_success; no mail sent locally)",
    ]


def test_an_unknown_job_parameter_is_refused_before_the_run(
    engine_session: EngineSession, project: Project
) -> None:
    with pytest.raises(LakehouseError, match=r"job params has no parameter '?nope"):
        run_job(project, "params", engine_session, parameters={"nope": "1"})
    assert _log(project) == []


def test_retries_wait_from_the_failed_attempts_start_without_doubling(
    engine_session: EngineSession, project: Project
) -> None:
    report = run_job(project, "retry_spacing", engine_session)
    assert [(t.status, t.attempts) for t in report.tasks] == [("FAILED", 3)]
    starts = [e["t"] for e in _log(project)]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(gaps) == 2
    # 1 s before each retry; the old doubling waited 1 s, then 2 s
    assert all(g >= 0.9 for g in gaps), gaps  # (logged inside the task: a little jitter)
    assert gaps[1] - gaps[0] < 0.5 and max(gaps) < 1.6, gaps


def test_an_attempt_longer_than_the_interval_is_retried_at_once(
    engine_session: EngineSession, project: Project
) -> None:
    report = run_job(project, "retry_after_slow", engine_session)
    assert [(t.status, t.attempts) for t in report.tasks] == [("FAILED", 3)]
    starts = [e["t"] for e in _log(project)]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    # each attempt runs 1 s > 0.6 s: the retry starts as soon as it failed (the old
    # behaviour waited 0.6 s, then 1.2 s after the failure)
    assert all(1.0 <= g < 1.45 for g in gaps), gaps


def test_retry_policy_as_databricks_defines_it() -> None:
    task = Task.model_validate({"task_key": "t", "python_function_task": {"function": "os:getcwd"}})
    assert (task.max_retries, task.min_retry_interval_millis) == (0, 0)  # DAB defaults
    unlimited = task.model_copy(update={"max_retries": -1, "min_retry_interval_millis": 1500})
    assert allowed_retries(unlimited) == UNLIMITED_RETRIES_CAP == 25
    assert allowed_retries(task.model_copy(update={"max_retries": 3})) == 3
    assert retry_ready_at(unlimited, 100.0) == 101.5  # from the attempt's start, every time
    with pytest.raises(ValueError, match="greater than or equal to -1"):
        Task.model_validate(
            {
                "task_key": "t",
                "python_function_task": {"function": "os:getcwd"},
                "max_retries": -2,
            }
        )


def _cli(root: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKEHOUSE_", "MLFLOW_"))}
    env["PYTHONPATH"] = f"{REPO / 'src'}{os.pathsep}{REPO}"  # this checkout + the fixtures
    env["LAKEHOUSE_VAR_data_root"] = str(tmp_path / "data")
    return subprocess.run(
        [sys.executable, "-m", "lakehouse", *args, "-C", str(root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_cli_passes_params_and_refuses_unknown_ones(project_root: Path, tmp_path: Path) -> None:
    bad = _cli(project_root, tmp_path, "run", "params", "--params", "env=prod,nope=1")
    assert bad.returncode == 1
    last = bad.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "job params has no parameter" in last, last
    assert "nope" in last and "batch_size" in last and "dry" in last, last
    done = _cli(
        project_root,
        tmp_path,
        "bundle",
        "run",
        "params",
        "--params",
        "env=prod",
        "--params",
        "dry=true",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    log = [
        json.loads(line) for line in (tmp_path / "data" / "task-log.jsonl").read_text().splitlines()
    ]
    assert [json.loads(e["event"]) for e in log] == [
        {"batch_size": "100", "dry": "true", "env": "prod"}
    ]
    assert "would notify a@example.com, b@example.com by email (on_success" in done.stdout


def test_a_task_process_resolves_the_runs_job_parameters(
    project_root: Path, tmp_path: Path
) -> None:
    """What a spark-submitted task does: the run's --params come in LAKEHOUSE_JOB_PARAMETERS."""
    script = tmp_path / "show_params.py"
    script.write_text(
        "from lakehouse.bundle.entrypoint import run_task_script\n"
        "from tests.bundle.tasks_fixture import job_parameters as TASK\n"
        "raise SystemExit(run_task_script(TASK))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKEHOUSE_", "MLFLOW_"))}
    env["PYTHONPATH"] = f"{REPO / 'src'}{os.pathsep}{REPO}"
    env["LAKEHOUSE_VAR_data_root"] = str(tmp_path / "data")
    env["LAKEHOUSE_JOB_PARAMETERS"] = json.dumps({"env": "spark"})
    done = subprocess.run(
        [sys.executable, str(script), "--project-dir", str(project_root), "--job", "params"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    log = (tmp_path / "data" / "task-log.jsonl").read_text().splitlines()
    assert [json.loads(json.loads(line)["event"]) for line in log] == [
        {"batch_size": "100", "dry": "false", "env": "spark"}
    ]


def test_the_jobs_timeout_times_out_the_run(
    engine_session: EngineSession, project: Project
) -> None:
    report = run_job(project, "job_timeout", engine_session)
    outcome = {t.task_key: (t.status, t.error) for t in report.tasks}
    message = "the job timed out after 1s (its timeout_seconds)"
    assert outcome == {
        "sleeps": ("TIMED_OUT", message),  # no retry once the job timed out
        "late": ("TIMED_OUT", message),  # not started
        "after": ("SKIPPED", "upstream failed: sleeps"),
    }
    assert [e["task"] for e in _log(project)] == ["sleeps"]
    assert 1.0 <= sum(t.seconds for t in report.tasks) < 2.5
