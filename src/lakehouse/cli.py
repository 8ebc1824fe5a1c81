"""The ``lakehouse`` command.

Every failure exits non-zero with one readable line (``LAKEHOUSE_DEBUG=1`` shows the
traceback).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import TaskID
from rich.table import Table

from lakehouse import __version__
from lakehouse.bundle.context import TaskContext
from lakehouse.bundle.runner import new_run_id, run_job, select_job
from lakehouse.config.loader import Project, load_project, parse_var_overrides
from lakehouse.core.errors import one_line
from lakehouse.engine import EngineSession, build_session
from lakehouse.summary import render_report
from lakehouse.tables import DeltaTables

app = typer.Typer(
    help="lakehouse: medallion lakehouse jobs (Bronze -> Silver -> Gold -> MLflow) on open-source Spark.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
bundle_app = typer.Typer(
    help="The job bundle (bundle.yml): validate, run, export.", no_args_is_help=True
)
app.add_typer(bundle_app, name="bundle")
catalog_app = typer.Typer(
    help="The catalog as code: objects, owners, grants, masks.", no_args_is_help=True
)
app.add_typer(catalog_app, name="catalog")

_options: dict[str, str | None] = {"principal": None}


@app.callback()
def _global_options(
    principal: Annotated[
        str | None,
        typer.Option(
            "--principal",
            "-p",
            envvar="LAKEHOUSE_PRINCIPAL",
            help="Act as this user / service principal (default: the bundle's run_as).",
        ),
    ] = None,
) -> None:
    """lakehouse: medallion lakehouse jobs on open-source Spark."""
    _options["principal"] = principal


def _governed(project: Project, session: EngineSession, job: str, **kwargs: object) -> DeltaTables:
    """The table adapter for a CLI command, acting as the CLI principal."""
    from lakehouse.bundle.runner import new_run_id
    from lakehouse.catalog.governance import governed_tables, resolve_principal

    return governed_tables(
        session.spark,
        project,
        session.kind,
        principal=resolve_principal(project, explicit=_options["principal"]),
        run_id=str(kwargs.pop("run_id", None) or new_run_id()),
        job=job,
        on_write=kwargs.pop("on_write", None),
    )


console = Console(width=None if sys.stdout.isatty() else 140)
err_console = Console(stderr=True)

ProjectDir = Annotated[
    Path | None,
    typer.Option(
        "--project-dir", "-C", help="Directory holding bundle.yml (default: nearest above cwd)."
    ),
]
TargetOpt = Annotated[
    str | None, typer.Option("--target", "-t", help="Bundle target (env LAKEHOUSE_TARGET).")
]
EngineOpt = Annotated[
    str | None,
    typer.Option(
        "--engine",
        "-e",
        help="sail | spark | connect (env LAKEHOUSE_ENGINE); overrides the target.",
    ),
]
VarOpt = Annotated[
    list[str] | None, typer.Option("--var", help="Set a bundle variable: NAME=VALUE (repeatable).")
]


def _load(
    project_dir: Path | None, target: str | None, engine: str | None, var: list[str] | None
) -> Project:
    return load_project(
        project_dir, target=target, engine=engine, var_overrides=parse_var_overrides(var)
    )


def _session(project: Project, app_name: str) -> EngineSession:
    with console.status(f"starting the {project.engine.kind} engine…"):
        return build_session(
            project.engine,
            warehouse_dir=project.data_root / "warehouse",
            app_name=app_name,
            log_dir=project.data_root / "logs",
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
NoRetriesOpt = Annotated[
    bool,
    typer.Option("--no-retries", help="Ignore max_retries (when a scheduler retries instead)."),
]


@bundle_app.command("run")
def bundle_run(
    job: Annotated[
        str | None,
        typer.Argument(help="Job from bundle.yml resources.jobs (default: the only one)."),
    ] = None,
    only: OnlyOpt = None,
    from_task: FromOpt = None,
    no_retries: NoRetriesOpt = False,
    project_dir: ProjectDir = None,
    target: TargetOpt = None,
    engine: EngineOpt = None,
    var: VarOpt = None,
) -> None:
    """Run a job's tasks in dependency order with retries and timeouts; record every attempt."""
    _run_bundle_job(job, only, from_task, no_retries, project_dir, target, engine, var)


# `lakehouse run` is `lakehouse bundle run`
app.command("run", help="Run a bundle job's task DAG and print a summary (same as `bundle run`).")(
    bundle_run
)


