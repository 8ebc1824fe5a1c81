"""Which refresh a Gold SQL query allows (pure: sqlglot over the query text).

A Gold table is a query over named inputs. When the query is a GROUP BY over one input, a
refresh need not read the whole input again:

* ``decomposable`` -- every output is a group key or an aggregate whose value can be kept
  as a small per-group state that the changed rows update: ``COUNT(*)``, ``COUNT(x)``,
  ``SUM(x)`` (sum plus non-null count, so an all-NULL group stays NULL), ``AVG(x)`` (sum and
  count), and ``MIN``/``MAX`` while the input only grew. The engine still checks the types
  (a floating-point SUM or AVG, or a decimal AVG, is not exact this way).
* ``affected_groups`` -- any other GROUP BY over one input (``COUNT(DISTINCT)``, HAVING,
  expressions over aggregates, ...): the groups the changed rows touch are computed again
  from the current input and replace their old rows.
* ``full`` -- everything else (joins, several inputs, CTEs, set operations, no GROUP BY,
  LIMIT, window functions, non-deterministic functions, features that are not row-level).

Each plan carries the reason in words; it is logged and recorded with every refresh.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

from sqlglot import exp
from sqlglot.errors import SqlglotError

from lakehouse.core.spark_sql import NON_DETERMINISTIC, parse_spark

Strategy = Literal["decomposable", "affected_groups", "full"]
AggregateKind = Literal["count_star", "count", "sum", "avg", "min", "max"]


@dataclass(frozen=True)
class GroupKey:
    """A GROUP BY expression (Spark SQL over the input) and the output column holding it."""

    sql: str
    output: str


@dataclass(frozen=True)
class Aggregate:
    """A decomposable aggregate output: its kind, its argument (Spark SQL) and column."""

    kind: AggregateKind
    arg: str | None
    output: str


@dataclass(frozen=True)
class RefreshPlan:
    """How a Gold table can be refreshed, and why.

    For ``decomposable`` and ``affected_groups``: the one input's alias, the WHERE predicate,
    the group keys; for ``decomposable`` also the aggregates (outputs in SELECT order are the
    keys and aggregates, see ``outputs``).
    """

    strategy: Strategy
    reason: str
    alias: str | None = None
    where: str | None = None
    keys: tuple[GroupKey, ...] = ()
    aggregates: tuple[Aggregate, ...] = ()
    outputs: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()  # the names the query references (input columns among them)

    @property
    def has_min_max(self) -> bool:
        return any(a.kind in ("min", "max") for a in self.aggregates)


def full(reason: str) -> RefreshPlan:
    """A plan that rebuilds the table, for ``reason``."""
    return RefreshPlan("full", reason)


def _function_name(node: exp.Expr) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    if isinstance(node, exp.Func):
        return str(node.sql_name()).lower()
    return ""


def row_level_problem(node: exp.Expr) -> str | None:
    """Why ``node`` is not a deterministic function of one row (None when it is)."""
    for sub in node.walk():
        if isinstance(sub, exp.Window):
            return f"window function {sub.sql(dialect='spark')}"
        if isinstance(sub, exp.Subquery | exp.Select | exp.Exists):
            return "a subquery"
        if isinstance(sub, exp.AggFunc):
            return f"aggregate {sub.sql(dialect='spark')}"
        name = _function_name(sub)
        if name in NON_DETERMINISTIC or (
            isinstance(sub, exp.Func)
            and any(n.lower() in NON_DETERMINISTIC for n in type(sub).sql_names())
        ):
            return f"non-deterministic {name or type(sub).__name__}()"
    return None


def _sql(node: exp.Expr) -> str:
    return node.sql(dialect="spark")


def _decomposable(node: exp.Expr) -> Aggregate | None:
    """The aggregate of a SELECT item that is one plain aggregate call (else None)."""
    inner = node.unalias()
    if not isinstance(inner, exp.Count | exp.Sum | exp.Avg | exp.Min | exp.Max):
        return None
    arg = inner.this
    if isinstance(arg, exp.Distinct) or arg is None:
        return None
    if isinstance(inner, exp.Count) and isinstance(arg, exp.Star):
        return Aggregate("count_star", None, node.alias_or_name)
    if row_level_problem(arg) is not None or inner.args.get("expressions"):
        return None
    kind: AggregateKind = {
        exp.Count: "count",
        exp.Sum: "sum",
        exp.Avg: "avg",
        exp.Min: "min",
        exp.Max: "max",
    }[type(inner)]  # type: ignore[assignment]
    return Aggregate(kind, _sql(arg), node.alias_or_name)


def repeatable_problem(query: str | None, features: Mapping[str, str] | None = None) -> str | None:
    """Why the same inputs may not give the same Gold rows again (None when they do): a
    Python transform (its code can change without its name), a non-deterministic function,
    or a function sqlglot does not know (a UDF whose code can change). Only a repeatable
    table may skip a refresh whose inputs did not change."""
    if query is None:
        return "a Python transform may change without its inputs"
    for text in (query, *(features or {}).values()):
        try:
            trees = parse_spark(text)
        except SqlglotError as e:
            return f"does not parse: {e}"
        for tree in trees:
            for sub in tree.walk():
                name = _function_name(sub)
                if isinstance(sub, exp.Anonymous):
                    return f"function {name}() is not a Spark built-in (a UDF may change)"
                if name in NON_DETERMINISTIC or (
                    isinstance(sub, exp.Func)
                    and any(n.lower() in NON_DETERMINISTIC for n in type(sub).sql_names())
                ):
                    return f"non-deterministic {name}()"
    return None


def plan_refresh(
    query: str | None, inputs: tuple[str, ...], features: Mapping[str, str] | None = None
) -> RefreshPlan:
    """The refresh strategy the Gold query over ``inputs`` (aliases) allows, with the reason.

    ``query`` None means the table is built by a Python transform (opaque: ``full``).
    """
    if query is None:
        return full("a Python transform cannot be analysed")
    if len(inputs) != 1:
        return full(f"{len(inputs)} inputs (joins are rebuilt)")
    for name, text in (features or {}).items():
        try:
            trees = parse_spark(text)
        except SqlglotError as e:
            return full(f"feature {name} does not parse: {e}")
        problem = "not one expression" if len(trees) != 1 else row_level_problem(trees[0])
        if problem:
            return full(f"feature {name} is not row-level ({problem})")
    try:
        trees = parse_spark(query)
    except SqlglotError as e:
        return full(f"the query does not parse: {e}")
    if len(trees) != 1 or not isinstance(trees[0], exp.Select):
        return full("the query is not a single SELECT")
    select = trees[0]
    return _plan_select(select, inputs[0])


def _shape_problem(select: exp.Select, alias: str) -> str | None:
    """Why the SELECT is not a plain GROUP BY over the input (None when it is)."""
    if select.args.get("with") or select.args.get("with_"):
        return "a WITH clause (CTEs are rebuilt)"
    if select.args.get("joins"):
        return "a join"
    source = select.args.get("from_") or select.args.get("from")
    table = source.this if source is not None else None
    if not isinstance(table, exp.Table) or table.name.lower() != alias.lower() or table.db:
        return f"the query does not read its input {alias} directly"
    for clause in ("limit", "offset", "distinct", "qualify", "windows"):
        if select.args.get(clause):
            return f"{clause.upper()} in the query"
    group = select.args.get("group")
    if group is None or not group.expressions:
        return "no GROUP BY"
    if any(group.args.get(k) for k in ("grouping_sets", "cube", "rollup", "totals")):
        return "GROUPING SETS, ROLLUP or CUBE"
    where = select.args.get("where")
    if where is not None:
        problem = row_level_problem(where.this)
        if problem:
            return f"the WHERE clause has {problem}"
    return _output_problem(select.expressions)


def _output_problem(items: list[exp.Expr]) -> str | None:
    """Why an output column stands in the way (None when none does)."""
    for item in items:
        if isinstance(item, exp.Star) or isinstance(item.unalias(), exp.Star):
            return "SELECT *"
        for window in item.find_all(exp.Window):
            return f"window function {_sql(window)}"
        if item.find(exp.Subquery, exp.Exists) is not None:
            return "a subquery in SELECT"
        if not isinstance(item, exp.Column | exp.Alias):
            return f"the output {_sql(item)} needs an alias"
    return None


def _plan_select(select: exp.Select, alias: str) -> RefreshPlan:
    problem = _shape_problem(select, alias)
    if problem:
        return full(problem)
    group = select.args["group"]
    where = select.args.get("where")
    items = list(select.expressions)
    keys = _group_keys(group.expressions, items)
    if isinstance(keys, str):
        return full(keys)
    key_outputs = {k.output for k in keys}
    outputs = tuple(i.alias_or_name for i in items)
    if len(set(outputs)) != len(outputs):
        return full("two outputs share a name")
    base = RefreshPlan(
        "affected_groups",
        "",
        alias=alias,
        where=_sql(where.this) if where is not None else None,
        keys=keys,
        outputs=outputs,
        columns=tuple(sorted({c.name for c in select.find_all(exp.Column)})),
    )
    if select.args.get("having") is not None:
        return replace(base, reason="HAVING filters whole groups")
    aggregates: list[Aggregate] = []
    for item in items:
        if item.alias_or_name in key_outputs and item.find(exp.AggFunc) is None:
            continue
        aggregate = _decomposable(item)
        if aggregate is None:
            return replace(
                base, reason=f"{_sql(item)} is not COUNT, SUM, AVG, MIN or MAX of a row expression"
            )
        aggregates.append(aggregate)
    return replace(
        base,
        strategy="decomposable",
        reason="a GROUP BY of COUNT, SUM, AVG, MIN or MAX over one input",
        aggregates=tuple(aggregates),
    )


def _group_keys(groups: list[exp.Expr], items: list[exp.Expr]) -> tuple[GroupKey, ...] | str:
    """Each GROUP BY expression with the output column that holds it (or why there is none).

    A key may be an ordinal (``GROUP BY 1``), an output alias, or an expression that a
    SELECT item repeats.
    """
    by_alias = {i.alias: i for i in items if isinstance(i, exp.Alias)}
    keys: list[GroupKey] = []
    for g in groups:
        item: exp.Expr | None = None
        if isinstance(g, exp.Literal) and g.is_int:
            n = int(g.name)
            if not 1 <= n <= len(items):
                return f"GROUP BY {n} is not a SELECT position"
            item = items[n - 1]
        elif isinstance(g, exp.Column) and not g.table and g.name in by_alias:
            item = by_alias[g.name]
        else:
            item = next((i for i in items if i.unalias() == g), None)
        if item is None:
            return f"the group key {_sql(g)} is not an output column"
        expression = item.unalias()
        if expression.find(exp.AggFunc) is not None:
            return f"the group key {_sql(g)} is an aggregate"
        problem = row_level_problem(expression)
        if problem:
            return f"the group key {_sql(g)} has {problem}"
        key = GroupKey(_sql(expression), item.alias_or_name)
        if key not in keys:
            keys.append(key)
    return tuple(keys)
