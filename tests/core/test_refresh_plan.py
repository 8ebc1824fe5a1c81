"""The refresh a Gold query allows (pure SQL analysis, no engine)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lakehouse.core.refresh_plan import Aggregate, GroupKey, plan_refresh, repeatable_problem

ROOT = Path(__file__).resolve().parents[2]


def test_a_group_by_of_plain_aggregates_is_decomposable() -> None:
    plan = plan_refresh(
        "SELECT a, year(d) AS y, COUNT(*) AS n, COUNT(x) AS nx, SUM(x * 2) AS s, AVG(x) AS m, "
        "MIN(x) AS lo, MAX(d) AS hi FROM t WHERE x > 1 AND a IS NOT NULL GROUP BY 1, year(d)",
        ("t",),
    )
    assert plan.strategy == "decomposable"
    assert plan.alias == "t"
    assert plan.where == "x > 1 AND NOT a IS NULL"
    assert plan.keys == (GroupKey("a", "a"), GroupKey("YEAR(d)", "y"))
    assert plan.aggregates == (
        Aggregate("count_star", None, "n"),
        Aggregate("count", "x", "nx"),
        Aggregate("sum", "x * 2", "s"),
        Aggregate("avg", "x", "m"),
        Aggregate("min", "x", "lo"),
        Aggregate("max", "d", "hi"),
    )
    assert plan.outputs == ("a", "y", "n", "nx", "s", "m", "lo", "hi")
    assert plan.has_min_max
    assert {"a", "d", "x"} <= set(plan.columns)


def test_group_keys_by_alias_and_qualified_columns() -> None:
    plan = plan_refresh("SELECT upper(t.g) AS ug, SUM(t.v) AS s FROM t GROUP BY ug", ("t",))
    assert plan.strategy == "decomposable"
    assert plan.keys == (GroupKey("UPPER(t.g)", "ug"),)


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("SELECT g, COUNT(DISTINCT h) AS n FROM t GROUP BY g", "COUNT(DISTINCT h) AS n is not"),
        ("SELECT g, SUM(v) / COUNT(*) AS m FROM t GROUP BY g", "SUM(v) / COUNT(*) AS m is not"),
        ("SELECT g, SUM(v) AS s FROM t GROUP BY g HAVING SUM(v) > 0", "HAVING"),
        ("SELECT g, collect_set(v) AS vs FROM t GROUP BY g", "COLLECT_SET"),
        ("SELECT g, SUM(v) FILTER (WHERE v > 0) AS s FROM t GROUP BY g", "FILTER"),
    ],
)
def test_other_single_input_group_bys_recompute_the_affected_groups(
    query: str, reason: str
) -> None:
    plan = plan_refresh(query, ("t",))
    assert plan.strategy == "affected_groups"
    assert reason.lower() in plan.reason.lower()
    assert plan.keys == (GroupKey("g", "g"),)


@pytest.mark.parametrize(
    ("query", "inputs", "features", "reason"),
    [
        (None, ("t",), {}, "a Python transform cannot be analysed"),
        (
            "SELECT g, COUNT(*) AS n FROM t JOIN u ON t.k = u.k GROUP BY g",
            ("t", "u"),
            {},
            "2 inputs",
        ),
        (
            "SELECT g, COUNT(*) AS n FROM t JOIN t AS t2 ON t.k = t2.k GROUP BY g",
            ("t",),
            {},
            "a join",
        ),
        (
            "WITH x AS (SELECT * FROM t) SELECT g, COUNT(*) AS n FROM x GROUP BY g",
            ("t",),
            {},
            "WITH",
        ),
        ("SELECT g, v FROM t", ("t",), {}, "no GROUP BY"),
        ("SELECT COUNT(*) AS n FROM t", ("t",), {}, "no GROUP BY"),
        ("SELECT g, COUNT(*) AS n FROM t GROUP BY g LIMIT 3", ("t",), {}, "LIMIT"),
        (
            "SELECT g, COUNT(*) AS n FROM t GROUP BY g UNION ALL SELECT g, 1 AS n FROM t",
            ("t",),
            {},
            "single SELECT",
        ),
        ("SELECT g, COUNT(*) AS n FROM t GROUP BY ROLLUP (g)", ("t",), {}, "ROLLUP"),
        (
            "SELECT g, COUNT(*) AS n FROM t WHERE rand() < 0.5 GROUP BY g",
            ("t",),
            {},
            "non-deterministic",
        ),
        (
            "SELECT g, COUNT(*) AS n FROM t WHERE v IN (SELECT v FROM t) GROUP BY g",
            ("t",),
            {},
            "subquery",
        ),
        (
            "SELECT g, COUNT(*) AS n, rank() OVER (ORDER BY g) AS r FROM t GROUP BY g",
            ("t",),
            {},
            "window",
        ),
        ("SELECT upper(g), COUNT(*) AS n FROM t GROUP BY upper(g)", ("t",), {}, "needs an alias"),
        ("SELECT COUNT(*) AS n FROM t GROUP BY g", ("t",), {}, "is not an output column"),
        ("SELECT g, COUNT(*) AS n FROM other GROUP BY g", ("t",), {}, "does not read its input"),
        (
            "SELECT g, COUNT(*) AS n FROM t GROUP BY g",
            ("t",),
            {"r": "rank() OVER (ORDER BY n)"},
            "feature r is not row-level",
        ),
        (
            "SELECT g, COUNT(*) AS n FROM t GROUP BY g",
            ("t",),
            {"r": "n + rand()"},
            "feature r is not row-level",
        ),
        (
            "SELECT g, COUNT(*) AS n FROM t GROUP BY g",
            ("t",),
            {"s": "SUM(n)"},
            "feature s is not row-level",
        ),
        ("SELECT g, COUNT(*) AS n, SUM(v) AS n FROM t GROUP BY g", ("t",), {}, "share a name"),
    ],
)
def test_everything_else_is_rebuilt_in_full(
    query: str | None, inputs: tuple[str, ...], features: dict[str, str], reason: str
) -> None:
    plan = plan_refresh(query, inputs, features)
    assert plan.strategy == "full"
    assert reason.lower() in plan.reason.lower(), plan.reason


def test_a_repeated_group_key_counts_once() -> None:
    plan = plan_refresh("SELECT g, COUNT(*) AS n FROM t GROUP BY g, 1, g", ("t",))
    assert plan.keys == (GroupKey("g", "g"),)


def test_row_level_features_keep_the_plan() -> None:
    plan = plan_refresh(
        "SELECT g, COUNT(*) AS n FROM t GROUP BY g", ("t",), {"half": "CAST(n AS DOUBLE) / 2"}
    )
    assert plan.strategy == "decomposable"


def test_the_benchmark_and_demo_gold_tables() -> None:
    def plans(path: Path) -> dict[str, str]:
        gold = yaml.safe_load(path.read_text())["gold"]
        return {
            name.rsplit(".", 1)[1]: plan_refresh(
                g.get("query"), tuple(g["inputs"]), g.get("features")
            ).strategy
            for name, g in gold.items()
        }

    assert plans(ROOT / "benchmarks/medallion/conf/pipelines.yml") == {
        "pricing_summary": "decomposable",  # its AVG of doubles falls back at run time
        "customer_revenue": "full",
        "nation_revenue": "full",
        "daily_shipments": "affected_groups",
    }
    assert plans(ROOT / "conf/pipelines.yml") == {
        "customer_features": "full",
        "daily_sales": "full",
    }


@pytest.mark.parametrize(
    ("query", "features", "problem"),
    [
        ("SELECT g, COUNT(*) AS n FROM f GROUP BY g", {"m": "n * 2"}, None),
        ("SELECT year(day) AS y, SUM(CAST(i AS DOUBLE)) AS s FROM f GROUP BY 1", {}, None),
        (None, {}, "a Python transform may change without its inputs"),
        ("SELECT g, MAX(current_date()) AS d FROM f GROUP BY g", {}, "non-deterministic"),
        ("SELECT g FROM f", {"r": "rand()"}, "non-deterministic rand()"),
        ("SELECT my_udf(g) AS u FROM f", {}, "function my_udf() is not a Spark built-in"),
    ],
)
def test_only_a_repeatable_table_may_skip_a_refresh_without_changes(
    query: str | None, features: dict[str, str], problem: str | None
) -> None:
    found = repeatable_problem(query, features)
    if problem is None:
        assert found is None
    else:
        assert found is not None and found.startswith(problem), found