def _run_bundle_job(
    job: str | None,
    only: list[str] | None,
    from_task: str | None,
    no_retries: bool,
    project_dir: Path | None,
    target: str | None,
    engine: str | None,
    var: list[str] | None,
) -> None:
    from lakehouse.bundle.runner import select_tasks

    project = _load(project_dir, target, engine, var)
    job_name, job_spec = select_job(project, job)
    select_tasks(job_spec, only, from_task)  # unknown task names fail before the engine starts
    run_id = new_run_id()
    task_runner = None
    if project.engine.kind == "spark":
        # Each task is a spark-submit process (killable, as on a cluster); this process only
        # keeps the run records and registrations, on the embedded engine.
        from lakehouse.bundle.submit import submit_task_runner
        from lakehouse.config.models import EngineSpec
        from lakehouse.engine import jvm_delta_jars

        jvm_delta_jars(project.engine)  # a bad jar directory fails here, before any task
        with console.status("starting the embedded engine for the run records…"):
            session = build_session(
                EngineSpec(kind="sail"),
                warehouse_dir=project.data_root / "warehouse",
                app_name=f"{project.name}:{job_name}",
                log_dir=project.data_root / "logs",
            )
        task_runner = submit_task_runner(
            project,
            job_name,
            run_id,
            echo=lambda line: console.print(
                f"$ {line}", markup=False, highlight=False, soft_wrap=True
            ),
            var_overrides=parse_var_overrides(var),
        )
    else:
        session = _session(project, f"{project.name}:{job_name}")
    try:
        with console.status("") as status:

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
                    }.get(state, "")
                    retried = f" after {tries} attempts" if tries > 1 else ""
                    console.print(f"{mark} {key} [dim]{state.lower()} {secs:.1f}s{retried}[/]")

            report = run_job(
                project,
                job_name,
                session,
                run_id=run_id,
                on_event=on_event,
                only=only,
                from_task=from_task,
                retries=not no_retries,
                task_runner=task_runner,
                engine=project.engine.kind,
            )
    finally:
        session.stop()
    render_report(report, console)
    if not report.succeeded:
        failed = [t for t in report.tasks if t.status in ("FAILED", "TIMED_OUT")]
        skipped = [t.task_key for t in report.tasks if t.status == "SKIPPED"]
        first = failed[0] if failed else None
        detail = f"task {first.task_key}: {first.error}" if first else "failed"
        also = f" (skipped: {', '.join(skipped)})" if skipped else ""
        raise CliError(f"job {job_name} failed: {detail}{also}")


@app.command()
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
) -> None:
    """Run the bundle's job schedules in the foreground until Ctrl-C; a job never overlaps itself."""
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


@app.command()
def runs(
    job: Annotated[str | None, typer.Argument(help="Only this job's runs.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many runs.")] = 10,
    project_dir: ProjectDir = None,
    target: TargetOpt = None,
    engine: EngineOpt = None,
    var: VarOpt = None,
) -> None:
    """List recent job runs from the run records: status, duration, tasks and attempts."""
    from pyspark.sql import functions as F

    from lakehouse.config.loader import job_runs_table_name

    project = _load(project_dir, target, engine, var)
    with _governed_command(project, "runs") as adapter:
        records = adapter.read(job_runs_table_name(project.catalog.name))
        if job:
            records = records.where(F.col("job") == job)
        rows = records.collect()
    by_run: dict[str, list[Any]] = {}
    for r in rows:
        by_run.setdefault(r["run_id"], []).append(r)
    if not by_run:
        console.print("no job runs recorded yet")
        return
    out = Table(title="job runs (newest first)")
    for col in (
        "run id",
        "job",
        "status",
        "started",
        "seconds",
        "tasks",
        "retried / failed / skipped",
    ):
        out.add_column(col, overflow="fold")
    for run_id in sorted(by_run, reverse=True)[:limit]:
        attempts = by_run[run_id]
        final: dict[str, Any] = {}
        for r in sorted(attempts, key=lambda r: (r["task"], r["attempt"])):
            final[r["task"]] = r
        statuses = [r["status"] for r in final.values()]
        status = "SUCCESS" if all(s == "SUCCESS" for s in statuses) else "FAILED"
        starts = [r["start_time"] for r in attempts if r["start_time"] is not None]
        ends = [r["end_time"] for r in attempts if r["end_time"] is not None]
        seconds = f"{(max(ends) - min(starts)).total_seconds():.1f}" if starts and ends else "-"
        retried = sorted({r["task"] for r in attempts if r["attempt"] > 1})
        failed = sorted(k for k, r in final.items() if r["status"] in ("FAILED", "TIMED_OUT"))
        skipped = sorted(k for k, r in final.items() if r["status"] == "SKIPPED")
        style = "green" if status == "SUCCESS" else "bold red"
        out.add_row(
            run_id,
            attempts[0]["job"],
            f"[{style}]{status}[/]",
            str(min(starts))[:19] if starts else "-",
            seconds,
            str(len(final)),
            " / ".join(", ".join(x) or "-" for x in (retried, failed, skipped)),
        )
    console.print(out)


