"""The models: ``train``, ``score``, ``monitor``, ``models`` and ``serve``."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer

from lakehouse.apps.serving.batching import DEFAULT_MAX_BATCH, DEFAULT_MAX_WAIT_MS
from lakehouse.cli._context import CliError, _finish, _load, _run_each, _task_context
from lakehouse.cli.options import EngineOpt, ProjectDir, TargetOpt, VarOpt
from lakehouse.cli.render import console, new_table
from lakehouse.config.project import Project

AllowedHostOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--allowed-host",
        help="Also answer requests whose Host is this name or address, e.g. a DNS name of "
        "this machine (repeatable; loopback and a concrete --host are always allowed).",
    ),
]


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
    from lakehouse.pipelines.ml.train import TrainParams, train_model

    project = _load(project_dir, target, engine, var)
    names = models or list(project.models)
    require_known_models(project, names)
    params = TrainParams(models=tuple(names), force=force)
    with _task_context(project, "train") as ctx, console.status("training …"):
        _run_each(
            ctx,
            list(params.models),
            lambda name: ctx.report.models.append(train_model(ctx, name, force=params.force)),
        )
    _finish(ctx, "training")


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
    from lakehouse.pipelines.ml.score import score_model

    project = _load(project_dir, target, engine, var)
    names = models or [n for n, m in project.models.items() if m.scoring is not None]
    require_known_models(project, names)
    with _task_context(project, "score") as ctx, console.status("scoring …"):
        _run_each(ctx, names, lambda name: score_model(ctx, name))
    _finish(ctx, "scoring")


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

    from lakehouse.pipelines.monitoring.monitor import monitor_model

    project = _load(project_dir, target, engine, var)
    names = models or list(project.monitoring.models)
    require_known_models(project, names)
    try:
        end = dt.datetime.fromisoformat(as_of) if as_of else None
    except ValueError as exc:
        raise CliError(f"--as-of {as_of!r}: expected an ISO time like 2026-01-31T00:00") from exc
    with _task_context(project, "monitor") as ctx, console.status("monitoring …"):
        _run_each(ctx, names, lambda name: monitor_model(ctx, name, as_of=end))
    _finish(ctx, "monitoring")


def require_known_models(project: Project, names: list[str]) -> None:
    """Fail naming the first of ``names`` that conf/ does not configure."""
    unknown = [n for n in names if n not in project.models]
    if unknown:
        raise CliError(
            f"no model {unknown[0]!r} in conf/ (configured: {', '.join(project.models) or 'none'})"
        )


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
    allowed_host: AllowedHostOpt = None,
    max_body_bytes: Annotated[
        int, typer.Option(min=1, help="Largest request body in bytes; bigger ones get 413.")
    ] = 16 * 1024 * 1024,
    workers: Annotated[
        int, typer.Option(help="Worker processes (uvicorn workers), each with its own model copy.")
    ] = 1,
    max_batch: Annotated[
        int,
        typer.Option(
            help="Most records per model call when concurrent requests are batched; 0: no batching."
        ),
    ] = DEFAULT_MAX_BATCH,
    batch_wait_ms: Annotated[
        float,
        typer.Option(
            help="Longest wait (ms) for more requests when several clients send; "
            "a lone request never waits. 0: only batch what queued while the model was busy."
        ),
    ] = DEFAULT_MAX_WAIT_MS,
    access_log: Annotated[
        bool, typer.Option(help="uvicorn's log line per request (predictions are logged anyway).")
    ] = False,
    project_dir: ProjectDir = None,
    target: TargetOpt = None,
    var: VarOpt = None,
) -> None:
    """Serve MODEL's @champion over HTTP: POST /predict, MLflow's POST /invocations, GET /health,
    /model, /docs; Ctrl-C stops."""
    from lakehouse.apps.http_guard import allowed_hosts
    from lakehouse.apps.serving.batching import batching_options
    from lakehouse.apps.serving.server import check_workers
    from lakehouse.apps.serving.server import serve as serve_model

    check_workers(workers)  # option errors first, in one line
    batching_options(max_batch, batch_wait_ms)
    project = _load(project_dir, target, None, var)
    require_known_models(project, [model])
    name = project.models[model].registered_name
    allowed_hosts(allowed_host or ())  # a bad name fails before anything starts
    console.print(
        f"serving models:/{name}@champion on http://{host}:{port} (docs: /docs)"
        + (f" · {challenger_share:.0%} to @challenger" if challenger_share else "")
        + f" · predictions logged to {project.data_root / 'landing' / 'predictions'}"
        + (f" · {workers} workers" if workers > 1 else "")
        + (
            f" · batching up to {max_batch} records, waiting at most {batch_wait_ms:g} ms"
            if max_batch
            else " · no batching"
        )
    )
    serve_model(
        project,
        model,
        host=host,
        port=port,
        challenger_share=challenger_share,
        refresh_seconds=refresh_seconds,
        max_body_bytes=max_body_bytes,
        extra_hosts=allowed_host or (),
        workers=workers,
        max_batch=max_batch,
        batch_wait_ms=batch_wait_ms,
        access_log=access_log,
    )


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

    from lakehouse.pipelines.ml.registry import (
        connect,
        list_versions,
        metric_columns,
        tracking_uri,
    )

    project = _load(project_dir, target, None, var)
    versions = list_versions(connect(project), name)
    if output == "json":
        typer.echo(json.dumps([asdict(v) for v in versions], indent=2))
        return
    if not versions:
        console.print(f"no registered models in {tracking_uri(project)}")
        return
    # the metrics of every model kind listed (classification, regression), in order
    columns = tuple(dict.fromkeys(c for v in versions for c in metric_columns([v.metrics])))
    table = new_table(
        f"registered models ({tracking_uri(project)})",
        ("model", "version", "aliases", "created", *columns, "promotion"),
    )
    for v in versions:
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(v.created / 1000))
        table.add_row(
            v.name,
            v.version,
            ", ".join(f"@{a}" for a in v.aliases),
            created,
            *[f"{v.metrics[m]:.3f}" if m in v.metrics else "-" for m in columns],
            v.tags.get("lakehouse.promotion", ""),
        )
    console.print(table)
