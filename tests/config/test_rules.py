"""Rule config validation and compilation to Spark SQL and great-expectations (pure Python)."""

from __future__ import annotations

from typing import Any

import great_expectations.expectations as gxe
import pytest
from pydantic import ValidationError

from lakehouse.config.rules import (
    EXPECTATION_TYPES,
    Expectation,
    Rule,
    evaluated_condition,
    row_condition,
    sql_literal,
    to_gx_expectation,
)


def rule(name: str, type_: str, action: str = "warn", **kwargs: Any) -> Rule:
    return Rule.model_validate(
        {"name": name, "action": action, "expectation": {"type": type_, "kwargs": kwargs}}
    )


def error_of(data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        Rule.model_validate(data)
    return str(info.value)


def test_rule_loads_from_yaml_shaped_dict() -> None:
    loaded = Rule.model_validate(
        {
            "name": "amount_range",
            "action": "drop",
            "description": "amounts are positive",
            "expectation": {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": "amount", "min_value": 0, "strict_min": True},
            },
        }
    )
    assert loaded.expectation_type == "expect_column_values_to_be_between"
    assert loaded.table_level is False
    assert loaded.action == "drop"


def test_missing_kwarg_is_named() -> None:
    message = error_of(
        {
            "name": "r",
            "expectation": {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "s"}},
        }
    )
    assert "expect_column_values_to_be_in_set: missing required kwarg 'value_set'" in message


def test_unknown_kwarg_is_named_with_the_allowed_ones() -> None:
    message = error_of(
        {
            "name": "r",
            "expectation": {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": "amount", "min": 0},
            },
        }
    )
    assert (
        "expect_column_values_to_be_between: unknown kwarg 'min' "
        "(allowed: column, min_value, max_value, strict_min, strict_max)"
    ) in message


def test_unknown_expectation_type_is_rejected() -> None:
    message = error_of(
        {"name": "r", "expectation": {"type": "expect_column_to_exist", "kwargs": {"column": "a"}}}
    )
    assert "expect_column_values_to_not_be_null" in message  # the error lists the allowed types


def test_drop_on_row_count_rule_is_rejected() -> None:
    message = error_of(
        {
            "name": "enough_rows",
            "action": "drop",
            "expectation": {
                "type": "expect_table_row_count_to_be_between",
                "kwargs": {"min_value": 1},
            },
        }
    )
    assert (
        "rule 'enough_rows': expect_table_row_count_to_be_between is a table-level check" in message
    )


def test_expectation_and_sql_together_are_rejected() -> None:
    message = error_of(
        {
            "name": "r",
            "sql": "amount > 0",
            "expectation": {
                "type": "expect_column_values_to_not_be_null",
                "kwargs": {"column": "a"},
            },
        }
    )
    assert "rule 'r': give exactly one of 'expectation' or 'sql'" in message


def test_neither_expectation_nor_sql_is_rejected() -> None:
    assert "give exactly one of 'expectation' or 'sql'" in error_of({"name": "r"})


@pytest.mark.parametrize(
    ("type_", "kwargs", "expected"),
    [
        (
            "expect_column_values_to_be_between",
            {"column": "a"},
            "give 'min_value', 'max_value' or both",
        ),
        (
            "expect_column_values_to_be_between",
            {"column": "a", "min_value": 5, "max_value": 1},
            "'min_value' 5 is greater than 'max_value' 1",
        ),
        (
            "expect_table_row_count_to_be_between",
            {"min_value": 1.5},
            "must be a whole number of rows",
        ),
        (
            "expect_column_values_to_be_in_set",
            {"column": "a", "value_set": []},
            "must be a non-empty list",
        ),
        (
            "expect_column_values_to_be_in_set",
            {"column": "a", "value_set": ["x", 1]},
            "mixes value types",
        ),
        (
            "expect_column_values_to_be_in_set",
            {"column": "a", "value_set": ["x", None]},
            "(no null)",
        ),
        (
            "expect_compound_columns_to_be_unique",
            {"column_list": ["a"]},
            "at least two column names",
        ),
        (
            "expect_column_values_to_not_be_null",
            {"column": ""},
            "kwarg 'column' must be a non-empty string",
        ),
        (
            "expect_column_pair_values_a_to_be_greater_than_b",
            {"column_A": "a", "column_B": "b", "or_equal": "yes"},
            "kwarg 'or_equal' must be true or false",
        ),
    ],
)
def test_bad_kwarg_values_are_explained(type_: str, kwargs: dict[str, Any], expected: str) -> None:
    assert expected in error_of({"name": "r", "expectation": {"type": type_, "kwargs": kwargs}})


def test_bad_rule_name_is_rejected() -> None:
    assert "string_pattern_mismatch" in error_of({"name": "has space", "sql": "TRUE"})