@app.command()
def tables(
    project_dir: ProjectDir = None,
    target: TargetOpt = None,
    engine: EngineOpt = None,
    var: VarOpt = None,
) -> None:
    """List the catalog's tables with row counts and latest Delta versions."""
    project = _load(project_dir, target, engine, var)
    session = _session(project, f"{project.name}:tables")
    try:
        adapter = _governed(project, session, "tables")
        gov = adapter.governance
        table = Table(title=f"catalog {project.catalog.name} · target {project.target_name}")
        for col, justify in (
            ("table", "left"),
            ("layer", "left"),
            ("rows", "right"),
            ("version", "right"),
            ("location", "left"),
        ):
            table.add_column(col, justify=justify, overflow="fold")  # type: ignore[arg-type]
        for ref in sorted(project.tables.values(), key=lambda r: (r.schema, r.name)):
            if gov is not None and not gov.may("SELECT", ref.full_name):
                rows, version = "no SELECT", "-"
            elif adapter.exists(ref.full_name):
                rows, version = (
                    f"{adapter.row_count_unchecked(ref.full_name):,}",
                    str(adapter.version(ref.full_name)),
                )
            else:
                rows, version = "-", "not created"
            table.add_row(ref.full_name, ref.spec.layer, rows, version, ref.location)
        console.print(table)
    finally:
        session.stop()


@contextlib.contextmanager
def _governed_command(project: Project, command: str) -> Iterator[DeltaTables]:
    """A session and the governed table adapter for one read-only command, then cleanup."""
    session = _session(project, f"{project.name}:{command}")
    try:
        adapter = _governed(project, session, command)
        with adapter.task_scope(command):
            yield adapter
    finally:
        session.stop()


@contextlib.contextmanager
def _task_context(project: Project, job: str) -> Iterator[TaskContext]:
    """A session, the table adapter (catalog registered) and a run report for one command."""
    from lakehouse.bundle.context import RunReport, TaskContext
    from lakehouse.bundle.runner import new_run_id

    session = _session(project, f"{project.name}:{job}")
    report = RunReport(
        job=job, run_id=new_run_id(), target=project.target_name, engine=session.kind
    )
    try:
        tables = _governed(
            project, session, job, run_id=report.run_id, on_write=report.writes.append
        )
        with tables.task_scope(job):
            tables.register_all()
            yield TaskContext(
                spark=session.spark, project=project, tables=tables, report=report, task_key=job
            )
    finally:
        session.stop()


def _run_each(ctx: TaskContext, names: list[str], step: Callable[[str], object]) -> None:
    """Run ``step`` per name, recording each outcome instead of stopping at the first failure."""
    from lakehouse.bundle.context import TaskOutcome

    for name in names:
        started = time.perf_counter()
        try:
            step(name)
            ctx.report.tasks.append(TaskOutcome(name, "SUCCESS", time.perf_counter() - started))
        except Exception as exc:
            ctx.report.tasks.append(
                TaskOutcome(name, "FAILED", time.perf_counter() - started, one_line(exc))
            )


def _finish(ctx: TaskContext, what: str) -> None:
    render_report(ctx.report, console)
    failed = [t for t in ctx.report.tasks if t.status == "FAILED"]
    if failed:
        raise CliError(f"{what} of {failed[0].task_key} failed: {failed[0].error}")


