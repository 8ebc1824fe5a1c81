"""Smoke test of benchmarks/medallion at TPC-H SF0.01: our pipeline (the bundle's job on the
embedded engine), the Polars peer and the same job on Sail's local-cluster mode, full +
incremental, with equal Gold outputs (one bench run serves them all); the same job over
Spark Connect against a JVM Spark Connect server with Delta (``jvm``), Gold equal to ours;
and the ``jvm`` target the JVM peer runs on (its Spark conf, no JVM started).

``ours-cluster`` starts its own local-cluster Sail and ``ours`` runs in local mode whatever
``$SAIL_MODE`` says, so the cluster test is the same in every invocation: it runs in the
Sail one only (not marked ``distributed``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from lakehouse.config import load_project
from lakehouse.engine import ENV_DELTA_JARS, jvm_spark_conf

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "benchmarks" / "medallion"


def run_bench(work: Path, systems: str, *options: str) -> dict[str, Any]:
    """bench.py at SF0.01, one round without warm-up; its result JSON."""
    sys.path.insert(0, str(BENCH))
    try:
        import bench
    finally:
        sys.path.remove(str(BENCH))
    code = bench.main(
        [
            "--sf", "0.01", "--repeat", "1", "--no-warmup", "--systems", systems,
            "--work", str(work), "--results", str(work / "results"), "--no-history",
            "--out-name", "smoke", *options,
        ]
    )  # fmt: skip
    assert code == 0
    assert (work / "results" / "smoke.md").read_text().startswith("# Medallion benchmark")
    return {**json.loads((work / "results" / "smoke.json").read_text()), "work": str(work)}


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_bench(tmp_path_factory.mktemp("medallion"), "ours,plain,polars,ours-cluster")


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


def test_the_bronze_floor_lands_the_same_drops_and_the_targets_are_listed(
    result: dict[str, object],
) -> None:
    summary = result["summary"]
    assert isinstance(summary, dict)
    plain = summary["plain"]
    assert set(plain) == {"full", "peer_over_ours"}  # full runs only, Bronze only
    assert plain["full"]["bronze"]["median_s"] > 0
    assert plain["full"]["gold_check"] == "n/a (Bronze only)"
    assert set(plain["peer_over_ours"]["full"]) == {"bronze"}
    text = (Path(str(result["work"])) / "results" / "smoke.md").read_text()
    assert "- target Bronze: ours <= 1.3x a plain native read + Delta write: ours = " in text
    assert "- target full run: ours <= 1.0x the DuckDB pipeline: not measured in this run" in text


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


GOLD_ROWS = {"pricing_summary": 4, "customer_revenue": 1500, "nation_revenue": 175}


def test_ours_cluster_gold_equals_ours_in_full_and_incremental_runs(
    result: dict[str, Any],
) -> None:
    summary, runs = result["summary"], result["rounds"][0]
    for phase in ("full", "incremental"):
        assert summary["ours-cluster"][phase]["gold_check"] == "equal to ours"
        rows = summary["ours-cluster"][phase]["gold_rows"]
        assert rows == summary["ours"][phase]["gold_rows"]
        assert {k: rows[k] for k in GOLD_ROWS} == GOLD_ROWS
        assert runs["ours-cluster"][phase]["engine_mode"] == "local-cluster, 2 workers"
        assert runs["ours"][phase]["engine_mode"] == "local"  # not $SAIL_MODE
    lineitem = summary["ours-cluster"]["incremental"]["counters"]["silver tpch.silver.lineitem"]
    assert (lineitem["rows_read"], lineitem["rows_quarantined"]) == (631, 3)
    assert "ours-cluster runs Sail in local-cluster, 2 workers" in "\n".join(result["notes"])


@pytest.mark.jvm
def test_jvm_connect_gold_equals_ours(tmp_path: Path) -> None:
    result = run_bench(tmp_path, "ours,jvm-connect", "--full-only")
    summary = result["summary"]
    assert summary["jvm-connect"]["full"]["gold_check"] == "equal to ours"
    rows = summary["jvm-connect"]["full"]["gold_rows"]
    assert rows == summary["ours"]["full"]["gold_rows"]
    assert {k: rows[k] for k in GOLD_ROWS} == GOLD_ROWS
    run = result["rounds"][0]["jvm-connect"]["full"]
    assert run["engine"] == "connect"
    assert [j.split("_")[0].split("-4")[0] for j in run["delta_jars"]] == [
        "delta-spark",
        "delta-storage",
    ]
    assert run["max_processes"] >= 2  # the Connect server's JVM is sampled with the worker
    assert "jvm-connect starts a JVM Spark Connect server" in "\n".join(result["notes"])
