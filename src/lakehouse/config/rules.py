"""Data-quality rules: typed config, compiled to Spark SQL and to great-expectations.

A rule is written as a great-expectations (GX) expectation (``type`` + ``kwargs``, the GX
names) or as a Spark SQL boolean that is TRUE for good rows. ``row_condition`` compiles a
row-level rule to one Spark SQL expression that is TRUE when a row passes and is never NULL,
with the NULL semantics GX has on Spark:

* ``not_null`` fails NULLs; ``between``, ``in_set``, ``match_regex`` and ``unique`` skip rows
  whose column is NULL (they pass and are not counted as evaluated);
* ``compound_columns_to_be_unique`` skips rows where every column is NULL and otherwise
  treats NULL as a value (``(1, NULL)`` twice is a duplicate), as GX's window does;
* ``pair_values_a_to_be_greater_than_b`` skips rows where both columns are NULL; a row where
  only one side is NULL passes, because GX on Spark does not count an unknown comparison;
* a SQL rule passes only when its expression is TRUE (NULL fails).

``expect_table_row_count_to_be_between`` is table-level: it has no row condition and its
action cannot be ``drop``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, get_args

from pydantic import model_validator

from lakehouse.config.base import Identifier, StrictModel

ExpectationType = Literal[
    "expect_column_values_to_not_be_null",
    "expect_column_values_to_be_between",
    "expect_column_values_to_be_in_set",
    "expect_column_values_to_match_regex",
    "expect_column_values_to_be_unique",
    "expect_compound_columns_to_be_unique",
    "expect_table_row_count_to_be_between",
    "expect_column_pair_values_a_to_be_greater_than_b",
]
EXPECTATION_TYPES: tuple[str, ...] = get_args(ExpectationType)
TABLE_LEVEL = frozenset({"expect_table_row_count_to_be_between"})
SQL = "sql"


@dataclass(frozen=True)
class _Signature:
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()

    @property
    def allowed(self) -> tuple[str, ...]:
        return self.required + self.optional


_BOUNDS = ("min_value", "max_value")
SIGNATURES: dict[str, _Signature] = {
    "expect_column_values_to_not_be_null": _Signature(("column",)),
    "expect_column_values_to_be_between": _Signature(
        ("column",), (*_BOUNDS, "strict_min", "strict_max")
    ),
    "expect_column_values_to_be_in_set": _Signature(("column", "value_set")),
    "expect_column_values_to_match_regex": _Signature(("column", "regex")),
    "expect_column_values_to_be_unique": _Signature(("column",)),
    "expect_compound_columns_to_be_unique": _Signature(("column_list",)),
    "expect_table_row_count_to_be_between": _Signature((), _BOUNDS),
    "expect_column_pair_values_a_to_be_greater_than_b": _Signature(
        ("column_A", "column_B"), ("or_equal",)
    ),
}


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_value(type_: str, name: str, value: Any) -> None:
    """Raise ValueError naming the kwarg when ``value`` has the wrong shape."""
    where = f"{type_}: kwarg {name!r}"
    if name in ("column", "column_A", "column_B", "regex"):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{where} must be a non-empty string, got {value!r}")
    elif name in ("strict_min", "strict_max", "or_equal"):
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be true or false, got {value!r}")
    elif name in _BOUNDS:
        _check_bound(type_, where, value)
    elif name == "value_set":
        _check_value_set(where, value)
    elif name == "column_list":
        _check_column_list(where, value)


def _check_bound(type_: str, where: str, value: Any) -> None:
    """A min/max bound: a row count for table-level rules, else a number or a date string."""
    if type_ in TABLE_LEVEL:
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise ValueError(f"{where} must be a whole number of rows, got {value!r}")
        if isinstance(value, int) and value < 0:
            raise ValueError(f"{where} must be >= 0, got {value}")
    elif value is not None and not (_is_number(value) or isinstance(value, str)):
        raise ValueError(f"{where} must be a number or a string (date), got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where} must be finite, got {value!r}")


def _check_value_set(where: str, value: Any) -> None:
    """A non-empty list of literals of one kind (strings, numbers or booleans)."""
    if not isinstance(value, list) or not value:
        raise ValueError(f"{where} must be a non-empty list, got {value!r}")
    kinds = {_literal_kind(v) for v in value}
    if None in kinds:
        raise ValueError(
            f"{where} may hold strings, numbers or booleans only (no null), got {value!r}"
        )
    if len(kinds) > 1:
        raise ValueError(f"{where} mixes value types: {value!r}")


def _check_column_list(where: str, value: Any) -> None:
    """At least two distinct column names."""
    if (
        not isinstance(value, list)
        or len(value) < 2
        or not all(isinstance(c, str) and c for c in value)
    ):
        raise ValueError(f"{where} must be a list of at least two column names, got {value!r}")
    if len(set(value)) != len(value):
        raise ValueError(f"{where} names a column twice: {value!r}")


def _literal_kind(value: object) -> str | None:
    if isinstance(value, bool):
        return "boolean"
    if _is_number(value):
        return "number" if not isinstance(value, float) or math.isfinite(value) else None
    if isinstance(value, str):
        return "string"
    return None


class Expectation(StrictModel):
    """A great-expectations expectation: its snake_case ``type`` and its ``kwargs``."""

    type: ExpectationType
    kwargs: dict[str, Any]

    @model_validator(mode="after")
    def _check_kwargs(self) -> Expectation:
        signature = SIGNATURES[self.type]
        unknown = [k for k in self.kwargs if k not in signature.allowed]
        if unknown:
            raise ValueError(
                f"{self.type}: unknown kwarg {', '.join(repr(k) for k in unknown)}"
                f" (allowed: {', '.join(signature.allowed)})"
            )
        missing = [k for k in signature.required if k not in self.kwargs]
        if missing:
            raise ValueError(
                f"{self.type}: missing required kwarg {', '.join(repr(k) for k in missing)}"
            )
        for name, value in self.kwargs.items():
            _check_value(self.type, name, value)
        if "min_value" in signature.allowed:
            low, high = self.kwargs.get("min_value"), self.kwargs.get("max_value")
            if low is None and high is None:
                raise ValueError(f"{self.type}: give 'min_value', 'max_value' or both")
            comparable = (_is_number(low) and _is_number(high)) or (
                isinstance(low, str) and isinstance(high, str)
            )
            if comparable and low > high:  # type: ignore[operator]
                raise ValueError(
                    f"{self.type}: 'min_value' {low!r} is greater than 'max_value' {high!r}"
                )
        return self


class Rule(StrictModel):
    """One named data-quality rule: a GX expectation or a Spark SQL check, and its action.

    ``action``: ``warn`` keeps failing rows, ``drop`` quarantines them, ``fail`` stops the
    run. ``sql`` is a row-level Spark SQL boolean expression that is TRUE for good rows
    (NULL counts as a failure; no aggregates or window functions: GX runs it in a WHERE).
    """

    name: Identifier
    expectation: Expectation | None = None
    sql: str | None = None
    action: Literal["warn", "drop", "fail"] = "warn"
    description: str = ""

    @model_validator(mode="after")
    def _check_rule(self) -> Rule:
        if (self.expectation is None) == (self.sql is None):
            raise ValueError(f"rule {self.name!r}: give exactly one of 'expectation' or 'sql'")
        if self.sql is not None and not self.sql.strip():
            raise ValueError(f"rule {self.name!r}: 'sql' is empty")
        if self.table_level and self.action == "drop":
            raise ValueError(
                f"rule {self.name!r}: {self.expectation_type} is a table-level check, it has no"
                " rows to drop; use action 'warn' or 'fail'"
            )
        return self

    @property
    def expectation_type(self) -> str:
        """The GX expectation type, or ``"sql"`` for a SQL rule."""
        return self.expectation.type if self.expectation is not None else SQL

    @property
    def table_level(self) -> bool:
        """True for checks of the whole table (row count), which flag no rows."""
        return self.expectation_type in TABLE_LEVEL


# ------------------------------------------------------------------ Spark SQL


def quote_identifier(name: str) -> str:
    """Backtick-quote a column name for Spark SQL."""
    return "`" + name.replace("`", "``") + "`"


def sql_literal(value: object) -> str:
    """A Spark SQL literal for a string, a number or a boolean."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"CAST('{value!r}' AS DOUBLE)"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    raise TypeError(f"no Spark SQL literal for {value!r}")