@app.command()
def ingest(
    sources: Annotated[
        list[str] | None, typer.Argument(help="Sources from conf/ (default: all).")
    ] = None,
    project_dir: ProjectDir = None,
    target: TargetOpt = None,
    engine: EngineOpt = None,
    var: VarOpt = None,
) -> None:
    """Ingest new files / API batches of the given sources into Bronze."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from lakehouse.bronze.ingest import ingest_source

    project = _load(project_dir, target, engine, var)
    names = sources or list(project.sources)
    unknown = [n for n in names if n not in project.sources]
    if unknown:
        raise CliError(
            f"unknown source(s): {', '.join(unknown)} (configured: {', '.join(project.sources) or 'none'})"
        )
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with (
        _task_context(project, "ingest") as ctx,
        Progress(*columns, console=console, transient=True) as bar,
    ):
        bars: dict[str, TaskID] = {}

        def progress(what: str, done: int, total: int | None) -> None:
            if what not in bars:
                bars[what] = bar.add_task(what, total=total)
            bar.update(bars[what], completed=done, total=total)

        _run_each(ctx, names, lambda name: ingest_source(ctx, name, progress))
    _finish(ctx, "ingest")


@app.command()
def refine(
    tables_: Annotated[
        list[str] | None,
        typer.Argument(metavar="[TABLE]...", help="Silver tables (default: all)."),
    ] = None,
    project_dir: ProjectDir = None,
    target: TargetOpt = None,
    engine: EngineOpt = None,
    var: VarOpt = None,
    full_refresh: Annotated[
        bool,
        typer.Option(
            "--full-refresh",
            help="Re-read all of Bronze, not only the batches not refined yet.",
        ),
    ] = False,
) -> None:
    """Conform, validate, quarantine and MERGE new Bronze batches into Silver tables."""
    from lakehouse.silver.refine import RefineParams, refine_table

    project = _load(project_dir, target, engine, var)
    names = [_silver_name(project, t) for t in (tables_ or list(project.silver))]
    params = RefineParams(tables=tuple(names), full_refresh=full_refresh)
    with _task_context(project, "refine") as ctx, console.status("refining …"):
        _run_each(
            ctx,
            list(params.tables),
            lambda name: refine_table(ctx, name, full_refresh=params.full_refresh),
        )
    _finish(ctx, "refine")


def _silver_name(project: Project, name: str) -> str:
    """Accept ``catalog.schema.table``, ``schema.table`` or ``table`` for a Silver table."""
    matches = [t for t in project.silver if t == name or t.endswith("." + name)]
    if len(matches) != 1:
        raise CliError(
            f"no single Silver table matches {name!r} (configured: {', '.join(project.silver) or 'none'})"
        )
    return matches[0]


@app.command()
def quality(
    table: Annotated[
        str, typer.Argument(help="Silver table (catalog.schema.table, schema.table or table).")
    ],
    project_dir: ProjectDir = None,
    target: TargetOpt = None,
    engine: EngineOpt = None,
    var: VarOpt = None,
) -> None:
    """Print the latest data-quality results of a Silver table."""
    from pyspark.sql import functions as F

    from lakehouse.config.loader import dq_results_table_name

    project = _load(project_dir, target, engine, var)
    name = _silver_name(project, table)
    with _governed_command(project, "quality") as adapter:
        results = adapter.read(dq_results_table_name(project.catalog.name)).where(
            F.col("table") == name
        )
        latest = results.orderBy(F.col("evaluated_at").desc()).select("run_id").limit(1).collect()
        if not latest:
            raise CliError(f"{name}: no data-quality results yet (run `lakehouse refine {table}`)")
        run_id = latest[0]["run_id"]
        rows = results.where(F.col("run_id") == run_id).orderBy("rule").collect()
    out = Table(title=f"{name} · run {run_id}")
    for col, justify in (
        ("rule", "left"),
        ("expectation", "left"),
        ("action", "left"),
        ("evaluated", "right"),
        ("failed", "right"),
        ("pass rate", "right"),
        ("outcome", "left"),
    ):
        out.add_column(col, justify=justify)  # type: ignore[arg-type]
    styles = {"passed": "green", "warned": "yellow", "dropped": "yellow", "failed": "bold red"}
    for r in rows:
        out.add_row(
            r["rule"],
            r["expectation"],
            r["action"],
            f"{r['evaluated']:,}",
            f"{r['failed']:,}",
            f"{r['pass_rate']:.2%}",
            f"[{styles.get(r['outcome'], '')}]{r['outcome']}[/]",
        )
    console.print(out)
    console.print(f"Data Docs: {project.data_root / 'quality' / 'docs' / 'index.html'}")


samples_app = typer.Typer(
    help="The demo data: generator and local sample data API.", no_args_is_help=True
)
app.add_typer(samples_app, name="samples")


@app.command()
def train(
    models: Annotated[
        list[str] | None,
        typer.Argument(metavar="[MODEL]...", help="Models from conf/ (default: all)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Retrain even if data and settings are unchanged.")
    ] = False,
    project_dir: ProjectDir = None,
    target: TargetOpt = None,
    engine: EngineOpt = None,
    var: VarOpt = None,
) -> None:
    """Train a model's candidates, log them to MLflow, register the best, apply promotion."""
    from lakehouse.ml.train import TrainParams, train_model

    project = _load(project_dir, target, engine, var)
    names = models or list(project.models)
    _known_models(project, names)
    params = TrainParams(models=tuple(names), force=force)
    with _task_context(project, "train") as ctx, console.status("training …"):
        _run_each(
            ctx,
            list(params.models),
            lambda name: ctx.report.models.append(train_model(ctx, name, force=params.force)),
        )
    _finish(ctx, "training")


@app.command()
def score(
    models: Annotated[
        list[str] | None,
        typer.Argument(metavar="[MODEL]...", help="Models with a scoring section (default: all)."),
    ] = None,
    project_dir: ProjectDir = None,
    target: TargetOpt = None,
    engine: EngineOpt = None,
    var: VarOpt = None,
) -> None:
    """Batch-score each model's scoring table with its @champion into the predictions table."""
    from lakehouse.ml.score import score_model

    project = _load(project_dir, target, engine, var)
    names = models or [n for n, m in project.models.items() if m.scoring is not None]
    _known_models(project, names)
    with _task_context(project, "score") as ctx, console.status("scoring …"):
        _run_each(ctx, names, lambda name: score_model(ctx, name))
    _finish(ctx, "scoring")


