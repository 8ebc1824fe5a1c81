"""One table's life cycle: ``table reset`` (delete its data and bookkeeping; rebuilt next run)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from lakehouse.cli._context import CliError, _load, _task_context
from lakehouse.cli.options import EngineOpt, ProjectDir, TargetOpt, VarOpt
from lakehouse.cli.render import console

table_app = typer.Typer(help="One table: reset.", no_args_is_help=True)


@table_app.command("reset")
def table_reset(
    name: Annotated[str, typer.Argument(help="The table (catalog.schema.table).")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    project_dir: ProjectDir = None,
    target: TargetOpt = None,
    engine: EngineOpt = None,
    var: VarOpt = None,
) -> None:
    """Delete a table's data (all versions) and its bookkeeping (processed files, refined
    batches) so the next run rebuilds it."""
    from lakehouse.pipelines.refresh import reset_table

    project = _load(project_dir, target, engine, var)
    ref = project.table(name)
    if not yes:
        if not sys.stdin.isatty():
            raise CliError(f"table reset {ref.full_name} deletes its data: pass --yes to confirm")
        typer.confirm(f"Delete all data of {ref.full_name} ({ref.location})?", abort=True)
    with _task_context(project, "table-reset") as ctx:
        summary = reset_table(ctx, ref.full_name)
    state = "data deleted" if summary.had_data else "had no data"
    console.print(f"{summary.table}: {state}", highlight=False)
    for line in summary.bookkeeping:
        console.print(f"  forgot {line}", highlight=False)
    console.print(f"The next run rebuilds it (layer {summary.layer}).", highlight=False)
