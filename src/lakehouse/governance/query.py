"""Governed reads for people looking at tables: one table's rows, or a Spark SQL query.

A query may name only the catalog's tables (``catalog.schema.table``, or ``schema.table`` in
the project's catalog), and optionally ``VERSION AS OF n``. Each one is read through the
governed store, exactly as a job reads it: SELECT checked (and audited), masked columns
masked unless the principal holds UNMASK, the version read published for lineage. The
masked DataFrame is registered as a temporary view and the query's table names are
rewritten to those views (sqlglot), so no expression in the query, however arbitrary, sees
an unmasked value, and no name outside the catalog (files, ``delta.`path```, tables
registered some other way) is reachable. Only one read statement runs: a query (SELECT,
WITH, set operations, VALUES).
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lakehouse.core.errors import LakehouseError
from lakehouse.core.spark_sql import parse_spark

if TYPE_CHECKING:
    from pyspark.sql import DataFrame
    from sqlglot import exp

    from lakehouse.config.project import Project, TableRef
    from lakehouse.governance.store import GovernedStore

# table-valued functions that read nothing but their arguments
_SAFE_TABLE_FUNCTIONS = frozenset({"range"})
# functions that call arbitrary JVM methods (JVM Spark)
_REFUSED_FUNCTIONS = frozenset({"reflect", "java_method", "try_reflect"})
_view_ids = itertools.count()


class QueryError(LakehouseError):
    """The query cannot run as given (not a read, a name outside the catalog, a parse error)."""


@dataclass(frozen=True)
class TableRead:
    """One table a query reads: its full name and the Delta version (None: latest)."""

    full_name: str
    version: int | None
    given: str


def resolve_table(project: Project, name: str, *, allow_bare: bool = True) -> str:
    """The full name for ``catalog.schema.table``, ``schema.table`` or (when unique and
    ``allow_bare``) ``table``; unknown names are returned fully qualified as given."""
    parts = name.split(".")
    catalog = project.catalog.name
    if len(parts) == 3:
        return name
    if len(parts) == 2:
        return f"{catalog}.{name}"
    if len(parts) == 1 and allow_bare:
        matches = [t for t in project.tables if t.endswith(f".{name}")]
        if len(matches) == 1:
            return matches[0]
    return name


def _known(project: Project, full_name: str, given: str) -> TableRef:
    """The catalog table, or :class:`QueryError` (the name did not resolve)."""
    ref = project.tables.get(full_name)
    if ref is None:
        raise QueryError(
            f"unknown table {given} (name a catalog table as catalog.schema.table; "
            "`lakehouse tables` lists them)"
        )
    return ref


def read_table(
    store: GovernedStore, name: str, version: int | None = None, *, given: str | None = None
) -> DataFrame:
    """The table as the store's principal may see it (SELECT checked, masked), optionally at
    a Delta ``version``; a name outside the catalog or a table not created yet is refused.

    The privilege is checked before the name is looked up, so a principal without SELECT
    learns of a denial, not of whether the table exists (``given``: the name as written).
    """
    full_name = resolve_table(store.project, name)
    gov = store.governance
    if not gov.may("SELECT", full_name):
        gov.authorize("SELECT", full_name)  # raises, and the denial is audited
    ref = _known(store.project, full_name, given or name)
    if not store.exists(ref):
        raise QueryError(f"{ref.full_name} has no data yet (its Delta table does not exist)")
    if version is not None and version < 0:
        raise QueryError(f"--version: give a Delta version >= 0 (got {version})")
    return store.read(ref, version)


@contextlib.contextmanager
def governed_query(store: GovernedStore, sql: str) -> Iterator[DataFrame]:
    """The result of a read-only Spark SQL query over governed, masked catalog tables.

    The temporary views live until the ``with`` block ends (Spark plans lazily).
    """
    tree = parse_query(sql)
    views: list[tuple[exp.Table, str]] = []
    made: dict[tuple[str, int | None], str] = {}  # one view per table and version
    spark = store.spark
    try:
        for table in _catalog_tables(tree):
            read = table_read(store.project, table)
            key = (read.full_name, read.version)
            if key not in made:
                df = read_table(store, read.full_name, read.version, given=read.given)
                made[key] = f"__lakehouse_q{next(_view_ids)}"
                df.createOrReplaceTempView(made[key])
            views.append((table, made[key]))
        yield spark.sql(rewritten(sql, tree, views))
    finally:
        for view in made.values():
            spark.catalog.dropTempView(view)


def rewritten(sql: str, tree: exp.Expr, views: list[tuple[exp.Table, str]]) -> str:
    """``sql`` with each table reference (name and ``VERSION AS OF``) replaced by its view,
    aliased by the name columns may be qualified with. The rest of the text is the user's,
    untouched; a reference without positions falls back to sqlglot's rendering of the tree."""
    spans: list[tuple[int, int, str]] = []
    for table, view in views:
        parts = table.parts
        travel = table.args.get("version")
        last = travel.expression if travel is not None else parts[-1]
        if "start" not in parts[0].meta or "end" not in last.meta:
            return _regenerated(tree, views)
        alias = "" if table.alias else f" AS `{table.name.replace('`', '``')}`"
        spans.append((parts[0].meta["start"], last.meta["end"] + 1, f"`{view}`{alias}"))
    text = sql
    for start, end, replacement in sorted(spans, reverse=True):
        text = text[:start] + replacement + text[end:]
    return text