@app.command()
def monitor(
    models: Annotated[
        list[str] | None,
        typer.Argument(metavar="[MODEL]...", help="Models (default: those under monitoring)."),
    ] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="End of the window (ISO time, UTC); default now.")
    ] = None,
    project_dir: ProjectDir = None,
    target: TargetOpt = None,
    engine: EngineOpt = None,
    var: VarOpt = None,
) -> None:
    """Monitor each champion: drift, data quality, performance, A/B; alerts printed and stored."""
    import datetime as dt

    from lakehouse.monitoring.monitor import monitor_model

    project = _load(project_dir, target, engine, var)
    names = models or list(project.monitoring.models)
    _known_models(project, names)
    try:
        end = dt.datetime.fromisoformat(as_of) if as_of else None
    except ValueError as exc:
        raise CliError(f"--as-of {as_of!r}: expected an ISO time like 2026-01-31T00:00") from exc
    with _task_context(project, "monitor") as ctx, console.status("monitoring …"):
        _run_each(ctx, names, lambda name: monitor_model(ctx, name, as_of=end))
    _finish(ctx, "monitoring")


def _known_models(project: Project, names: list[str]) -> None:
    unknown = [n for n in names if n not in project.models]
    if unknown:
        raise CliError(
            f"no model {unknown[0]!r} in conf/ (configured: {', '.join(project.models) or 'none'})"
        )


@app.command()
def serve(
    model: Annotated[
        str, typer.Argument(help="A model from conf/ (its registered name is served).")
    ],
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    host: Annotated[str, typer.Option(help="Bind address (loopback by default).")] = "127.0.0.1",
    challenger_share: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="Share of requests answered by @challenger (A/B)."),
    ] = 0.0,
    refresh_seconds: Annotated[
        float, typer.Option(min=0.1, help="Seconds between checks for moved aliases.")
    ] = 5.0,
    project_dir: ProjectDir = None,
    target: TargetOpt = None,
    var: VarOpt = None,
) -> None:
    """Serve MODEL's @champion over HTTP: POST /predict, GET /health, /model, /docs; Ctrl-C stops."""
    from lakehouse.serving.server import serve as serve_model

    project = _load(project_dir, target, None, var)
    _known_models(project, [model])
    name = project.models[model].registered_name
    console.print(
        f"serving models:/{name}@champion on http://{host}:{port} (docs: /docs)"
        + (f" · {challenger_share:.0%} to @challenger" if challenger_share else "")
        + f" · predictions logged to {project.data_root / 'landing' / 'predictions'}"
    )
    serve_model(
        project,
        model,
        host=host,
        port=port,
        challenger_share=challenger_share,
        refresh_seconds=refresh_seconds,
    )


@app.command()
def ui(
    model: Annotated[
        str | None,
        typer.Argument(help="A model from conf/ (default: the only one configured)."),
    ] = None,
    serving_url: Annotated[
        str, typer.Option(help="Base URL of `lakehouse serve` for the prediction form.")
    ] = "http://127.0.0.1:8000",
    port: Annotated[int, typer.Option(help="Port.")] = 8501,
    host: Annotated[str, typer.Option(help="Bind address (loopback by default).")] = "127.0.0.1",
    project_dir: ProjectDir = None,
    target: TargetOpt = None,
    engine: EngineOpt = None,
    var: VarOpt = None,
) -> None:
    """Web UI for MODEL: versions, a prediction form, data quality, drift, lineage; Ctrl-C stops."""
    from lakehouse.ui.server import serve as serve_ui

    project = _load(project_dir, target, engine, var)
    if model is None:
        if len(project.models) != 1:
            raise CliError(f"name a model (configured: {', '.join(project.models) or 'none'})")
        model = next(iter(project.models))
    _known_models(project, [model])
    with _governed_command(project, "ui") as adapter:
        console.print(
            f"UI of models:/{project.models[model].registered_name} on http://{host}:{port}"
            f" · predictions from {serving_url}"
        )
        serve_ui(project, model, adapter, serving_url=serving_url, host=host, port=port)


