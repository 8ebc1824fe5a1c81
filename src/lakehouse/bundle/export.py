"""Export bundle jobs to other schedulers: an Airflow DAG file or a Databricks ``databricks.yml``.

**Airflow** (:func:`export_airflow`): one DAG per bundle job and one ``BashOperator`` per
bundle task, with the same dependencies, schedule (as a 5-field cron expression in the
schedule's timezone), retries, timeouts and pause state. Every Airflow task runs
``lakehouse bundle run <job> --only <task> --target <target> --project-dir <dir>`` on the
worker, which handles every engine (sail, JVM Spark, Spark Connect) and both task kinds, so
the worker needs the lakehouse package and a copy of the project. Retries and timeouts are
Airflow's: the DAG sets ``retries``, ``retry_delay`` (exponential backoff, as the bundle
runner does) and ``execution_timeout``.

**Databricks** (:func:`export_databricks`): a Databricks Asset Bundle configuration with the
bundle name, variables, targets (``mode``, ``default``), ``run_as`` and one
``resources.jobs.<job>`` per job (schedule as Quartz cron, max concurrent runs, permissions,
``spark_python_task`` tasks with ``depends_on``, retries and timeouts). Decisions:

- ``${var.x}``, ``${bundle.name}`` and ``${bundle.target}`` in task parameters, job names and
  descriptions are kept as written in ``bundle.yml`` (Databricks resolves the same syntax per
  target), so the file is not tied to the target it was exported with. Variable values given
  with ``--var`` or ``LAKEHOUSE_VAR_<name>`` at export time go into that target's
  ``variables``.
- Each ``spark_python_task`` gets ``--target ${bundle.target} --job <job>`` before its
  parameters: the ``jobs/`` entry point reads them, so a task loads the lakehouse target of
  the same name as the Databricks target and records its job.
- ``python_file`` is relative to the directory of the written ``databricks.yml``, as Databricks
  expects; when that is not the project root, ``sync.paths`` names the project root so the
  ``jobs/`` scripts, ``bundle.yml`` and ``conf/`` are uploaded too.
- A ``python_function_task`` has no Databricks equivalent (no task type calls a Python
  function by name): exporting a job that has one is an error naming the task. Give it a
  three-line ``jobs/`` script (``TASK = the function``) as a ``spark_python_task`` instead.
- Not expressible in the YAML, and so written as comments at the top of the file: the
  targets' lakehouse engines (Databricks runs on its own compute: add ``workspace.host`` and
  compute), webhook URLs (Databricks notifications name notification destination ids),
  ``max_parallel_tasks`` and task-level ``run_as``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml

from lakehouse.config.base import BUNDLE_FILE
from lakehouse.config.jobs import Job, Schedule, Task, task_order
from lakehouse.config.loader import read_yaml
from lakehouse.config.project import Project
from lakehouse.core.cron import CronError, Dialect, parse
from lakehouse.core.errors import ConfigError, LakehouseError


class ExportError(LakehouseError):
    """The bundle cannot be expressed in the export format; says what and why."""


# ---------------------------------------------------------------- cron conversion


def _convert(expression: str, dialect: Dialect, to: Literal["cron", "quartz"]) -> str:
    """Parse with the one cron parser and render for the other scheduler, or raise ExportError."""
    try:
        parsed = parse(expression, dialect)
        return parsed.to_cron() if to == "cron" else parsed.to_quartz()
    except CronError as exc:
        kind = "Quartz cron" if dialect == "quartz" else "cron"
        raise ExportError(f"{kind} expression {expression!r}: {exc.why}") from None


def quartz_to_cron(expression: str) -> str:
    """A Quartz cron expression (``sec min hour dom month dow [year]``) as 5-field cron.

    Quartz ``?`` becomes ``*`` and its days of the week (1-7 = SUN-SAT) become cron's (0-6).
    Raises :class:`ExportError` for what cron cannot express: seconds other than 0, a year,
    ``L``/``W``/``#``, or both a day of month and a day of week.
    """
    return _convert(expression, "quartz", "cron")


def cron_to_quartz(expression: str) -> str:
    """A 5-field cron expression (or ``@daily`` etc.) as Quartz: ``0 min hour dom month dow``.

    Cron's days of the week (0-7, 0 and 7 = SUN) become Quartz's (1-7 = SUN-SAT), and one of
    day-of-month / day-of-week becomes ``?`` as Quartz requires. Raises :class:`ExportError`
    when both are restricted (cron then runs on either; Quartz cannot say that).
    """
    return _convert(expression, "cron", "quartz")


def schedule_cron(schedule: Schedule) -> str:
    """The schedule as a 5-field cron expression (a ``cron_expression`` as written)."""
    if schedule.cron_expression is not None:
        return _convert(schedule.cron_expression, "cron", "cron")  # a typo fails here
    assert schedule.quartz_cron_expression is not None
    return quartz_to_cron(schedule.quartz_cron_expression)


def schedule_quartz(schedule: Schedule) -> str:
    """The schedule as a Quartz cron expression."""
    if schedule.quartz_cron_expression is not None:
        return schedule.quartz_cron_expression
    assert schedule.cron_expression is not None
    return cron_to_quartz(schedule.cron_expression)


# ---------------------------------------------------------------- shared


def _job(project: Project, name: str | None) -> tuple[str, Job]:
    jobs = project.bundle.resources.jobs
    if name is None:
        if len(jobs) == 1:
            return next(iter(jobs.items()))
        raise ConfigError(
            BUNDLE_FILE, "resources.jobs", f"name a job (defined: {', '.join(jobs) or 'none'})"
        )
    if name not in jobs:
        raise ConfigError(
            BUNDLE_FILE,
            f"resources.jobs.{name}",
            f"no such job (defined: {', '.join(jobs) or 'none'})",
        )
    return name, jobs[name]


def job_edges(job: Job) -> list[tuple[str, str]]:
    """The job's dependencies as (upstream, downstream) task keys, in dependency order."""
    return [(dep.task_key, task.task_key) for task in task_order(job) for dep in task.depends_on]


