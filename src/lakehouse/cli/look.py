"""Looking at tables: ``head`` and ``sql QUERY`` (governed reads printed as a table, CSV or JSON)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup

from lakehouse.cli._context import CliError, _governed_command, _load
from lakehouse.cli.options import EngineOpt, ProjectDir, TargetOpt, VarOpt
from lakehouse.cli.render import console, err_console, new_table
from lakehouse.core import rows as fmt

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

QUERY_COMMAND = "query"

OutputOpt = Annotated[
    str,
    typer.Option(
        "--output",
        "-o",
        help="table | csv | json (JSON lines: one object per row).",
        show_default=True,
    ),
]


class SqlGroup(TyperGroup):
    """``lakehouse sql``: a subcommand (``serve``) or else a query (``lakehouse sql "SELECT …"``,
    the same as ``lakehouse sql query "SELECT …"``)."""

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        if args and args[0] not in self.commands:
            return QUERY_COMMAND, self.commands[QUERY_COMMAND], args
        return super().resolve_command(ctx, args)


def head(
    table: Annotated[
        str, typer.Argument(help="A catalog table: catalog.schema.table, schema.table or table.")
    ],
    rows: Annotated[int, typer.Option("--rows", "-n", min=0, help="How many rows.")] = 20,
    version: Annotated[
        int | None, typer.Option("--version", min=0, help="Read this Delta version (time travel).")
    ] = None,
    output: OutputOpt = "table",
    project_dir: ProjectDir = None,
    target: TargetOpt = None,
    engine: EngineOpt = None,
    var: VarOpt = None,
) -> None:
    """Print the first rows of a table as the acting principal may see them (masks apply)."""
    from lakehouse.governance.query import read_table, resolve_table

    _check_output(output)
    project = _load(project_dir, target, engine, var)
    with _governed_command(project, "head") as store:
        name = resolve_table(project, table)
        df = read_table(store, name, version)
        shown = version if version is not None else store.version(name)
        columns, data = _collect(df, rows)
    _print(columns, data, output, f"{name} · version {shown}")


def sql_query(
    query: Annotated[
        str,
        typer.Argument(help='A Spark SQL query, e.g. "SELECT * FROM lakehouse.gold.daily_sales".'),
    ],
    limit: Annotated[
        int,
        typer.Option("--limit", min=0, help="At most this many rows (0: all)."),
    ] = 1000,
    output: OutputOpt = "table",
    project_dir: ProjectDir = None,
    target: TargetOpt = None,
    engine: EngineOpt = None,
    var: VarOpt = None,
) -> None:
    """Run a read-only Spark SQL query on the catalog's tables as the acting principal.

    Name tables as catalog.schema.table (or schema.table); each needs SELECT and is read
    masked for a principal without UNMASK. `VERSION AS OF n` reads an older version.
    """
    from lakehouse.governance.query import QueryError, governed_query, parse_query

    _check_output(output)
    try:
        parse_query(query)  # a bad statement fails before the engine starts
    except QueryError:
        if query.strip() and len(query.split()) == 1:  # `lakehouse sql serv`: a typo
            raise CliError(
                f"{query!r} is neither a query nor a command of `lakehouse sql` (query, serve)"
            ) from None
        raise
    project = _load(project_dir, target, engine, var)
    with _governed_command(project, "sql") as store, governed_query(store, query) as df:
        columns, data = _collect(df, limit + 1 if limit else None)
    if limit and len(data) > limit:
        data = data[:limit]
        err_console.print(f"showing the first {limit} rows (--limit 0 shows all)", highlight=False)
    _print(columns, data, output, None)


def _check_output(output: str) -> None:
    if output not in fmt.FORMATS:
        raise CliError(f"--output: choose one of {', '.join(fmt.FORMATS)} (got {output!r})")


def _collect(df: DataFrame, limit: int | None) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The column names and (up to ``limit``) rows."""
    limited = df if limit is None else df.limit(limit)
    return list(df.columns), [tuple(r) for r in limited.collect()]


def _print(
    columns: Sequence[str], data: list[tuple[Any, ...]], output: str, title: str | None
) -> None:
    """The rows on stdout: a table (with a title and row count), CSV or JSON lines."""
    if output == "csv":
        sys.stdout.writelines(fmt.csv_lines(columns, data))
    elif output == "json":
        sys.stdout.writelines(fmt.json_lines(columns, data))
    else:
        numeric = {c for i, c in enumerate(columns) if _is_number(data, i)}
        table = new_table("", columns, right=numeric)
        for row in data:
            table.add_row(*(Text(fmt.cell(v)) for v in row))
        count = f"{len(data)} row{'s' if len(data) != 1 else ''}"
        console.print(f"{title} · {count}" if title else count, highlight=False, markup=False)
        # piped output is not wrapped to a width: every value stays on one line
        out = console
        if not console.is_terminal:
            unbounded = console.options.update_width(1_000_000)
            out = Console(width=console.measure(table, options=unbounded).maximum)
        out.print(table, highlight=False)


def _is_number(data: list[tuple[Any, ...]], index: int) -> bool:
    values = [row[index] for row in data if row[index] is not None]
    return bool(values) and all(
        (isinstance(v, int | float) and not isinstance(v, bool)) or type(v).__name__ == "Decimal"
        for v in values
    )
