"""The project options most commands take: project directory, target, engine, variables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ProjectDir = Annotated[
    Path | None,
    typer.Option(
        "--project-dir",
        "-C",
        help="Directory holding databricks.yml or bundle.yml (default: nearest above cwd).",
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
    list[str] | None,
    typer.Option(
        "--var",
        help="Set a bundle variable: NAME=VALUE (repeatable; wins over BUNDLE_VAR_<name> and "
        "LAKEHOUSE_VAR_<name>).",
    ),
]
PrincipalOpt = Annotated[
    str | None,
    typer.Option(
        "--principal",
        "-p",
        envvar="LAKEHOUSE_PRINCIPAL",
        help="Act as this user / service principal (default: the bundle's run_as).",
    ),
]
