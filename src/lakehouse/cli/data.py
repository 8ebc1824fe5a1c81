"""The data layers: ``ingest`` (Bronze), ``refine`` (Silver), ``build`` (Gold), ``quality``
and ``tables``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import TaskID

from lakehouse.cli._context import (
    CliError,
    _finish,
    _governed_command,
    _load,
    _open_run,
    _run_each,
    _task_context,
)
from lakehouse.cli.options import EngineOpt, ProjectDir, TargetOpt, VarOpt
from lakehouse.cli.render import console, new_table
from lakehouse.config.project import Project

if TYPE_CHECKING:
    from rich.table import Table


def tables(
    project_dir: ProjectDir = None,
    target: TargetOpt = None,
    engine: EngineOpt = None,
    var: VarOpt = None,
) -> None:
    """List the catalog's tables with row counts and latest Delta versions."""
    project = _load(project_dir, target, engine, var)
    with _open_run(project, "tables") as run:
        adapter = run.store
        gov = adapter.governance
        table = new_table(
            f"catalog {project.catalog.name} · target {project.target_name}",
            ("table", "layer", "rows", "version", "location"),
            right=("rows", "version"),
        )
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


def ingest(
    sources: Annotated[
        list[str] | None, typer.Argument(help="Sources from conf/ (default: all).")
    ] = None,
    project_dir: ProjectDir = None,
    target: TargetOpt = None,
    engine: EngineOpt = None,
    var: VarOpt = None,
    full_refresh: Annotated[
        bool,
        typer.Option(
            "--full-refresh",
            help="Delete the sources' Bronze rows and processed files, then ingest all files "
            "again (an http source: what its API serves now; a rotating one is refused).",
        ),
    ] = False,
) -> None:
    """Ingest new files / API batches of the given sources into Bronze."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from lakehouse.pipelines.bronze.ingest import ingest_source

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

        _run_each(
            ctx,
            names,
            lambda name: ingest_source(ctx, name, progress, full_refresh=full_refresh),
        )
    _finish(ctx, "ingest")


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
            help="Re-read all of Bronze, not only the batches not refined yet; a table whose "
            "column type changed unsafely is created again.",
        ),
    ] = False,
) -> None:
    """Conform, validate, quarantine and MERGE new Bronze batches into Silver tables."""
    from lakehouse.pipelines.silver.ledger import SilverLedger
    from lakehouse.pipelines.silver.refine import RefineParams, refine_table

    project = _load(project_dir, target, engine, var)
    names = [_silver_name(project, t) for t in (tables_ or list(project.silver))]
    params = RefineParams(tables=tuple(dict.fromkeys(names)), full_refresh=full_refresh)
    ledger = SilverLedger()  # the bookkeeping of every table, written once at the end
    with _task_context(project, "refine") as ctx, console.status("refining …"):
        try:
            _run_each(
                ctx,
                list(params.tables),
                lambda name: refine_table(
                    ctx, name, full_refresh=params.full_refresh, ledger=ledger
                ),
            )
        finally:
            ledger.flush(ctx)
    _finish(ctx, "refine")


def build(
    tables_: Annotated[
        list[str] | None,
        typer.Argument(metavar="[TABLE]...", help="Gold tables (default: all)."),
    ] = None,
    project_dir: ProjectDir = None,
    target: TargetOpt = None,
    engine: EngineOpt = None,
    var: VarOpt = None,
    full_refresh: Annotated[
        bool,
        typer.Option(
            "--full-refresh",
            help="Create a table again when a column's type changed unsafely (e.g. string -> int).",
        ),
    ] = False,
) -> None:
    """Rebuild Gold tables from their inputs (new columns and safe widenings are applied)."""
    from lakehouse.pipelines.gold import build_gold_table

    project = _load(project_dir, target, engine, var)
    names = [_layer_name(project, t, "Gold", list(project.gold)) for t in (tables_ or project.gold)]
    with _task_context(project, "build") as ctx, console.status("building …"):
        _run_each(
            ctx,
            names,
            lambda name: build_gold_table(
                ctx, project.gold_handle(name), full_refresh=full_refresh
            ),
        )
    _finish(ctx, "build")


def _layer_name(project: Project, name: str, layer: str, configured: list[str]) -> str:
    """Accept ``catalog.schema.table``, ``schema.table`` or ``table`` for a configured table."""
    matches = [t for t in configured if t == name or t.endswith("." + name)]
    if len(matches) != 1:
        raise CliError(
            f"no single {layer} table matches {name!r} (configured: {', '.join(configured) or 'none'})"
        )
    return matches[0]


def _silver_name(project: Project, name: str) -> str:
    """Accept ``catalog.schema.table``, ``schema.table`` or ``table`` for a Silver table."""
    matches = [t for t in project.silver if t == name or t.endswith("." + name)]
    if len(matches) != 1:
        raise CliError(
            f"no single Silver table matches {name!r} (configured: {', '.join(project.silver) or 'none'})"
        )
    return matches[0]


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

    from lakehouse.config.system_tables import SystemTable, system_table_name

    project = _load(project_dir, target, engine, var)
    name = _silver_name(project, table)
    with _governed_command(project, "quality") as adapter:
        results = adapter.read(
            system_table_name(project.catalog.name, SystemTable.DQ_RESULTS)
        ).where(F.col("table") == name)
        latest = results.orderBy(F.col("evaluated_at").desc()).select("run_id").limit(1).collect()
        if not latest:
            raise CliError(f"{name}: no data-quality results yet (run `lakehouse refine {table}`)")
        run_id = latest[0]["run_id"]
        rows = results.where(F.col("run_id") == run_id).orderBy("rule").collect()
    console.print(_quality_table(f"{name} · run {run_id}", rows))
    console.print(f"Data Docs: {project.data_root / 'quality' / 'docs' / 'index.html'}")


def _quality_table(title: str, rows: list[Any]) -> Table:
    """One row per rule: what it expects, what it did and how many rows passed."""
    out = new_table(
        title,
        ("rule", "expectation", "action", "evaluated", "failed", "pass rate", "outcome"),
        right=("evaluated", "failed", "pass rate"),
        overflow="ellipsis",
    )
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
    return out
