"""Derived schemas, schema evolution and full refreshes on real Delta tables.

Silver and Gold tables may declare no columns (they come from the conform step and the
query); a column added to the catalog or to the data is added to the table; a safe widening
is applied; an unsafe change fails with one line naming the fix; a full refresh or a table
reset followed by a run gives the rows of a fresh run.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from lakehouse.bundle.context import RunReport, TaskContext
from lakehouse.config import Project, load_project
from lakehouse.core.errors import SchemaMismatchError
from lakehouse.io.delta import DeltaStore
from lakehouse.io.table_schema import catalog_mismatches, delta_schema
from lakehouse.pipelines.bronze.ingest import ingest_source
from lakehouse.pipelines.gold import build_gold_table
from lakehouse.pipelines.refresh import reset_table
from lakehouse.pipelines.silver.refine import refine_table
from tests.support import session_engine

pytestmark = pytest.mark.delta  # both engines

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
            - {name: seq, type: string}
    silver:
      tables:
        orders:
          layer: silver
          keys: [order_id]
SILVER_COLUMNS
        customers:
          layer: silver
          keys: [customer]
    gold:
      tables:
        totals:
          layer: gold
GOLD_COLUMNS
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
    great_expectations: false
    cast: CAST
  c.silver.customers:
    source: c.bronze.orders
    keys: [customer]
    sequence_by: seq
    mode: scd2
    track_columns: [customer_amount]
    rename: {customer_amount: amount}
    cast: {seq: int}
gold:
  c.gold.totals:
    inputs: {o: c.silver.orders}
    query: |
      SELECT customer, SUM(amount) AS total, COUNT(*) AS n FROM o GROUP BY customer
"""
FIRST = [
    '{"order_id": "1", "customer": "a", "amount": "10", "seq": "1"}',
    '{"order_id": "2", "customer": "b", "amount": "20", "seq": "1"}',
    '{"order_id": "3", "customer": "a", "amount": "5", "seq": "1"}',
]
SECOND = ['{"order_id": "4", "customer": "b", "amount": "1", "seq": "2"}']


def _write_conf(
    root: Path, silver: str = "", gold: str = "", cast: str = "{seq: int, amount: double}"
) -> Project:
    (root / "conf").mkdir(parents=True, exist_ok=True)
    (root / "bundle.yml").write_text(BUNDLE)
    conf = CONF.replace("SILVER_COLUMNS", silver).replace("GOLD_COLUMNS", gold)
    conf = conf.replace("CAST", cast)
    (root / "conf" / "c.yml").write_text(conf)
    (root / "data" / "landing").mkdir(parents=True, exist_ok=True)
    return load_project(root)


def _columns(*decls: str) -> str:
    return "          columns:\n" + "".join(f"            - {d}\n" for d in decls)


def _ctx(spark: SparkSession, project: Project, run_id: str) -> TaskContext:
    tables = DeltaStore(spark, project, session_engine(spark))
    tables.register_all()
    report = RunReport("t", run_id, "local", session_engine(spark))
    return TaskContext(spark, project, tables, report, "t")


def _land(project: Project, name: str, lines: list[str]) -> None:
    (project.data_root / "landing" / name).write_text("\n".join(lines) + "\n")


def _run_all(ctx: TaskContext, *, full_refresh: bool = False) -> None:
    ingest_source(ctx, "drop", full_refresh=full_refresh)
    refine_table(ctx, "c.silver.orders", full_refresh=full_refresh)
    build_gold_table(ctx, ctx.project.gold_handle("c.gold.totals"), full_refresh=full_refresh)


def _schema(project: Project, table: str) -> list[tuple[str, str]]:
    schema = delta_schema(project.table(table).location)
    assert schema is not None
    return [(f.name, f.dataType.simpleString()) for f in schema.fields]


def _rows(ctx: TaskContext, table: str, *columns: str) -> list[tuple[object, ...]]:
    return sorted(tuple(r) for r in ctx.tables.read(table).select(*columns).collect())


