"""``lakehouse pipeline``: run, validate and list Spark Declarative Pipelines (a bundle's
``resources.pipelines`` or an Apache ``spark-pipelines`` spec file), client-side."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lakehouse.cli._context import CliError, _load, _open_run, _options
from lakehouse.cli.options import EngineOpt, ProjectDir, TargetOpt, VarOpt
from lakehouse.cli.render import console, new_table

if TYPE_CHECKING:
    from lakehouse.config.project import Project
    from lakehouse.pipelines.declarative.runner import PipelineUpdate
    from lakehouse.pipelines.declarative.spec import PipelineDefinition

pipeline_app = typer.Typer(
    help="Spark Declarative Pipelines (pyspark.pipelines / DLT code), run client-side.",
    no_args_is_help=True,
)

NameArg = Annotated[
    str | None,
    typer.Argument(help="The pipeline: its key under resources.pipelines (or its name)."),
]
SpecOpt = Annotated[
    Path | None,
    typer.Option(
        "--spec",
        help="An Apache spark-pipelines spec file (spark-pipeline.yml / pipeline.yml) or a "
        "folder holding one, instead of a bundle pipeline.",
    ),
]


def _definition(project: Project, name: str | None, spec: Path | None) -> PipelineDefinition:
    from lakehouse.pipelines.declarative.spec import (
        find_spec_file,
        load_spec_file,
        pipeline_definition,
    )

    if spec is not None:
        return load_spec_file(project, find_spec_file(spec.resolve()))
    if not name:
        raise CliError("name a pipeline (see `lakehouse pipeline list`) or give --spec PATH")
    return pipeline_definition(project, name)


def _project(
    project_dir: Path | None,
    target: str | None,
    engine: str | None,
    var: list[str] | None,
    spec: Path | None,
) -> Project:
    """The bundle's project; a spec file run outside any bundle gets an implicit one."""
    from lakehouse.config.loader import find_bundle_root
    from lakehouse.core.errors import ConfigError
    from lakehouse.pipelines.declarative.spec import find_spec_file, implicit_project

    if spec is not None and project_dir is None and _options["project_dir"] is None:
        try:
            find_bundle_root()
        except ConfigError:
            project_dir = implicit_project(find_spec_file(spec.resolve()))
    return _load(project_dir, target, engine, var)


def _summary(update: PipelineUpdate) -> None:
    title = f"pipeline {update.pipeline} · update {update.update_id}"
    if update.dry_run:
        title += " · dry run"
    table = new_table(
        title,
        ("dataset", "kind", "status", "rows written", "expectations ok", "failed", "dropped"),
        right=("rows written", "expectations ok", "failed", "dropped"),
    )
    for name, r in update.datasets.items():
        shown = "VALID" if update.dry_run and not update.problems else r.status
        table.add_row(
            name,
            r.kind,
            shown,
            f"{r.rows_written:,}",
            str(r.expectations_passed),
            str(r.expectations_failed),
            f"{r.dropped:,}",
        )
    console.print(table)


def _finish(update: PipelineUpdate) -> None:
    _summary(update)
    for problem in update.problems[1:]:
        console.print(f"[red]problem:[/] {problem}", highlight=False, soft_wrap=True)
    if update.problems:
        raise CliError(update.problems[0])
    if update.error is not None:
        raise CliError(update.error)
    console.print(
        f"[green]{'valid' if update.dry_run else 'completed'}[/] in {update.seconds:.1f}s"
    )


def run(
    name: NameArg = None,
    spec: SpecOpt = None,
    full_refresh: Annotated[
        bool,
        typer.Option("--full-refresh", help="Reset every dataset's state and recompute all."),
    ] = False,
    refresh: Annotated[
        list[str] | None,
        typer.Option("--refresh", help="Update only this dataset (repeatable)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate the graph; write nothing.")
    ] = False,
    project_dir: ProjectDir = None,
    target: TargetOpt = None,
    engine: EngineOpt = None,
    var: VarOpt = None,
) -> None:
    """Run an update of a pipeline: its flows in dependency order, expectations checked."""
    from lakehouse.pipelines.declarative.runner import run_definition

    if full_refresh and refresh:
        raise CliError("--full-refresh and --refresh cannot be combined")
    project = _project(project_dir, target, engine, var, spec)
    definition = _definition(project, name, spec)
    with _open_run(project, f"pipeline {definition.key}") as opened:
        update = run_definition(
            opened,
            definition,
            full_refresh=full_refresh,
            refresh=tuple(refresh or ()),
            dry_run=dry_run,
        )
    _finish(update)


def dry_run(
    name: NameArg = None,
    spec: SpecOpt = None,
    project_dir: ProjectDir = None,
    target: TargetOpt = None,
    engine: EngineOpt = None,
    var: VarOpt = None,
) -> None:
    """Validate a pipeline's graph (missing dependencies, cycles, duplicates); write nothing."""
    run(name, spec, dry_run=True, project_dir=project_dir, target=target, engine=engine, var=var)


def list_(
    project_dir: ProjectDir = None,
    target: TargetOpt = None,
    engine: EngineOpt = None,
    var: VarOpt = None,
) -> None:
    """List the bundle's pipelines with their catalog, schema and source files."""
    from lakehouse.pipelines.declarative.spec import bundle_pipelines, from_resource

    project = _load(project_dir, target, engine, var)
    table = new_table(
        f"pipelines · target {project.target_name}", ("pipeline", "name", "datasets in", "files")
    )
    for key, resource in sorted(bundle_pipelines(project).items()):
        d = from_resource(project, key, resource)
        files = ", ".join(_shown(project.root, f) for f in d.files) or "-"
        table.add_row(key, d.name, f"{d.catalog}.{d.schema}", files)
    console.print(table)


def _shown(root: Path, path: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


pipeline_app.command("run")(run)
pipeline_app.command("dry-run")(dry_run)
pipeline_app.command("list")(list_)
