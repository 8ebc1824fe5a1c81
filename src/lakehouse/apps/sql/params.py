"""Parameter types of a prepared statement, inferred from where each ``$n`` stands.

PostgreSQL resolves a parameter sent with type OID 0 (unspecified) from its context and
reports the type in ParameterDescription; typed drivers then bind values in that type's
binary format. DuckDB 2.0 resolves parameter types only when values are bound
(``duckdb_prepared_statements()`` lists them as ``UNKNOWN``), so the endpoint infers them
itself: a parameter cast to a type has that type; one compared with, added to, or listed
``IN``/``BETWEEN`` against an expression has that expression's type, which DuckDB reports
for a probe query selecting the expression from the same ``FROM``; ``LIMIT``/``OFFSET`` take
``BIGINT``. Anything else stays unknown and is described as ``text`` (25).
"""

from __future__ import annotations

from collections.abc import Callable

import sqlglot
from sqlglot import exp

from lakehouse.apps.sql.codec import ColumnInfo

# the expression kinds whose operands share a type
_PAIRED = (exp.Binary, exp.Between, exp.In)
_CLAUSES = ("where", "group", "having", "order", "limit", "offset", "qualify", "windows")


def _number(node: exp.Expression) -> int | None:
    text = node.name or str(node.this or "")
    return int(text) if text.isdigit() else None


def _partner(node: exp.Expression) -> exp.Expression | None:
    """The expression a parameter's type follows, or None."""
    parent = node.parent
    if isinstance(parent, exp.Paren):
        node, parent = parent, parent.parent
    if isinstance(parent, exp.Between | exp.In) and node.arg_key != "this":
        this: exp.Expression = parent.this
        return this
    if isinstance(parent, exp.Binary) and not isinstance(parent, exp.And | exp.Or):
        other = parent.right if node.arg_key == "this" else parent.left
        return other if isinstance(other, exp.Expression) else None
    return None


def _probe(node: exp.Expression, partner: exp.Expression) -> str | None:
    """``SELECT partner FROM <the parameter's FROM> LIMIT 0`` in DuckDB SQL, or None."""
    select = node.find_ancestor(exp.Select)
    if select is None:
        return None
    probe = select.copy()
    probe.set("expressions", [partner.copy()])
    for clause in _CLAUSES:
        probe.set(clause, None)
    probe.set("distinct", None)
    for placeholder in list(probe.find_all(exp.Placeholder)):
        placeholder.replace(exp.Null())
    return probe.limit(0).sql("duckdb")


def infer_types(
    sql: str, nparams: int, describe: Callable[[str], list[ColumnInfo]]
) -> list[str | None]:
    """DuckDB type names of parameters ``$1..$nparams`` of ``sql`` (None where unknown).

    ``describe(query)`` returns a query's result columns (raises when it cannot bind).
    """
    types: list[str | None] = [None] * nparams
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.SqlglotError:
        return types
    for node in tree.find_all(exp.Placeholder):
        number = _number(node)
        if number is None or not 1 <= number <= nparams or types[number - 1] is not None:
            continue
        types[number - 1] = _infer_one(node, describe)
    return types


def _infer_one(node: exp.Expression, describe: Callable[[str], list[ColumnInfo]]) -> str | None:
    parent = node.parent
    if isinstance(parent, exp.Cast) and node.arg_key == "this":
        target = parent.args.get("to")
        probe = f"SELECT CAST(NULL AS {target.sql('duckdb')})" if target is not None else None
    elif isinstance(parent, exp.Limit | exp.Offset):
        return "BIGINT"
    else:
        partner = _partner(node)
        if partner is None or isinstance(partner, exp.Placeholder | exp.Null):
            return None
        probe = _probe(node, partner)
    if probe is None:
        return None
    try:
        columns = describe(probe)
    except Exception:  # a probe that does not bind (correlated names …): unknown, text
        return None
    return columns[0].type_name if len(columns) == 1 else None