@app.command("models")
def models_(
    name: Annotated[
        str | None, typer.Argument(help="A registered model name (default: all).")
    ] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="text | json")] = "text",
    project_dir: ProjectDir = None,
    target: TargetOpt = None,
    var: VarOpt = None,
) -> None:
    """List registered models: versions, aliases and key holdout metrics."""
    from dataclasses import asdict

    from lakehouse.ml.registry import METRIC_COLUMNS, connect, list_versions, tracking_uri

    project = _load(project_dir, target, None, var)
    versions = list_versions(connect(project), name)
    if output == "json":
        typer.echo(json.dumps([asdict(v) for v in versions], indent=2))
        return
    if not versions:
        console.print(f"no registered models in {tracking_uri(project)}")
        return
    table = Table(title=f"registered models ({tracking_uri(project)})")
    for col in ("model", "version", "aliases", "created", *METRIC_COLUMNS, "promotion"):
        table.add_column(col, overflow="fold")
    for v in versions:
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(v.created / 1000))
        table.add_row(
            v.name,
            v.version,
            ", ".join(f"@{a}" for a in v.aliases),
            created,
            *[f"{v.metrics[m]:.3f}" if m in v.metrics else "-" for m in METRIC_COLUMNS],
            v.tags.get("lakehouse.promotion", ""),
        )
    console.print(table)


def _securable(project: Project, name: str) -> str:
    """Accept catalog, schema, table as full or partial names (``silver.orders``, ``orders``)."""
    catalog = project.catalog.name
    schemas = [f"{catalog}.{s}" for s in project.catalog.schemas]
    candidates = [catalog, *schemas, *project.tables]
    matches = [c for c in candidates if c == name or c.endswith("." + name)]
    if len(matches) != 1:
        raise CliError(
            f"no single catalog object matches {name!r}"
            + (f" (candidates: {', '.join(matches)})" if matches else "")
        )
    return matches[0]


@catalog_app.command("show")
def catalog_show(
    name: Annotated[
        str | None, typer.Argument(help="A schema or table (default: everything).")
    ] = None,
    project_dir: ProjectDir = None,
    target: TargetOpt = None,
    var: VarOpt = None,
) -> None:
    """Show catalog objects: owners, tags, columns with tags and masks."""
    from rich.tree import Tree

    from lakehouse.catalog.access import AccessPolicy

    project = _load(project_dir, target, None, var)
    policy = AccessPolicy(project.catalog, project.grants)
    catalog = project.catalog
    focus = _securable(project, name) if name else None
    if focus in project.tables:
        ref = project.tables[focus]
        out = Table(title=f"{focus} · {ref.spec.layer} · owner {policy.owner(focus) or '-'}")
        for col in ("column", "type", "nullable", "tags", "mask", "comment"):
            out.add_column(col, overflow="fold")
        for c in ref.spec.columns:
            out.add_row(
                c.name,
                c.type,
                "yes" if c.nullable else "no",
                ", ".join(c.tags),
                c.mask or "",
                c.comment,
            )
        console.print(out)
        tags = ", ".join(f"{k}={v}" for k, v in ref.spec.tags.items()) or "-"
        console.print(f"description: {ref.spec.description or '-'}")
        console.print(
            f"tags: {tags} · keys: {', '.join(ref.spec.keys) or '-'} · location: {ref.location}"
        )
        return
    tree = Tree(f"[bold]{catalog.name}[/] (catalog · owner {catalog.owner or '-'})")
    for schema_name, schema in catalog.schemas.items():
        full = f"{catalog.name}.{schema_name}"
        if focus not in (None, catalog.name, full):
            continue
        branch = tree.add(f"[bold]{schema_name}[/] (schema · owner {policy.owner(full) or '-'})")
        for table_name, table in schema.tables.items():
            t_full = f"{full}.{table_name}"
            masked = [c.name for c in table.columns if c.mask]
            extra = f" · masked: {', '.join(masked)}" if masked else ""
            tags = (
                f" · tags: {', '.join(f'{k}={v}' for k, v in table.tags.items())}"
                if table.tags
                else ""
            )
            branch.add(
                f"{table_name} [dim]({table.layer} · owner {policy.owner(t_full) or '-'}{tags}{extra})[/]"
            )
    console.print(tree)


@catalog_app.command("grants")
def catalog_grants(
    name: Annotated[str, typer.Argument(help="A catalog, schema or table.")],
    project_dir: ProjectDir = None,
    target: TargetOpt = None,
    var: VarOpt = None,
) -> None:
    """Effective grants on an object: its own and those inherited from above, and its owner."""
    from lakehouse.catalog.access import AccessPolicy

    project = _load(project_dir, target, None, var)
    policy = AccessPolicy(project.catalog, project.grants)
    securable = _securable(project, name)
    out = Table(
        title=f"grants on {securable} · owner {policy.owner(securable) or '-'} (all privileges)"
    )
    for col in ("principal", "privileges", "granted on", "members"):
        out.add_column(col, overflow="fold")
    for principal, privileges, level in policy.effective_grants(securable):
        inherited = "" if level == securable else " (inherited)"
        out.add_row(
            principal,
            ", ".join(privileges),
            level + inherited,
            ", ".join(policy.members(principal)),
        )
    console.print(out)


