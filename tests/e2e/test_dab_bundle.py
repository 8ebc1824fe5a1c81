"""A Databricks project run unchanged: ``databricks.yml`` + ``resources/*.yml``, a job of
notebook → declarative pipeline (Python + SQL, every expectation kind, AUTO CDC SCD1 and
SCD2) → wheel → source-format notebook, through the CLI. Every table, expectation count,
quarantined row and SCD2 version is compared with the hand-derived values of
``tests/e2e/dab_expected.py``; the portable part equals Apache Spark's own runner."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from tests.e2e import dab_expected
from tests.pipelines.declarative.reference import (
    SPARK_PIPELINES,
    assert_tables_equal,
    land_with_notebook,
    portable_pipeline,
    portable_reference_tables,
)

PROJECT = Path(__file__).resolve().parents[1] / "data" / "dab_project"
LAKEHOUSE = str(Path(sys.executable).parent / "lakehouse")
IGNORED_LOCALLY = [
    "bundle.uuid",
    "artifacts",
    "resources.jobs.coffee_shop_job.job_clusters",
    "resources.jobs.coffee_shop_job.environments",
    "resources.jobs.coffee_shop_job.tasks[0].job_cluster_key",
    "resources.jobs.coffee_shop_job.tasks[2].environment_key",
    "resources.jobs.coffee_shop_job.tasks[3].job_cluster_key",
    "resources.jobs.coffee_shop_job.tasks[3].libraries",
    "resources.pipelines.coffee_shop_etl.serverless",
    "resources.pipelines.coffee_shop_etl.environment",
    "workspace.host",
]


def _lakehouse(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LAKEHOUSE_", "BUNDLE_VAR_", "SPARK_CONNECT", "SPARK_REMOTE"))
    }
    return subprocess.run(
        [LAKEHOUSE, *args, "--project-dir", str(project)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _rows(spark: SparkSession, location: Path, columns: tuple[str, ...]) -> list[tuple[Any, ...]]:
    frame = spark.read.format("delta").load(str(location)).select(*columns)
    return [tuple(row) for row in frame.collect()]


@pytest.fixture(scope="module")
def ran_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The test project copied and run once: ``bundle run coffee_shop_job --var …``."""
    project = tmp_path_factory.mktemp("dab") / "coffee_shop"
    shutil.copytree(PROJECT, project)
    landing = project.parent / "landing"
    done = _lakehouse(
        project, "bundle", "run", "coffee_shop_job", "--var", f"landing_path={landing}"
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-3000:]
    return project, done.stdout


@pytest.mark.e2e
def test_validate_lists_what_is_ignored_locally(tmp_path: Path) -> None:
    done = _lakehouse(PROJECT, "bundle", "validate")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line.strip() for line in done.stdout.splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith("ignored locally:"))
    listed = lines[start + 1 : start + 1 + len(IGNORED_LOCALLY)]
    assert listed == IGNORED_LOCALLY
    assert "pipeline coffee_shop_etl: 1 library → main.coffee_shop" in lines
    assert "schedules and triggers: paused (development mode or presets)" in lines


@pytest.mark.e2e
def test_the_job_runs_every_task_kind(ran_bundle: tuple[Path, str]) -> None:
    project, stdout = ran_bundle
    for task in ("land_raw_files", "refresh_pipeline", "publish_report", "check_report"):
        assert f"✓ {task} success" in stdout
    runs = project / ".lakehouse" / "runs"
    executed = sorted(p.name for p in runs.glob("*/*.ipynb"))
    assert executed == ["check_report.ipynb", "land_raw_files.ipynb"]
    assert "wrote 2 rows to main.coffee_shop.top_categories" in stdout


@pytest.mark.e2e
def test_every_table_equals_the_hand_derived_rows(
    ran_bundle: tuple[Path, str], spark: SparkSession
) -> None:
    project, _ = ran_bundle
    tables = project / ".lakehouse" / "tables" / "coffee_shop"
    ours = {
        name: _rows(spark, tables / name, dab_expected.COLUMNS[name])
        for name in dab_expected.TABLES
    }
    assert {name: len(rows) for name, rows in ours.items()} == dab_expected.ROW_COUNTS
    assert_tables_equal(ours, dab_expected.TABLES)


@pytest.mark.e2e
def test_expectations_are_counted_and_dropped_rows_quarantined(
    ran_bundle: tuple[Path, str], spark: SparkSession
) -> None:
    project, _ = ran_bundle
    dq = spark.read.format("delta").load(str(project / ".lakehouse/tables/meta/dq_results"))
    counted = {
        (r["table"].split(".")[-1], r["rule"]): (
            r["action"],
            r["evaluated"] - r["failed"],
            r["failed"],
        )
        for r in dq.collect()
    }
    expected = {
        (table, rule): result
        for table, rules in dab_expected.EXPECTATIONS.items()
        for rule, result in rules.items()
    }
    assert counted == expected
    for dataset, by_expectation in dab_expected.QUARANTINE.items():
        location = project / ".lakehouse/tables/coffee_shop" / f"{dataset}_quarantine"
        quarantined = spark.read.format("delta").load(str(location))
        found: dict[str, list[int]] = {}
        for row in quarantined.collect():
            for name in row["_expectations"]:
                found.setdefault(name, []).append(row["order_id"])
        assert {k: sorted(v) for k, v in found.items()} == by_expectation


