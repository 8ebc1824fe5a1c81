"""Smoke test of benchmarks/medallion at TPC-H SF0.01: our pipeline (the bundle's job on the
embedded engine) and the Polars peer, full + incremental, with equal Gold outputs; and the
``jvm`` target the JVM peer runs on (its Spark conf, no JVM started)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from lakehouse.config import load_project
from lakehouse.engine import ENV_DELTA_JARS, jvm_spark_conf

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "benchmarks" / "medallion"


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    sys.path.insert(0, str(BENCH))
    try:
        import bench
    finally:
        sys.path.remove(str(BENCH))
    work = tmp_path_factory.mktemp("medallion")
    code = bench.main(
        [
            "--sf", "0.01", "--repeat", "1", "--no-warmup", "--systems", "ours,polars",
            "--work", str(work), "--results", str(work / "results"), "--no-history",
            "--out-name", "smoke",
        ]
    )  # fmt: skip
    assert code == 0
    assert (work / "results" / "smoke.md").read_text().startswith("# Medallion benchmark")
    return dict(json.loads((work / "results" / "smoke.json").read_text()))


def test_drops_have_the_tpch_row_counts(result: dict[str, object]) -> None:
    assert result["rows"] == {
        "full": {"region": 5, "nation": 25, "customer": 1500, "orders": 15000, "lineitem": 60175},
        "incremental": {"customer": 15, "orders": 150, "lineitem": 631},
    }


def test_polars_gold_equals_ours_in_both_runs(result: dict[str, object]) -> None:
    summary = result["summary"]
    assert isinstance(summary, dict)
    gold_rows = {"pricing_summary": 4, "customer_revenue": 1500, "nation_revenue": 175}
    for phase in ("full", "incremental"):
        assert summary["ours"][phase]["gold_check"] == "reference"
        assert summary["polars"][phase]["gold_check"] == "equal to ours"
        rows = summary["ours"][phase]["gold_rows"]
        assert {k: rows[k] for k in gold_rows} == gold_rows
        assert rows == summary["polars"][phase]["gold_rows"]


def test_incremental_run_quarantines_the_three_invalid_lines(result: dict[str, object]) -> None:
    summary = result["summary"]
    assert isinstance(summary, dict)
    ours = summary["ours"]["incremental"]["counters"]
    assert ours["source lineitem_drop"]["rows"] == 631
    lineitem = ours["silver tpch.silver.lineitem"]
    assert lineitem["rows_read"] == 631  # only the new batch: Silver is incremental
    assert lineitem["rows_quarantined"] == 3
    polars = summary["polars"]["incremental"]["counters"]["silver"]["lineitem"]
    assert polars["rows_quarantined"] == 3
    assert (
        summary["ours"]["full"]["counters"]["silver tpch.silver.lineitem"]["rows_quarantined"] == 0
    )


def test_jvm_target_runs_the_bundle_on_jvm_spark_with_delta_jars(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jars = tmp_path.resolve() / "jars"
    jars.mkdir()
    names = ["delta-spark_2.13-4.4.0.jar", "delta-storage-4.4.0.jar"]
    for name in names:
        (jars / name).write_bytes(b"")
    monkeypatch.setenv(ENV_DELTA_JARS, str(jars))
    project = load_project(BENCH, target="jvm", var_overrides={"data_root": str(tmp_path)})
    assert (project.engine.kind, project.engine.master) == ("spark", "local[2]")
    conf = jvm_spark_conf(project.engine, tmp_path / "warehouse")
    assert conf["spark.jars"] == ",".join(str(jars / name) for name in names)
    assert "spark.jars.packages" not in conf
    assert (
        conf["spark.sql.catalog.spark_catalog"] == "org.apache.spark.sql.delta.catalog.DeltaCatalog"
    )
    assert conf["spark.sql.shuffle.partitions"] == "8"  # the target's conf wins over local mode
    assert conf["spark.sql.parquet.outputTimestampType"] == "TIMESTAMP_MICROS"
