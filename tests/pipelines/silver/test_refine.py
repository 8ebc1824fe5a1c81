"""Silver refine on real Delta tables with real great-expectations: gates, quarantine, SCD1/2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from lakehouse.bundle.context import RunReport, TaskContext
from lakehouse.config import Project, load_project
from lakehouse.io.delta import DeltaStore
from lakehouse.pipelines.bronze.ingest import ingest_file_source
from lakehouse.pipelines.silver.refine import QualityGateError, refine_table
from tests.support import session_engine

# also in the distributed invocation (make test-cluster: Sail local-cluster, 2 workers)
pytestmark = pytest.mark.distributed

BUNDLE = """
bundle: {name: t}
include: [conf/*.yml]
variables: {data_root: {default: ./data}}
targets: {local: {default: true}}
"""
CONF = """
catalog:
  name: c
  storage_root: ${var.data_root}/tables
  schemas:
    bronze:
      tables:
        orders:
          layer: bronze
          columns:
            - {name: order_id, type: string}
            - {name: customer, type: string}
            - {name: amount, type: string}
            - {name: status, type: string}
            - {name: seq, type: string}
            - {name: op, type: string}
    silver:
      tables:
        orders:
          layer: silver
          keys: [order_id]
          columns:
            - {name: order_id, type: string, nullable: false}
            - {name: customer, type: string}
            - {name: amount, type: double}
            - {name: status, type: string}
            - {name: seq, type: int, nullable: false}
        customers:
          layer: silver
          keys: [customer]
          columns:
            - {name: customer, type: string, nullable: false}
            - {name: status, type: string}
            - {name: seq, type: int, nullable: false}
sources:
  drop:
    kind: files
    path: ${var.data_root}/landing
    glob: "*.jsonl"
    format: jsonl
    target: c.bronze.orders
silver:
  c.silver.orders:
    source: c.bronze.orders
    keys: [order_id]
    sequence_by: seq
    operation: {column: op}
    case: {status: lower}
    standardize: {status: {done: completed}}
    rules:
      - name: amount_in_range
        expectation: {type: expect_column_values_to_be_between, kwargs: {column: amount, min_value: 0, max_value: 1000}}
        action: drop
      - name: status_known
        expectation: {type: expect_column_values_to_be_in_set, kwargs: {column: status, value_set: [completed, refunded]}}
        action: warn
      - name: customer_given
        sql: "customer IS NOT NULL"
        action: drop
      - name: not_too_many
        expectation: {type: expect_table_row_count_to_be_between, kwargs: {max_value: MAX_ROWS}}
        action: fail
  c.silver.customers:
    source: c.bronze.orders
    keys: [customer]
    sequence_by: seq
    mode: scd2
    track_columns: [status]
    operation: {column: op}
"""

GOOD_AND_BAD = [
    '{"order_id": "1", "customer": "a", "amount": "10", "status": "DONE", "seq": "1"}',
    '{"order_id": "2", "customer": "b", "amount": "-3", "status": "completed", "seq": "1"}',
    '{"order_id": "3", "customer": null, "amount": "5", "status": "completed", "seq": "1"}',
    '{"order_id": "4", "customer": "c", "amount": "7", "status": "lost", "seq": "1"}',
    '{"order_id": "5", "customer": "d", "amount": "x", "status": "completed", "seq": "1"}',
    '{"order_id": "6", "customer": "e", "amount": "2000", "status": "weird", "seq": "1"}',
]


def _project(tmp_path: Path, max_rows: int = 100) -> Project:
    root = tmp_path / "p"
    (root / "conf").mkdir(parents=True, exist_ok=True)
    (root / "bundle.yml").write_text(BUNDLE)
    (root / "conf" / "c.yml").write_text(CONF.replace("MAX_ROWS", str(max_rows)))
    (root / "data" / "landing").mkdir(parents=True, exist_ok=True)
    return load_project(root)


def _ctx(spark: SparkSession, project: Project, run_id: str) -> TaskContext:
    tables = DeltaStore(spark, project, session_engine(spark))
    tables.register_all()
    return TaskContext(
        spark, project, tables, RunReport("t", run_id, "local", session_engine(spark)), "refine"
    )


def _land(
    spark: SparkSession, project: Project, name: str, lines: list[str], run_id: str
) -> TaskContext:
    (project.data_root / "landing" / name).write_text("\n".join(lines) + "\n")
    ctx = _ctx(spark, project, run_id)
    ingest_file_source(ctx, "drop")
    return ctx


def test_rules_quarantine_warn_and_record_results(spark: SparkSession, tmp_path: Path) -> None:
    project = _project(tmp_path)
    ctx = _land(spark, project, "a.jsonl", GOOD_AND_BAD, "r1")
    summary = refine_table(ctx, "c.silver.orders")
    assert (summary.rows_read, summary.rows_kept, summary.rows_quarantined) == (6, 2, 4)
    silver = ctx.tables.read("c.silver.orders")
    assert sorted((r["order_id"], r["status"]) for r in silver.collect()) == [
        ("1", "completed"),
        ("4", "lost"),
    ]
    quarantined = {
        __import__("json").loads(r["_row"])["order_id"]: sorted(r["_reasons"])
        for r in ctx.tables.read("c.silver.orders_quarantine").collect()
    }
    assert quarantined == {
        "2": ["amount_in_range"],
        "3": ["customer_given"],
        "5": ["not_a_double: amount"],
        "6": ["amount_in_range"],
    }
    results = {
        r["rule"]: (r["evaluated"], r["failed"], r["outcome"])
        for r in ctx.tables.read("c.meta.dq_results").where("run_id = 'r1'").collect()
    }
    assert results == {
        "amount_in_range": (5, 2, "dropped"),
        "status_known": (5, 2, "warned"),
        "customer_given": (5, 1, "dropped"),
        "not_too_many": (5, 0, "passed"),
    }
    runs = ctx.tables.read("c.meta.silver_runs").collect()
    assert [(r["rows_read"], r["rows_kept"], r["rows_quarantined"], r["status"]) for r in runs] == [
        (6, 2, 4, "SUCCESS")
    ]
    assert (project.data_root / "quality" / "docs" / "index.html").is_file()


def test_fail_rule_stops_before_the_target_is_written(spark: SparkSession, tmp_path: Path) -> None:
    project = _project(tmp_path, max_rows=3)
    ctx = _land(spark, project, "a.jsonl", GOOD_AND_BAD, "r1")
    before = ctx.tables.version("c.silver.orders")
    with pytest.raises(
        QualityGateError, match=r"quality gate failed, nothing written: not_too_many"
    ):
        refine_table(ctx, "c.silver.orders")
    assert ctx.tables.version("c.silver.orders") == before
    assert ctx.tables.row_count("c.silver.orders_quarantine") == 0
    outcome = ctx.tables.read("c.meta.dq_results").where("rule = 'not_too_many'").collect()
    assert [r["outcome"] for r in outcome] == ["failed"]


def test_replay_is_idempotent_and_late_updates_resolve_by_sequence(
    spark: SparkSession, tmp_path: Path
) -> None:
    project = _project(tmp_path)
    ctx = _land(
        spark,
        project,
        "a.jsonl",
        [
            '{"order_id": "1", "customer": "a", "amount": "10", "status": "completed", "seq": "3"}',
            '{"order_id": "2", "customer": "b", "amount": "20", "status": "completed", "seq": "1"}',
        ],
        "r1",
    )
    refine_table(ctx, "c.silver.orders")
    version = ctx.tables.version("c.silver.orders")
    refine_table(_ctx(spark, project, "r2"), "c.silver.orders")  # same Bronze again
    assert ctx.tables.version("c.silver.orders") == version
    ctx = _land(
        spark,
        project,
        "b.jsonl",
        [
            '{"order_id": "1", "customer": "a", "amount": "99", "status": "refunded", "seq": "2"}',  # older
            '{"order_id": "2", "customer": "b", "amount": "25", "status": "refunded", "seq": "2"}',  # newer
            '{"order_id": "3", "customer": "c", "amount": "5", "status": "completed", "seq": "1"}',
        ],
        "r3",
    )
    refine_table(ctx, "c.silver.orders")
    rows = sorted(
        (r["order_id"], r["amount"], r["seq"]) for r in ctx.tables.read("c.silver.orders").collect()
    )
    assert rows == [("1", 10.0, 3), ("2", 25.0, 2), ("3", 5.0, 1)]
    ctx = _land(spark, project, "c.jsonl", ['{"order_id": "3", "seq": "2", "op": "DELETE"}'], "r4")
    refine_table(ctx, "c.silver.orders")
    assert sorted(r["order_id"] for r in ctx.tables.read("c.silver.orders").collect()) == ["1", "2"]


@pytest.mark.delta
def test_scd2_tracked_attribute_changed_twice_gives_three_versions(
    spark: SparkSession, tmp_path: Path
) -> None:
    project = _project(tmp_path)
    ctx = _land(
        spark,
        project,
        "a.jsonl",
        [
            '{"order_id": "1", "customer": "a", "amount": "1", "status": "completed", "seq": "1"}',
            '{"order_id": "2", "customer": "a", "amount": "1", "status": "refunded", "seq": "3"}',
        ],
        "r1",
    )
    refine_table(ctx, "c.silver.customers")
    ctx = _land(
        spark,
        project,
        "b.jsonl",
        ['{"order_id": "3", "customer": "a", "amount": "1", "status": "completed", "seq": "5"}'],
        "r2",
    )
    refine_table(ctx, "c.silver.customers")
    versions = sorted(
        (r["status"], r["valid_from"], r["valid_to"], r["is_current"])
        for r in ctx.tables.read("c.silver.customers").where("customer = 'a'").collect()
    )
    assert sorted(versions, key=lambda v: v[1]) == [
        ("completed", 1, 3, False),
        ("refunded", 3, 5, False),
        ("completed", 5, None, True),
    ]
    version = ctx.tables.version("c.silver.customers")
    refine_table(_ctx(spark, project, "r3"), "c.silver.customers")
    assert ctx.tables.version("c.silver.customers") == version


def test_python_transforms_run_after_conforming(spark: SparkSession, tmp_path: Path) -> None:
    project = _project(tmp_path)
    conf = project.root / "conf" / "c.yml"
    conf.write_text(
        conf.read_text().replace(
            "    operation: {column: op}\n",
            "    operation: {column: op}\n    transforms: ['tests.pipelines.silver.transforms_fixture:tag_big_orders']\n",
        )
    )
    project = load_project(project.root)
    ctx = _land(
        spark,
        project,
        "a.jsonl",
        [
            '{"order_id": "1", "customer": "a", "amount": "500", "status": "completed", "seq": "1"}',
            '{"order_id": "2", "customer": "b", "amount": "5", "status": "completed", "seq": "1"}',
        ],
        "r1",
    )
    refine_table(ctx, "c.silver.orders")
    rows = sorted(
        (r["order_id"], r["status"]) for r in ctx.tables.read("c.silver.orders").collect()
    )
    assert rows == [("1", "big"), ("2", "completed")]
    warned = ctx.tables.read("c.meta.dq_results").where("rule = 'status_known'").collect()
    assert [(r["failed"], r["outcome"]) for r in warned] == [(1, "warned")]


def test_without_great_expectations_the_sql_path_still_gates(
    spark: SparkSession, tmp_path: Path
) -> None:
    project = _project(tmp_path)
    conf = project.root / "conf" / "c.yml"
    conf.write_text(
        conf.read_text().replace(
            "    operation: {column: op}\n",
            "    operation: {column: op}\n    great_expectations: false\n",
        )
    )
    project = load_project(project.root)
    ctx = _land(spark, project, "a.jsonl", GOOD_AND_BAD, "r1")
    summary = refine_table(ctx, "c.silver.orders")
    assert (summary.rows_kept, summary.rows_quarantined) == (2, 4)
    assert not (project.data_root / "quality" / "docs").exists()
    assert ctx.tables.read("c.meta.dq_results").count() == 4


def _silver_rows(ctx: TaskContext, table: str) -> list[tuple]:  # type: ignore[type-arg]
    return sorted((r["order_id"], r["amount"], r["seq"]) for r in ctx.tables.read(table).collect())


@pytest.mark.delta
def test_each_run_refines_only_the_batches_it_has_not_refined(
    spark: SparkSession, tmp_path: Path
) -> None:
    project = _project(tmp_path)
    ctx = _land(spark, project, "a.jsonl", GOOD_AND_BAD, "r1")
    assert refine_table(ctx, "c.silver.orders").rows_read == 6
    ctx = _land(
        spark,
        project,
        "b.jsonl",
        ['{"order_id": "1", "customer": "a", "amount": "11", "status": "completed", "seq": "2"}'],
        "r2",
    )
    second = refine_table(ctx, "c.silver.orders")
    assert (second.rows_read, second.rows_kept, second.rows_quarantined) == (1, 1, 0)
    assert _silver_rows(ctx, "c.silver.orders") == [("1", 11.0, 2), ("4", 7.0, 1)]
    ledger = ctx.tables.read("c.meta.silver_batches").where("table = 'c.silver.orders'").collect()
    assert sorted((r["rows"], r["run_id"]) for r in ledger) == [(1, "r2"), (6, "r1")]
    version = ctx.tables.version("c.silver.orders")
    nothing = refine_table(_ctx(spark, project, "r3"), "c.silver.orders")
    assert (nothing.rows_read, nothing.status) == (0, "SUCCESS")
    assert ctx.tables.version("c.silver.orders") == version
    # A full refresh reads all of Bronze again; the MERGE leaves the table as it was.
    full = refine_table(_ctx(spark, project, "r4"), "c.silver.orders", full_refresh=True)
    assert (full.rows_read, full.rows_kept, full.rows_quarantined) == (7, 3, 4)
    assert _silver_rows(ctx, "c.silver.orders") == [("1", 11.0, 2), ("4", 7.0, 1)]
    assert ctx.tables.row_count("c.silver.orders_quarantine") == 4  # keyed by row hash


def test_a_late_upsert_older_than_an_earlier_delete_does_not_bring_the_key_back(
    spark: SparkSession, tmp_path: Path
) -> None:
    project = _project(tmp_path)
    row = '{"order_id": "1", "customer": "a", "amount": "AMOUNT", "status": "completed", "seq": "SEQ"}'
    ctx = _land(spark, project, "a.jsonl", [row.replace("AMOUNT", "1").replace("SEQ", "1")], "r1")
    refine_table(ctx, "c.silver.orders")
    refine_table(ctx, "c.silver.customers")
    ctx = _land(
        spark,
        project,
        "b.jsonl",
        ['{"order_id": "1", "customer": "a", "seq": "3", "op": "DELETE"}'],
        "r2",
    )
    refine_table(ctx, "c.silver.orders")
    refine_table(ctx, "c.silver.customers")
    assert _silver_rows(ctx, "c.silver.orders") == []
    late = row.replace("AMOUNT", "2").replace("SEQ", "2").replace("completed", "refunded")
    ctx = _land(spark, project, "c.jsonl", [late], "r3")
    summary = refine_table(ctx, "c.silver.orders")
    assert (summary.rows_read, summary.rows_kept, summary.duplicates_collapsed) == (1, 1, 1)
    assert _silver_rows(ctx, "c.silver.orders") == []
    refine_table(ctx, "c.silver.customers")
    versions = sorted(
        (r["status"], r["valid_from"], r["valid_to"], r["is_current"])
        for r in ctx.tables.read("c.silver.customers").collect()
    )
    assert versions == [("completed", 1, 2, False), ("refunded", 2, 3, False)]
    newer = row.replace("AMOUNT", "4").replace("SEQ", "4")
    ctx = _land(spark, project, "d.jsonl", [newer], "r4")
    refine_table(ctx, "c.silver.orders")
    assert _silver_rows(ctx, "c.silver.orders") == [("1", 4.0, 4)]


@pytest.mark.delta
def test_silver_tables_are_created_with_deletion_vectors(
    spark: SparkSession, tmp_path: Path
) -> None:
    project = _project(tmp_path)
    ctx = _land(spark, project, "a.jsonl", GOOD_AND_BAD, "r1")
    refine_table(ctx, "c.silver.orders")
    first_commit = Path(project.table("c.silver.orders").location) / "_delta_log"
    protocol = next(
        json.loads(line)["protocol"]
        for line in (first_commit / "00000000000000000000.json").read_text().splitlines()
        if "protocol" in json.loads(line)
    )
    assert "deletionVectors" in protocol["readerFeatures"]
