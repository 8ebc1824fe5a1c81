"""The ``jobs/*.py`` entry point: parse args, get a session, run one task, print a summary.

Works under ``spark-submit`` (the session spark-submit configured is used), with ``python``
(the bundle target's engine is built) and on Databricks (the active session is used).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from pathlib import Path

from rich.console import Console

from lakehouse.bundle.context import TaskFunction, TaskOutcome
from lakehouse.bundle.job_level import job_parameters_from_env
from lakehouse.config.jobs import Task
from lakehouse.config.loader import (
    ENV_PROJECT_DIR,
    find_bundle_root,
    load_project,
    parse_var_overrides,
)
from lakehouse.config.project import Project
from lakehouse.core.errors import one_line
from lakehouse.runtime.run import RunAs, open_run, project_session
from lakehouse.summary import render_report


def task_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Run one lakehouse bundle task; unknown arguments go to the task."
    )
    parser.add_argument(
        "--project-dir",
        type=Path,
        default=None,
        help="directory holding databricks.yml or bundle.yml",
    )
    parser.add_argument(
        "--target", "-t", default=None, help="bundle target (default: the default target)"
    )
    parser.add_argument("--engine", "-e", default=None, choices=["sail", "spark", "connect"])
    parser.add_argument("--var", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--job", default=None, help="job name recorded in the run report")
    parser.add_argument("--run-id", default=None)
    parser.add_argument("--task-key", default=None, help="the bundle task this run is")
    parser.add_argument(
        "--principal",
        default=None,
        help="acting principal when --job has no run_as (env LAKEHOUSE_PRINCIPAL)",
    )
    return parser


def _bundle_task(
    project: Project, script: Path, job: str | None, task_key: str | None
) -> tuple[str, list[str], Task | None]:
    """The task key, declared parameters and task of this script in the bundle.

    ``--task-key`` (with ``--job``) names the task exactly; otherwise the first task whose
    ``python_file`` is this script is taken.
    """
    jobs = project.bundle.resources.jobs
    for job_name, spec in jobs.items():
        if job is not None and job in jobs and job_name != job:
            continue
        for task in spec.tasks:
            spark_task = task.spark_python_task
            if task_key is not None:
                if task.task_key == task_key:
                    return task.task_key, task.parameters, task
            elif spark_task and Path(project.resolve_path(spark_task.python_file)) == script:
                return task.task_key, list(spark_task.parameters), task
    return task_key or script.stem, [], None


def run_task_script(task: TaskFunction, argv: list[str] | None = None) -> int:
    """Run ``task`` as a standalone job; returns the process exit code."""
    script = Path(sys.argv[0]).resolve()
    args, task_args = task_parser(script.name).parse_known_args(argv)
    console = Console(stderr=False)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        project = _load_project(args, script)
        task_key, declared, bundle_task = _bundle_task(project, script, args.job, args.task_key)
        run = open_run(
            project,
            job=args.job or task_key,
            start_session=lambda: project_session(project, task_key),
            run_as=RunAs(job=args.job, task=bundle_task, explicit=args.principal),
            run_id=args.run_id,
        )
        run.report.job_parameters = job_parameters_from_env(project.bundle.resources.jobs, args.job)
    except Exception as exc:
        if os.environ.get("LAKEHOUSE_DEBUG") == "1":
            raise
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 1
    try:
        with run.open_task(task_key, register=True) as scope:
            task(scope.context(parameters=task_args or declared))
        run.report.tasks.append(TaskOutcome(task_key, "SUCCESS"))
    except Exception as exc:
        if os.environ.get("LAKEHOUSE_DEBUG") == "1":
            traceback.print_exc()
        run.report.tasks.append(TaskOutcome(task_key, "FAILED", error=one_line(exc)))
    finally:
        render_report(run.report, console)
        run.close()
    return 0 if run.report.succeeded else 1


def _load_project(args: argparse.Namespace, script: Path) -> Project:
    """The bundle of ``--project-dir``, else of the directory holding the script (or the
    ``LAKEHOUSE_PROJECT_DIR`` one), with the target, engine and variables given."""
    root = args.project_dir or find_bundle_root(
        Path(os.environ[ENV_PROJECT_DIR]) if os.environ.get(ENV_PROJECT_DIR) else script.parent
    )
    return load_project(
        root,
        target=args.target,
        engine=args.engine,
        var_overrides=parse_var_overrides(args.var),
    )
