"""File drops -> Bronze -> Silver on real Delta tables: exact counts, exactly once, nothing lost."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from lakehouse.bundle.context import RunReport, TaskContext
from lakehouse.config import Project, load_project
from lakehouse.io.delta import DeltaStore
from lakehouse.pipelines.bronze.ingest import ingest_file_source
from lakehouse.pipelines.silver.refine import refine_table
from tests.support import session_engine

# also in the distributed invocation (make test-cluster: Sail local-cluster, 2 workers)
pytestmark = pytest.mark.distributed

DATA = Path(__file__).resolve().parents[2] / "data" / "landing"


@pytest.fixture()
def project(demo_project_dir: Path, tmp_path: Path) -> Project:
    return load_project(demo_project_dir, var_overrides={"data_root": str(tmp_path / "data")})


def _context(spark: SparkSession, project: Project, run_id: str) -> TaskContext:
    tables = DeltaStore(spark, project, session_engine(spark))
    tables.register_all()
    report = RunReport(job="test", run_id=run_id, target="local", engine=session_engine(spark))
    return TaskContext(spark=spark, project=project, tables=tables, report=report, task_key="t")


def _land(project: Project, kind: str, name: str) -> None:
    target = project.data_root / "landing" / kind
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(DATA / name, target / name)


@pytest.mark.delta
def test_json_drops_are_ingested_once_with_corrupt_lines_kept(
    spark: SparkSession, project: Project
) -> None:
    _land(project, "orders", "orders_a.jsonl")
    ctx = _context(spark, project, "run-1")
    summary = ingest_file_source(ctx, "orders_drop")
    assert (summary.units, summary.rows, summary.corrupt_rows) == (
        1,
        4,
        1,
    )  # a blank line is no record
    bronze = ctx.tables.read("lakehouse.bronze.orders")
    corrupt = bronze.where("_corrupt IS NOT NULL").collect()
    assert [(r["_raw"], r["_corrupt"]) for r in corrupt] == [
        ('{"order_id":"A3", "customer_id":', "malformed JSON: not a JSON object")
    ]
    assert {r["_run_id"] for r in bronze.collect()} == {"run-1"}
    assert {Path(r["_source_file"]).name for r in bronze.collect()} == {"orders_a.jsonl"}

    assert ingest_file_source(_context(spark, project, "run-2"), "orders_drop").rows == 0
    _land(project, "orders", "orders_b.jsonl")
    assert ingest_file_source(_context(spark, project, "run-3"), "orders_drop").rows == 2
    assert ctx.tables.row_count("lakehouse.bronze.orders") == 6
    processed = ctx.tables.read("lakehouse.meta.processed_files").orderBy("path").collect()
    assert [
        (Path(r["path"]).name, r["rows"], r["corrupt_rows"], r["run_id"]) for r in processed
    ] == [
        ("orders_a.jsonl", 4, 1, "run-1"),
        ("orders_b.jsonl", 2, 0, "run-3"),
    ]


@pytest.mark.delta
def test_csv_drop_keeps_quoted_commas_and_flags_ragged_rows(
    spark: SparkSession, project: Project
) -> None:
    _land(project, "customers", "customers_a.csv")
    ctx = _context(spark, project, "run-1")
    assert ingest_file_source(ctx, "customers_drop").rows == 3
    rows = {r["customer_id"]: r for r in ctx.tables.read("lakehouse.bronze.customers").collect()}
    assert rows["C1"]["name"] == "Doe, Jane"
    assert rows[None]["_raw"] == "C2,Bo,b@example.com,south"
    assert rows[None]["_corrupt"] == "malformed CSV: expected 9 fields, got 4"


@pytest.mark.delta
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
            "missing_sequence: updated_at",
        ),
        ("not_a_int: quantity",),
    ]
    assert ctx.report.counters["silver lakehouse.silver.orders"] == {
        "rows_read": 6,
        "rows_kept": 4,
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


TYPED_BUNDLE = """
bundle: {name: t}
include: [conf/*.yml]
variables: {data_root: {default: ./data}}
targets: {local: {default: true}}
"""
TYPED_CONF = """
catalog:
  name: c
  storage_root: ${{var.data_root}}/tables
  schemas:
    bronze:
      tables:
        events:
          layer: bronze
          columns:
            - {{name: id, type: string}}
            - {{name: qty, type: int}}
sources:
  drop:
    kind: files
    path: ${{var.data_root}}/landing
    glob: "{glob}"
    format: {format}
    target: c.bronze.events
    schema_drift: {drift}
    files_per_commit: {per_commit}
"""


def _typed_project(
    tmp_path: Path,
    drift: str = "rescue",
    fmt: str = "jsonl",
    glob: str = "*.jsonl",
    per_commit: int = 100,
) -> Project:
    root = tmp_path / "proj"
    (root / "conf").mkdir(parents=True)
    (root / "bundle.yml").write_text(TYPED_BUNDLE)
    (root / "conf" / "c.yml").write_text(
        TYPED_CONF.format(drift=drift, format=fmt, glob=glob, per_commit=per_commit)
    )
    (root / "data" / "landing").mkdir(parents=True)
    return load_project(root)


def _write(project: Project, name: str, text: str) -> Path:
    path = project.data_root / "landing" / name
    path.write_text(text)
    return path


def test_drift_rescue_keeps_extra_fields_and_bad_values(
    spark: SparkSession, tmp_path: Path
) -> None:
    project = _typed_project(tmp_path, "rescue")
    _write(
        project, "a.jsonl", '{"id": "1", "qty": 2, "color": "red"}\n{"id": "2", "qty": "many"}\n'
    )
    summary = ingest_file_source(_context(spark, project, "r1"), "drop")
    assert (summary.rows, summary.rescued_rows) == (2, 2)
    rows = {
        r["id"]: (r["qty"], r["_rescued_data"])
        for r in _context(spark, project, "r").tables.read("c.bronze.events").collect()
    }
    assert rows == {"1": (2, '{"color":"red"}'), "2": (None, '{"qty":"many"}')}


@pytest.mark.delta
def test_drift_add_new_columns_evolves_the_table(spark: SparkSession, tmp_path: Path) -> None:
    project = _typed_project(tmp_path, "add_new_columns")
    _write(project, "a.jsonl", '{"id": "1", "qty": 2}\n')
    ingest_file_source(_context(spark, project, "r1"), "drop")
    _write(project, "b.jsonl", '{"id": "2", "qty": 3, "color": "red"}\n')
    ctx = _context(spark, project, "r2")
    summary = ingest_file_source(ctx, "drop")
    assert summary.new_columns == ["color"]
    table = ctx.tables.read("c.bronze.events")
    assert "color" in table.columns
    assert sorted((r["id"], r["color"], r["_rescued_data"]) for r in table.collect()) == [
        ("1", None, None),
        ("2", "red", None),
    ]


def test_drift_fail_appends_nothing_and_names_the_fields(
    spark: SparkSession, tmp_path: Path
) -> None:
    from lakehouse.core.errors import TaskError

    project = _typed_project(tmp_path, "fail")
    _write(project, "a.jsonl", '{"id": "1", "qty": 2, "color": "red", "size": "L"}\n')
    ctx = _context(spark, project, "r1")
    before = ctx.tables.version("c.bronze.events")
    with pytest.raises(
        TaskError,
        match=r"fields not declared in c.bronze.events: color, size \(schema_drift: fail\)",
    ):
        ingest_file_source(ctx, "drop")
    assert ctx.tables.version("c.bronze.events") == before
    assert ctx.tables.row_count("lakehouse.meta.processed_files".replace("lakehouse", "c")) == 0


def test_changed_file_is_a_new_batch_and_unchanged_is_skipped(
    spark: SparkSession, tmp_path: Path
) -> None:
    import os

    project = _typed_project(tmp_path)
    path = _write(project, "a.jsonl", '{"id": "1", "qty": 1}\n')
    assert ingest_file_source(_context(spark, project, "r1"), "drop").rows == 1
    path.write_text('{"id": "1", "qty": 1}\n{"id": "2", "qty": 2}\n')
    os.utime(path, (1_800_000_000, 1_800_000_000))
    assert ingest_file_source(_context(spark, project, "r2"), "drop").rows == 2
    assert ingest_file_source(_context(spark, project, "r3"), "drop").rows == 0


@pytest.mark.delta
def test_bronze_commit_without_log_entry_is_not_ingested_twice(
    spark: SparkSession, tmp_path: Path
) -> None:
    """A crash after the Bronze commit but before the processed-files entry."""
    project = _typed_project(tmp_path, per_commit=1)
    for i in range(3):
        _write(project, f"f{i}.jsonl", f'{{"id": "{i}", "qty": {i}}}\n')
    ctx = _context(spark, project, "r1")
    ingest_file_source(ctx, "drop")
    log_table = "c.meta.processed_files"
    ctx.tables.overwrite(log_table, ctx.tables.read(log_table).where("path NOT LIKE '%f1.jsonl'"))
    summary = ingest_file_source(_context(spark, project, "r2"), "drop")
    assert (summary.rows, summary.skipped) == (0, 3)
    assert ctx.tables.row_count("c.bronze.events") == 3
    assert ctx.tables.row_count(log_table) == 3


def test_json_array_parquet_and_excel_files(spark: SparkSession, tmp_path: Path) -> None:
    import pandas as pd

    project = _typed_project(tmp_path, fmt="json", glob="*.json")
    _write(project, "a.json", '[{"id": "1", "qty": 1}, {"id": "2", "qty": "x"}, 7]')
    _write(project, "broken.json", '[{"id": "3", "qty": 1}, {"id": ')
    ctx = _context(spark, project, "r1")
    summary = ingest_file_source(ctx, "drop")
    assert (summary.rows, summary.corrupt_rows, summary.rescued_rows) == (4, 2, 1)
    corrupt = sorted(
        r["_raw"]
        for r in ctx.tables.read("c.bronze.events").where("_corrupt IS NOT NULL").collect()
    )
    assert corrupt == ["7", '[{"id": "3", "qty": 1}, {"id": ']

    project = _typed_project(tmp_path / "pq", fmt="parquet", glob="*.parquet")
    pd.DataFrame({"id": ["1", "2"], "qty": [5, 6], "extra": [True, False]}).to_parquet(
        project.data_root / "landing" / "a.parquet"
    )
    ctx = _context(spark, project, "r1")
    assert ingest_file_source(ctx, "drop").rows == 2
    assert sorted(
        (r["id"], r["qty"], r["_rescued_data"])
        for r in ctx.tables.read("c.bronze.events").collect()
    ) == [
        ("1", 5, '{"extra":"true"}'),
        ("2", 6, '{"extra":"false"}'),
    ]

    project = _typed_project(tmp_path / "xl", fmt="excel", glob="*.xlsx")
    pd.DataFrame({"id": ["1", "2", "3"], "qty": ["7", "eight", None]}).to_excel(
        project.data_root / "landing" / "a.xlsx", index=False
    )
    ctx = _context(spark, project, "r1")
    assert ingest_file_source(ctx, "drop").rows == 3
    assert sorted(
        (r["id"], r["qty"], r["_rescued_data"])
        for r in ctx.tables.read("c.bronze.events").collect()
    ) == [
        ("1", 7, None),
        ("2", None, '{"qty":"eight"}'),
        ("3", None, None),
    ]


def test_landing_location_as_file_uri(spark: SparkSession, tmp_path: Path) -> None:
    project = _typed_project(tmp_path)
    _write(project, "a.jsonl", '{"id": "1", "qty": 1}\n')
    _write(project, "_ignored.jsonl", '{"id": "9", "qty": 9}\n')
    uri_project = load_project(
        project.root, var_overrides={"data_root": (project.data_root).as_uri()}
    )
    summary = ingest_file_source(_context(spark, uri_project, "r1"), "drop")
    assert (summary.units, summary.rows) == (1, 1)
