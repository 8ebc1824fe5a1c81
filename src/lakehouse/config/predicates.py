"""Row filter predicates: a Spark SQL boolean expression over one table's columns (pure).

A predicate is checked when the catalog loads (:func:`predicate_problem`): it parses as one
Spark SQL expression (sqlglot), reads no other table (no subquery), gives the same answer
for the same row every time (no random, time, user or file functions), works row by row
(no aggregate or window function) and, when the table declares its columns, names only
those.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lakehouse.core.spark_sql import NON_DETERMINISTIC, parse_spark

if TYPE_CHECKING:
    from sqlglot import exp


class PredicateError(ValueError):
    """A row filter predicate is not a deterministic boolean expression over the table."""


def parse_predicate(predicate: str) -> exp.Expr:
    """The predicate's expression tree (Spark dialect), or :class:`PredicateError`."""
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        trees = parse_spark(predicate)
    except SqlglotError as exc:
        raise PredicateError(f"cannot parse {predicate!r}: {str(exc).splitlines()[0]}") from None
    if len(trees) != 1:
        raise PredicateError(f"give one boolean expression (got {len(trees)} statements)")
    tree = trees[0]
    if not isinstance(tree, exp.Condition) or isinstance(tree, exp.Query):
        raise PredicateError(f"{predicate!r} is not a boolean expression")
    if isinstance(tree, exp.Literal):
        raise PredicateError(f"{predicate!r} is a constant, not a boolean expression")
    return tree


def predicate_problem(predicate: str, columns: list[str]) -> str | None:
    """What is wrong with ``predicate`` as a row filter (None: nothing). ``columns``: the
    table's declared columns (empty: they come from the data and are not checked)."""
    from sqlglot import exp

    try:
        tree = parse_predicate(predicate)
    except PredicateError as exc:
        return str(exc)
    for node in tree.walk():
        if isinstance(node, exp.Query | exp.Subquery | exp.Exists):
            return "a row filter cannot contain a subquery (it sees one row of its table)"
        if isinstance(node, exp.AggFunc | exp.Window):
            return "a row filter works row by row: no aggregate or window functions"
        if isinstance(node, exp.Func):
            name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
            if name in NON_DETERMINISTIC:
                return f"{name}() is not deterministic; a row filter must be"
    if columns:
        known = {c.lower() for c in columns}
        for column in tree.find_all(exp.Column):
            root = column.parts[0].name  # s.field: the struct column s
            if root.lower() not in known:
                return f"{root!r} is not a column of the table (columns: {', '.join(columns)})"
    return None


def to_duckdb(predicate: str) -> str:
    """The Spark SQL predicate in DuckDB SQL (sqlglot); :class:`PredicateError` when it has
    no DuckDB equivalent."""
    import sqlglot
    from sqlglot.errors import ErrorLevel, SqlglotError

    tree = parse_predicate(predicate)
    try:
        return str(
            sqlglot.transpile(
                tree.sql(dialect="spark"),
                read="spark",
                write="duckdb",
                unsupported_level=ErrorLevel.RAISE,
            )[0]
        )
    except SqlglotError as exc:
        raise PredicateError(
            f"{predicate!r} has no DuckDB equivalent: {str(exc).splitlines()[0]}"
        ) from None