def _regenerated(tree: exp.Expr, views: list[tuple[exp.Table, str]]) -> str:
    """The tree with the references pointed at the views, as Spark SQL (sqlglot)."""
    for table, view in views:
        _point_at(table, view)
    return tree.sql(dialect="spark")


def parse_query(sql: str) -> exp.Expr:
    """One read statement, parsed (Spark dialect), or :class:`QueryError`."""
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:  # a statement parsed "as a Command" is refused below
        statements = parse_spark(sql)
    except SqlglotError as exc:
        raise QueryError(f"cannot parse the query: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1:
        raise QueryError(f"give one statement (got {len(statements)})")
    tree: exp.Expr = statements[0]
    if not isinstance(tree, exp.Query | exp.Values):
        kind = tree.key.upper() if not isinstance(tree, exp.Command) else str(tree.this).upper()
        raise QueryError(
            f"only queries run here (SELECT, WITH, VALUES): {kind} statements are not allowed"
        )
    for function in tree.find_all(exp.Func):
        name = function.name if isinstance(function, exp.Anonymous) else function.sql_name()
        if name.lower() in _REFUSED_FUNCTIONS:
            raise QueryError(f"{name.lower()}() is not allowed here (it calls into the JVM)")
    return tree


def _catalog_tables(tree: exp.Expr) -> list[exp.Table]:
    """The query's table references that are not its own CTEs; table functions refused."""
    from sqlglot import exp

    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    out: list[exp.Table] = []
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            function = table.this.sql(dialect="spark").split("(", 1)[0].lower()
            if function in _SAFE_TABLE_FUNCTIONS:
                continue
            raise QueryError(
                f"table function {function}() is not allowed: read catalog tables by name"
            )
        if not table.db and table.name.lower() in ctes:
            continue
        out.append(table)
    return out


def table_read(project: Project, table: exp.Table) -> TableRead:
    """The catalog table a reference names and the version it asks for."""
    from sqlglot import exp

    parts = [p for p in (table.catalog, table.db, table.name) if p]
    name = ".".join(parts)
    if len(parts) < 2:
        raise QueryError(
            f"unknown table {name} (name a catalog table as catalog.schema.table; "
            "`lakehouse tables` lists them)"
        )
    full_name = resolve_table(project, name, allow_bare=False)
    if full_name not in project.tables:
        lowered = {t.lower(): t for t in project.tables}
        full_name = lowered.get(full_name.lower(), full_name)
    version = None
    travel = table.args.get("version")
    if isinstance(travel, exp.Version):
        literal = travel.expression
        if str(travel.this).upper() != "VERSION" or not (
            isinstance(literal, exp.Literal) and not literal.is_string
        ):
            raise QueryError(f"{name}: only VERSION AS OF <number> is supported for time travel")
        version = int(literal.this)
    return TableRead(full_name, version, name)


def _point_at(table: exp.Table, view: str) -> None:
    """Make the reference read ``view``, keeping the name (or alias) columns are qualified by."""
    from sqlglot import exp

    alias = table.alias or table.name
    aliased = exp.TableAlias(this=exp.to_identifier(alias))
    table.replace(exp.Table(this=exp.to_identifier(view), alias=aliased))