def _columns(kwargs: dict[str, Any], *names: str) -> list[str]:
    return [quote_identifier(kwargs[n]) for n in names]


def row_condition(rule: Rule) -> str | None:
    """Spark SQL that is TRUE when a row passes ``rule`` (never NULL); None if table-level."""
    if rule.sql is not None:
        return f"coalesce(({rule.sql}), FALSE)"
    assert rule.expectation is not None
    type_, kw = rule.expectation.type, rule.expectation.kwargs
    if type_ in TABLE_LEVEL:
        return None
    if type_ == "expect_column_values_to_not_be_null":
        return f"({_columns(kw, 'column')[0]} IS NOT NULL)"
    if type_ == "expect_column_pair_values_a_to_be_greater_than_b":
        a, b = _columns(kw, "column_A", "column_B")
        op = ">=" if kw.get("or_equal") else ">"
        return f"coalesce({a} {op} {b}, TRUE)"
    if type_ == "expect_compound_columns_to_be_unique":
        cols = [quote_identifier(c) for c in kw["column_list"]]
        all_null = " AND ".join(f"{c} IS NULL" for c in cols)
        return f"(({all_null}) OR count(1) OVER (PARTITION BY {', '.join(cols)}) = 1)"
    column = _columns(kw, "column")[0]
    return f"({column} IS NULL OR ({_column_check(type_, column, kw)}))"


