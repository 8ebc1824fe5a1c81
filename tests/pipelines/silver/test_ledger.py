"""Silver bookkeeping once per job run: one commit per system table, flushed on failure, and
exactly once under SIGKILL between the data commits and the flush."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from lakehouse.bundle.context import TaskContext
from lakehouse.config import Project
from lakehouse.pipelines.silver.refine import QualityGateError, refine_silver
from tests.pipelines.silver.test_refine import GOOD_AND_BAD, _ctx, _land, _project

REPO = Path(__file__).resolve().parents[3]
LEDGER = ("c.meta.silver_runs", "c.meta.dq_results", "c.meta.silver_batches")
SILVER = ("c.silver.orders", "c.silver.customers")
SECOND_DROP = [
    '{"order_id": "1", "customer": "a", "amount": "12", "status": "refunded", "seq": "2"}',
    '{"order_id": "7", "customer": "f", "amount": "3", "status": "completed", "seq": "2"}',
    '{"order_id": "8", "customer": "g", "amount": "-1", "status": "completed", "seq": "2"}',
]


def _refine_silver(spark: SparkSession, project: Project, run_id: str, *tables: str) -> TaskContext:
    ctx = _ctx(spark, project, run_id)
    ctx.parameters = list(tables)
    refine_silver(ctx)
    return ctx


def _versions(ctx: TaskContext) -> dict[str, int]:
    return {name: ctx.tables.version(name) for name in LEDGER}


def _silver_state(ctx: TaskContext) -> dict[str, list[str]]:
    """Every Silver row and quarantined row, as sorted JSON (the quarantine's without run
    ids, timestamps and ingest metadata)."""
    out = {}
    for name in SILVER:
        rows = ctx.tables.read(name).collect()
        out[name] = sorted(json.dumps(r.asDict(), sort_keys=True, default=str) for r in rows)
        rejects = ctx.tables.read(f"{name}_quarantine").select("_row", "_reasons").collect()
        out[f"{name}_quarantine"] = sorted(_reject(r["_row"], r["_reasons"]) for r in rejects)
    return out


def _reject(row: str, reasons: list[str]) -> str:
    """A quarantined row without its ingest metadata (``_ingested_at`` differs per landing)."""
    data = {k: v for k, v in json.loads(row).items() if not k.startswith("_")}
    return json.dumps([data, sorted(reasons)], sort_keys=True)


def _ledger(ctx: TaskContext) -> dict[str, list[tuple[str, ...]]]:
    """The three system tables' keys (run id first), sorted: duplicates would show."""
    runs = ctx.tables.read("c.meta.silver_runs").collect()
    results = ctx.tables.read("c.meta.dq_results").collect()
    batches = ctx.tables.read("c.meta.silver_batches").collect()
    return {
        "runs": sorted((r["run_id"], r["table"], str(r["rows_read"]), r["status"]) for r in runs),
        "results": sorted((r["run_id"], r["table"], r["rule"], str(r["failed"])) for r in results),
        "batches": sorted((r["table"], r["batch_id"]) for r in batches),
    }


def test_a_job_run_commits_once_to_each_system_table(spark: SparkSession, tmp_path: Path) -> None:
    project = _project(tmp_path)
    _land(spark, project, "a.jsonl", GOOD_AND_BAD, "i1")
    _refine_silver(spark, project, "r1")
    ctx = _land(spark, project, "b.jsonl", SECOND_DROP, "i2")
    before = _versions(ctx)
    _refine_silver(spark, project, "r2")
    # two tables refined, each with run rows, rule results (orders) and batches: one commit each
    assert {n: v - before[n] for n, v in _versions(ctx).items()} == dict.fromkeys(LEDGER, 1)
    ledger = _ledger(ctx)
    assert [r for r in ledger["runs"] if r[0] == "r2"] == [
        ("r2", "c.silver.customers", "3", "SUCCESS"),
        ("r2", "c.silver.orders", "3", "SUCCESS"),
    ]
    assert len({r[:2] for r in ledger["batches"]}) == len(ledger["batches"]) == 4
    before = _versions(ctx)
    _refine_silver(spark, project, "r3")  # nothing new: one commit, the run rows
    after = _versions(ctx)
    assert {n: after[n] - before[n] for n in LEDGER} == {
        "c.meta.silver_runs": 1,
        "c.meta.dq_results": 0,
        "c.meta.silver_batches": 0,
    }
    _refine_silver(spark, project, "r4", "--full-refresh")  # every batch again, none new
    assert ctx.tables.version("c.meta.silver_batches") == after["c.meta.silver_batches"]
    assert _ledger(ctx)["batches"] == ledger["batches"]


