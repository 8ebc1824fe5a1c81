"""File drops -> Bronze -> Silver on real Delta tables: exact counts, exactly once, nothing lost."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from lakehouse.bronze.ingest import ingest_file_source
from lakehouse.bundle.context import RunReport, TaskContext
from lakehouse.config import Project, load_project
from lakehouse.silver.conform import refine_table
from lakehouse.tables import DeltaTables

DATA = Path(__file__).resolve().parents[1] / "data" / "landing"


@pytest.fixture()
def project(demo_project_dir: Path, tmp_path: Path) -> Project:
    return load_project(demo_project_dir, var_overrides={"data_root": str(tmp_path / "data")})


def _context(spark: SparkSession, project: Project, run_id: str) -> TaskContext:
    tables = DeltaTables(spark, project, "sail")
    tables.register_all()
    report = RunReport(job="test", run_id=run_id, target="local", engine="sail")
    return TaskContext(spark=spark, project=project, tables=tables, report=report, task_key="t")


def _land(project: Project, kind: str, name: str) -> None:
    target = project.data_root / "landing" / kind
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(DATA / name, target / name)


def test_json_drops_are_ingested_once_with_corrupt_lines_kept(
    spark: SparkSession, project: Project
) -> None:
    _land(project, "orders", "orders_a.jsonl")
    ctx = _context(spark, project, "run-1")
    assert ingest_file_source(ctx, "orders_drop") == 4  # the blank line is not a record
    bronze = ctx.tables.read("lakehouse.bronze.orders")
    corrupt = bronze.where("_corrupt IS NOT NULL").collect()
    assert [(r["_raw"], r["_corrupt"]) for r in corrupt] == [
        ('{"order_id":"A3", "customer_id":', "malformed JSON: not a JSON object")
    ]
    assert {r["_run_id"] for r in bronze.collect()} == {"run-1"}
    assert {Path(r["_source_file"]).name for r in bronze.collect()} == {"orders_a.jsonl"}

    assert ingest_file_source(_context(spark, project, "run-2"), "orders_drop") == 0
    _land(project, "orders", "orders_b.jsonl")
    assert ingest_file_source(_context(spark, project, "run-3"), "orders_drop") == 2
    assert ctx.tables.row_count("lakehouse.bronze.orders") == 6
    processed = ctx.tables.read("lakehouse.meta.processed_files").orderBy("path").collect()
    assert [
        (Path(r["path"]).name, r["rows"], r["corrupt_rows"], r["run_id"]) for r in processed
    ] == [
        ("orders_a.jsonl", 4, 1, "run-1"),
        ("orders_b.jsonl", 2, 0, "run-3"),
    ]


def test_csv_drop_keeps_quoted_commas_and_flags_ragged_rows(
    spark: SparkSession, project: Project
) -> None:
    _land(project, "customers", "customers_a.csv")
    ctx = _context(spark, project, "run-1")
    assert ingest_file_source(ctx, "customers_drop") == 3
    rows = {r["customer_id"]: r for r in ctx.tables.read("lakehouse.bronze.customers").collect()}
    assert rows["C1"]["name"] == "Doe, Jane"
    assert rows[None]["_raw"] == "C2,Bo,b@example.com,south"
    assert rows[None]["_corrupt"] == "malformed CSV: expected 9 fields, got 4"


def test_silver_quarantines_with_reasons_and_replays_idempotently(
    spark: SparkSession, project: Project
) -> None:
    _land(project, "orders", "orders_a.jsonl")
    _land(project, "orders", "orders_b.jsonl")
    ctx = _context(spark, project, "run-1")
    ingest_file_source(ctx, "orders_drop")
    refine_table(ctx, "lakehouse.silver.orders")
    silver = ctx.tables.read("lakehouse.silver.orders")
    assert sorted(r["order_id"] for r in silver.collect()) == ["A1", "A2", "B1", "B2"]
    quarantine = ctx.tables.read("lakehouse.silver.orders_quarantine").collect()
    assert sorted(tuple(r["_reasons"]) for r in quarantine) == [
        (
            "corrupt_record: malformed JSON: not a JSON object",
            "missing_key: order_id",
            "missing_required: customer_id",
            "missing_required: order_ts",
        ),
        ("not_a_int: quantity",),
    ]
    assert ctx.report.counters["silver lakehouse.silver.orders"] == {
        "rows_read": 6,
        "rows_conformed": 4,
        "rows_quarantined": 2,
        "duplicates_collapsed": 0,
    }
    versions = (
        ctx.tables.version("lakehouse.silver.orders"),
        ctx.tables.version("lakehouse.silver.orders_quarantine"),
    )
    refine_table(_context(spark, project, "run-2"), "lakehouse.silver.orders")
    assert (
        ctx.tables.version("lakehouse.silver.orders"),
        ctx.tables.version("lakehouse.silver.orders_quarantine"),
    ) == versions
    assert ctx.tables.row_count("lakehouse.silver.orders_quarantine") == 2
