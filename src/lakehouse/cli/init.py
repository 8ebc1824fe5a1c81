"""``lakehouse init``: write a new project from a template, ready for ``lakehouse run``."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Annotated

import typer

from lakehouse.cli.render import console
from lakehouse.project_init import DEFAULT_TEMPLATE, TEMPLATES, init_project


def init(
    directory: Annotated[
        Path, typer.Argument(help="Project directory (created if missing; default: here).")
    ] = Path(),
    template: Annotated[
        str,
        typer.Option("--template", "-T", help=f"One of: {', '.join(TEMPLATES)}."),
    ] = DEFAULT_TEMPLATE,
    from_path: Annotated[
        Path | None,
        typer.Option(
            "--from",
            help="Existing data files (a file or a directory): the source reads them in place.",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Write into a non-empty directory (overwrites).")
    ] = False,
) -> None:
    """Create a project (bundle.yml, conf/, jobs/, sample data, README) that runs at once."""
    result = init_project(directory, template, from_path, force)  # errors: one line (main)
    where = os.path.relpath(result.directory)
    if where.startswith(".."):
        where = str(result.directory)
    console.print(
        f"Created [bold]{result.name}[/] ({result.template} template) in {result.directory}: "
        f"{len(result.files)} files; sources: {', '.join(result.sources)}",
        highlight=False,
        soft_wrap=True,
    )
    step = "" if where == "." else f"cd {shlex.quote(where)} && "
    console.print(f"Next: {step}lakehouse run", highlight=False, soft_wrap=True, markup=False)