def test_a_failing_table_still_records_the_tables_refined_before_it(
    spark: SparkSession, tmp_path: Path
) -> None:
    project = _project(tmp_path, max_rows=3)  # orders' fail rule: more than 3 rows
    ctx = _land(spark, project, "a.jsonl", GOOD_AND_BAD, "i1")
    before = _versions(ctx)
    with pytest.raises(QualityGateError, match=r"c\.silver\.orders: quality gate failed"):
        _refine_silver(spark, project, "r1", "c.silver.customers", "c.silver.orders")
    assert {n: v - before[n] for n, v in _versions(ctx).items()} == dict.fromkeys(LEDGER, 1)
    ledger = _ledger(ctx)
    assert ledger["runs"] == [
        ("r1", "c.silver.customers", "6", "SUCCESS"),
        ("r1", "c.silver.orders", "6", "FAILED"),
    ]
    assert ("r1", "c.silver.orders", "not_too_many", "1") in ledger["results"]
    assert [b[0] for b in ledger["batches"]] == ["c.silver.customers"]  # orders wrote nothing
    assert ctx.tables.row_count("c.silver.customers") > 0


def test_the_same_run_id_flushing_again_replaces_its_rows(
    spark: SparkSession, tmp_path: Path
) -> None:
    """A retried task attempt keeps its run's id: its rows replace the earlier attempt's."""
    project = _project(tmp_path, max_rows=3)
    ctx = _land(spark, project, "a.jsonl", GOOD_AND_BAD, "i1")
    with pytest.raises(QualityGateError):
        _refine_silver(spark, project, "r1", "c.silver.orders")
    conf = project.root / "conf" / "c.yml"
    conf.write_text(conf.read_text().replace("max_value: 3}", "max_value: 100}"))
    from lakehouse.config import load_project

    _refine_silver(spark, load_project(project.root), "r1", "c.silver.orders")
    ledger = _ledger(ctx)
    assert ledger["runs"] == [("r1", "c.silver.orders", "6", "SUCCESS")]
    assert sorted(r[2:] for r in ledger["results"]) == [
        ("amount_in_range", "2"),
        ("customer_given", "1"),
        ("not_too_many", "0"),
        ("status_known", "2"),
    ]


def _env(crash_at: str | None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LAKEHOUSE_", "PYSPARK_", "SPARK_CONNECT", "SPARK_REMOTE"))
    }
    if crash_at:
        env["LAKEHOUSE_CRASH_AT"] = crash_at
    return env


def _job_task(project: Project, run_id: str, crash_at: str | None = None) -> None:
    """The ``refine_silver`` job task in its own process (``jobs/refine_silver.py``)."""
    command = [
        sys.executable,
        str(REPO / "jobs" / "refine_silver.py"),
        "--project-dir",
        str(project.root),
        "--run-id",
        run_id,
    ]
    done = subprocess.run(command, env=_env(crash_at), capture_output=True, text=True, timeout=300)
    expected = -signal.SIGKILL if crash_at else 0
    assert done.returncode == expected, (crash_at, done.stdout[-2000:], done.stderr[-2000:])


def test_sigkill_after_the_data_commits_then_rerun_refines_and_records_once(
    spark: SparkSession, tmp_path: Path
) -> None:
    # the baseline: two clean runs, in process
    clean = _project(tmp_path / "clean")
    _land(spark, clean, "a.jsonl", GOOD_AND_BAD, "i1")
    _refine_silver(spark, clean, "r1")
    _land(spark, clean, "b.jsonl", SECOND_DROP, "i2")
    expected = _silver_state(_refine_silver(spark, clean, "r2"))

    project = _project(tmp_path / "killed")
    _land(spark, project, "a.jsonl", GOOD_AND_BAD, "i1")
    _refine_silver(spark, project, "r1")
    ctx = _land(spark, project, "b.jsonl", SECOND_DROP, "i2")
    ledger_before = _ledger(ctx)
    # killed right after the last data commit of the run (customers is refined after
    # orders): both tables' MERGEs (and orders' quarantine) committed, no bookkeeping yet
    _job_task(project, "r2", crash_at="commit:c.silver.customers")
    assert _silver_state(ctx) == expected  # the data of run r2 is in
    assert _ledger(ctx) == ledger_before  # its bookkeeping is not

    _job_task(project, "r3")  # re-run: refines batch b again, harmlessly, and records it
    assert _silver_state(ctx) == expected  # no duplicates, no lost rows, quarantine once
    ledger = _ledger(ctx)
    assert [r for r in ledger["runs"] if r[0] != "r1"] == [
        ("r3", "c.silver.customers", "3", "SUCCESS"),
        ("r3", "c.silver.orders", "3", "SUCCESS"),
    ]
    assert {r[0] for r in ledger["results"]} == {"r1", "r3"}
    assert len(ledger["results"]) == len(set(ledger["results"])) == 8
    assert len(ledger["batches"]) == len(set(ledger["batches"])) == 4  # 2 tables x 2 batches
    _refine_silver(spark, project, "r4")  # and nothing is pending any more
    assert [r for r in _ledger(ctx)["runs"] if r[0] == "r4"] == [
        ("r4", "c.silver.customers", "0", "SUCCESS"),
        ("r4", "c.silver.orders", "0", "SUCCESS"),
    ]
