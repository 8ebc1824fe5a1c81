"""Flagging and counting rule violations (both engines) and the great-expectations cross-check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession

from lakehouse.config.rules import EXPECTATION_TYPES, SQL, Rule
from lakehouse.transforms.quality import (
    VIOLATIONS,
    QualityCrossCheckError,
    QualityError,
    RuleResult,
    cross_check,
    duplicate_keys,
    evaluate_rules,
    flag_violations,
    validate_with_gx,
)

ORDERS = (
    "row int, order_id int, line int, amount double, status string, code string,"
    " ship_day int, order_day int"
)
# row: the defect it carries
ORDER_ROWS = [
    (1, 1, 1, 10.0, "new", "AB-001", 5, 3),  # clean
    (2, None, 1, 20.0, "new", "AB-002", 5, 3),  # NULL key
    (3, 3, 1, -5.0, "shipped", "AB-003", 4, 4),  # amount out of range, shipped same day
    (4, 4, 1, None, "lost", "AB-004", None, 2),  # status not in set, NULL amount fails the SQL rule
    (5, 5, 1, 30.0, None, "bad", None, None),  # code does not match
    (6, 6, 1, 40.0, "new", "AB-006", 7, 1),  # duplicate key and duplicate (order_id, line)
    (7, 6, 1, 50.0, "new", "AB-007", 7, 1),  # same, plus amount >= 45 (SQL rule)
    (8, 7, 1, 1.0, "new", "AB-008", 2, 1),  # duplicate key, unique (order_id, line)
    (9, 7, 2, 2.0, "new", None, 2, 1),  # duplicate key, unique (order_id, line)
]


def expect(name: str, type_: str, action: str = "warn", **kwargs: Any) -> Rule:
    return Rule.model_validate(
        {"name": name, "action": action, "expectation": {"type": type_, "kwargs": kwargs}}
    )


RULES = [
    expect("order_id_present", "expect_column_values_to_not_be_null", "drop", column="order_id"),
    expect(
        "amount_range",
        "expect_column_values_to_be_between",
        "drop",
        column="amount",
        min_value=0,
        max_value=1000,
    ),
    expect(
        "status_known",
        "expect_column_values_to_be_in_set",
        column="status",
        value_set=["new", "shipped"],
    ),
    expect(
        "code_format", "expect_column_values_to_match_regex", column="code", regex=r"^AB-\d{3}$"
    ),
    expect("order_unique", "expect_column_values_to_be_unique", column="order_id"),
    expect("line_unique", "expect_compound_columns_to_be_unique", column_list=["order_id", "line"]),
    expect(
        "ships_after_order",
        "expect_column_pair_values_a_to_be_greater_than_b",
        column_A="ship_day",
        column_B="order_day",
    ),
    Rule(name="small_amount", sql="amount < 45", description="amounts below 45"),
    expect(
        "at_most_5_rows", "expect_table_row_count_to_be_between", "fail", min_value=1, max_value=5
    ),
    expect("has_9_rows", "expect_table_row_count_to_be_between", min_value=9, max_value=9),
]

EXPECTED_VIOLATIONS = {
    1: [],
    2: ["order_id_present"],
    3: ["amount_range", "ships_after_order"],
    4: ["status_known", "small_amount"],
    5: ["code_format"],
    6: ["order_unique", "line_unique"],
    7: ["order_unique", "line_unique", "small_amount"],
    8: ["order_unique"],
    9: ["order_unique"],
}


def result(rule: Rule, evaluated: int, failed: int, pass_rate: float) -> RuleResult:
    return RuleResult(
        rule.name, rule.action, rule.expectation_type, evaluated, failed, pass_rate, failed == 0
    )


EXPECTED_RESULTS = [
    result(RULES[0], 9, 1, 8 / 9),
    result(RULES[1], 8, 1, 7 / 8),
    result(RULES[2], 8, 1, 7 / 8),
    result(RULES[3], 8, 1, 7 / 8),
    result(RULES[4], 8, 4, 0.5),
    result(RULES[5], 9, 2, 7 / 9),
    result(RULES[6], 8, 1, 7 / 8),
    result(RULES[7], 9, 2, 7 / 9),
    result(RULES[8], 9, 1, 0.0),
    result(RULES[9], 9, 0, 1.0),
]


@pytest.fixture()
def orders(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame(ORDER_ROWS, ORDERS)


@pytest.mark.transform
def test_flag_violations_names_the_rules_each_row_breaks(
    spark: SparkSession, orders: DataFrame
) -> None:
    flagged = flag_violations(orders, RULES)
    expected = spark.createDataFrame(
        [(*row, EXPECTED_VIOLATIONS[row[0]]) for row in ORDER_ROWS],
        f"{ORDERS}, {VIOLATIONS} array<string>",
    )
    assert flagged.columns == [*orders.columns, VIOLATIONS]
    # ordered, not ignore_row_order: Sail cannot sort/hash by an array column
    assert_df_equality(flagged.orderBy("row"), expected.orderBy("row"), ignore_nullable=True)


@pytest.mark.transform
def test_evaluate_rules_counts_every_rule(orders: DataFrame) -> None:
    flagged, results = evaluate_rules(orders, RULES)
    assert results == EXPECTED_RESULTS
    assert {r["row"]: r[VIOLATIONS] for r in flagged.collect()} == EXPECTED_VIOLATIONS


@pytest.mark.transform
def test_without_row_rules_violations_are_empty(orders: DataFrame) -> None:
    flagged, results = evaluate_rules(orders, [RULES[9]])
    assert [r[VIOLATIONS] for r in flagged.collect()] == [[]] * len(ORDER_ROWS)
    assert results == [EXPECTED_RESULTS[9]]


@pytest.mark.transform
def test_empty_frame_passes_with_rate_one(spark: SparkSession) -> None:
    empty = spark.createDataFrame([], ORDERS)
    _, results = evaluate_rules(empty, RULES[:2])
    assert results == [result(RULES[0], 0, 0, 1.0), result(RULES[1], 0, 0, 1.0)]


@pytest.mark.transform
def test_rules_on_unknown_columns_or_with_duplicate_names_are_refused(orders: DataFrame) -> None:
    ghost = expect("ghost", "expect_column_values_to_be_unique", column="nope")
    with pytest.raises(QualityError, match="rule 'ghost': column 'nope' is not in the data"):
        flag_violations(orders, [ghost])
    with pytest.raises(QualityError, match="duplicate rule name: amount_range"):
        flag_violations(orders, [RULES[1], RULES[1]])
    with pytest.raises(QualityError, match="already has a column '_violations'"):
        flag_violations(flag_violations(orders, RULES[:1]), RULES[:1])


def test_cross_check_names_every_disagreement() -> None:
    sql = [result(RULES[0], 9, 1, 8 / 9), result(RULES[1], 8, 1, 7 / 8)]
    cross_check(sql, list(sql))
    gx = [result(RULES[0], 9, 2, 7 / 9)]
    with pytest.raises(QualityCrossCheckError) as info:
        cross_check(sql, gx)
    assert str(info.value) == (
        "data-quality counts differ between Spark SQL and great-expectations: "
        "amount_range: only in the SQL results; "
        "order_id_present (expect_column_values_to_not_be_null): "
        "SQL evaluated 9 failed 1, GX evaluated 9 failed 2"
    )


@pytest.mark.transform
def test_gx_counts_equal_sql_counts_for_every_expectation_type(orders: DataFrame) -> None:
    assert {r.expectation_type for r in RULES} == {*EXPECTATION_TYPES, SQL}
    _, sql_results = evaluate_rules(orders, RULES)
    gx_results = validate_with_gx(orders, RULES, suite_name="orders", run_name="test")
    assert gx_results == EXPECTED_RESULTS
    cross_check(sql_results, gx_results)
    assert not orders.sparkSession.catalog.tableExists("tmp_view")


@pytest.mark.transform
def test_gx_and_sql_agree_on_nulls(spark: SparkSession) -> None:
    df = spark.createDataFrame(
        [
            (1, None, None, "x"),
            (2, None, None, "x"),
            (3, 1, None, "x"),
            (4, 1, None, None),
            (5, None, 2, None),
        ],
        "id int, a int, b int, c string",
    )
    rules = [
        expect("a_unique", "expect_column_values_to_be_unique", column="a"),
        expect("ab_unique", "expect_compound_columns_to_be_unique", column_list=["a", "b"]),
        expect(
            "a_gt_b",
            "expect_column_pair_values_a_to_be_greater_than_b",
            column_A="a",
            column_B="b",
        ),
        expect("c_is_y", "expect_column_values_to_be_in_set", column="c", value_set=["y"]),
        Rule(name="c_is_x", sql="c = 'x'"),
    ]
    flagged, sql_results = evaluate_rules(df, rules)
    # all-NULL (a, b) rows are skipped even when repeated; (1, NULL) twice is a duplicate;
    # a pair with one NULL side passes; a SQL rule that yields NULL fails
    assert {r["id"]: r[VIOLATIONS] for r in flagged.collect()} == {
        1: ["c_is_y"],
        2: ["c_is_y"],
        3: ["a_unique", "ab_unique", "c_is_y"],
        4: ["a_unique", "ab_unique", "c_is_x"],
        5: ["c_is_x"],
    }
    assert [(r.rule, r.evaluated, r.failed) for r in sql_results] == [
        ("a_unique", 2, 2),
        ("ab_unique", 3, 2),
        ("a_gt_b", 3, 0),
        ("c_is_y", 3, 3),
        ("c_is_x", 5, 2),
    ]
    cross_check(sql_results, validate_with_gx(df, rules, suite_name="nulls", run_name="test"))


def test_repeated_check_gets_the_shared_gx_result(orders: DataFrame) -> None:
    twin = expect(
        "order_id_present_again", "expect_column_values_to_not_be_null", "warn", column="order_id"
    )
    rules = [RULES[0], twin]
    _, sql_results = evaluate_rules(orders, rules)
    cross_check(sql_results, validate_with_gx(orders, rules, suite_name="twins"))


def test_data_docs_index_lists_every_run(orders: DataFrame, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    validate_with_gx(orders, RULES, docs_dir=docs, suite_name="orders", run_name="run1")
    validate_with_gx(orders, RULES[:2], docs_dir=docs, suite_name="lines", run_name="run2")
    index = (docs / "index.html").read_text()
    pages = sorted(p.relative_to(docs).parts[:3] for p in (docs / "validations").rglob("*.html"))
    assert pages == [("validations", "lines", "run2"), ("validations", "orders", "run1")]
    for suite, run in (("orders", "run1"), ("lines", "run2")):
        assert f"validations/{suite}/{run}/" in index
    assert sorted(p.name for p in (docs / "expectations").glob("*.html")) == [
        "lines.html",
        "orders.html",
    ]


@pytest.mark.transform
def test_duplicate_keys_lists_up_to_five(spark: SparkSession) -> None:
    rows = [(f"C{i}", 1, v) for i in range(7) for v in ("a", "b")] + [
        ("C9", 1, "a"),
        ("C9", 2, "a"),
    ]
    df = spark.createDataFrame(rows, "customer_id string, snapshot int, value string")
    dupes = duplicate_keys(df, ["customer_id", "snapshot"])
    assert len(dupes) == 5
    assert all(
        d["snapshot"] == 1 and d["customer_id"] in {f"C{i}" for i in range(7)} for d in dupes
    )
    assert duplicate_keys(df, ["customer_id", "snapshot", "value"]) == []
    assert duplicate_keys(df.where("customer_id = 'C9'"), ["customer_id", "snapshot"]) == []