@pytest.mark.e2e
def test_the_wheel_wrote_a_managed_delta_table(
    ran_bundle: tuple[Path, str], spark: SparkSession
) -> None:
    project, _ = ran_bundle
    (managed,) = (project / ".lakehouse" / "warehouse").glob("top_categories*")
    assert (managed / "_delta_log").is_dir()
    rows = _rows(spark, managed, dab_expected.COLUMNS["top_categories"])
    assert_tables_equal({"t": rows}, {"t": dab_expected.TOP_CATEGORIES})


@pytest.mark.e2e
def test_later_commands_know_the_pipeline_tables(ran_bundle: tuple[Path, str]) -> None:
    """The datasets the run added to the catalog are recorded: a new process lists and
    queries them (the AUTO CDC state tables too, as Databricks lists backing tables)."""
    project, _ = ran_bundle
    query = "SELECT category, revenue FROM main.coffee_shop.sales_by_category ORDER BY category"
    done = _lakehouse(project, "sql", query, "-o", "csv")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        "category,revenue",
        "beans,204.00",
        "equipment,90.00",
        "merch,85.00",
    ]
    listed = _lakehouse(project, "tables")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    for table in (*dab_expected.TABLES, "products__auto_cdc_state", "valid_orders_quarantine"):
        assert f"main.coffee_shop.{table} " in listed.stdout


@pytest.mark.e2e
def test_a_second_update_changes_nothing(ran_bundle: tuple[Path, str], spark: SparkSession) -> None:
    """No new files: streaming tables take no rows, the recomputed views (and the quarantine
    of their dropped rows) come out the same, nothing is counted twice."""
    project, _ = ran_bundle
    landing = project.parent / "landing"
    # `bundle run PIPELINE` as the Databricks CLI has it (same as `pipeline run PIPELINE`)
    done = _lakehouse(
        project, "bundle", "run", "coffee_shop_etl", "--var", f"landing_path={landing}"
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-3000:]
    tables = project / ".lakehouse" / "tables" / "coffee_shop"
    ours = {
        name: _rows(spark, tables / name, dab_expected.COLUMNS[name])
        for name in dab_expected.TABLES
    }
    assert_tables_equal(ours, dab_expected.TABLES)
    quarantined = {
        name: spark.read.format("delta").load(str(tables / f"{name}_quarantine")).count()
        for name in dab_expected.QUARANTINE
    }
    assert quarantined == {"orders_raw": 2, "valid_orders": 5}


@pytest.mark.e2e
def test_refresh_updates_only_the_named_dataset(
    ran_bundle: tuple[Path, str], spark: SparkSession
) -> None:
    """``--refresh daily_sales`` reads valid_orders as it is (through the store, not
    recomputed) and rewrites daily_sales alone."""
    from deltalake import DeltaTable

    project, _ = ran_bundle
    tables = project / ".lakehouse" / "tables" / "coffee_shop"
    before = {name: DeltaTable(str(tables / name)).version() for name in dab_expected.TABLES}
    landing = project.parent / "landing"
    done = _lakehouse(
        project,
        "pipeline",
        "run",
        "coffee_shop_etl",
        "--refresh",
        "daily_sales",
        "--var",
        f"landing_path={landing}",
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-3000:]
    after = {name: DeltaTable(str(tables / name)).version() for name in dab_expected.TABLES}
    assert {name for name in after if after[name] != before[name]} == {"daily_sales"}
    rows = _rows(spark, tables / "daily_sales", dab_expected.COLUMNS["daily_sales"])
    assert_tables_equal({"t": rows}, {"t": dab_expected.TABLES["daily_sales"]})


@pytest.mark.e2e
@pytest.mark.reference
@pytest.mark.skipif(
    shutil.which("java") is None or not SPARK_PIPELINES.exists(),
    reason="needs Java and pyspark's spark-pipelines",
)
def test_portable_pipeline_equals_apache_spark_pipelines(
    tmp_path: Path, spark: SparkSession
) -> None:
    """The pipeline without its Databricks-only parts, run by ``lakehouse pipeline run
    --spec`` and by Apache Spark's ``spark-pipelines run``: the same tables."""
    reference = portable_reference_tables(PROJECT, tmp_path / "reference")
    pipeline = portable_pipeline(PROJECT, tmp_path / "ours" / "pipeline")
    landing = tmp_path / "ours" / "landing"
    land_with_notebook(PROJECT, landing)
    storage = tmp_path / "ours" / "storage"
    (pipeline / "spark-pipeline.yml").write_text(
        "name: coffee_shop_portable\n"
        "database: coffee_shop\n"
        f"storage: file://{storage}\n"
        "configuration:\n"
        f"  coffee_shop.landing_path: {landing}\n"
        "libraries:\n"
        "  - glob:\n"
        "      include: transformations/**\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    done = subprocess.run(
        [LAKEHOUSE, "pipeline", "run", "--spec", "spark-pipeline.yml"],
        cwd=pipeline,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-3000:]
    tables = storage / "tables" / "coffee_shop"
    ours = {name: _rows(spark, tables / name, dab_expected.COLUMNS[name]) for name in reference}
    assert_tables_equal(ours, reference)
    assert_tables_equal(ours, dab_expected.PORTABLE)
