"""Task functions and a project builder for the task-kind tests (tests/bundle/test_tasks_*)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import yaml

from lakehouse.bundle.context import TaskContext
from lakehouse.config import Project, load_project
from lakehouse.config.jobs import Job

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "dab_tasks"
FIXTURE = "tests.bundle.dab_tasks_fixture"


def record(ctx: TaskContext) -> None:
    """Append the task's key and (resolved) parameters to ``<data_root>/calls.jsonl``."""
    path = ctx.project.data_root / "calls.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as out:
        out.write(json.dumps({"task": ctx.task_key, "parameters": ctx.parameters}) + "\n")


def set_values(ctx: TaskContext) -> None:
    """Set task values from ``key=value`` parameters (numbers as numbers)."""
    for parameter in ctx.parameters:
        key, _, value = parameter.partition("=")
        parsed: Any = int(value) if value.isdigit() else value
        ctx.extra["dbutils"].jobs.taskValues.set(key, parsed)


def broken(ctx: TaskContext) -> None:
    raise ValueError("this task always fails")


def calls(project: Project) -> list[dict[str, Any]]:
    path = project.data_root / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def fn_task(
    key: str, fn: str, *deps: str, parameters: list[str] | None = None, **more: Any
) -> dict[str, Any]:
    task: dict[str, Any] = {
        "task_key": key,
        "python_function_task": {"function": f"{FIXTURE}:{fn}", "parameters": parameters or []},
        **more,
    }
    if deps:
        task["depends_on"] = [{"task_key": d} for d in deps]
    return task


def with_parameters(job: dict[str, Any], **defaults: str) -> dict[str, Any]:
    """``job`` declaring ``parameters`` when the Job model has that field (helper dab-jobs)."""
    if "parameters" in Job.model_fields:
        job["parameters"] = [{"name": k, "default": v} for k, v in defaults.items()]
    return job


def make_project(
    root: Path,
    jobs: dict[str, Any],
    data_root: Path,
    pipelines: dict[str, Any] | None = None,
) -> Project:
    """The repository's bundle (conf/, jobs/) plus ``jobs`` (and ``pipelines``) and the
    task-kind test files."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO / "conf", root / "conf")
    shutil.copytree(REPO / "jobs", root / "jobs")
    for name in ("notebooks", "scripts", "wheel_pkg"):
        shutil.copytree(DATA / name, root / name)
    bundle = yaml.safe_load((REPO / "bundle.yml").read_text())
    bundle["resources"]["jobs"] = jobs
    if pipelines:
        bundle["resources"]["pipelines"] = pipelines
    (root / "bundle.yml").write_text(yaml.safe_dump(bundle, sort_keys=False))
    return load_project(root, var_overrides={"data_root": str(data_root)})
