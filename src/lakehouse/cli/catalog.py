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


def _inferring_source(project: Project, table: str) -> str | None:
    """The files source whose files give ``table`` its columns (none declared), if any."""
    from lakehouse.config.sources import FileSource

    if project.tables[table].spec.columns:
        return None
    for name, handle in project.source_handles.items():
        if isinstance(handle.spec, FileSource) and handle.target.full_name == table:
            return name
    return None


def _derived_columns(project: Project, focus: str) -> tuple[list[tuple[str, str, bool, str]], str]:
    """Columns of a table that declares none, each with where it came from, and a note:
    an inferred Bronze table's from its Delta log (or its stored schema), marked with the
    schema version that added them; any other table's from its Delta log."""
    from lakehouse.io.log_schema import delta_log_columns
    from lakehouse.pipelines.bronze.schemas import read_versions, schema_location

    ref = project.tables[focus]
    logged = delta_log_columns(ref.location)
    source = _inferring_source(project, focus)
    if source is None:
        if logged is None:
            return [], "columns: none declared; taken from the data when the table is first written"
        rows = [(n, t, nullable, "from the Delta log") for n, t, nullable in logged]
        return rows, f"columns: none declared; read from the Delta log at {ref.location}"
    location = schema_location(project, source)
    versions = read_versions(location)
    added_in: dict[str, int] = {}
    for v in versions:
        for name, _ in v.columns:
            added_in.setdefault(name, v.version)
    if logged is None:
        logged = [(n, t, True) for n, t in (versions[-1].columns if versions else [])]
    rows = [
        (n, t, nullable, f"inferred (schema v{added_in[n]})" if n in added_in else "")
        for n, t, nullable in logged
    ]
    if not versions:
        return rows, f"columns: inferred from the files of source {source} at its first ingest"
    return rows, (
        f"columns: inferred from the files of source {source} · schema version "
        f"{versions[-1].version} ({location}) · pin them with: lakehouse catalog infer {source}"
    )


def _show_table(project: Project, policy: AccessPolicy, focus: str) -> None:
    """Print one table's columns (tags, masks, comments), description, tags, keys and location;
    a table declaring no columns shows those inferred or read from its Delta log."""
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
    note = ""
    if not ref.spec.columns:
        derived, note = _derived_columns(project, focus)
        for name, type_, nullable, origin in derived:
            out.add_row(name, type_, "yes" if nullable else "no", "", "", origin)
    console.print(out)
    if note:
        console.print(note)
    tags = ", ".join(f"{k}={v}" for k, v in ref.spec.tags.items()) or "-"
    console.print(f"description: {ref.spec.description or '-'}")
    console.print(
        f"tags: {tags} · keys: {', '.join(ref.spec.keys) or '-'} · location: {ref.location}"
    )
    for rule in ref.spec.row_filters:  # who sees which rows (see governance.row_filters)
        who = ", ".join(rule.to) or "everyone no other filter names"
        console.print(f"row filter: {rule.predicate} · to: {who}", highlight=False, markup=False)


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
            if not table.columns:
                inferred = _inferring_source(project, t_full) is not None
                extra += " · columns inferred" if inferred else " · columns from the data"
            tags = (
                f" · tags: {', '.join(f'{k}={v}' for k, v in table.tags.items())}"
                if table.tags
                else ""
            )
            branch.add(
                f"{table_name} [dim]({table.layer} · owner {policy.owner(t_full) or '-'}{tags}{extra})[/]"
            )
    return tree


@catalog_app.command("infer")
def catalog_infer(
    source: Annotated[
        str, typer.Argument(help="A files source whose Bronze table has no columns.")
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the columns and the file; change nothing.")
    ] = False,
    project_dir: ProjectDir = None,
    target: TargetOpt = None,
    var: VarOpt = None,
) -> None:
    """Pin a source's inferred columns: write them into the YAML file declaring its Bronze table.

    The columns come from the table's Delta log once it exists (schema evolution included),
    else from the latest stored schema version, else are inferred from the landed files.
    """
    from lakehouse.config.pin import pin_columns
    from lakehouse.config.sources import FileSource
    from lakehouse.pipelines.bronze.schemas import source_columns

    project = _load(project_dir, target, None, var)
    if source not in project.sources:
        raise CliError(f"no source {source!r} (sources: {', '.join(project.sources) or 'none'})")
    handle = project.source_handle(source)
    if not isinstance(handle.spec, FileSource):
        raise CliError(f"{source} is an {handle.spec.kind} source: only files sources infer")
    table = handle.target
    if table.spec.columns:
        raise CliError(f"{table.full_name} already declares its columns")
    columns, origin = source_columns(project, source)
    if not columns:
        raise CliError(f"no columns to pin for {table.full_name}: no files landed yet ({origin})")
    invalid = [n for n, _ in columns if not n.isidentifier() or not n.isascii()]
    if invalid:
        raise CliError(f"column names the catalog cannot declare: {', '.join(invalid)}")
    pinned = pin_columns(project, table, columns)
    if dry_run:
        console.print(
            f"{table.full_name} in {pinned.relative} ({len(columns)} columns from {origin}):"
        )
        console.print(pinned.block, markup=False, highlight=False, end="")
        return
    pinned.path.write_text(pinned.text, encoding="utf-8")
    console.print(
        f"pinned {len(columns)} columns of {table.full_name} in {pinned.relative} (from {origin})"
    )
    if handle.spec.schema_drift is None:
        console.print(
            f"note: with declared columns, source {source} now rescues new fields "
            "(schema_drift: rescue); set schema_drift: add_new_columns to keep evolving"
        )


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