def test_silver_and_gold_without_declared_columns(spark: SparkSession, tmp_path: Path) -> None:
    project = _write_conf(tmp_path)
    _land(project, "a.jsonl", FIRST)
    ctx = _ctx(spark, project, "r1")
    _run_all(ctx)
    assert _schema(project, "c.silver.orders") == [
        ("order_id", "string"),
        ("customer", "string"),
        ("amount", "double"),
        ("seq", "int"),
    ]
    assert _rows(ctx, "c.silver.orders", "order_id", "amount", "seq") == [
        ("1", 10.0, 1),
        ("2", 20.0, 1),
        ("3", 5.0, 1),
    ]
    assert _schema(project, "c.gold.totals") == [
        ("customer", "string"),
        ("total", "double"),
        ("n", "bigint"),
    ]
    assert _rows(ctx, "c.gold.totals", "customer", "total", "n") == [("a", 15.0, 2), ("b", 20.0, 1)]
    assert catalog_mismatches(project.table("c.silver.orders")) == []


def test_a_column_added_to_the_catalog_evolves_the_table(
    spark: SparkSession, tmp_path: Path
) -> None:
    before = _columns(
        "{name: order_id, type: string, nullable: false}",
        "{name: customer, type: string}",
        "{name: seq, type: int}",
    )
    project = _write_conf(tmp_path, silver=before, cast="{}")
    _land(project, "a.jsonl", FIRST)
    ctx = _ctx(spark, project, "r1")
    ingest_source(ctx, "drop")
    refine_table(ctx, "c.silver.orders")
    assert [n for n, _ in _schema(project, "c.silver.orders")] == ["order_id", "customer", "seq"]
    after = before + "            - {name: amount, type: 'decimal(10,2)', comment: money}\n"
    project = _write_conf(tmp_path, silver=after, cast="{}")
    mismatches = catalog_mismatches(project.table("c.silver.orders"))
    assert [m.text for m in mismatches] == [
        "c.silver.orders: declared column amount is not in the table (the next write adds it)"
    ]
    _land(project, "b.jsonl", SECOND)
    ctx = _ctx(spark, project, "r2")
    ingest_source(ctx, "drop")
    refine_table(ctx, "c.silver.orders")
    assert _schema(project, "c.silver.orders")[-1] == ("amount", "decimal(10,2)")
    assert [
        (str(a) if a is not None else None)
        for _, a in _rows(ctx, "c.silver.orders", "order_id", "amount")
    ] == [
        None,
        None,
        None,
        "1.00",
    ]


def test_a_safe_widening_is_applied(spark: SparkSession, tmp_path: Path) -> None:
    project = _write_conf(
        tmp_path,
        silver=_columns("{name: order_id, type: string}", "{name: seq, type: int}"),
        cast="{}",
    )
    _land(project, "a.jsonl", FIRST)
    ctx = _ctx(spark, project, "r1")
    ingest_source(ctx, "drop")
    refine_table(ctx, "c.silver.orders")
    project = _write_conf(
        tmp_path,
        silver=_columns("{name: order_id, type: string}", "{name: seq, type: bigint}"),
        cast="{}",
    )
    assert [m.text for m in catalog_mismatches(project.table("c.silver.orders"))] == [
        "c.silver.orders: column seq is int in the table, declared bigint "
        "(a safe widening: the next write applies it)"
    ]
    _land(project, "b.jsonl", SECOND)
    ctx = _ctx(spark, project, "r2")
    ingest_source(ctx, "drop")
    refine_table(ctx, "c.silver.orders")
    assert _schema(project, "c.silver.orders") == [("order_id", "string"), ("seq", "bigint")]
    assert _rows(ctx, "c.silver.orders", "order_id", "seq") == [
        ("1", 1),
        ("2", 1),
        ("3", 1),
        ("4", 2),
    ]


def test_an_unsafe_change_fails_with_the_fix_and_full_refresh_applies_it(
    spark: SparkSession, tmp_path: Path
) -> None:
    project = _write_conf(tmp_path, gold=_columns("{name: n, type: string}"))
    _land(project, "a.jsonl", FIRST)
    ctx = _ctx(spark, project, "r1")
    _run_all(ctx)
    assert ("n", "string") in _schema(project, "c.gold.totals")
    project = _write_conf(tmp_path, gold=_columns("{name: n, type: int}"))
    expected = (
        "c.gold.totals: column n is string in the table but int now, which is not a safe "
        "widening; rebuild it with `lakehouse build c.gold.totals --full-refresh`"
    )
    assert [(m.text, m.unsafe) for m in catalog_mismatches(project.table("c.gold.totals"))] == [
        (expected, True)
    ]
    ctx = _ctx(spark, project, "r2")
    with pytest.raises(SchemaMismatchError) as info:
        build_gold_table(ctx, project.gold_handle("c.gold.totals"))
    assert str(info.value) == expected
    build_gold_table(ctx, project.gold_handle("c.gold.totals"), full_refresh=True)
    assert _schema(project, "c.gold.totals") == [
        ("customer", "string"),
        ("total", "double"),
        ("n", "int"),
    ]
    assert _rows(ctx, "c.gold.totals", "customer", "n") == [("a", 2), ("b", 1)]