# ---------------------------------------------------------------- Airflow


_AIRFLOW_HEADER = '''\
"""Airflow DAG for the lakehouse bundle job {job!r} (bundle {bundle!r}, target {target!r}).

Generated by `lakehouse bundle export airflow`: re-export it after changing bundle.yml.
{description}
Each Airflow task runs one bundle task on the worker with
`lakehouse bundle run {job} --only <task> --target {target} --no-retries --project-dir <dir>`,
so the worker needs the lakehouse package and the project directory below.
Retries, retry delays and timeouts are Airflow's. Loads in Airflow 2.4+ and 3.x.
"""

from __future__ import annotations

import shlex
from datetime import timedelta

import pendulum

try:  # Airflow 3
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG
try:  # Airflow 3: the standard provider
    from airflow.providers.standard.operators.bash import BashOperator
except ImportError:  # Airflow 2
    from airflow.operators.bash import BashOperator

# Where the workers find the lakehouse command and the bundle: edit for your deployment.
LAKEHOUSE_COMMAND = {command!r}
PROJECT_DIR = {project_dir!r}
JOB = {job!r}
TARGET = {target!r}
VARIABLES = {variables!r}  # --var NAME=VALUE passed to every task


def lakehouse_task(task_key: str) -> str:
    """The shell command that runs one bundle task."""
    args = [*LAKEHOUSE_COMMAND, "bundle", "run", JOB, "--only", task_key, "--target", TARGET]
    args += ["--no-retries"]  # Airflow owns retries and timeouts
    args += ["--project-dir", PROJECT_DIR]
    for name, value in VARIABLES.items():
        args += ["--var", f"{{name}}={{value}}"]
    command = " ".join(shlex.quote(arg) for arg in args)
    # a command ending in .sh/.bash would be read as a template file by BashOperator
    return command + " " if command.endswith((".sh", ".bash")) else command

'''


def airflow_dag_id(project: Project, job_name: str) -> str:
    return f"{project.name}_{job_name}"