@catalog_app.command("check")
def catalog_check(
    principal: Annotated[str, typer.Argument(help="A user, service principal or group.")],
    privilege: Annotated[str, typer.Argument(help="e.g. SELECT, MODIFY, 'CREATE TABLE', UNMASK.")],
    name: Annotated[str, typer.Argument(help="A table (or a schema for CREATE TABLE).")],
    project_dir: ProjectDir = None,
    target: TargetOpt = None,
    var: VarOpt = None,
) -> None:
    """Would PRINCIPAL be allowed PRIVILEGE on NAME? Exit 0 if allowed, 1 if denied."""
    from lakehouse.catalog.access import AccessPolicy
    from lakehouse.config.models import PRIVILEGES

    wanted = privilege.upper().replace("_", " ")
    if wanted not in PRIVILEGES:
        raise CliError(f"unknown privilege {privilege!r} (one of {', '.join(PRIVILEGES)})")
    project = _load(project_dir, target, None, var)
    decision = AccessPolicy(project.catalog, project.grants).check(
        principal, wanted, _securable(project, name)
    )
    if not decision.allowed:
        raise CliError(f"denied: {decision.reason}")
    console.print(f"[green]allowed[/]: {decision.reason}")


@catalog_app.command("validate")
def catalog_validate(
    project_dir: ProjectDir = None,
    target: TargetOpt = None,
    var: VarOpt = None,
) -> None:
    """Check the catalog: known principals, grants on known objects, masks on pii columns."""
    project = _load(project_dir, target, None, var)  # every check raises file + key
    catalog = project.catalog
    p = catalog.principals
    grants = len(catalog.grants) + len(project.grants)
    masked = 0
    for schema in catalog.schemas.values():
        grants += len(schema.grants)
        for table in schema.tables.values():
            grants += len(table.grants)
            masked += sum(1 for c in table.columns if c.mask)
    console.print(
        f"catalog {catalog.name}: OK · {len(project.tables)} tables · "
        f"{len(p.users) + len(p.service_principals)} principals in {len(p.groups)} groups · "
        f"{grants} grants · {masked} masked columns"
    )


sql_app = typer.Typer(
    help="A read-only SQL endpoint for BI tools (PostgreSQL protocol).", no_args_is_help=True
)
app.add_typer(sql_app, name="sql")