def test_full_refresh_and_reset_give_the_rows_of_a_fresh_run(
    spark: SparkSession, tmp_path: Path
) -> None:
    project = _write_conf(tmp_path)
    _land(project, "a.jsonl", FIRST)
    _land(project, "b.jsonl", SECOND)
    ctx = _ctx(spark, project, "r1")
    _run_all(ctx)
    tables = {
        "c.bronze.orders": ("order_id", "customer", "amount", "seq", "_source_file", "_batch_id"),
        "c.silver.orders": ("order_id", "customer", "amount", "seq"),
        "c.gold.totals": ("customer", "total", "n"),
    }
    fresh = {t: _rows(ctx, t, *cols) for t, cols in tables.items()}
    assert len(fresh["c.bronze.orders"]) == 4
    ctx = _ctx(spark, project, "r2")
    _run_all(ctx, full_refresh=True)
    assert {t: _rows(ctx, t, *cols) for t, cols in tables.items()} == fresh
    assert ctx.tables.read("c.meta.processed_files").count() == 2
    for table in ("c.gold.totals", "c.silver.orders", "c.bronze.orders"):
        summary = reset_table(ctx, table)
        assert summary.had_data
        assert not ctx.tables.exists(table)
    assert ctx.tables.read("c.meta.processed_files").count() == 0
    assert ctx.tables.read("c.meta.silver_batches").where("table = 'c.silver.orders'").count() == 0
    ctx = _ctx(spark, project, "r3")
    _run_all(ctx)
    assert {t: _rows(ctx, t, *cols) for t, cols in tables.items()} == fresh


def test_refine_full_refresh_creates_the_table_again_after_an_unsafe_change(
    spark: SparkSession, tmp_path: Path
) -> None:
    def conf(seq_type: str) -> Project:
        silver = _columns("{name: order_id, type: string}", f"{{name: seq, type: {seq_type}}}")
        return _write_conf(tmp_path, silver=silver, cast="{}")

    project = conf("string")
    _land(project, "a.jsonl", FIRST)
    ctx = _ctx(spark, project, "r1")
    ingest_source(ctx, "drop")
    refine_table(ctx, "c.silver.orders")
    project = conf("int")
    _land(project, "b.jsonl", SECOND)
    ctx = _ctx(spark, project, "r2")
    ingest_source(ctx, "drop")
    with pytest.raises(SchemaMismatchError) as info:
        refine_table(ctx, "c.silver.orders", full_refresh=False)
    assert str(info.value) == (
        "c.silver.orders: column seq is string in the table but int now, which is not a safe "
        "widening; rebuild it with `lakehouse refine c.silver.orders --full-refresh`"
    )
    refine_table(ctx, "c.silver.orders", full_refresh=True)
    assert _schema(project, "c.silver.orders") == [("order_id", "string"), ("seq", "int")]
    assert _rows(ctx, "c.silver.orders", "order_id", "seq") == [
        ("1", 1),
        ("2", 1),
        ("3", 1),
        ("4", 2),
    ]


def test_scd2_silver_without_declared_columns(spark: SparkSession, tmp_path: Path) -> None:
    project = _write_conf(tmp_path)
    _land(project, "a.jsonl", FIRST)
    ctx = _ctx(spark, project, "r1")
    ingest_source(ctx, "drop")
    refine_table(ctx, "c.silver.customers")
    _land(project, "b.jsonl", SECOND)
    ctx = _ctx(spark, project, "r2")
    ingest_source(ctx, "drop")
    refine_table(ctx, "c.silver.customers")
    assert _schema(project, "c.silver.customers") == [
        ("order_id", "string"),
        ("customer", "string"),
        ("customer_amount", "string"),
        ("seq", "int"),
        ("valid_from", "int"),
        ("valid_to", "int"),
        ("is_current", "boolean"),
    ]
    rows = _rows(ctx, "c.silver.customers", "customer", "customer_amount", "valid_from", "valid_to")
    # customer a: two orders with the same sequence, one version (either amount)
    assert [r for r in rows if r[0] == "b"] == [("b", "1", 2, None), ("b", "20", 1, 2)]
    assert [(r[0], r[2], r[3]) for r in rows if r[0] == "a"] == [("a", 1, None)]