def export_airflow(
    project: Project,
    job_name: str | None = None,
    *,
    var_overrides: Mapping[str, str] | None = None,
    project_dir: str | Path | None = None,
    command: Sequence[str] = ("lakehouse",),
) -> str:
    """Python source of an Airflow DAG file running the bundle job ``job_name``.

    ``project_dir`` (default: the project's absolute root) and ``command`` say where the
    workers find the bundle and the ``lakehouse`` command; ``var_overrides`` are passed to
    every task as ``--var``. Raises :class:`ExportError` for a schedule cron cannot express.
    """
    name, job = _job(project, job_name)
    schedule = job.schedule
    cron = schedule_cron(schedule) if schedule is not None else None
    timezone = schedule.timezone_id if schedule is not None else "UTC"
    paused = schedule is not None and schedule.pause_status == "PAUSED"
    run_as = job.run_as or project.bundle.run_as
    description = job.description or job.name or ""
    docstring = description.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    lines = [
        _AIRFLOW_HEADER.format(
            job=name,
            bundle=project.name,
            target=project.target_name,
            description=f"\n{docstring}\n" if docstring else "",
            command=list(command),
            project_dir=str(project_dir or project.root.resolve()),
            variables=dict(var_overrides or {}),
        ),
        "with DAG(",
        f"    dag_id={airflow_dag_id(project, name)!r},",
    ]
    if description:
        lines.append(f"    description={description!r},")
    if schedule is None:
        lines.append("    schedule=None,")
    else:
        origin = schedule.quartz_cron_expression or schedule.cron_expression
        lines.append(f"    schedule={cron!r},  # bundle.yml: {origin} ({timezone})")
    lines += [
        f"    start_date=pendulum.datetime(2024, 1, 1, tz={timezone!r}),",
        "    catchup=False,",
        f"    is_paused_upon_creation={paused!r},",
        f"    max_active_runs={job.max_concurrent_runs!r},",
        f"    max_active_tasks={job.max_parallel_tasks!r},",
        f"    tags={['lakehouse', project.name, name]!r},",
    ]
    if run_as is not None:
        lines.append(f"    default_args={{'owner': {run_as.principal!r}}},")
    lines += [") as dag:", "    tasks = {}"]
    for task in task_order(job):
        lines += _airflow_task(task)
    edges = job_edges(job)
    if edges:
        lines.append("")
        lines += [f"    tasks[{up!r}] >> tasks[{down!r}]" for up, down in edges]
    return "\n".join(lines) + "\n"


def _airflow_task(task: Task) -> list[str]:
    key = task.task_key
    lines = [
        f"    tasks[{key!r}] = BashOperator(",
        f"        task_id={key!r},",
        f"        bash_command=lakehouse_task({key!r}),",
    ]
    if task.description:
        lines.append(f"        doc_md={task.description!r},")
    lines.append(f"        retries={task.max_retries!r},")
    if task.max_retries:
        lines += [
            f"        retry_delay=timedelta(milliseconds={task.min_retry_interval_millis!r}),",
            "        retry_exponential_backoff=True,",
        ]
    if task.timeout_seconds:
        lines.append(f"        execution_timeout=timedelta(seconds={task.timeout_seconds!r}),")
    lines.append("    )")
    return lines


def write_airflow(
    project: Project,
    job_name: str | None,
    path: Path,
    *,
    var_overrides: Mapping[str, str] | None = None,
    project_dir: str | Path | None = None,
) -> Path:
    """Write the DAG file for ``job_name`` to ``path`` (parents created)."""
    source = export_airflow(project, job_name, var_overrides=var_overrides, project_dir=project_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source, encoding="utf-8")
    return path


def airflow_notes(project: Project, job_name: str | None = None) -> list[str]:
    """What the DAG cannot carry over exactly."""
    name, job = _job(project, job_name)
    notes = []
    if any(job.webhook_notifications.model_dump().values()):
        notes.append(
            f"job {name}: webhook_notifications are called by `lakehouse bundle run` for each "
            "Airflow task (a one-task run); use Airflow callbacks for per-DAG-run notifications"
        )
    for task in job.tasks:
        if task.timeout_seconds and task.max_retries and not task.retry_on_timeout:
            notes.append(
                f"task {task.task_key}: Airflow retries a timed-out attempt too "
                "(retry_on_timeout: false cannot be expressed)"
            )
    return notes


# ---------------------------------------------------------------- Databricks


def _keeps_references(raw: Any) -> bool:
    return isinstance(raw, str) and "${" in raw


def _raw_or(raw: Any, resolved: Any) -> Any:
    """The value as written in bundle.yml when it holds ``${...}`` references, else resolved."""
    return raw if _keeps_references(raw) else resolved


def _raw_parameters(raw_task: Mapping[str, Any], resolved: list[str]) -> list[Any]:
    raw = (raw_task.get("spark_python_task") or {}).get("parameters")
    if isinstance(raw, list) and len(raw) == len(resolved):
        return [_raw_or(r, v) for r, v in zip(raw, resolved, strict=True)]
    return list(resolved)


def _relative_python_file(project: Project, python_file: str, bundle_dir: Path) -> str:
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", python_file) or python_file.startswith("/"):
        return python_file  # a URI or workspace path: as it is
    absolute = (project.root / python_file).resolve()
    relative = Path(os.path.relpath(absolute, bundle_dir.resolve())).as_posix()
    return relative if relative.startswith("../") else f"./{relative}"


