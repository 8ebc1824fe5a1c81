"""Row filters: which rows of a table a reader sees (Unity Catalog style; pure).

A table's ``row_filters`` are rules ``(predicate, to)``. For a reader with identities ``I``
(the principal and its groups, transitively):

* the rules whose ``to`` names one of ``I`` apply, and the reader sees the rows matching
  ANY of them;
* else the rules with an empty ``to`` apply, the same way;
* else (rules exist, none applies) the reader sees no rows (``false``);
* a table without rules is not filtered.

Owners are not exempt, as in Unity Catalog: a rule ``{to: [data-engineers], predicate:
"true"}`` exempts a group. The predicate sees raw values: filters run before masks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from lakehouse.config.catalog import RowFilter
from lakehouse.config.predicates import PredicateError, to_duckdb
from lakehouse.core.errors import LakehouseError

NO_ROWS = "false"


class RowFilterError(LakehouseError):
    """A table's row filter cannot be applied where it is asked for (e.g. no DuckDB form)."""


def applicable(rules: Iterable[RowFilter], identities: set[str]) -> list[str] | None:
    """The predicates that apply to a reader with ``identities`` (None: no rules, no filter;
    an empty list: rules exist but none applies)."""
    rules = list(rules)
    if not rules:
        return None
    named = [r.predicate for r in rules if identities.intersection(r.to)]
    if named:
        return named
    return [r.predicate for r in rules if not r.to]


def combined(predicates: list[str] | None, render: Callable[[str], str] = str) -> str | None:
    """One predicate: the pieces (rendered) OR-ed, each parenthesised when there are several;
    ``false`` for none; None (unfiltered) when there are no rules."""
    if predicates is None:
        return None
    pieces = [render(p) for p in predicates]
    if not pieces:
        return NO_ROWS
    if len(pieces) == 1:
        return pieces[0]
    return " OR ".join(f"({p})" for p in pieces)


def spark_row_filter(rules: Iterable[RowFilter], identities: set[str]) -> str | None:
    """The Spark SQL predicate for a reader (None: all rows)."""
    return combined(applicable(rules, identities))


def duckdb_row_filter(
    rules: Iterable[RowFilter], identities: set[str], table: str = "the table"
) -> str | None:
    """The same predicate in DuckDB SQL (each rule translated by sqlglot); a rule without a
    DuckDB form raises :class:`RowFilterError` (never a weaker filter)."""
    try:
        return combined(applicable(rules, identities), to_duckdb)
    except PredicateError as exc:
        raise RowFilterError(f"row filter of {table}: {exc}") from None
