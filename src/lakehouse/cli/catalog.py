"""The catalog as code: ``catalog show|grants|check|validate`` and ``lineage``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lakehouse.cli._context import CliError, _governed_command, _load
from lakehouse.cli.options import EngineOpt, ProjectDir, TargetOpt, VarOpt
from lakehouse.cli.render import console, new_table
from lakehouse.config.project import Project

if TYPE_CHECKING:
    from rich.table import Table
    from rich.tree import Tree

    from lakehouse.governance.policy import AccessPolicy

catalog_app = typer.Typer(
    help="The catalog as code: objects, owners, grants, masks.", no_args_is_help=True
)


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
    from lakehouse.governance.policy import AccessPolicy

    project = _load(project_dir, target, None, var)
    policy = AccessPolicy(project.catalog, project.grants)
    focus = _securable(project, name) if name else None
    if focus in project.tables:
        _show_table(project, policy, focus)
        return
    console.print(_catalog_tree(project, policy, focus))


def _show_table(project: Project, policy: AccessPolicy, focus: str) -> None:
    """Print one table's columns (tags, masks, comments), description, tags, keys and location."""
    ref = project.tables[focus]
    out = new_table(
        f"{focus} · {ref.spec.layer} · owner {policy.owner(focus) or '-'}",
        ("column", "type", "nullable", "tags", "mask", "comment"),
    )
    from lakehouse.io.table_schema import effective_columns

    for c in effective_columns(ref):
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


def _catalog_tree(project: Project, policy: AccessPolicy, focus: str | None) -> Tree:
    """The catalog's schemas and tables (or only the ``focus`` schema) with owners, tags, masks."""
    from rich.tree import Tree

    catalog = project.catalog
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
    return tree


@catalog_app.command("grants")
def catalog_grants(
    name: Annotated[str, typer.Argument(help="A catalog, schema or table.")],
    project_dir: ProjectDir = None,
    target: TargetOpt = None,
    var: VarOpt = None,
) -> None:
    """Effective grants on an object: its own and those inherited from above, and its owner."""
    from lakehouse.governance.policy import AccessPolicy

    project = _load(project_dir, target, None, var)
    policy = AccessPolicy(project.catalog, project.grants)
    securable = _securable(project, name)
    console.print(_grants_table(policy, securable))


def _grants_table(policy: AccessPolicy, securable: str) -> Table:
    """One row per principal with privileges on ``securable``, own or inherited."""
    out = new_table(
        f"grants on {securable} · owner {policy.owner(securable) or '-'} (all privileges)",
        ("principal", "privileges", "granted on", "members"),
    )
    for principal, privileges, level in policy.effective_grants(securable):
        inherited = "" if level == securable else " (inherited)"
        out.add_row(
            principal,
            ", ".join(privileges),
            level + inherited,
            ", ".join(policy.members(principal)),
        )
    return out


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
    from lakehouse.config.catalog import PRIVILEGES
    from lakehouse.governance.policy import AccessPolicy

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
    report_table_mismatches(project)


def report_table_mismatches(project: Project) -> None:
    """Print where the catalog and the existing Delta tables differ (one line each); an
    unsafe difference (the table must be rebuilt) fails the command."""
    from lakehouse.io.table_schema import catalog_mismatches

    found = [m for ref in project.tables.values() for m in catalog_mismatches(ref)]
    for m in found:
        style = "bold red" if m.unsafe else "yellow"
        console.print(f"  [{style}]table[/]: {m.text}", highlight=False, soft_wrap=True)
    unsafe = [m for m in found if m.unsafe]
    if unsafe:
        more = f" (and {len(unsafe) - 1} more)" if len(unsafe) > 1 else ""
        raise CliError(f"{unsafe[0].text}{more}")


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
    from lakehouse.governance.lineage.graph import Direction, show_lineage

    project = _load(project_dir, target, engine, var)
    table = _securable(project, name)
    if table not in project.tables:
        raise CliError(f"{table} is not a table")
    direction: Direction = "both"  # neither flag or both: up and down
    if upstream != downstream:
        direction = "upstream" if upstream else "downstream"
    with _governed_command(project, "lineage") as adapter:
        show_lineage(adapter, table, direction, console, output)