def test_expectation_is_frozen() -> None:
    expectation = Expectation(type="expect_column_values_to_not_be_null", kwargs={"column": "a"})
    with pytest.raises(ValidationError):
        expectation.type = "expect_column_values_to_be_unique"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("compiled", "expected"),
    [
        (
            rule("r", "expect_column_values_to_not_be_null", column="id"),
            "(`id` IS NOT NULL)",
        ),
        (
            rule(
                "r",
                "expect_column_values_to_be_between",
                column="amount",
                min_value=0,
                strict_max=True,
                max_value=1.5,
            ),
            "(`amount` IS NULL OR (`amount` >= 0 AND `amount` < CAST('1.5' AS DOUBLE)))",
        ),
        (
            rule("r", "expect_column_values_to_be_between", column="day", min_value="2026-01-01"),
            "(`day` IS NULL OR (`day` >= '2026-01-01'))",
        ),
        (
            rule("r", "expect_column_values_to_be_in_set", column="s", value_set=["a", "it's"]),
            "(`s` IS NULL OR (`s` IN ('a', 'it\\'s')))",
        ),
        (
            rule("r", "expect_column_values_to_match_regex", column="code", regex=r"^\d{3}$"),
            "(`code` IS NULL OR (`code` RLIKE '^\\\\d{3}$'))",
        ),
        (
            rule("r", "expect_column_values_to_be_unique", column="odd`name"),
            "(`odd``name` IS NULL OR (count(1) OVER (PARTITION BY `odd``name`) = 1))",
        ),
        (
            rule("r", "expect_compound_columns_to_be_unique", column_list=["a", "b"]),
            "((`a` IS NULL AND `b` IS NULL) OR count(1) OVER (PARTITION BY `a`, `b`) = 1)",
        ),
        (
            rule(
                "r", "expect_column_pair_values_a_to_be_greater_than_b", column_A="a", column_B="b"
            ),
            "coalesce(`a` > `b`, TRUE)",
        ),
        (
            rule(
                "r",
                "expect_column_pair_values_a_to_be_greater_than_b",
                column_A="a",
                column_B="b",
                or_equal=True,
            ),
            "coalesce(`a` >= `b`, TRUE)",
        ),
        (Rule(name="r", sql="amount < 45"), "coalesce((amount < 45), FALSE)"),
        (rule("r", "expect_table_row_count_to_be_between", min_value=1), None),
    ],
)
def test_row_condition(compiled: Rule, expected: str | None) -> None:
    assert row_condition(compiled) == expected


def test_evaluated_condition_follows_gx_missing_rows() -> None:
    assert (
        evaluated_condition(rule("r", "expect_column_values_to_not_be_null", column="a")) == "TRUE"
    )
    assert (
        evaluated_condition(rule("r", "expect_column_values_to_be_unique", column="a"))
        == "`a` IS NOT NULL"
    )
    assert (
        evaluated_condition(
            rule("r", "expect_compound_columns_to_be_unique", column_list=["a", "b"])
        )
        == "NOT (`a` IS NULL AND `b` IS NULL)"
    )
    assert evaluated_condition(Rule(name="r", sql="x > 0")) == "TRUE"
    assert (
        evaluated_condition(rule("r", "expect_table_row_count_to_be_between", max_value=3)) is None
    )


def test_sql_literal() -> None:
    assert [sql_literal(v) for v in (True, 3, 0.1, "a\\'b")] == [
        "TRUE",
        "3",
        "CAST('0.1' AS DOUBLE)",
        "'a\\\\\\'b'",
    ]


def test_to_gx_expectation_builds_the_gx_class_with_rule_meta() -> None:
    expectation = to_gx_expectation(
        rule(
            "amount_range",
            "expect_column_values_to_be_between",
            "drop",
            column="amount",
            min_value=0,
        )
    )
    assert isinstance(expectation, gxe.ExpectColumnValuesToBeBetween)
    assert (expectation.column, expectation.min_value, expectation.max_value) == ("amount", 0, None)
    assert expectation.meta == {"rule": "amount_range", "action": "drop"}


def test_every_supported_type_has_a_gx_class() -> None:
    kwargs: dict[str, dict[str, Any]] = {
        "expect_column_values_to_not_be_null": {"column": "a"},
        "expect_column_values_to_be_between": {"column": "a", "max_value": 1},
        "expect_column_values_to_be_in_set": {"column": "a", "value_set": [1]},
        "expect_column_values_to_match_regex": {"column": "a", "regex": "x"},
        "expect_column_values_to_be_unique": {"column": "a"},
        "expect_compound_columns_to_be_unique": {"column_list": ["a", "b"]},
        "expect_table_row_count_to_be_between": {"min_value": 0},
        "expect_column_pair_values_a_to_be_greater_than_b": {"column_A": "a", "column_B": "b"},
    }
    assert set(kwargs) == set(EXPECTATION_TYPES)
    for type_, kw in kwargs.items():
        assert to_gx_expectation(rule("r", type_, **kw)).expectation_type == type_


def test_sql_rule_becomes_unexpected_rows_expectation_with_braces_escaped() -> None:
    expectation = to_gx_expectation(
        Rule(name="code_ok", sql="code RLIKE '^x{2}$'", description="two x")
    )
    assert isinstance(expectation, gxe.UnexpectedRowsExpectation)
    assert expectation.unexpected_rows_query == (
        "SELECT * FROM {batch} WHERE NOT coalesce((code RLIKE '^x{{2}}$'), FALSE)"
    )
    assert expectation.description == "code_ok: two x"
