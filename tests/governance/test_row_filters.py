"""Row filters: the rule (pure), governed Spark reads per principal, and the access audit."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest
from deltalake import DeltaTable
from pyspark.sql import SparkSession

from lakehouse.config import load_project
from lakehouse.config.catalog import CatalogSpec
from lakehouse.config.project import Project
from lakehouse.config.system_tables import SystemTable, system_table_name
from lakehouse.governance.policy import AccessPolicy, Decision
from lakehouse.governance.row_filters import RowFilterError
from lakehouse.governance.store import governed_tables
from lakehouse.notebook import open_lakehouse
from tests.governance.row_filter_project import FILTERS, ORDERS, expected, make_project
from tests.support import session_engine


def _policy(tables: dict[str, object], groups: dict[str, list[str]] | None = None) -> AccessPolicy:
    """A catalog ``c`` with schema ``s`` holding ``tables`` (name -> row_filters)."""
    return AccessPolicy(
        CatalogSpec.model_validate(
            {
                "name": "c",
                "storage_root": "/tmp/x",
                "owner": "ann",
                "principals": {"users": ["ann", "bob", "cy"], "groups": groups or {}},
                "schemas": {
                    "s": {
                        "tables": {
                            name: {
                                "layer": "gold",
                                "columns": [{"name": "x", "type": "int"}],
                                "row_filters": rules,
                            }
                            for name, rules in tables.items()
                        }
                    }
                },
            }
        )
    )


# ------------------------------------------------------------------ the rule (pure)


def test_no_rules_no_filter() -> None:
    policy = _policy({"t": []})
    assert policy.row_filter_for("bob", "c.s.t") is None
    assert policy.duckdb_row_filter("bob", "c.s.t") is None
    assert policy.row_filter_for("bob", "c.s.unknown") is None
    assert policy.check("bob", "SELECT", "c.s.t") == Decision(False, "bob lacks USE CATALOG on c")


def test_rules_naming_an_identity_apply_or_ed_and_the_others_do_not() -> None:
    policy = _policy(
        {
            "t": [
                {"to": ["eu"], "predicate": "x = 1"},
                {"to": ["bob"], "predicate": "x > 10"},
                {"to": ["cy"], "predicate": "x = 3"},
                {"predicate": "x < 0"},
            ]
        },
        groups={"eu": ["staff"], "staff": ["bob"]},  # bob is in eu through staff
    )
    assert policy.row_filter_for("bob", "c.s.t") == "(x = 1) OR (x > 10)"
    assert policy.row_filter_for("cy", "c.s.t") == "x = 3"


def test_a_reader_no_rule_names_gets_the_rules_for_everyone_else() -> None:
    policy = _policy(
        {
            "t": [
                {"to": ["cy"], "predicate": "x = 3"},
                {"predicate": "x < 0"},
                {"predicate": "x > 9"},
            ]
        }
    )
    assert policy.row_filter_for("bob", "c.s.t") == "(x < 0) OR (x > 9)"


def test_rules_that_apply_to_nobody_leave_no_rows_and_owners_are_not_exempt() -> None:
    policy = _policy({"t": [{"to": ["cy"], "predicate": "x = 3"}]})
    assert policy.row_filter_for("bob", "c.s.t") == "false"
    assert policy.row_filter_for("ann", "c.s.t") == "false"  # ann owns the catalog
    assert policy.duckdb_row_filter("ann", "c.s.t") == "false"
    exempt = _policy(
        {"t": [{"to": ["cy"], "predicate": "x = 3"}, {"to": ["ann"], "predicate": "true"}]}
    )
    assert exempt.row_filter_for("ann", "c.s.t") == "true"


def test_the_duckdb_filter_is_each_rule_translated_and_or_ed() -> None:
    policy = _policy(
        {
            "t": [
                {
                    "to": ["bob"],
                    "predicate": "`my col` = \"EU\" AND date_add(d, 1) > DATE'2026-01-01'",
                },
                {"to": ["bob"], "predicate": "x IS NOT NULL"},
            ]
        }
    )
    assert policy.row_filter_for("bob", "c.s.t") == (
        "(`my col` = \"EU\" AND date_add(d, 1) > DATE'2026-01-01') OR (x IS NOT NULL)"
    )
    duck = policy.duckdb_row_filter("bob", "c.s.t")
    assert duck == (
        "(\"my col\" = 'EU' AND (CAST(d AS DATE) + INTERVAL 1 DAY) > TRY_CAST('2026-01-01' AS DATE))"
        " OR (NOT x IS NULL)"
    )
    db = duckdb.connect()
    db.execute(
        "CREATE TABLE t AS SELECT * FROM (VALUES ('EU', DATE '2026-01-01', 1),"
        " ('EU', DATE '2025-12-30', NULL), ('US', DATE '2026-03-01', NULL)) v(\"my col\", d, x)"
    )
    assert db.execute(f'SELECT "my col", d FROM t WHERE ({duck}) ORDER BY d').fetchall() == [
        ("EU", dt.date(2026, 1, 1))
    ]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("rowfilters"))


def _load(root: Path) -> Project:
    return load_project(root, var_overrides={"data_root": str(root / "data")})


@pytest.mark.parametrize("principal", sorted(FILTERS))
def test_the_fixture_catalog_filters_and_the_decision_names_the_filter(
    root: Path, principal: str
) -> None:
    policy = AccessPolicy(_load(root).catalog)
    assert policy.row_filter_for(principal, ORDERS) == FILTERS[principal]
    decision = policy.check(principal, "SELECT", ORDERS)
    assert decision.allowed
    assert decision.reason.endswith(f"; row filter: {FILTERS[principal]}")
    assert policy.check(principal, "USE SCHEMA", "shop.sales").reason.count("row filter") == 0


# ------------------------------------------------------------------ Spark reads and the audit


def test_governed_spark_reads_return_exactly_the_filtered_masked_rows_and_are_audited(
    spark: SparkSession, root: Path
) -> None:
    project = _load(root)
    for principal in ("alice", "bob", "carol", "dave"):
        tables = governed_tables(
            spark,
            project,
            session_engine(spark),
            principal=principal,
            run_id=f"r-{principal}",
            job="t",
        )
        with tables.governance.task_scope("read"):
            rows = sorted(tuple(r) for r in tables.read(ORDERS).collect())
            older = sorted(tuple(r) for r in tables.read(ORDERS, version=0).collect())
        assert rows == expected(principal), principal
        assert older == expected(principal), principal
    audit = DeltaTable(
        project.tables[system_table_name("shop", SystemTable.ACCESS_AUDIT)].location
    ).to_pyarrow_table()
    reasons = sorted(
        (r["principal"], r["reason"])
        for r in audit.to_pylist()
        if r["privilege"] == "SELECT" and r["securable"] == ORDERS and r["job"] == "t"
    )
    assert reasons == [
        ("alice", "owner of shop (member of data-engineers); row filter: true"),
        ("alice", "owner of shop (member of data-engineers); row filter: true"),
        ("bob", "SELECT on shop.sales to analysts; row filter: region = 'EU'"),
        ("bob", "SELECT on shop.sales to analysts; row filter: region = 'EU'"),
        (
            "carol",
            "SELECT on shop.sales to analysts; row filter: (region = 'US') OR (amount >= 100)",
        ),
        (
            "carol",
            "SELECT on shop.sales to analysts; row filter: (region = 'US') OR (amount >= 100)",
        ),
        ("dave", "SELECT on shop.sales to analysts; row filter: email LIKE '%@example.com'"),
        ("dave", "SELECT on shop.sales to analysts; row filter: email LIKE '%@example.com'"),
    ]


def test_a_rule_without_a_duckdb_form_is_refused_not_weakened() -> None:
    policy = _policy({"t": [{"predicate": "soundex(x) = 'A000'"}]})
    assert policy.row_filter_for("bob", "c.s.t") == "soundex(x) = 'A000'"
    with pytest.raises(RowFilterError) as err:
        policy.duckdb_row_filter("bob", "c.s.t")
    assert str(err.value) == (
        "row filter of c.s.t: \"soundex(x) = 'A000'\" has no DuckDB equivalent: "
        "SOUNDEX is not supported in DuckDB"
    )


def test_the_notebook_helper_reads_through_the_same_filter(spark: SparkSession, root: Path) -> None:
    assert spark is not None  # the notebook helper reuses the active session
    lh = open_lakehouse(root, principal="carol", variables={"data_root": str(root / "data")})
    try:
        rows = sorted(tuple(r) for r in lh.read("sales.orders").collect())
    finally:
        lh.stop()
    assert rows == expected("carol")
