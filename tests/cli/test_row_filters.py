"""``lakehouse sql QUERY`` and ``lakehouse head`` return only the rows the row filters let
the acting principal see (filters on raw values, before masks)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from typer.testing import CliRunner

from lakehouse.cli import app
from tests.governance.row_filter_project import expected, make_project


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("cli-rowfilters"))


def _ok(spark: SparkSession, *args: str) -> str:
    assert spark is not None  # the CLI reuses the active session
    result = CliRunner(env={"LAKEHOUSE_PRINCIPAL": None}).invoke(app, list(args))
    assert result.exit_code == 0 and result.exception is None, (
        f"{result.exception!r}\n{result.stdout}\n{result.stderr}"
    )
    return result.stdout


def _csv(principal: str) -> str:
    lines = ["id,region,email,amount"]
    lines += [",".join("" if v is None else str(v) for v in row) for row in expected(principal)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("principal", ["bob", "carol", "dave", "alice"])
def test_sql_query_sees_only_the_filtered_rows(
    spark: SparkSession, project: Path, principal: str
) -> None:
    query = "SELECT * FROM shop.sales.orders ORDER BY id"
    out = _ok(spark, "--principal", principal, "sql", query, "-o", "csv", "-C", str(project))
    assert out == _csv(principal)


def test_a_query_cannot_reach_filtered_rows_through_aggregates_or_self_joins(
    spark: SparkSession, project: Path
) -> None:
    query = (
        "SELECT count(*) AS n, sum(o.amount) AS total, max(o2.id) AS top "
        "FROM shop.sales.orders o JOIN sales.orders o2 ON o.id = o2.id"
    )
    out = _ok(spark, "--principal", "bob", "sql", query, "-o", "csv", "-C", str(project))
    assert out == "n,total,top\n2,130.0,3\n"


def test_head_sees_only_the_filtered_rows(spark: SparkSession, project: Path) -> None:
    out = _ok(spark, "--principal", "carol", "head", "orders", "-o", "csv", "-C", str(project))
    assert sorted(out.splitlines()[1:]) == sorted(_csv("carol").splitlines()[1:])


def test_catalog_show_lists_the_row_filters(spark: SparkSession, project: Path) -> None:
    out = _ok(spark, "catalog", "show", "sales.orders", "-C", str(project))
    assert out.splitlines()[-5:] == [
        "row filter: region = 'EU' · to: eu-analysts",
        "row filter: region = 'US' · to: us-analysts",
        "row filter: amount >= 100 · to: carol",
        "row filter: true · to: data-engineers",
        "row filter: email LIKE '%@example.com' · to: everyone no other filter names",
    ]
