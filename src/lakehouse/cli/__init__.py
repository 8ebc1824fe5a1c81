"""The ``lakehouse`` command.

Every failure exits non-zero with one readable line (``LAKEHOUSE_DEBUG=1`` shows the
traceback).
"""

from __future__ import annotations

import logging
import os
import sys

import typer
from rich.logging import RichHandler

from lakehouse.cli import apps, bundle, catalog, data, look, ml, pipeline, table
from lakehouse.cli import submit as _submit  # noqa: F401  (registers `bundle submit`)
from lakehouse.cli._context import CliError, GlobalOptionsGroup, _global_options
from lakehouse.cli.init import init
from lakehouse.cli.render import err_console
from lakehouse.core.errors import one_line

app = typer.Typer(
    help="lakehouse: medallion lakehouse jobs (Bronze -> Silver -> Gold -> MLflow) on open-source Spark.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=GlobalOptionsGroup,
)
app.callback()(_global_options)

# `lakehouse --help` lists the commands in this order, then the groups
app.command()(init)
app.command("run", help="Run a bundle job's task DAG and print a summary (same as `bundle run`).")(
    bundle.bundle_run
)
for _command in (
    bundle.schedule,
    bundle.runs,
    data.tables,
    look.head,
    data.ingest,
    data.refine,
    data.build,
    data.quality,
    ml.train,
    ml.score,
    ml.monitor,
    ml.serve,
    apps.ui,
):
    app.command()(_command)
app.command("models")(ml.models_)
app.command()(catalog.lineage)
app.command()(apps.version)

app.add_typer(bundle.bundle_app, name="bundle")
app.add_typer(catalog.catalog_app, name="catalog")
app.add_typer(table.table_app, name="table")
app.add_typer(apps.samples_app, name="samples")
app.add_typer(apps.sql_app, name="sql")
app.add_typer(pipeline.pipeline_app, name="pipeline")


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
