"""Incremental Gold refreshes on real Delta tables: after inserts, updates and deletes in
Silver (through the table store's MERGE), every Gold table equals a full rebuild of its
query, and ``meta.gold_refreshes`` records the strategy chosen and why."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.bundle.context import RunReport, TaskContext
from lakehouse.config import Project, load_project
from lakehouse.config.system_tables import SystemTable
from lakehouse.io.delta import DeltaStore
from lakehouse.pipelines import gold_refresh
from lakehouse.pipelines.gold import build_gold_table
from lakehouse.pipelines.gold_frame import gold_frame
from lakehouse.pipelines.gold_refresh import state_location
from tests.support import session_engine

BUNDLE = """
bundle: {name: t}
include: [conf/*.yml]
variables: {data_root: {default: ./data}}
targets: {local: {default: true}}
"""
CATALOG = """
catalog:
  name: c
  storage_root: ${var.data_root}/tables
  schemas:
    silver:
      tables:
        facts:
          layer: silver
          keys: [id]
          columns:
            - {name: id, type: int, nullable: false}
            - {name: g, type: string}
            - {name: h, type: string}
            - {name: i, type: int}
            - {name: d, type: "decimal(10,2)"}
            - {name: x, type: double}
            - {name: day, type: date}
    gold:
      tables:
GOLD_TABLES
gold:
GOLD_SPECS
"""
# name -> (query, features, expected strategy after an update/delete)
QUERIES: dict[str, tuple[str, dict[str, str], str]] = {
    "counts": (
        "SELECT g, COUNT(*) AS n, COUNT(i) AS n_i, COUNT(d) AS n_d FROM f GROUP BY g",
        {},
        "decomposable",
    ),
    "sums": (
        "SELECT g, h, SUM(i) AS s_i, SUM(d) AS s_d, AVG(i) AS a_i, SUM(i * 2 + 1) AS s_e "
        "FROM f WHERE i IS NULL OR i < 90 GROUP BY g, h",
        {"ratio": "coalesce(CAST(s_i AS DOUBLE) / 2, CAST(-1 AS DOUBLE))"},
        "decomposable",
    ),
    "by_month": (
        "SELECT date_format(day, 'yyyy-MM') AS month, upper(g) AS ug, COUNT(*) AS n, "
        "SUM(d) AS s FROM f GROUP BY 1, upper(g)",
        {},
        "decomposable",
    ),
    "extremes": (
        "SELECT g, MIN(i) AS lo, MAX(d) AS hi, MAX(day) AS last_day FROM f GROUP BY g",
        {},
        "affected_groups",  # MIN/MAX after updates or deletes
    ),
    "floats": (
        "SELECT g, SUM(x) AS s_x, AVG(x) AS a_x, AVG(d) AS a_d, COUNT(*) AS n FROM f GROUP BY g",
        {},
        "affected_groups",  # floating-point sums are order-dependent
    ),
    "distinct": (
        "SELECT g, COUNT(DISTINCT h) AS hs, COUNT(*) AS n, SUM(i) / COUNT(*) AS mean "
        "FROM f GROUP BY g HAVING COUNT(*) > 1",
        {"label": "concat(g, ':', CAST(hs AS STRING))"},
        "affected_groups",
    ),
    "ranked": (
        "SELECT g, SUM(i) AS s FROM f GROUP BY g",
        {"r": "rank() OVER (ORDER BY s)"},
        "full",  # a feature that is not row-level
    ),
}


def _conf(root: Path, queries: dict[str, tuple[str, dict[str, str], str]]) -> Project:
    tables = "".join(f"        {n}:\n          layer: gold\n" for n in queries)
    specs = ""
    for name, (query, features, _) in queries.items():
        specs += f'  c.gold.{name}:\n    inputs: {{f: c.silver.facts}}\n    query: "{query}"\n'
        if features:
            specs += "    features:\n" + "".join(f'      {k}: "{v}"\n' for k, v in features.items())
    (root / "conf").mkdir(parents=True, exist_ok=True)
    (root / "bundle.yml").write_text(BUNDLE)
    text = CATALOG.replace("GOLD_TABLES\n", tables).replace("GOLD_SPECS\n", specs)
    (root / "conf" / "c.yml").write_text(text)
    return load_project(root)


def _ctx(spark: SparkSession, project: Project) -> TaskContext:
    tables = DeltaStore(spark, project, session_engine(spark))
    tables.register_all()
    return TaskContext(spark, project, tables, RunReport("t", "r1", "local", "sail"), "t")


SCHEMA = "id int, g string, h string, i int, d decimal(10,2), x double, day date"


def _rows(spark: SparkSession, rows: list[tuple[object, ...]]) -> DataFrame:
    return spark.createDataFrame(rows, SCHEMA)


def _row(
    id_: int, g: str | None, h: str, i: int | None, d: str | None, x: float | None, day: int
) -> tuple[object, ...]:
    return (
        id_,
        g,
        h,
        i,
        None if d is None else Decimal(d),
        x,
        dt.date(2025, 1, 1) + dt.timedelta(days=day),
    )


FIRST = [
    _row(1, "a", "p", 1, "1.10", 0.1, 0),
    _row(2, "a", "q", None, None, None, 10),
    _row(3, "b", "p", 5, "2.25", 0.2, 40),
    _row(4, "b", "p", None, "3.00", 0.3, 41),
    _row(5, None, "q", 7, "0.01", 1e-17, 70),
    _row(6, "c", "p", 95, "9.99", 1e17, 80),
    _row(7, "c", "q", 3, None, -0.7, 3),
]


def _assert_equals_full_rebuild(ctx: TaskContext, name: str) -> None:
    t = ctx.project.gold_handle(f"c.gold.{name}")
    got = ctx.tables.read(t.table)
    inputs = {a: ctx.tables.read(r) for a, r in t.inputs.items()}
    with gold_frame(ctx.spark, t.spec, inputs) as expected:
        cols = expected.columns
        assert_df_equality(
            got.select(*cols),
            expected,
            ignore_row_order=True,
            ignore_nullable=True,
        )


def _last(ctx: TaskContext, name: str) -> tuple[str, str]:
    row = (
        ctx.tables.read(ctx.project.system_table(SystemTable.GOLD_REFRESHES))
        .where(F.col("table") == f"c.gold.{name}")
        .orderBy(F.col("gold_version").desc())
        .first()
    )
    assert row is not None
    return str(row["strategy"]), str(row["reason"])


def _refresh_all(ctx: TaskContext) -> None:
    for name in QUERIES:
        build_gold_table(ctx, ctx.project.gold_handle(f"c.gold.{name}"))
        _assert_equals_full_rebuild(ctx, name)


@pytest.fixture(autouse=True)
def _change_reads_of_whole_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tables are one small file each, so every MERGE rewrites (or marks) all of the
    input and its changes re-read the whole table: read them anyway, to test every strategy
    (``test_changes_that_re_read_most_of_the_input_rebuild_in_full`` restores the limit)."""
    monkeypatch.setattr(gold_refresh, "MAX_CHANGE_READ_SHARE", 1e9)


@pytest.mark.delta  # on JVM too: delta-spark's MERGE writes the deletion vectors read here
def test_incremental_refreshes_equal_a_full_rebuild_after_inserts_updates_and_deletes(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # these few groups are mostly touched by every change: recompute them anyway
    monkeypatch.setattr(gold_refresh, "MAX_AFFECTED_SHARE", 2.0)
    ctx = _ctx(spark, _conf(tmp_path, QUERIES))
    facts = ctx.project.table("c.silver.facts")
    ctx.tables.merge(facts, _rows(spark, FIRST), ["id"])
    _refresh_all(ctx)
    assert {_last(ctx, n) for n in QUERIES} == {("full", "first refresh"), _last(ctx, "ranked")}
    assert _last(ctx, "ranked") == (
        "full",
        "feature r is not row-level (window function RANK() OVER (ORDER BY s))",
    )

    # appends only: MIN/MAX stay decomposable
    ctx.tables.merge(
        facts,
        _rows(
            spark, [_row(8, "a", "p", 4, "5.50", 2.5, 5), _row(9, "d", "q", None, None, None, 9)]
        ),
        ["id"],
    )
    _refresh_all(ctx)
    assert _last(ctx, "extremes")[0] == "decomposable"
    assert _last(ctx, "counts")[0] == "decomposable"

    # updates (a group moves, values become NULL) and inserts
    ctx.tables.merge(
        facts,
        _rows(
            spark,
            [
                _row(1, "b", "p", 2, "1.15", 0.4, 33),
                _row(3, "b", "q", None, None, None, 40),
                _row(10, "e", "p", 8, "7.70", 0.8, 90),
            ],
        ),
        ["id"],
    )
    _refresh_all(ctx)
    for name, (_, _, expected) in QUERIES.items():
        assert _last(ctx, name)[0] == expected, (name, _last(ctx, name))

    # deletes: group d and group NULL disappear, group c shrinks
    delete = _rows(
        spark,
        [
            _row(9, "d", "q", None, None, None, 9),
            _row(5, None, "q", 7, "0.01", 1e-17, 70),
            _row(6, "c", "p", 95, "9.99", 1e17, 80),
        ],
    )
    ctx.tables.merge(facts, delete.withColumn("gone", F.lit(True)), ["id"], delete_flag="gone")
    _refresh_all(ctx)
    counts = {r["g"] for r in ctx.tables.read(ctx.project.table("c.gold.counts")).collect()}
    assert counts == {"a", "b", "c", "e"}
    # the changed rows were staged as Parquet for the engine, and removed after the writes
    staging = ctx.project.data_root / "_staging" / ctx.run_id
    assert not (staging / "gold_changes").exists()
    for name, (_, _, expected) in QUERIES.items():
        assert _last(ctx, name)[0] == expected, (name, _last(ctx, name))

    # nothing changed: no new version
    before = ctx.tables.version(ctx.project.table("c.gold.counts"))
    build_gold_table(ctx, ctx.project.gold_handle("c.gold.counts"))
    assert ctx.tables.version(ctx.project.table("c.gold.counts")) == before


def test_falls_back_to_a_full_rebuild_when_the_state_or_history_is_not_usable(
    spark: SparkSession, tmp_path: Path
) -> None:
    queries = {k: QUERIES[k] for k in ("sums", "distinct")}
    ctx = _ctx(spark, _conf(tmp_path, queries))
    facts = ctx.project.table("c.silver.facts")
    ctx.tables.merge(facts, _rows(spark, FIRST), ["id"])
    sums = ctx.project.gold_handle("c.gold.sums")
    distinct = ctx.project.gold_handle("c.gold.distinct")
    build_gold_table(ctx, sums)
    build_gold_table(ctx, distinct)

    # --full-refresh
    ctx.tables.merge(facts, _rows(spark, [_row(11, "a", "p", 1, "1.00", 1.0, 1)]), ["id"])
    build_gold_table(ctx, sums, full_refresh=True)
    assert _last(ctx, "sums") == ("full", "--full-refresh")

    # a crash after the state was written but before the refresh was recorded
    ctx.tables.merge(facts, _rows(spark, [_row(12, "b", "p", 2, "2.00", 2.0, 2)]), ["id"])
    state = spark.read.format("delta").load(state_location(ctx, sums))
    state.limit(1).write.format("delta").mode("append").save(state_location(ctx, sums))
    build_gold_table(ctx, sums)
    assert _last(ctx, "sums") == ("full", "the aggregate state is not the last refresh's")
    _assert_equals_full_rebuild(ctx, "sums")

    # the Gold table was written by someone else
    ctx.tables.overwrite(distinct.table, ctx.tables.read(distinct.table).limit(1))
    build_gold_table(ctx, distinct)
    assert _last(ctx, "distinct") == (
        "full",
        "the Gold table is not the one the last refresh wrote",
    )
    _assert_equals_full_rebuild(ctx, "distinct")

    # the input's old files were vacuumed
    ctx.tables.overwrite(facts, _rows(spark, [*FIRST[1:], _row(1, "z", "p", 2, "2.00", 2.0, 2)]))
    from deltalake import DeltaTable

    DeltaTable(facts.location).vacuum(
        retention_hours=0, enforce_retention_duration=False, dry_run=False
    )
    build_gold_table(ctx, sums)
    strategy, reason = _last(ctx, "sums")
    assert strategy == "full" and reason.startswith("the input's changes cannot be read"), reason
    _assert_equals_full_rebuild(ctx, "sums")


def test_changes_that_touch_most_groups_rebuild_in_full(
    spark: SparkSession, tmp_path: Path
) -> None:
    ctx = _ctx(spark, _conf(tmp_path, {"distinct": QUERIES["distinct"]}))
    facts = ctx.project.table("c.silver.facts")
    ctx.tables.merge(facts, _rows(spark, FIRST), ["id"])
    distinct = ctx.project.gold_handle("c.gold.distinct")
    build_gold_table(ctx, distinct)
    ctx.tables.merge(facts, _rows(spark, [_row(2, "a", "z", 1, "1.00", 1.0, 1)]), ["id"])
    build_gold_table(ctx, distinct)
    assert _last(ctx, "distinct")[0] == "affected_groups"
    _assert_equals_full_rebuild(ctx, "distinct")
    ctx.tables.merge(
        facts,
        _rows(spark, [_row(2, "b", "z", 1, "1.00", 1.0, 1), _row(7, "a", "z", 1, "1.00", 1.0, 1)]),
        ["id"],
    )
    build_gold_table(ctx, distinct)
    assert _last(ctx, "distinct") == ("full", "the changes touch 100% of the groups")
    _assert_equals_full_rebuild(ctx, "distinct")


def test_changes_that_re_read_most_of_the_input_rebuild_in_full(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The change read costs more than a rebuild once it re-reads most of the input's rows:
    decided from the Delta log, before any row is read; an append stays incremental."""
    monkeypatch.setattr(gold_refresh, "MAX_CHANGE_READ_SHARE", 0.5)
    ctx = _ctx(spark, _conf(tmp_path, {"counts": QUERIES["counts"]}))
    facts = ctx.project.table("c.silver.facts")
    ctx.tables.merge(facts, _rows(spark, FIRST), ["id"])
    counts = ctx.project.gold_handle("c.gold.counts")
    build_gold_table(ctx, counts)
    ctx.tables.merge(facts, _rows(spark, [_row(1, "b", "p", 2, "1.15", 0.4, 33)]), ["id"])
    build_gold_table(ctx, counts)
    strategy, reason = _last(ctx, "counts")
    assert strategy == "full" and reason.startswith("its changes would re-read"), reason
    _assert_equals_full_rebuild(ctx, "counts")
    ctx.tables.append(facts, _rows(spark, [_row(20, "a", "q", 1, "1.00", 1.0, 1)]))
    build_gold_table(ctx, counts)
    assert _last(ctx, "counts")[0] == "decomposable"
    _assert_equals_full_rebuild(ctx, "counts")