def _column_check(type_: str, column: str, kw: dict[str, Any]) -> str:
    """Spark SQL for a single-column expectation on a non-NULL ``column`` (quoted)."""
    if type_ == "expect_column_values_to_be_unique":
        return f"count(1) OVER (PARTITION BY {column}) = 1"
    if type_ == "expect_column_values_to_be_in_set":
        return f"{column} IN ({', '.join(sql_literal(v) for v in kw['value_set'])})"
    if type_ == "expect_column_values_to_match_regex":
        return f"{column} RLIKE {sql_literal(kw['regex'])}"
    if type_ == "expect_column_values_to_be_between":
        bounds = []
        if kw.get("min_value") is not None:
            op = ">" if kw.get("strict_min") else ">="
            bounds.append(f"{column} {op} {sql_literal(kw['min_value'])}")
        if kw.get("max_value") is not None:
            op = "<" if kw.get("strict_max") else "<="
            bounds.append(f"{column} {op} {sql_literal(kw['max_value'])}")
        return " AND ".join(bounds)
    raise ValueError(f"no SQL for {type_}")  # pragma: no cover - the Literal type lists all


def evaluated_condition(rule: Rule) -> str | None:
    """Spark SQL that is TRUE for the rows ``rule`` evaluates (GX: not 'missing').

    None for table-level rules. Rows outside it always pass ``row_condition``.
    """
    if rule.sql is not None:
        return "TRUE"
    assert rule.expectation is not None
    type_, kw = rule.expectation.type, rule.expectation.kwargs
    if type_ in TABLE_LEVEL:
        return None
    if type_ == "expect_column_values_to_not_be_null":
        return "TRUE"
    if type_ == "expect_column_pair_values_a_to_be_greater_than_b":
        a, b = _columns(kw, "column_A", "column_B")
        return f"NOT ({a} IS NULL AND {b} IS NULL)"
    if type_ == "expect_compound_columns_to_be_unique":
        cols = [quote_identifier(c) for c in kw["column_list"]]
        return "NOT (" + " AND ".join(f"{c} IS NULL" for c in cols) + ")"
    return f"{_columns(kw, 'column')[0]} IS NOT NULL"


def referenced_columns(rule: Rule) -> list[str]:
    """The columns an expectation rule reads (SQL rules: none known)."""
    if rule.expectation is None:
        return []
    kw = rule.expectation.kwargs
    names: list[str] = [kw[k] for k in ("column", "column_A", "column_B") if k in kw]
    return names + list(kw.get("column_list", []))


def row_count_passes(rule: Rule, rows: int) -> bool:
    """Whether a table-level row-count rule holds for ``rows``."""
    assert rule.expectation is not None and rule.table_level
    low = rule.expectation.kwargs.get("min_value")
    high = rule.expectation.kwargs.get("max_value")
    return (low is None or rows >= low) and (high is None or rows <= high)


# ------------------------------------------------------------ great-expectations


def to_gx_expectation(rule: Rule) -> Any:
    """The ``great_expectations.expectations`` instance for ``rule``.

    SQL rules become ``UnexpectedRowsExpectation`` (``SELECT * FROM {batch} WHERE NOT
    coalesce((sql), FALSE)``), which GX 1.24 runs on classic and Spark Connect DataFrames.
    ``meta`` carries the rule name and action, so results map back to rules.
    """
    import great_expectations.expectations as gxe

    meta = {"rule": rule.name, "action": rule.action}
    extra: dict[str, Any] = {"meta": meta}
    if rule.description:
        extra["description"] = f"{rule.name}: {rule.description}"
    if rule.sql is not None:
        condition = row_condition(rule)
        assert condition is not None
        query = "SELECT * FROM {batch} WHERE NOT " + condition.replace("{", "{{").replace("}", "}}")
        extra.setdefault("description", f"{rule.name}: {rule.sql}")
        return gxe.UnexpectedRowsExpectation(unexpected_rows_query=query, **extra)
    assert rule.expectation is not None
    cls = _GX_CLASSES[rule.expectation.type]
    return getattr(gxe, cls)(**rule.expectation.kwargs, **extra)


_GX_CLASSES: dict[str, str] = {
    "expect_column_values_to_not_be_null": "ExpectColumnValuesToNotBeNull",
    "expect_column_values_to_be_between": "ExpectColumnValuesToBeBetween",
    "expect_column_values_to_be_in_set": "ExpectColumnValuesToBeInSet",
    "expect_column_values_to_match_regex": "ExpectColumnValuesToMatchRegex",
    "expect_column_values_to_be_unique": "ExpectColumnValuesToBeUnique",
    "expect_compound_columns_to_be_unique": "ExpectCompoundColumnsToBeUnique",
    "expect_table_row_count_to_be_between": "ExpectTableRowCountToBeBetween",
    "expect_column_pair_values_a_to_be_greater_than_b": "ExpectColumnPairValuesAToBeGreaterThanB",
}