def export_databricks(
    project: Project,
    *,
    jobs: Sequence[str] | None = None,
    bundle_dir: Path | None = None,
    var_overrides: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The ``databricks.yml`` mapping for the bundle's jobs (or just ``jobs``).

    ``bundle_dir`` is where the file will be written (default: the project root); paths are
    relative to it. ``var_overrides`` (the export's ``--var``) go into the current target's
    ``variables``; values from ``LAKEHOUSE_VAR_<name>`` are found there too.
    """
    raw = read_yaml(project.root / BUNDLE_FILE, BUNDLE_FILE)
    bundle_dir = (bundle_dir or project.root).resolve()
    spec = project.bundle
    selected = [_job(project, j)[0] for j in jobs] if jobs else list(spec.resources.jobs)

    doc: dict[str, Any] = {"bundle": {"name": project.name}}
    root = project.root.resolve()
    if bundle_dir != root:
        doc["sync"] = {"paths": [Path(os.path.relpath(root, bundle_dir)).as_posix()]}
    if spec.variables:
        variables: dict[str, Any] = {}
        for key, var in spec.variables.items():
            entry: dict[str, Any] = {}
            if var.description:
                entry["description"] = var.description
            if var.default is not None:
                entry["default"] = var.default
            variables[key] = entry
        doc["variables"] = variables
    if spec.run_as is not None:
        doc["run_as"] = spec.run_as.model_dump(exclude_none=True)
    doc["targets"] = _databricks_targets(project, raw, var_overrides or {})
    raw_jobs = ((raw.get("resources") or {}).get("jobs")) or {}
    doc["resources"] = {
        "jobs": {
            name: _databricks_job(project, name, raw_jobs.get(name) or {}, bundle_dir)
            for name in selected
        }
    }
    return doc


def _databricks_targets(
    project: Project, raw: Mapping[str, Any], overrides: Mapping[str, str]
) -> dict[str, Any]:
    raw_targets = raw.get("targets") or {}
    defaults = {k: v.default for k, v in project.bundle.variables.items()}
    targets: dict[str, Any] = {}
    for name, target in project.bundle.targets.items():
        entry: dict[str, Any] = {"mode": target.mode}
        if target.default:
            entry["default"] = True
        values = dict((raw_targets.get(name) or {}).get("variables") or {})
        if name == project.target_name:
            for var, value in project.variables.items():
                expected = values.get(var, defaults.get(var))
                if var in overrides or str(value) != str(expected):
                    values[var] = overrides.get(var, value)
        if values:
            entry["variables"] = values
        targets[name] = entry
    return targets


def _databricks_job(
    project: Project, name: str, raw_job: Mapping[str, Any], bundle_dir: Path
) -> dict[str, Any]:
    job = project.bundle.resources.jobs[name]
    out: dict[str, Any] = {"name": _raw_or(raw_job.get("name"), job.name or name)}
    if job.description:
        out["description"] = _raw_or(raw_job.get("description"), job.description)
    if job.run_as is not None:
        out["run_as"] = job.run_as.model_dump(exclude_none=True)
    if job.schedule is not None:
        out["schedule"] = {
            "quartz_cron_expression": schedule_quartz(job.schedule),
            "timezone_id": job.schedule.timezone_id,
            "pause_status": job.schedule.pause_status,
        }
    out["max_concurrent_runs"] = job.max_concurrent_runs
    if job.permissions:
        out["permissions"] = [p.model_dump(exclude_none=True) for p in job.permissions]
    raw_tasks = {t.get("task_key"): t for t in raw_job.get("tasks") or [] if isinstance(t, Mapping)}
    out["tasks"] = [
        _databricks_task(project, name, task, raw_tasks.get(task.task_key) or {}, bundle_dir)
        for task in job.tasks
    ]
    return out


def _databricks_task(
    project: Project, job: str, task: Task, raw_task: Mapping[str, Any], bundle_dir: Path
) -> dict[str, Any]:
    if task.kind not in ("spark_python_task", "python_function_task"):
        # a Databricks task kind (notebook, wheel, pipeline, run_job, condition): as written
        return dict(raw_task) or task.model_dump(exclude_defaults=True, exclude_none=True)
    if task.spark_python_task is None:
        assert task.python_function_task is not None
        raise ExportError(
            f"job {job}, task {task.task_key}: a python_function_task "
            f"({task.python_function_task.function}) has no Databricks equivalent; give it a "
            "jobs/ script (TASK = that function) as a spark_python_task, or export other jobs "
            "with --job"
        )
    out: dict[str, Any] = {"task_key": task.task_key}
    if task.description:
        out["description"] = _raw_or(raw_task.get("description"), task.description)
    if task.depends_on:
        out["depends_on"] = [{"task_key": d.task_key} for d in task.depends_on]
    parameters = ["--target", "${bundle.target}", "--job", job]
    parameters += _raw_parameters(raw_task, task.spark_python_task.parameters)
    out["spark_python_task"] = {
        "python_file": _relative_python_file(
            project, task.spark_python_task.python_file, bundle_dir
        ),
        "parameters": parameters,
    }
    if task.max_retries:
        out["max_retries"] = task.max_retries
        out["min_retry_interval_millis"] = task.min_retry_interval_millis
        out["retry_on_timeout"] = task.retry_on_timeout
    if task.timeout_seconds:
        out["timeout_seconds"] = task.timeout_seconds
    return out


def databricks_notes(project: Project, jobs: Sequence[str] | None = None) -> list[str]:
    """What ``databricks.yml`` cannot carry, for the comment block at its top."""
    raw_targets = read_yaml(project.root / BUNDLE_FILE, BUNDLE_FILE).get("targets") or {}
    notes = [
        "Before `databricks bundle deploy`: add workspace settings (workspace.host) to the",
        "targets, and compute for the tasks (job_clusters + job_cluster_key, existing_cluster_id",
        "or serverless environments) with the lakehouse package installed.",
        "",
        "The lakehouse engine of each target (Databricks runs the tasks on its own compute):",
    ]
    for name in project.bundle.targets:
        engine = (raw_targets.get(name) or {}).get("engine") or {"kind": "sail"}
        flow = yaml.safe_dump(
            engine, default_flow_style=True, width=10_000, sort_keys=False
        ).strip()
        notes.append(f"  {name}: {flow}")
    lost: list[str] = []
    selected = list(jobs) if jobs else list(project.bundle.resources.jobs)
    for name in selected:
        job = project.bundle.resources.jobs[name]
        hooks = job.webhook_notifications
        for event in ("on_start", "on_success", "on_failure"):
            urls = [h.url for h in getattr(hooks, event)]
            if urls:
                lost.append(
                    f"  job {name}: webhook_notifications.{event} {', '.join(urls)} "
                    "(Databricks wants notification destination ids: {id: ...})"
                )
        if job.max_parallel_tasks > 1:
            lost.append(
                f"  job {name}: max_parallel_tasks {job.max_parallel_tasks} "
                "(Databricks runs independent tasks side by side)"
            )
        effective = job.run_as or project.bundle.run_as
        for task in job.tasks:
            if task.run_as is not None and task.run_as != effective:
                lost.append(
                    f"  job {name}, task {task.task_key}: run_as {task.run_as.principal} "
                    "(Databricks runs every task as the job's run_as)"
                )
            if task.max_retries > 1:
                lost.append(
                    f"  job {name}, task {task.task_key}: the retry delay doubling "
                    "(Databricks waits min_retry_interval_millis before every retry)"
                )
    if lost:
        notes += ["", "Not exported:", *lost]
    return notes


def databricks_yaml(
    project: Project,
    *,
    jobs: Sequence[str] | None = None,
    bundle_dir: Path | None = None,
    var_overrides: Mapping[str, str] | None = None,
) -> str:
    """The ``databricks.yml`` text: a comment block with the notes, then the YAML."""
    doc = export_databricks(project, jobs=jobs, bundle_dir=bundle_dir, var_overrides=var_overrides)
    header = [
        f"# Databricks Asset Bundle for the lakehouse bundle {project.name!r}, generated by",
        "# `lakehouse bundle export databricks` from bundle.yml: re-export it after changing bundle.yml.",
        "#",
        *(f"# {line}".rstrip() for line in databricks_notes(project, jobs)),
    ]
    body = yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=100)
    return "\n".join(header) + "\n\n" + body


def write_databricks(
    project: Project,
    path: Path,
    *,
    jobs: Sequence[str] | None = None,
    var_overrides: Mapping[str, str] | None = None,
) -> Path:
    """Write ``databricks.yml`` to ``path`` (parents created); paths relative to its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = databricks_yaml(project, jobs=jobs, bundle_dir=path.parent, var_overrides=var_overrides)
    path.write_text(text, encoding="utf-8")
    return path
