"""The job bundle: ``bundle run`` (also ``run``), ``bundle export``, ``bundle validate``,
``schedule`` and ``runs``."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lakehouse.bundle.runlog import run_locks
from lakehouse.bundle.runner import run_job, select_job
from lakehouse.cli._context import CliError, _governed_command, _load, _session
from lakehouse.cli.catalog import report_table_mismatches
from lakehouse.cli.options import EngineOpt, ProjectDir, TargetOpt, VarOpt
from lakehouse.cli.render import console, new_table
from lakehouse.config.dab import ignored_keys
from lakehouse.config.loader import parse_var_overrides
from lakehouse.config.project import Project
from lakehouse.engine import EngineSession, build_session
from lakehouse.runtime.run import new_run_id
from lakehouse.summary import render_report

if TYPE_CHECKING:
    from rich.status import Status
    from rich.table import Table

    from lakehouse.bundle.context import RunReport
    from lakehouse.bundle.runlog import RunEntry
    from lakehouse.bundle.runner import TaskEvent, TaskRunner

bundle_app = typer.Typer(
    help="The bundle (databricks.yml or bundle.yml): validate, run jobs and pipelines, export.",
    no_args_is_help=True,
)

OnlyOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--only", help="Run just this task (repeatable); upstream tasks are assumed done."
    ),
]
FromOpt = Annotated[
    str | None, typer.Option("--from", help="Run this task and everything downstream of it.")
]
ParamsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--params",
        help="Job parameter NAME=VALUE for this run (repeatable, or a=1,b=2); overrides "
        "the default in the job's parameters.",
    ),
]
NoRetriesOpt = Annotated[
    bool,
    typer.Option("--no-retries", help="Ignore max_retries (when a scheduler retries instead)."),
]


@bundle_app.command("run")
def bundle_run(
    job: Annotated[
        str | None,
        typer.Argument(
            help="A job of resources.jobs (default: the only one), or a pipeline of "
            "resources.pipelines (an update, as `databricks bundle run PIPELINE` does)."
        ),
    ] = None,
    only: OnlyOpt = None,
    from_task: FromOpt = None,
    no_retries: NoRetriesOpt = False,
    project_dir: ProjectDir = None,
    target: TargetOpt = None,
    engine: EngineOpt = None,
    var: VarOpt = None,
    params: ParamsOpt = None,
    refresh: Annotated[
        list[str] | None,
        typer.Option("--refresh", help="Pipeline only: update just this dataset (repeatable)."),
    ] = None,
    full_refresh_all: Annotated[
        bool,
        typer.Option(
            "--full-refresh-all", help="Pipeline only: reset and recompute every dataset."
        ),
    ] = False,
    validate_only: Annotated[
        bool,
        typer.Option("--validate-only", help="Pipeline only: check the graph, write nothing."),
    ] = False,
) -> None:
    """Run a job's tasks in dependency order with retries and timeouts; record every attempt.
    Given a pipeline, run an update of it."""
    if job is not None and _is_pipeline(job, project_dir, target, engine, var):
        from lakehouse.cli.pipeline import run as run_pipeline_update

        run_pipeline_update(
            job,
            full_refresh=full_refresh_all,
            refresh=refresh,
            dry_run=validate_only,
            project_dir=project_dir,
            target=target,
            engine=engine,
            var=var,
        )
        return
    if refresh or full_refresh_all or validate_only:
        raise CliError("--refresh, --full-refresh-all and --validate-only are for pipelines")
    _run_bundle_job(job, only, from_task, no_retries, project_dir, target, engine, var, params)


def _is_pipeline(
    name: str,
    project_dir: Path | None,
    target: str | None,
    engine: str | None,
    var: list[str] | None,
) -> bool:
    """Whether ``name`` is a pipeline of the bundle (and not a job)."""
    resources = _load(project_dir, target, engine, var).bundle.resources
    return name in resources.pipelines and name not in resources.jobs


def _run_bundle_job(
    job: str | None,
    only: list[str] | None,
    from_task: str | None,
    no_retries: bool,
    project_dir: Path | None,
    target: str | None,
    engine: str | None,
    var: list[str] | None,
    params: list[str] | None = None,
) -> None:
    from lakehouse.bundle.job_level import parse_params, resolve_job_parameters
    from lakehouse.bundle.runner import select_tasks

    project = _load(project_dir, target, engine, var)
    job_name, job_spec = select_job(project, job)
    select_tasks(job_spec, only, from_task)  # unknown task names fail before the engine starts
    job_parameters = parse_params(params)
    resolve_job_parameters(job_name, job_spec, job_parameters)  # unknown names fail early too
    with run_locks(project.data_root, job_name, job_spec.max_concurrent_runs):
        # locked before an engine starts: a refused run says so at once
        report = _run_locked(project, job_name, only, from_task, no_retries, var, job_parameters)
    render_report(report, console)
    if not report.succeeded:
        raise CliError(_job_failure(job_name, report))


def _run_locked(
    project: Project,
    job_name: str,
    only: list[str] | None,
    from_task: str | None,
    no_retries: bool,
    var: list[str] | None,
    job_parameters: dict[str, str] | None = None,
) -> RunReport:
    """Start the engine (or the spark-submit runner) and run the job; the report."""
    run_id = new_run_id()
    task_runner = None
    if project.engine.kind == "spark":
        import json
        import os

        from lakehouse.bundle.job_level import ENV_JOB_PARAMETERS

        # each task is a spark-submit process: it resolves the same job parameters
        os.environ[ENV_JOB_PARAMETERS] = json.dumps(job_parameters or {})
        session, task_runner = _spark_submit_run(project, job_name, run_id, var)
    else:
        session = _session(project, job_name)
    try:
        with console.status("") as status:
            return run_job(
                project,
                job_name,
                session,
                run_id=run_id,
                on_event=_task_event_printer(status, job_name),
                only=only,
                from_task=from_task,
                retries=not no_retries,
                task_runner=task_runner,
                engine=project.engine.kind,
                parameters=job_parameters,
            )
    finally:
        session.stop()


def _spark_submit_run(
    project: Project, job_name: str, run_id: str, var: list[str] | None
) -> tuple[EngineSession, TaskRunner]:
    """The embedded session for the run records and a task runner that spark-submits each task."""
    # Each task is a spark-submit process (killable, as on a cluster); this process only
    # keeps the run records and registrations, on the embedded engine.
    from lakehouse.bundle.submit import submit_task_runner
    from lakehouse.config.bundle_spec import EngineSpec
    from lakehouse.engine import jvm_delta_jars

    jvm_delta_jars(project.engine)  # a bad jar directory fails here, before any task
    with console.status("starting the embedded engine for the run records…"):
        session = build_session(
            EngineSpec(kind="sail"),
            warehouse_dir=project.data_root / "warehouse",
            app_name=f"{project.name}:{job_name}",
            log_dir=project.data_root / "logs",
            catalog=project.catalog.name,
        )
    task_runner = submit_task_runner(
        project,
        job_name,
        run_id,
        echo=lambda line: console.print(f"$ {line}", markup=False, highlight=False, soft_wrap=True),
        var_overrides=parse_var_overrides(var),
    )
    return session, task_runner


def _task_event_printer(status: Status, job_name: str) -> TaskEvent:
    """Show the running task in ``status`` and print one line per finished task."""

    def on_event(event: str, task: object, outcome: object) -> None:
        key = getattr(task, "task_key", "?")
        if event == "started":
            status.update(f"[bold]{job_name}[/] > {key} …")
        elif outcome is not None:
            state = getattr(outcome, "status", "")
            secs = getattr(outcome, "seconds", 0.0)
            tries = getattr(outcome, "attempts", 1)
            mark = {
                "SUCCESS": "[green]✓[/]",
                "FAILED": "[red]✗[/]",
                "TIMED_OUT": "[red]⏱[/]",
                "SKIPPED": "[yellow]-[/]",
                "EXCLUDED": "[dim]·[/]",
            }.get(state, "")
            retried = f" after {tries} attempts" if tries > 1 else ""
            console.print(f"{mark} {key} [dim]{state.lower()} {secs:.1f}s{retried}[/]")

    return on_event


def _job_failure(job_name: str, report: RunReport) -> str:
    """One line naming the first failed task and the tasks skipped because of it."""
    failed = [t for t in report.tasks if t.status in ("FAILED", "TIMED_OUT")]
    skipped = [t.task_key for t in report.tasks if t.status == "SKIPPED"]
    first = failed[0] if failed else None
    detail = f"task {first.task_key}: {first.error}" if first else "failed"
    also = f" (skipped: {', '.join(skipped)})" if skipped else ""
    return f"job {job_name} failed: {detail}{also}"


def schedule(
    job: Annotated[
        str | None,
        typer.Argument(help="Only this job (default: every job that has a schedule)."),
    ] = None,
    project_dir: ProjectDir = None,
    target: TargetOpt = None,
    var: VarOpt = None,
    max_fires: Annotated[
        int | None,
        typer.Option(
            "--max-fires", min=1, help="Stop after this many fire times (started or skipped)."
        ),
    ] = None,
    poll_seconds: Annotated[
        float,
        typer.Option(
            "--poll-seconds", min=0.1, help="How often file_arrival triggers look for new files."
        ),
    ] = 10.0,
) -> None:
    """Run the bundle's job schedules and triggers (periodic, file_arrival) in the foreground
    until Ctrl-C; a job never overlaps itself beyond max_concurrent_runs."""
    from lakehouse.bundle.schedule import Scheduler, bundle_run_launcher

    project = _load(project_dir, target, None, var)
    launch = bundle_run_launcher(project, var_overrides=parse_var_overrides(var))
    console.print(
        f"scheduling bundle [bold]{project.name}[/] · target {project.target_name} · "
        f"runs log to {project.data_root / 'logs'} · Ctrl-C stops"
    )
    scheduler = Scheduler(
        project,
        launch,
        job=job,
        echo=lambda line: console.print(line, markup=False, highlight=False),
        file_poll_s=poll_seconds,
    )
    summary = scheduler.run(max_fires=max_fires)
    failed = sum(1 for _, _, code in summary.finished if code != 0)
    console.print(
        f"{summary.started} started · {summary.skipped} skipped · "
        f"{len(summary.finished)} finished ({failed} failed)"
        + (f" · {summary.failed_to_start} could not start" if summary.failed_to_start else "")
    )
    if summary.interrupted:
        raise typer.Exit(130)


def runs(
    job: Annotated[str | None, typer.Argument(help="Only this job's runs.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many runs.")] = 10,
    project_dir: ProjectDir = None,
    target: TargetOpt = None,
    engine: EngineOpt = None,
    var: VarOpt = None,
) -> None:
    """List recent job runs from the run records: status, duration, tasks and attempts."""
    from lakehouse.bundle.runlog import RunLog

    project = _load(project_dir, target, engine, var)
    logged = RunLog(project.data_root).entries(job)
    by_run = _attempts_by_run(project, job)
    if not by_run and not logged:
        console.print("no job runs recorded yet")
        return
    console.print(_job_runs_table(by_run, logged, limit))


def _attempts_by_run(project: Project, job: str | None) -> dict[str, list[Any]]:
    """The recorded task attempts per run id, of one job or all."""
    from pyspark.sql import functions as F

    from lakehouse.config.system_tables import SystemTable, system_table_name

    with _governed_command(project, "runs") as adapter:
        records = adapter.read(system_table_name(project.catalog.name, SystemTable.JOB_RUNS))
        if job:
            records = records.where(F.col("job") == job)
        rows = records.collect()
    by_run: dict[str, list[Any]] = {}
    for r in rows:
        by_run.setdefault(r["run_id"], []).append(r)
    return by_run


def _job_runs_table(by_run: dict[str, list[Any]], logged: dict[str, RunEntry], limit: int) -> Table:
    """The newest ``limit`` runs, one row each (a run the run log knows but no task ended
    in shows from the run log alone)."""
    out = new_table(
        "job runs (newest first)",
        ("run id", "job", "status", "started", "seconds", "tasks", "retried / failed / skipped"),
    )
    for run_id in sorted(set(by_run) | set(logged), reverse=True)[:limit]:
        out.add_row(*_job_run_row(run_id, by_run.get(run_id, []), logged.get(run_id)))
    return out


STATUS_STYLES = {"SUCCESS": "green", "RUNNING": "yellow"}


def _job_run_row(run_id: str, attempts: list[Any], entry: RunEntry | None) -> tuple[str, ...]:
    """One run: its status, its time span and notable tasks.

    The status is the run log's when the run did not end normally (RUNNING, or ABANDONED:
    started, never ended, its process gone); else it comes from each task's final attempt.
    """
    from lakehouse.bundle.runlog import ABANDONED, RUNNING, run_status

    final: dict[str, Any] = {}
    for r in sorted(attempts, key=lambda r: (r["task"], r["attempt"])):
        final[r["task"]] = r
    statuses = [r["status"] for r in final.values()]
    status = "SUCCESS" if statuses and all(s == "SUCCESS" for s in statuses) else "FAILED"
    logged = run_status(entry) if entry is not None else None
    if logged in (RUNNING, ABANDONED, "FAILED"):
        status = logged
    starts = [r["start_time"] for r in attempts if r["start_time"] is not None]
    ends = [r["end_time"] for r in attempts if r["end_time"] is not None]
    seconds = f"{(max(ends) - min(starts)).total_seconds():.1f}" if starts and ends else "-"
    retried = sorted({r["task"] for r in attempts if r["attempt"] > 1})
    failed = sorted(
        k for k, r in final.items() if r["status"] in ("FAILED", "TIMED_OUT", "ABANDONED")
    )
    skipped = sorted(k for k, r in final.items() if r["status"] == "SKIPPED")
    started = str(min(starts))[:19] if starts else (entry.started[:19] if entry else "-")
    return (
        run_id,
        attempts[0]["job"] if attempts else (entry.job if entry else "-"),
        f"[{STATUS_STYLES.get(status, 'bold red')}]{status}[/]",
        started.replace("T", " "),
        seconds,
        str(len(final)),
        " / ".join(", ".join(x) or "-" for x in (retried, failed, skipped)),
    )


class ExportFormat(StrEnum):
    airflow = "airflow"
    databricks = "databricks"


@bundle_app.command("export")
def bundle_export(
    fmt: Annotated[
        ExportFormat,
        typer.Argument(
            metavar="FORMAT",
            case_sensitive=False,
            help="airflow: a DAG file for one job · databricks: a databricks.yml for the bundle "
            "(a databricks.yml bundle: as written, its include files merged in).",
        ),
    ],
    job: Annotated[
        str | None,
        typer.Option(
            "--job",
            "-j",
            help="airflow: the job (default: the only one); databricks: only this job.",
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="File to write (default: <project>/dist/airflow/<bundle>_<job>.py or <project>/dist/databricks.yml).",
        ),
    ] = None,
    project_dir: ProjectDir = None,
    target: TargetOpt = None,
    var: VarOpt = None,
) -> None:
    """Export a job as an Airflow DAG file, or the bundle as a Databricks databricks.yml."""
    from lakehouse.bundle.dab_export import is_databricks_bundle, root_file
    from lakehouse.bundle.export import write_databricks

    project = _load(project_dir, target, None, var)
    overrides = parse_var_overrides(var)
    if fmt is ExportFormat.airflow:
        _export_airflow(project, job, output, overrides)
        return
    path = output or project.root / "dist" / "databricks.yml"
    write_databricks(project, path, jobs=[job] if job else None, var_overrides=overrides)
    if is_databricks_bundle(project.root):
        console.print(
            f"[green]✓[/] wrote {path} · {root_file(project.root).name} and its include files "
            "as written, in one file (paths relative to it)"
        )
        return
    console.print(
        f"[green]✓[/] wrote {path} · add workspace and compute settings before "
        "`databricks bundle deploy` (see the comments at its top)"
    )


def _export_airflow(
    project: Project, job: str | None, output: Path | None, overrides: dict[str, str]
) -> None:
    """Write one job's Airflow DAG file and print where, with the export's notes."""
    from lakehouse.bundle.export import airflow_dag_id, airflow_notes, write_airflow

    job_name, _ = select_job(project, job)
    path = output or project.root / "dist" / "airflow" / f"{airflow_dag_id(project, job_name)}.py"
    write_airflow(project, job_name, path, var_overrides=overrides)
    console.print(
        f"[green]✓[/] wrote {path} · DAG {airflow_dag_id(project, job_name)} · target {project.target_name}"
    )
    for note in airflow_notes(project, job_name):
        console.print(f"  [yellow]note[/]: {note}", highlight=False)


@bundle_app.command("validate")
def bundle_validate(
    project_dir: ProjectDir = None,
    target: TargetOpt = None,
    engine: EngineOpt = None,
    var: VarOpt = None,
    output: Annotated[str, typer.Option("--output", "-o", help="text | json")] = "text",
) -> None:
    """Validate the bundle (databricks.yml or bundle.yml) and its included files, and print
    the resolved configuration and the Databricks-only keys ignored locally."""
    project = _load(project_dir, target, engine, var)
    if output == "json":
        print(json.dumps(_resolved_config(project), indent=2, default=str))
        return
    if output != "text":
        raise CliError(f"--output: expected text or json, got {output!r}")
    console.print(
        f"[green]✓[/] bundle [bold]{project.name}[/] is valid · target {project.target_name} · engine {project.engine.kind}"
    )
    console.print(f"  variables: {', '.join(f'{k}={v}' for k, v in project.variables.items())}")
    console.print(
        f"  tables: {len(project.tables)} · sources: {len(project.sources)} · models: {len(project.models)}"
    )
    for name, job in project.bundle.resources.jobs.items():
        console.print(f"  job {name}: {' → '.join(t.task_key for t in job.tasks)}")
    for name, pipeline in project.pipelines.items():
        where = ".".join(p for p in (pipeline.catalog, pipeline.schema_name) if p)
        console.print(
            f"  pipeline {name}: {len(pipeline.libraries)} librar"
            f"{'y' if len(pipeline.libraries) == 1 else 'ies'}" + (f" → {where}" if where else "")
        )
    if project.schedules_paused:
        console.print("  schedules and triggers: paused (development mode or presets)")
    ignored = ignored_keys(project)
    if ignored:
        console.print(f"  ignored locally: {len(ignored)} Databricks-only key(s)")
        for key in ignored:
            console.print(f"    {key}", highlight=False)
    report_table_mismatches(project)


def _resolved_config(project: Project) -> dict[str, Any]:
    """The resolved bundle and conf/ as JSON-ready data."""
    return {
        "bundle": project.bundle.model_dump(mode="json"),
        "target": project.target_name,
        "engine": project.engine.model_dump(mode="json"),
        "variables": project.variables,
        "catalog": project.catalog.name,
        "tables": {
            name: {"layer": t.spec.layer, "location": t.location}
            for name, t in project.tables.items()
        },
        "sources": {k: v.model_dump(mode="json") for k, v in project.sources.items()},
        "silver": {k: v.model_dump(mode="json") for k, v in project.silver.items()},
        "gold": {k: v.model_dump(mode="json") for k, v in project.gold.items()},
        "models": {k: v.model_dump(mode="json") for k, v in project.models.items()},
        "ignored_locally": ignored_keys(project),
    }