@sql_app.command("serve")
def sql_serve(
    host: Annotated[str, typer.Option(help="Bind address (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 15432,
    schema: Annotated[
        list[str] | None,
        typer.Option(
            "--schema", help="Serve this schema (repeatable; default: the schemas of Gold tables)."
        ),
    ] = None,
    password_env: Annotated[
        str | None,
        typer.Option(help="Require the password held in this environment variable."),
    ] = None,
    audit: Annotated[
        bool,
        typer.Option(help="Record the SELECT decisions in the access audit table at start."),
    ] = True,
    project_dir: ProjectDir = None,
    target: TargetOpt = None,
    engine: EngineOpt = None,
    var: VarOpt = None,
) -> None:
    """Serve the tables the principal may SELECT over the PostgreSQL protocol until Ctrl-C.

    Read-only; masked columns stay masked; each query sees the latest Delta version.
    """
    from lakehouse.bundle.runner import new_run_id
    from lakehouse.catalog.governance import Governance, resolve_principal
    from lakehouse.sql.endpoint import SqlEndpoint

    project = _load(project_dir, target, engine, var)
    password = None
    if password_env:
        password = os.environ.get(password_env)
        if not password:
            raise CliError(f"--password-env: environment variable {password_env} is not set")

    def endpoint_for(gov: Governance) -> SqlEndpoint:
        return SqlEndpoint(project, gov, schemas=schema, host=host, port=port, password=password)

    principal = resolve_principal(project, explicit=_options["principal"])
    governance = Governance(project, principal, run_id=new_run_id(), job="sql-serve")
    if audit and governance.enabled:  # the decisions go to the audit table through Spark
        session = _session(project, f"{project.name}:sql-serve")
        try:
            governance = _governed(project, session, "sql-serve").governance or governance
            endpoint = endpoint_for(governance)
            governance.flush()
        finally:
            session.stop()
    else:
        endpoint = endpoint_for(governance)
    info = endpoint.info
    console.print(
        f"SQL endpoint (PostgreSQL protocol, read-only) on {info.host}:{info.port}\n"
        f"  host {info.host} · port {info.port} · database {info.database} · user {info.user}"
        f" · password {'from $' + str(password_env) if password else 'none'}\n"
        f"  {len(endpoint.tables)} tables: "
        + ", ".join(f"{t.schema}.{t.name}" for t in endpoint.tables)
        + f"\n  psql: psql '{info.url()}'\n  Ctrl-C stops"
    )
    if not password and host not in ("127.0.0.1", "localhost", "::1"):
        err_console.print(
            f"[yellow]warning[/]: listening on {host} without a password (use --password-env)"
        )
    endpoint.serve_forever()
    console.print("SQL endpoint stopped")


@samples_app.command("serve")
def samples_serve(
    host: Annotated[str, typer.Option(help="Bind address (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8765,
    interval: Annotated[float, typer.Option(help="Seconds between new batches.")] = 300.0,
    batches: Annotated[int, typer.Option(help="Batches per group before HTTP 400.")] = 10,
    batch_size: Annotated[int, typer.Option(help="Rows per batch.")] = 50,
    seed: Annotated[int, typer.Option(help="Seed of the generated data.")] = 7,
    token_env: Annotated[
        str | None, typer.Option(help="Require the token held in this environment variable.")
    ] = None,
) -> None:
    """Serve the sample data API (rotating batches, pagination, fault injection) until Ctrl-C."""
    from lakehouse.samples.api import SampleApiSettings, serve_forever

    token = None
    if token_env:
        token = os.environ.get(token_env)
        if not token:
            raise CliError(f"--token-env: environment variable {token_env} is not set")
    settings = SampleApiSettings(
        interval_s=interval, batches=batches, batch_size=batch_size, seed=seed, token=token
    )
    console.print(
        f"sample data API on http://{host}:{port} (docs: /docs) · new batch every {interval:g}s · Ctrl-C stops"
    )
    serve_forever(settings, host=host, port=port)


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
            help="airflow: a DAG file for one job · databricks: a databricks.yml for the bundle.",
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
    from lakehouse.bundle.export import (
        airflow_dag_id,
        airflow_notes,
        write_airflow,
        write_databricks,
    )

    project = _load(project_dir, target, None, var)
    overrides = parse_var_overrides(var)
    if fmt is ExportFormat.airflow:
        job_name, _ = select_job(project, job)
        path = (
            output or project.root / "dist" / "airflow" / f"{airflow_dag_id(project, job_name)}.py"
        )
        write_airflow(project, job_name, path, var_overrides=overrides)
        console.print(
            f"[green]✓[/] wrote {path} · DAG {airflow_dag_id(project, job_name)} · target {project.target_name}"
        )
        for note in airflow_notes(project, job_name):
            console.print(f"  [yellow]note[/]: {note}", highlight=False)
        return
    path = output or project.root / "dist" / "databricks.yml"
    write_databricks(project, path, jobs=[job] if job else None, var_overrides=overrides)
    console.print(
        f"[green]✓[/] wrote {path} · add workspace and compute settings before "
        "`databricks bundle deploy` (see the comments at its top)"
    )


@bundle_app.command("validate")
def bundle_validate(
    project_dir: ProjectDir = None,
    target: TargetOpt = None,
    engine: EngineOpt = None,
    var: VarOpt = None,
    output: Annotated[str, typer.Option("--output", "-o", help="text | json")] = "text",
) -> None:
    """Validate bundle.yml and conf/, and print the resolved configuration."""
    project = _load(project_dir, target, engine, var)
    resolved = {
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
    }
    if output == "json":
        print(json.dumps(resolved, indent=2, default=str))
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


@app.command()
def lineage(
    name: Annotated[
        str, typer.Argument(help="A table: catalog.schema.table, schema.table or table.")
    ],
    upstream: Annotated[
        bool, typer.Option("--upstream", help="Only what the table is built from.")
    ] = False,
    downstream: Annotated[
        bool, typer.Option("--downstream", help="Only what is built from the table.")
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Picture file: .svg, .png, .dot, .mmd or .md "
            "(default: <data_root>/lineage/<table>-<direction>.svg).",
        ),
    ] = None,
    project_dir: ProjectDir = None,
    target: TargetOpt = None,
    engine: EngineOpt = None,
    var: VarOpt = None,
) -> None:
    """Where a table comes from and what is built from it, with Delta versions; draws a picture."""
    from lakehouse.catalog.lineage_graph import Direction, show_lineage

    project = _load(project_dir, target, engine, var)
    table = _securable(project, name)
    if table not in project.tables:
        raise CliError(f"{table} is not a table")
    direction: Direction = "both"  # neither flag or both: up and down
    if upstream != downstream:
        direction = "upstream" if upstream else "downstream"
    with _governed_command(project, "lineage") as adapter:
        show_lineage(adapter, table, direction, console, output)


@app.command()
def version() -> None:
    """Print the lakehouse version."""
    console.print(f"lakehouse {__version__}")


class CliError(Exception):
    """Exit non-zero with this one-line message."""


def main() -> None:
    """Console-script entry point: one readable line and a non-zero exit on any failure."""
    debug = os.environ.get("LAKEHOUSE_DEBUG") == "1"
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=False)],
    )
    try:
        app()
    except SystemExit:
        raise
    except Exception as exc:
        if debug:
            raise
        err_console.print(
            f"[bold red]error:[/] {one_line(exc) if not isinstance(exc, CliError) else exc}",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(1)
